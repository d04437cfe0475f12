"""Cost estimates, budgets (refusal with numbers, warnings when unpriced), spend reports from a real
SQLite job store, and the planner CLI commands run as real subprocesses."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli

from cloudbridge.errors import BudgetExceeded
from cloudbridge.jobstore.store import JobStore
from cloudbridge.planner.catalog import COLUMNS
from cloudbridge.planner.cost import check_budget, elapsed_cost, estimate_cost, spend_report
from cloudbridge.records import Job, JobState
from cloudbridge.specs import JobSpec


def spec(provider: str = "aws", **resources: object) -> JobSpec:
    return JobSpec(name="ft", provider=provider, run="python train.py", resources=resources)


def test_estimate_is_hourly_times_nodes_times_runtime() -> None:
    est = estimate_cost(spec(accelerators="A100:8", nodes=2, max_runtime="4h"))
    assert (est.instance_type, est.region, est.priced) == ("ml.p4d.24xlarge", "us-east-1", True)
    assert est.hourly == pytest.approx(37.688 * 2) and est.total == pytest.approx(37.688 * 2 * 4)
    assert est.describe() == "$37.69/h x 2 nodes x 4h = $301.50 (aws us-east-1 ml.p4d.24xlarge, estimate)"
    spot = estimate_cost(spec(accelerators="A100:8", nodes=2, max_runtime="4h", spot=True))
    assert spot.spot and spot.price_per_node == pytest.approx(37.688 * 0.3, rel=1e-3)
    pinned = estimate_cost(spec(accelerators="A100:8", instance_type="ml.p4de.24xlarge", max_runtime=3600))
    assert pinned.instance_type == "ml.p4de.24xlarge" and pinned.total == pytest.approx(47.11)
    assert estimate_cost(spec(accelerators="T4"), "gcp").instance_type == "n1-standard-4+NVIDIA_TESLA_T4:1"
    assert estimate_cost(spec(accelerators="T4", max_runtime="2h")).cost_for(1800) == pytest.approx(0.368)


def test_local_is_free_unless_a_price_is_injected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    free = estimate_cost(spec("local", max_runtime="1h"))
    assert (free.hourly, free.total, free.priced) == (0.0, 0.0, True)
    extra = tmp_path / "local.csv"
    extra.write_text(",".join(COLUMNS) + "\nlocal,localhost,localhost,,0,0,2,8,3.6,,injected,2025-01-01\n")
    monkeypatch.setenv("CLOUDBRIDGE_CATALOG", str(extra))
    priced = estimate_cost(spec("local", accelerators="A100:1", max_runtime="30m"))
    assert priced.hourly == 3.6 and priced.total == pytest.approx(1.8)
    assert elapsed_cost(priced, started_at=1000.0, now=2000.0) == pytest.approx(1.0)
    with pytest.raises(BudgetExceeded, match=r"estimated cost \$1.80 .* exceeds max_cost \$1.00"):
        check_budget(spec("local", accelerators="A100:1", max_runtime="30m", max_cost=1.0))


def test_budgets_refuse_with_the_numbers() -> None:
    with pytest.raises(BudgetExceeded) as info:
        check_budget(spec(accelerators="A100:8", nodes=2, max_runtime="4h", max_cost=25))
    text = str(info.value)
    assert "job 'ft': estimated cost $301.50 ($37.69/h x 2 nodes x 4h = $301.50" in text
    assert "exceeds max_cost $25.00" in text and info.value.exit_code == 2
    with pytest.raises(BudgetExceeded, match=r"estimated \$75.38/h .* exceeds max_hourly_cost \$50.00/h"):
        check_budget(spec(accelerators="A100:8", nodes=2, max_hourly_cost=50))
    ok = check_budget(spec(accelerators="T4", max_runtime="2h", max_cost=25))
    assert ok.total == pytest.approx(1.472) and ok.warnings == ()


def test_a_budget_without_prices_warns_instead_of_passing_silently() -> None:
    est = check_budget(spec("acme", accelerators="T4", max_runtime="2h", max_cost=25))
    assert not est.priced and est.total is None
    assert est.warnings == ("the planner catalog has no prices for provider 'acme': cost cannot be estimated "
                            "and the budget cannot be checked before submit",)
    no_runtime = check_budget(spec(accelerators="T4", max_cost=25))
    assert no_runtime.total is None and "max_runtime is not" in no_runtime.warnings[0]


def _insert(store: JobStore, job_id: str, provider: str, started: float | None, ended: float | None,
            resources: dict[str, object], state: JobState = JobState.SUCCEEDED, extra: dict | None = None) -> None:
    job = Job(job_id, provider, job_id, state, created_at=(started or time.time()) - 5, started_at=started,
              ended_at=ended, extra=extra or {})
    store.insert_job(job, {"name": job_id, "run": "x", "provider": provider, "resources": resources})


@pytest.fixture
def store_with_jobs(cb_home: Path) -> tuple[JobStore, float]:
    store = JobStore.default()
    now = time.time()
    hour = 3600.0
    _insert(store, "aws-t4", "aws", now - 5 * hour, now - 3 * hour, {"accelerators": "T4:1"})
    _insert(store, "aws-pinned", "aws", now - 2 * hour, now - 1 * hour, {"accelerators": "A10G:1"},
            extra={"instance_type": "ml.g5.2xlarge"})
    _insert(store, "local-1", "local", now - 1 * hour, now, {"accelerators": "A100:1"})
    _insert(store, "acme-1", "acme", now - 1 * hour, now - 0.5 * hour, {})
    _insert(store, "aws-old", "aws", now - 30 * 24 * hour, now - 29 * 24 * hour, {"accelerators": "T4:1"})
    _insert(store, "aws-running", "aws", now - 0.5 * hour, None, {"accelerators": "T4:1", "nodes": 2},
            state=JobState.RUNNING)
    _insert(store, "aws-queued", "aws", None, None, {"accelerators": "T4:1"}, state=JobState.PENDING)
    return store, now


def test_spend_report_from_job_records(store_with_jobs: tuple[JobStore, float]) -> None:
    store, now = store_with_jobs
    report = spend_report(since=now - 7 * 24 * 3600, now=now, store=store)
    by_id = {j.job_id: j for j in report.jobs}
    assert set(by_id) == {"aws-t4", "aws-pinned", "local-1", "acme-1", "aws-running"}
    assert by_id["aws-t4"].cost == pytest.approx(0.736 * 2)
    assert by_id["aws-pinned"].instance_type == "ml.g5.2xlarge" and by_id["aws-pinned"].cost == pytest.approx(1.515)
    assert by_id["local-1"].cost == 0.0
    assert by_id["acme-1"].cost is None and "no catalog prices" in by_id["acme-1"].note
    assert by_id["aws-running"].cost == pytest.approx(0.736 * 2 * 0.5) and by_id["aws-running"].note == "still running"
    assert report.by_provider == pytest.approx({"aws": 0.736 * 2 + 1.515 + 0.736, "local": 0.0})
    assert report.unpriced == ["acme-1"]
    # The window clips a job that started before it.
    clipped = spend_report(since=now - 4 * 3600, now=now, store=store)
    assert {j.job_id: j for j in clipped.jobs}["aws-t4"].cost == pytest.approx(0.736)


def test_cost_cli(store_with_jobs: tuple[JobStore, float]) -> None:
    result = run_cli("cost", "--since", "7d", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["label"].startswith("estimate") and data["unpriced"] == ["acme-1"]
    assert data["by_provider"]["aws"] == pytest.approx(round(0.736 * 3 + 1.515, 2), abs=0.01)
    text = run_cli("cost", "--since", "all")
    assert text.returncode == 0
    assert "ESTIMATE" in text.stdout and "aws-old" in text.stdout
    assert "1 job(s) have no price" in text.stderr
    assert_one_error_line(run_cli("cost", "--since", "yesterday"), "--since: 'yesterday' is not a duration")


def test_queue_cli_reads_the_store(cb_home: Path) -> None:
    from cloudbridge.backends.local.compute_queue import enqueue

    store = JobStore.default()
    now = time.time()
    for job_id, gpus, age in (("local-aaaa1111", 2, 100), ("local-bbbb2222", 1, 50)):
        job = Job(job_id, "local", job_id, JobState.PENDING, created_at=now - age)
        store.insert_job(job, {"name": job_id, "run": "x"}, also=lambda conn, j=job_id, g=gpus: enqueue(conn, j, g))
    data = json.loads(run_cli("queue", "--json").stdout)
    assert [q["id"] for q in data["queue"]] == ["local-aaaa1111", "local-bbbb2222"]
    assert data["queue"][0]["gpus"] == 2 and data["allocations"] == []
    text = run_cli("queue")
    assert text.returncode == 0 and "local-aaaa1111" in text.stdout


def test_catalog_resources_and_plan_cli(tmp_path: Path) -> None:
    data = json.loads(run_cli("catalog", "--accelerator", "a100-80gb", "--provider", "azure", "--json").stdout)
    assert data["version"] and data["rows"]
    assert all(r["accelerator"] == "A100-80GB" and r["provider"] == "azure" for r in data["rows"])
    assert_one_error_line(run_cli("catalog", "--accelerator", "A10"), "unknown accelerator 'A10'", "A10G")
    resources = json.loads(run_cli("resources", "--json").stdout)
    assert resources["cpus"] >= 1 and resources["rows"][0]["provider"] == "local"
    job = tmp_path / "job.yaml"
    job.write_text("name: ft\nrun: python t.py\nresources:\n  accelerators: A100:8\n  nodes: 2\n  max_runtime: 4h\n")
    plan = run_cli("plan", str(job), "--providers", "aws,gcp", "--limit", "3")
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert lines[1].split()[1:4] == ["gcp", "us-central1", "a2-highgpu-8g"] and len(lines) == 4
    assert "excluded: " in plan.stderr and "wrong accelerator" in plan.stderr
    as_json = json.loads(run_cli("plan", str(job), "--json", "--max-price", "80").stdout)
    assert all(p["hourly"] <= 80 for p in as_json["placements"]) and as_json["excluded"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: ft\nrun: x\nresources:\n  accelerators: A10:1\n")
    assert_one_error_line(run_cli("plan", str(bad)), f"{bad}:4: resources.accelerators: unknown accelerator 'A10'")
    none = tmp_path / "none.yaml"
    none.write_text("name: ft\nprovider: auto\nrun: x\nresources:\n  accelerators: H100:16\n")  # every provider
    assert_one_error_line(run_cli("plan", str(none)), "no feasible placement for job 'ft'", "too few GPUs per node")
    assert_one_error_line(run_cli("plan"), "missing JOB.yaml")


def test_plan_batch_cli(tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text("horizon: 10h\nresources:\n  - {name: box, provider: local, accelerator: A100-80GB, gpus: 1, "
                    "gpu_memory: 80}\n  - {name: g5, provider: aws, instance_type: ml.g5.xlarge, quota: 2}\n")
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text("tasks:\n  - {name: t1, duration: 6h, gpu_memory: 20}\n"
                     "  - {name: t2, duration: 5h, deadline: 5h, gpu_memory: 20}\n")
    result = run_cli("plan", "--batch", str(tasks), "--pool", str(pool), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["best"]["method"] == "milp" and data["best"]["status"] == "optimal"
    assert data["best"]["cost"] == pytest.approx(5 * 1.408) and data["greedy"]["cost"] == pytest.approx(6 * 1.408)
    assert data["gap"] == pytest.approx(0, abs=1e-6) and data["greedy_ratio"] == pytest.approx(1.2)
    text = run_cli("plan", "--batch", str(tasks), "--pool", str(pool))
    assert "plan: milp (optimal)" in text.stderr and "optimality gap 0.00%" in text.stderr
    tasks.write_text("tasks:\n  - {name: t1, duration: 6h}\n  - name: rush\n    duration: 5h\n    deadline: 1h\n")
    assert_one_error_line(run_cli("plan", "--batch", str(tasks), "--pool", str(pool)),
                          f"{tasks}:5: tasks[1].deadline: task 'rush' has deadline 1h but needs at least 5h")
    assert_one_error_line(run_cli("plan", "--batch", str(tasks)), "--batch needs --pool")


def test_spend_report_uses_the_price_recorded_at_submit(cb_home: Path) -> None:
    """A job's recorded price (what its budget was enforced with) beats today's catalog."""
    store = JobStore.default()
    now = time.time()
    _insert(store, "local-paid", "local", now - 3600, now, {}, extra={"price_per_hour": 2.0})
    _insert(store, "aws-est", "aws", now - 3600, now, {"accelerators": "T4:1"},
            extra={"instance_type": "ml.g4dn.xlarge", "budget": {"hourly": 9.5, "instance_type": "ml.g4dn.xlarge"}})
    _insert(store, "aws-moved", "aws", now - 3600, now, {"accelerators": "A10G:1"},
            extra={"instance_type": "ml.g5.2xlarge", "budget": {"hourly": 9.5, "instance_type": "ml.g4dn.xlarge"}})
    by_id = {j.job_id: j for j in spend_report(since=now - 7200, now=now, store=store).jobs}
    assert (by_id["local-paid"].hourly, by_id["local-paid"].cost) == (2.0, pytest.approx(2.0))
    assert "recorded at submit" in by_id["local-paid"].note
    assert by_id["aws-est"].cost == pytest.approx(9.5)
    # the estimate was for another instance than the one that ran: the catalog price of the one that ran
    assert by_id["aws-moved"].cost == pytest.approx(1.515)
