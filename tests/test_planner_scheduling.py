"""Batch partitioning across unequal GPUs and the local queue policy (pick_next): properties,
starvation-freedom by simulation, and the policy wired into the real local queue."""

from __future__ import annotations

import heapq
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudbridge.errors import UserError
from cloudbridge.planner.partition import partition_batch
from cloudbridge.planner.scheduler import (
    FreeGPU,
    QueuedJob,
    SchedulerPolicy,
    local_queue_policy,
    pick_next,
)

# ---- partitioning -----------------------------------------------------------------------------


def test_partition_examples() -> None:
    assert partition_batch(512, [120, 80, 80]) == [220, 146, 146]
    assert partition_batch(512, {"a100": 3.0, "t4": 1.0}) == {"a100": 384, "t4": 128}
    assert partition_batch(10, {"fast": 100, "slow1": 1, "slow2": 1}) == {"fast": 8, "slow1": 1, "slow2": 1}
    assert partition_batch(3, [5, 5, 5]) == [1, 1, 1]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10_000), st.lists(st.floats(0.01, 1e4, allow_nan=False, allow_infinity=False),
                                        min_size=1, max_size=16))
def test_partition_sums_exactly_and_is_proportional(batch: int, speeds: list[float]) -> None:
    if batch < len(speeds):
        with pytest.raises(UserError, match="smaller than the"):
            partition_batch(batch, speeds)
        return
    sizes = partition_batch(batch, speeds)
    assert isinstance(sizes, list) and all(isinstance(s, int) for s in sizes)
    assert sum(sizes) == batch and min(sizes) >= 1
    total = sum(Fraction(s) for s in speeds)
    ideal = [Fraction(batch) * Fraction(s) / total for s in speeds]
    if all(x >= 1 for x in ideal):
        # Largest remainder: every share is within one sample of its exact proportion.
        assert all(abs(s - x) < 1 for s, x in zip(sizes, ideal, strict=True))
    # A faster worker never gets fewer samples than a slower one (up to one for the remainder).
    for i, j in zip(range(len(speeds)), range(1, len(speeds)), strict=False):
        if speeds[i] > speeds[j]:
            assert sizes[i] >= sizes[j] - 1


@pytest.mark.parametrize(
    ("batch", "speeds", "message"),
    [(0, [1.0], "global batch must be a whole number >= 1"), (8, [], "no workers"),
     (8, {"gpu1": 0.0}, "gpu1: throughput must be a positive number"),
     (8, [1.0, math.nan], "worker 1: throughput must be a positive number"),
     (2, [1.0, 1.0, 1.0], "global batch 2 is smaller than the 3 workers")],
)
def test_partition_bad_input(batch: int, speeds: object, message: str) -> None:
    with pytest.raises(UserError, match=message):
        partition_batch(batch, speeds)  # type: ignore[arg-type]


# ---- pick_next ----------------------------------------------------------------------------------


def test_head_goes_first_and_gets_the_smallest_sufficient_gpus() -> None:
    free = [FreeGPU(0, 80, "A100-80GB"), FreeGPU(1, 24, "L4"), FreeGPU(2, 40, "A100"), FreeGPU(3, 24, "L4")]
    jobs = [QueuedJob("small", 1, queued_at=0, gpu_memory_gb=20), QueuedJob("big", 1, queued_at=5, gpu_memory_gb=60)]
    decision = pick_next(jobs, free, now=10)
    assert (decision.job_id, decision.gpus) == ("small", (1,))  # an L4, not the A100
    decision = pick_next(jobs[1:], free, now=10)
    assert (decision.job_id, decision.gpus) == ("big", (0,))
    two = pick_next([QueuedJob("pair", 2, 0, gpu_memory_gb=30)], free, now=1)
    assert two.gpus == (0, 2)
    typed = pick_next([QueuedJob("a100", 1, 0, accelerator="A100")], free, now=1)
    assert typed.gpus == (2,)  # the A100 family, smallest first


def test_priority_and_aging() -> None:
    policy = SchedulerPolicy(aging_per_hour=6.0, reserve_after=1e9)
    old_low = QueuedJob("old-low", 1, queued_at=0, priority=0)
    # Half an hour in, a fresh priority-5 job outranks it (0 + 3 < 5) ...
    fresh = QueuedJob("fresh-high", 1, queued_at=1800, priority=5)
    assert pick_next([old_low, fresh], [0], now=1800, policy=policy).job_id == "fresh-high"
    # ... but after an hour of waiting it outranks every newly arriving priority-5 job (6 > 5).
    later = QueuedJob("later-high", 1, queued_at=3600, priority=5)
    assert pick_next([old_low, later], [0], now=3600, policy=policy).job_id == "old-low"


def test_backfill_then_reservation() -> None:
    big = QueuedJob("big", 2, queued_at=0)
    small = QueuedJob("small", 1, queued_at=10)
    policy = SchedulerPolicy(reserve_after=600)
    early = pick_next([big, small], [3], now=100, policy=policy)
    assert (early.job_id, early.reason.startswith("backfill")) == ("small", True)
    late = pick_next([big, small], [3], now=700, policy=policy)
    assert late.job_id is None and "held for big" in late.reason
    assert pick_next([big, small], [3, 4], now=700, policy=policy).job_id == "big"
    never = pick_next([QueuedJob("huge", 9, 0), small], [0], now=10_000, total_gpus=4, policy=policy)
    assert never.job_id == "small"  # a job that can never fit does not block the queue
    assert pick_next([], [0], now=0).reason == "queue is empty"


job_lists = st.lists(
    st.tuples(st.integers(1, 4), st.integers(0, 5), st.floats(0, 5000), st.sampled_from([0.0, 16.0, 40.0])),
    min_size=0, max_size=8)
gpu_sets = st.lists(st.sampled_from([16.0, 24.0, 40.0, 80.0]), min_size=0, max_size=6)


@settings(max_examples=300, deadline=None)
@given(job_lists, gpu_sets, st.floats(5000, 20000))
def test_pick_next_properties(raw_jobs: list[tuple[int, int, float, float]], memories: list[float],
                              now: float) -> None:
    jobs = [QueuedJob(f"j{i}", g, t, p, m) for i, (g, p, t, m) in enumerate(raw_jobs)]
    free = [FreeGPU(i, m) for i, m in enumerate(memories)]
    policy = SchedulerPolicy(reserve_after=1e9)  # pure backfill: must be work-conserving
    decision = pick_next(jobs, free, now, policy=policy)
    fits = [j for j in jobs if sum(1 for g in free if g.memory_gb >= j.gpu_memory_gb) >= j.gpus]
    if decision.job_id is None:
        assert fits == []
        return
    job = next(j for j in jobs if j.id == decision.job_id)
    chosen = [g for g in free if g.index in decision.gpus]
    assert len(set(decision.gpus)) == len(decision.gpus) == job.gpus == len(chosen)
    assert all(g.memory_gb >= job.gpu_memory_gb for g in chosen)
    # Best fit: no unchosen sufficient GPU is smaller than a chosen one.
    unchosen = [g for g in free if g.index not in decision.gpus and g.memory_gb >= job.gpu_memory_gb]
    assert all(u.memory_gb >= max(g.memory_gb for g in chosen) for u in unchosen)
    # The pick is the highest effective priority among the jobs that fit.
    def eff(j: QueuedJob) -> float:
        return j.priority + policy.aging_per_hour * (now - j.queued_at) / 3600
    assert eff(job) >= max(eff(j) for j in fits) - 1e-9


def _simulate(policy: SchedulerPolicy, total: int = 4) -> dict[str, float]:
    """A 4-GPU machine: one 4-GPU job arrives at t=60s amid a 10-hour flood of 1-GPU, priority-5
    jobs (one every 6 minutes, 20 minutes each: ~3.3 GPUs busy on average, never all 4 free for
    long). Returns each job's wait (start - arrival)."""
    arrivals = [(60.0, QueuedJob("big", 4, 60.0, 0))]
    durations = {"big": 3600.0}
    for k in range(100):
        arrivals.append((k * 360.0, QueuedJob(f"flood{k}", 1, k * 360.0, 5)))
        durations[f"flood{k}"] = 1200.0
    arrivals.sort(key=lambda a: a[0])
    queue: list[QueuedJob] = []
    free = set(range(total))
    running: list[tuple[float, str, tuple[int, ...]]] = []
    waits: dict[str, float] = {}
    now, i = 0.0, 0
    while i < len(arrivals) or queue or running:
        while i < len(arrivals) and arrivals[i][0] <= now:
            queue.append(arrivals[i][1])
            i += 1
        while True:
            decision = pick_next(queue, sorted(free), now, total_gpus=total, policy=policy)
            if decision.job_id is None:
                break
            job = next(q for q in queue if q.id == decision.job_id)
            waits[job.id] = now - job.queued_at
            queue.remove(job)
            free -= set(decision.gpus)
            heapq.heappush(running, (now + durations[job.id], job.id, decision.gpus))
        events = [t for t in (arrivals[i][0] if i < len(arrivals) else None, running[0][0] if running else None)
                  if t is not None]
        if not events:
            break
        now = max(now, min(events))
        while running and running[0][0] <= now:
            free |= set(heapq.heappop(running)[2])
    assert not queue
    return waits


def test_no_job_starves_behind_a_stream_of_small_jobs() -> None:
    greedy_backfill = _simulate(SchedulerPolicy(aging_per_hour=6.0, reserve_after=math.inf))
    ours = _simulate(SchedulerPolicy(aging_per_hour=6.0, reserve_after=1800))
    # Without reservation the big job waits for the whole flood to pass (hours)...
    assert greedy_backfill["big"] > 8 * 3600
    # ... with it: aging makes it the head after (5 - 0) / 6 h = 50 minutes, it has waited more than
    # 30 minutes so GPUs are held for it, and it starts once the running 20-minute jobs drain.
    assert ours["big"] <= 3000 + 1200
    # The small jobs still flow: the hold costs them at most the big job's hour plus the drain.
    assert max(w for j, w in ours.items() if j != "big") <= 3600 + 1800 + 1200


def test_the_local_queue_uses_the_planner_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudbridge.backends.local import compute_queue, gpus

    monkeypatch.setenv(gpus.FAKE_GPUS_ENV, "4:24")
    monkeypatch.setattr(gpus, "_cache", {})
    assert compute_queue.queue_policy is compute_queue.planner_policy
    queue = [compute_queue.QueuedJob("a", 2, 1, 0.0), compute_queue.QueuedJob("b", 3, 2, 1.0),
             compute_queue.QueuedJob("c", 1, 3, 2.0)]
    # a takes 2 GPUs; b (3) does not fit the 2 left and has waited < 30 min: c backfills.
    assert local_queue_policy(queue, [0, 1, 2, 3], now=100.0) == [("a", [0, 1]), ("c", [2])]
    # Once b has waited 30 minutes it holds the GPUs: nothing else starts before it.
    assert local_queue_policy(queue[1:], [3], now=2.0 + 1800) == []


def test_promote_follows_priorities_types_and_memory(monkeypatch: pytest.MonkeyPatch, cb_home: object) -> None:
    """The real queue (SQLite, ``promote``) with mixed GPUs: the policy sees each job's priority, GPU
    type and memory as stored at enqueue time, and FIFO would have decided differently."""
    from cloudbridge.backends.local import compute_queue, gpus
    from cloudbridge.jobstore.store import JobStore
    from cloudbridge.records import Job, JobState

    monkeypatch.setenv(gpus.FAKE_GPUS_ENV, "2:16:T4,2:40:A100")
    monkeypatch.setattr(gpus, "_cache", {})
    store = JobStore.default()
    waiting = [("old-low", {}), ("typed", {"priority": 5, "accelerator": "A100"}),
               ("roomy", {"priority": 2, "gpu_memory_gb": 30}), ("mid", {"priority": 1})]
    for job_id, extra in waiting:
        store.insert_job(Job(job_id, "local", job_id, JobState.PENDING),
                         also=lambda conn, j=job_id, e=extra: compute_queue.enqueue(conn, j, 1, **e))
    with store.transaction() as conn:  # GPUs 0 (T4) and 3 (A100) are busy
        conn.executemany("INSERT INTO local_gpu_allocations (gpu, job_id, allocated_at) VALUES (?, 'busy', 0)",
                         [(0,), (3,)])
    with store.connect() as conn:
        queued = compute_queue._state(conn)[1]
    assert [(q.priority, q.gpu_memory_gb, q.accelerator) for q in queued] == [(0, 0, None), (5, 0, "A100"),
                                                                             (2, 30, None), (1, 0, None)]
    assert compute_queue.fifo_fits_first(queued, [1, 2]) == [("old-low", [1]), ("typed", [2])]
    picks = compute_queue.promote(store, [0, 1, 2, 3])
    # typed (priority 5) gets the free A100; roomy (2) needs >= 30 GB, so mid (1) backfills the free T4;
    # old-low (0) waits.
    assert picks == [("typed", [2]), ("mid", [1])]
    with store.connect() as conn:
        held = dict(conn.execute("SELECT gpu, job_id FROM local_gpu_allocations").fetchall())
        left = [r[0] for r in conn.execute("SELECT job_id FROM local_queue ORDER BY seq")]
    assert held == {0: "busy", 1: "mid", 2: "typed", 3: "busy"} and left == ["old-low", "roomy"]
    assert compute_queue.queue_position(store, "roomy") == 1
    with store.transaction() as conn:  # the busy T4 frees up: too small for roomy, old-low backfills it
        conn.execute("DELETE FROM local_gpu_allocations WHERE gpu = 0")
    assert compute_queue.promote(store, [0, 1, 2, 3]) == [("old-low", [0])]
    with store.transaction() as conn:  # the busy A100 frees up: roomy gets it
        conn.execute("DELETE FROM local_gpu_allocations WHERE gpu = 3")
    assert compute_queue.promote(store, [0, 1, 2, 3]) == [("roomy", [3])]
