"""Local job lifecycle: timeouts, budgets, failure reasons, inputs/outputs, secrets, metrics."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from fixtures_local import local_compute, spec, wait_state
from hypothesis import given
from hypothesis import strategies as st

from cloudbridge.backends.local.compute_reasons import classify_exit, fmt_duration
from cloudbridge.errors import BudgetExceeded, InvalidSpec
from cloudbridge.jobstore.store import DB_NAME, JobStore
from cloudbridge.records import JobState
from cloudbridge.specs import parse_duration


def test_max_runtime_stops_the_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    job = compute.wait(compute.submit(spec(tmp_path, "echo begin; sleep 300", resources={"max_runtime": 1})).id, 30)
    assert job.state == JobState.FAILED
    assert job.reason == "timed out: running stage exceeded max_runtime 1s"
    assert "begin" in job.detail and "ran for" in job.detail
    assert job.exit_code == -signal.SIGTERM


def test_max_runtime_reason_formats_the_spec_duration() -> None:
    from cloudbridge.backends.local.compute_reasons import runtime_timeout_reason

    assert runtime_timeout_reason(30) == "timed out: running stage exceeded max_runtime 30s"
    assert runtime_timeout_reason(parse_duration("1h30m")) == "timed out: running stage exceeded max_runtime 1h30m"


@given(st.integers(min_value=1, max_value=10 * 86400))
def test_fmt_duration_roundtrips_through_the_spec_parser(seconds: int) -> None:
    assert parse_duration(fmt_duration(seconds)) == seconds


def test_budget_refused_at_submit_with_the_numbers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cb_home: Path
) -> None:
    compute = local_compute(monkeypatch, price_per_hour=3.6)
    with pytest.raises(BudgetExceeded, match=r"estimated cost \$7\.20 \(max_runtime 2h at \$3\.6/h\).*max_cost \$5"):
        compute.submit(spec(tmp_path, "echo", resources={"max_runtime": "2h", "max_cost": 5}))
    with pytest.raises(BudgetExceeded, match=r"\$3\.6/h, above resources.max_hourly_cost \$1"):
        compute.submit(spec(tmp_path, "echo", resources={"max_hourly_cost": 1}))
    assert JobStore.default().list() == []
    assert not (cb_home / "jobs").exists() or not any((cb_home / "jobs").iterdir())
    ok = compute.submit(spec(tmp_path, "echo", resources={"max_runtime": "1h", "max_cost": 5}))
    assert ok.extra["estimated_cost"] == pytest.approx(3.6)
    compute.wait(ok.id, 30)


def test_budget_stops_a_running_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, price_per_hour=3600)  # one dollar per second
    job = compute.wait(compute.submit(spec(tmp_path, "sleep 300", resources={"max_cost": 1.5})).id, 30)
    assert job.state == JobState.FAILED and job.reason == "budget exceeded"
    assert "reached max_cost $1.5 at $3600/h" in job.detail


def test_budget_without_a_price_warns(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    job = compute.wait(compute.submit(spec(tmp_path, "echo", resources={"max_cost": 1})).id, 30)
    assert job.state == JobState.SUCCEEDED
    assert any("CLOUDBRIDGE_LOCAL_PRICE_PER_HOUR" in w for w in job.extra["warnings"])
    assert any("warning:" in line and "no price" in line for line in compute.logs(job.id))


def test_out_of_memory_in_a_memory_limited_child(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    import sys

    run = f"ulimit -v 600000; {sys.executable} -c 'x = bytearray(4 * 1024 ** 3)'"
    job = compute.wait(compute.submit(spec(tmp_path, run)).id, 60)
    assert job.state == JobState.FAILED
    assert job.reason == "out of memory", (job.reason, job.detail)
    assert "MemoryError" in job.detail and "out-of-memory error in its log" in job.detail


def test_non_zero_exit_reports_the_last_20_lines(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    job = compute.wait(compute.submit(spec(tmp_path, "for i in $(seq 1 30); do echo line-$i; done; exit 4")).id, 30)
    assert (job.state, job.reason, job.exit_code) == (JobState.FAILED, "non-zero exit (code 4)", 4)
    shown = [line for line in job.detail.splitlines() if line.startswith("line-")]
    assert shown == [f"line-{i}" for i in range(11, 31)]


def test_killed_by_a_signal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    job = compute.wait(compute.submit(spec(tmp_path, "echo x; kill -SEGV $$")).id, 30)
    assert job.state == JobState.FAILED and job.reason == "killed by signal SIGSEGV"


def test_sigkill_without_oom_evidence_is_not_called_out_of_memory(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    job = compute.wait(compute.submit(spec(tmp_path, "echo about to die; kill -KILL $$")).id, 30)
    assert (job.state, job.reason, job.exit_code) == (JobState.FAILED, "killed by signal SIGKILL", -9)
    assert "one possible cause" in job.detail and "about to die" in job.detail


def test_oom_kill_counter_is_read_where_the_cgroup_shows_it() -> None:
    from cloudbridge.backends.local.compute_reasons import oom_kill_count

    files = ["/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"]
    shown = [f for f in files if Path(f).is_file() and "oom_kill " in Path(f).read_text()]
    count = oom_kill_count()
    assert count is None or count >= 0
    if shown:
        assert isinstance(count, int)


def test_classify_exit() -> None:
    assert classify_exit(0, []) == (None, None)
    # a SIGKILL alone is no proof of OOM: the detail names it as one possible cause
    for code, counter in ((-9, None), (137, False)):
        reason, detail = classify_exit(code, ["x"], oom_killed=counter)
        assert reason == "killed by signal SIGKILL" and "out-of-memory killer is one possible cause" in detail
        assert ("could not be read" if counter is None else "did not rise") in detail
    # evidence: the cgroup's oom_kill counter rose, or an out-of-memory error in the log
    assert classify_exit(137, [], oom_killed=True)[0] == "out of memory"
    assert classify_exit(-9, ["x"], oom_killed=True)[0] == "out of memory"
    assert classify_exit(-9, ["MemoryError"], oom_killed=False)[0] == "out of memory"
    assert classify_exit(1, ["OSError: [Errno 12] Cannot allocate memory"])[0] == "out of memory"
    assert classify_exit(1, ["RuntimeError: CUDA out of memory. Tried to allocate"])[0] == "out of memory"
    assert classify_exit(2, ["usage: train.py"]) == (
        "non-zero exit (code 2)", "the command exited with code 2; last 1 log lines:\nusage: train.py")
    assert classify_exit(139, [])[0] == "killed by signal SIGSEGV"


def test_inputs_outputs_and_the_cb_contract(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("a,b\n")
    (tmp_path / "labels.txt").write_text("pos\nneg\n")
    (tmp_path / "code").mkdir()
    run = (
        "set -e; pwd; ls $CB_INPUT_DATA; ls $CB_INPUT_LABEL_FILE; test -d $CB_CHECKPOINT_DIR; "
        "echo w > $CB_MODEL_DIR/weights.bin; mkdir -p $CB_OUTPUT_EVAL/sub; echo 0.9 > $CB_OUTPUT_EVAL/sub/acc.txt; "
        "echo '{\"accuracy\": 0.9}' > $CB_METRICS_FILE; echo id=$CB_JOB_ID; exit 1"
    )
    job_spec = spec(tmp_path / "code", run, workdir=".", inputs={"data": "../data", "label-file": "../labels.txt"},
                    outputs={"model": "../out/model", "eval": str(tmp_path / "out" / "eval")})
    job_spec.source = str(tmp_path / "code" / "job.yaml")  # relative paths are relative to the spec file
    job = compute.wait(compute.submit(job_spec).id, 30)
    assert job.state == JobState.FAILED and job.reason == "non-zero exit (code 1)"
    lines = list(compute.logs(job.id))
    # the command runs in the job's own copy of the workdir, not in the workdir itself
    assert job.extra["code_dir"] == str(Path(job.extra["job_dir"]) / "code")
    assert job.extra["code_dir"] in lines and "train.csv" in lines and "labels.txt" in lines
    assert f"id={job.id}" in lines
    # outputs are copied even though the job failed
    assert (tmp_path / "out" / "model" / "weights.bin").read_text() == "w\n"
    assert (tmp_path / "out" / "eval" / "sub" / "acc.txt").read_text() == "0.9\n"
    assert job.outputs_uri == str(tmp_path / "out" / "model")
    assert job.metrics == {"accuracy": 0.9}


def test_missing_workdir_or_input_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    with pytest.raises(InvalidSpec, match="workdir: workdir .*nope does not exist"):
        compute.submit(spec(tmp_path, "echo", workdir=str(tmp_path / "nope")))
    with pytest.raises(InvalidSpec, match="inputs.train: .*missing.csv does not exist"):
        compute.submit(spec(tmp_path, "echo", inputs={"train": str(tmp_path / "missing.csv")}))
    assert JobStore.default().list() == []


def test_secrets_reach_the_job_but_no_record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cb_home: Path) -> None:
    compute = local_compute(monkeypatch)
    secret = "hf_abcdefSECRETVALUE123"
    job = compute.submit(spec(tmp_path, 'test "$HF_TOKEN" = "' + secret[:3] + '"abcdefSECRETVALUE123 && echo token-ok',
                              env={"HF_TOKEN": secret, "LEARNING_RATE": "0.1"}))
    job = compute.wait(job.id, 30)
    assert job.state == JobState.SUCCEEDED, job.detail
    assert "token-ok" in list(compute.logs(job.id))
    for path in [*cb_home.glob(DB_NAME + "*"), *cb_home.rglob("*.log")]:
        assert secret.encode() not in path.read_bytes(), f"secret leaked into {path}"
    stored = JobStore.default().spec(job.id)
    assert stored["env"]["LEARNING_RATE"] == "0.1" and stored["env"]["HF_TOKEN"] != secret


def test_spec_and_queue_details_are_recorded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    job = compute.submit(spec(tmp_path, "sleep 300", name="rec", resources={"cpus": "4096+"}))
    wait_state(compute, job.id, JobState.RUNNING)
    running = compute.get(job.id)
    assert running.native_id.startswith("pgid:")
    assert any("4096 CPUs" in w for w in running.extra["warnings"])
    stored = JobStore.default().spec(job.id)
    assert stored["workdir"] == str(tmp_path) and stored["run"] == "sleep 300"
    assert json.dumps(running.to_dict())
    compute.cancel(job.id)
    attempts = compute.get(job.id).attempts
    assert len(attempts) == 1 and attempts[0]["state"] == "CANCELLED"
