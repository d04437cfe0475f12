"""GPU allocation and the queue, with the CLOUDBRIDGE_FAKE_GPUS test hook standing in for GPUs.

The jobs, supervisors, SQLite transactions and the queue are all real; only the GPU inventory
comes from the hook.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from fixtures_local import local_compute, spec, wait_state, wait_until
from hypothesis import given
from hypothesis import strategies as st

from cloudbridge.backends.local.compute_queue import QueuedJob, enqueue, fifo_fits_first, promote
from cloudbridge.backends.local.gpus import machine_info, probe_gpus
from cloudbridge.errors import InvalidSpec, ResourceUnavailable
from cloudbridge.jobstore.store import DB_NAME, JobStore
from cloudbridge.records import Job, JobState


def test_fake_gpus_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDBRIDGE_FAKE_GPUS", "3:24")
    gpus, source = probe_gpus()
    assert source == "fake" and [g.index for g in gpus] == [0, 1, 2] and gpus[0].memory_mb == 24 * 1024
    info = machine_info([0, 2, 7])
    assert [g.index for g in info.gpus] == [0, 2] and "7" in info.notes[0]
    monkeypatch.setenv("CLOUDBRIDGE_FAKE_GPUS", "two")
    with pytest.raises(InvalidSpec, match="CLOUDBRIDGE_FAKE_GPUS"):
        probe_gpus()
    monkeypatch.setenv("CLOUDBRIDGE_FAKE_GPUS", "2:16:T4, 1:80:A100-80GB")
    gpus, _ = probe_gpus()
    assert [(g.index, g.name, g.memory_mb // 1024) for g in gpus] == [
        (0, "FAKE T4", 16), (1, "FAKE T4", 16), (2, "FAKE A100-80GB", 80)]


queues = st.lists(st.integers(min_value=1, max_value=8), max_size=12).map(
    lambda sizes: [QueuedJob(f"j{i}", n, i, 0.0) for i, n in enumerate(sizes)]
)


@given(queue=queues, free=st.sets(st.integers(min_value=0, max_value=7)))
def test_fifo_fits_first_properties(queue: list[QueuedJob], free: set[int]) -> None:
    picks = fifo_fits_first(queue, sorted(free))
    handed = [g for _, gpus in picks for g in gpus]
    assert len(handed) == len(set(handed)), "a GPU handed out twice"
    assert set(handed) <= free
    sizes = {q.job_id: q.gpus for q in queue}
    assert all(len(gpus) == sizes[job_id] for job_id, gpus in picks)
    order = [q.job_id for q in queue]
    assert [job_id for job_id, _ in picks] == [j for j in order if j in dict(picks)], "picks keep queue order"
    left = len(free) - len(handed)
    assert all(q.gpus > left for q in queue if q.job_id not in dict(picks)), "a job that fits was left waiting"
    if queue and queue[0].gpus <= len(free):
        assert picks and picks[0][0] == queue[0].job_id, "the head of the queue goes first when it fits"


def test_never_fits_is_refused_at_submit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cb_home: Path) -> None:
    compute = local_compute(monkeypatch, fake_gpus="2")
    with pytest.raises(ResourceUnavailable, match=r"8 GPU\(s\).*has 2 usable") as info:
        compute.submit(spec(tmp_path, "echo hi", resources={"accelerators": "A100:8"}))
    assert "provider: aws" in str(info.value)
    assert JobStore.default().list() == []
    assert not (cb_home / "jobs").exists() or not any((cb_home / "jobs").iterdir())
    no_gpu = local_compute(monkeypatch)
    with pytest.raises(ResourceUnavailable, match="has 0 usable"):
        no_gpu.submit(spec(tmp_path, "echo hi", resources={"accelerators": "T4"}))
    with pytest.raises(ResourceUnavailable, match="nodes: 2"):
        no_gpu.submit(spec(tmp_path, "echo hi", resources={"nodes": 2}))


def test_settings_restrict_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, fake_gpus="4", gpus="1,3")
    with pytest.raises(ResourceUnavailable, match="has 2 usable"):
        compute.submit(spec(tmp_path, "echo", resources={"accelerators": "X:3"}))
    job = compute.wait(compute.submit(spec(tmp_path, "echo gpus=$CUDA_VISIBLE_DEVICES", resources={
        "accelerators": "X:2"})).id, 30)
    assert "gpus=1,3" in list(compute.logs(job.id))


def _gpus_of(compute: object, job: Job) -> set[int]:
    line = next(x for x in compute.logs(job.id) if x.startswith("gpus="))  # type: ignore[attr-defined]
    return {int(g) for g in line[5:].split(",")}


def test_concurrent_jobs_never_share_a_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, fake_gpus="3")
    run = "echo gpus=$CUDA_VISIBLE_DEVICES; sleep 0.6"
    sizes = [1, 2, 1, 2, 1]
    jobs = [compute.submit(spec(tmp_path, run, name=f"j{i}", resources={"accelerators": f"FAKE:{n}"}))
            for i, n in enumerate(sizes)]
    done = [compute.wait(job.id, 60) for job in jobs]
    assert all(j.state == JobState.SUCCEEDED for j in done), [(j.state, j.detail) for j in done]
    gpus = {j.id: _gpus_of(compute, j) for j in done}
    assert [len(gpus[j.id]) for j in done] == sizes
    for a in done:
        for b in done:
            overlap = a.id < b.id and a.started_at < b.ended_at and b.started_at < a.ended_at
            if overlap:
                assert not gpus[a.id] & gpus[b.id], f"{a.id} and {b.id} ran at once on GPUs {gpus[a.id] & gpus[b.id]}"
    with JobStore.default().connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM local_gpu_allocations").fetchone()[0] == 0, "GPUs not freed"
        assert conn.execute("SELECT COUNT(*) FROM local_queue").fetchone()[0] == 0


def test_queue_is_fifo_and_fits_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, fake_gpus="2")
    gate = tmp_path / "release-a"
    a = compute.submit(spec(tmp_path, f"while [ ! -e {gate} ]; do sleep 0.05; done", name="a",
                            resources={"accelerators": "FAKE:1"}))
    wait_state(compute, a.id, JobState.RUNNING)
    b = compute.submit(spec(tmp_path, "sleep 0.3", name="b", resources={"accelerators": "FAKE:2"}))
    c = compute.submit(spec(tmp_path, "sleep 0.3", name="c", resources={"accelerators": "FAKE:1"}))
    # c fits in the GPU a leaves free and starts first; b (2 GPUs) waits with its place kept
    assert compute.wait(c.id, 30).state == JobState.SUCCEEDED
    b_now = compute.get(b.id)
    assert b_now.state == JobState.PENDING and b_now.extra["queue_position"] == 1
    d = compute.submit(spec(tmp_path, "sleep 0.3", name="d", resources={"accelerators": "FAKE:2"}))
    assert compute.get(d.id).extra["queue_position"] == 2
    gate.touch()
    b_done, d_done = compute.wait(b.id, 30), compute.wait(d.id, 30)
    assert b_done.started_at < d_done.started_at, "equal-size jobs start in submission order"
    assert b_done.started_at >= compute.get(a.id).ended_at


def test_cancel_while_queued_frees_the_slot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, fake_gpus="1")
    a = compute.submit(spec(tmp_path, "sleep 30", name="a", resources={"accelerators": "FAKE:1"}))
    wait_state(compute, a.id, JobState.RUNNING)
    b = compute.submit(spec(tmp_path, "echo b", name="b", resources={"accelerators": "FAKE:1"}))
    c = compute.submit(spec(tmp_path, "echo c", name="c", resources={"accelerators": "FAKE:1"}))
    cancelled = compute.cancel(b.id)
    assert cancelled.state == JobState.CANCELLED and cancelled.reason == "cancelled by user"
    compute.cancel(a.id)
    assert compute.wait(c.id, 30).state == JobState.SUCCEEDED
    assert compute.get(b.id).started_at is None


def test_start_timeout_in_queue(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, fake_gpus="1")
    a = compute.submit(spec(tmp_path, "sleep 30", name="a", resources={"accelerators": "FAKE:1"}))
    wait_state(compute, a.id, JobState.RUNNING)
    b = compute.submit(spec(tmp_path, "echo never", name="b",
                            resources={"accelerators": "FAKE:1", "start_timeout": 1}))
    job = compute.wait(b.id, 30)
    assert job.state == JobState.FAILED
    assert job.reason == "timed out: queued for more than start_timeout 1s"
    assert "1 GPU(s)" in job.detail
    compute.cancel(a.id)


def _promoter(path: str, gpu_ids: list[int], rounds: int, out: multiprocessing.Queue) -> None:
    try:
        store = JobStore(path)
        picks = []
        for _ in range(rounds):
            picks += promote(store, gpu_ids)
        out.put(picks)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.put(repr(exc))


def test_promote_from_many_processes_never_double_books(cb_home: Path) -> None:
    store = JobStore(cb_home / DB_NAME)
    sizes = [1, 2, 1, 3, 1, 1, 2, 1]
    for i, n in enumerate(sizes):
        store.insert_job(Job(id=f"local-q{i}", provider="local", name="q", state=JobState.PENDING),
                         also=lambda conn, i=i, n=n: enqueue(conn, f"local-q{i}", n))
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_promoter, args=(str(store.path), [0, 1, 2, 3, 4], 20, out)) for _ in range(4)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert not [r for r in results if isinstance(r, str)], results
    picks = [p for r in results for p in r]
    handed = [g for _, gpus in picks for g in gpus]
    assert len(handed) == len(set(handed)) <= 5
    assert len({job for job, _ in picks}) == len(picks), "a job was promoted twice"
    with store.connect() as conn:
        rows = conn.execute("SELECT job_id, COUNT(*) FROM local_gpu_allocations GROUP BY job_id").fetchall()
    assert {r[0]: r[1] for r in rows} == {job: len(gpus) for job, gpus in picks}
    # FIFO fits-first over 5 GPUs: q0 (1) + q1 (2) + q2 (1) = 4, q3 (3) does not fit, q4 (1) does
    assert sorted(job for job, _ in picks) == ["local-q0", "local-q1", "local-q2", "local-q4"]
    wait_until(lambda: all(not p.is_alive() for p in procs), 10)


MIXED = "2:16:T4,1:80:A100-80GB"  # GPUs 0-1: T4 16 GB; GPU 2: A100 80 GB


def test_gpu_type_and_memory_are_honoured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, fake_gpus=MIXED)
    run = "echo gpus=$CUDA_VISIBLE_DEVICES"
    # Best fit by memory alone would hand out a T4; the type says A100 (the family accepts the 80 GB part).
    a100 = compute.wait(compute.submit(spec(tmp_path, run, name="a100", resources={"accelerators": "A100:1"})).id, 30)
    assert a100.state == JobState.SUCCEEDED and _gpus_of(compute, a100) == {2}
    t4 = compute.wait(compute.submit(spec(tmp_path, run, name="t4", resources={"accelerators": "T4:2"})).id, 30)
    assert _gpus_of(compute, t4) == {0, 1}
    roomy = compute.wait(compute.submit(spec(tmp_path, run, name="roomy", resources={
        "accelerators": "GPU:1", "gpu_memory": "40+"})).id, 30)
    assert _gpus_of(compute, roomy) == {2}
    assert any("no GPU here is called that" in w for w in roomy.extra["warnings"])
    # Requests this machine can never meet are refused at submit, with what it has; nothing is recorded.
    before = len(JobStore.default().list())
    for resources, message in (
        ({"accelerators": "H100:1"}, r"asks for H100 GPUs .* has none \(0: T4 16 GB, 1: T4 16 GB, 2: A100-80GB 80 GB"),
        ({"accelerators": "A100:2"}, r"asks for 2 A100 GPU\(s\) but this machine has 1 such"),
        ({"accelerators": "T4:1", "gpu_memory": 24}, r"1 T4 GPU\(s\) with at least 24 GB each .* has 0 such"),
    ):
        with pytest.raises(ResourceUnavailable, match=message):
            compute.submit(spec(tmp_path, run, name="never", resources=resources))
    assert len(JobStore.default().list()) == before


def test_typed_job_waits_for_its_gpu_type_while_others_backfill(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, fake_gpus=MIXED)
    gate = tmp_path / "release"
    hold = f"echo gpus=$CUDA_VISIBLE_DEVICES; while [ ! -e {gate} ]; do sleep 0.05; done"
    holder = compute.submit(spec(tmp_path, hold, name="holder", resources={"accelerators": "A100-80GB:1"}))
    wait_state(compute, holder.id, JobState.RUNNING)
    typed = compute.submit(spec(tmp_path, "echo gpus=$CUDA_VISIBLE_DEVICES", name="typed",
                                resources={"accelerators": "A100:1"}))
    any_gpu = compute.submit(spec(tmp_path, "echo gpus=$CUDA_VISIBLE_DEVICES", name="any",
                                  resources={"accelerators": "T4:1"}))
    done = compute.wait(any_gpu.id, 30)  # a T4 is free: it starts although the A100 job is older
    assert done.state == JobState.SUCCEEDED and _gpus_of(compute, done) < {0, 1}
    assert compute.get(typed.id).state == JobState.PENDING, "the A100 job must not take a free T4"
    gate.touch()
    typed_done = compute.wait(typed.id, 30)
    assert _gpus_of(compute, typed_done) == {2} and typed_done.started_at >= compute.get(holder.id).ended_at


def test_priority_decides_who_gets_a_freed_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, fake_gpus="1")
    gate = tmp_path / "release"
    holder = compute.submit(spec(tmp_path, f"while [ ! -e {gate} ]; do sleep 0.05; done", name="holder",
                                 resources={"accelerators": "FAKE:1"}))
    wait_state(compute, holder.id, JobState.RUNNING)
    low = compute.submit(spec(tmp_path, "sleep 0.2", name="low", resources={"accelerators": "FAKE:1"}))
    high = compute.submit(spec(tmp_path, "sleep 0.2", name="high", resources={"accelerators": "FAKE:1",
                                                                              "priority": 5}))
    assert compute.get(high.id).extra["queue_position"] == 1 and compute.get(low.id).extra["queue_position"] == 2
    with JobStore.default().connect() as conn:
        row = conn.execute("SELECT priority, gpu_memory_gb, accelerator FROM local_queue WHERE job_id = ?",
                           (high.id,)).fetchone()
    assert tuple(row) == (5, 0.0, "FAKE")
    gate.touch()
    high_done, low_done = compute.wait(high.id, 30), compute.wait(low.id, 30)
    assert high_done.state == low_done.state == JobState.SUCCEEDED
    assert high_done.started_at < low_done.started_at, "the later, higher-priority job must start first"
    assert low_done.started_at >= high_done.ended_at


def test_a_version_1_store_gains_the_queue_columns(cb_home: Path) -> None:
    import sqlite3

    path = cb_home / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE jobs (id TEXT PRIMARY KEY, provider TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL,
            native_id TEXT, spec TEXT, outputs_uri TEXT, metrics TEXT NOT NULL DEFAULT '{}', reason TEXT,
            detail TEXT, exit_code INTEGER, created_at REAL NOT NULL, started_at REAL, ended_at REAL,
            updated_at REAL NOT NULL, attempts TEXT NOT NULL DEFAULT '[]', extra TEXT NOT NULL DEFAULT '{}');
        CREATE TABLE local_queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL UNIQUE,
            gpus INTEGER NOT NULL, enqueued_at REAL NOT NULL);
        INSERT INTO local_queue (job_id, gpus, enqueued_at) VALUES ('local-old', 1, 0);
        PRAGMA user_version = 1;
    """)
    conn.close()
    store = JobStore(path)
    with store.connect() as conn:
        row = conn.execute("SELECT job_id, priority, gpu_memory_gb, accelerator FROM local_queue").fetchone()
        assert tuple(row) == ("local-old", 0, 0.0, None)
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 2
