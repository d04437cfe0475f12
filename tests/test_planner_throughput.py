"""Measured throughput: parsing (numbers, metrics.json, a real local job's recorded metrics), cost
estimates and placement ranking without max_runtime, and ``cloudbridge plan --throughput/--samples``
and ``--partition`` as real subprocesses."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli
from fixtures_local import local_compute
from fixtures_local import spec as local_spec

from cloudbridge.errors import BudgetExceeded, UserError
from cloudbridge.planner.catalog import Catalog, CatalogRow, load_catalog
from cloudbridge.planner.cost import check_budget, estimate_cost
from cloudbridge.planner.placement import plan_job
from cloudbridge.planner.throughput import parse_throughput, rate_for, run_hours
from cloudbridge.records import JobState
from cloudbridge.specs import JobSpec

CATALOG = load_catalog(include_plugins=False, include_env=False)


def spec(provider: str = "aws", **resources: object) -> JobSpec:
    return JobSpec(name="ft", provider=provider, run="python train.py", resources=resources)


def test_parse_numbers_and_families() -> None:
    rates = parse_throughput("a100=1200, nvidia_tesla_t4=300")
    assert rates == {"A100": 1200.0, "T4": 300.0}
    assert rate_for("A100-80GB", rates) == 1200.0  # the family's rate applies to its members
    assert rate_for("A100-80GB", {**rates, "A100-80GB": 1500.0}) == 1500.0
    assert rate_for("H100", rates) is None and rate_for(None, rates) is None
    # 1.08 M samples on 4 T4 at 300 samples/s each: 900 s.
    assert run_hours(1_080_000, "T4", 4, rates) == pytest.approx(0.25)
    assert run_hours(1_000, "H100", 1, rates) is None


@pytest.mark.parametrize(("text", "message"), [
    ("A100", "'A100' is not NAME=SAMPLES_PER_SECOND"),
    ("A10X=5", "--throughput A10X: unknown accelerator 'A10X'"),
    ("T4=-3", "--throughput T4: throughput must be a positive number of samples/s, got '-3'"),
    ("T4=nan", "throughput must be a positive number"),
    ("T4=local-doesnotexist", "'local-doesnotexist' is not a number, a metrics.json file or a known job id"),
    (" , ", "no entries"),
])
def test_parse_bad_input(text: str, message: str, cb_home: Path) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_throughput(text)


def test_rate_from_a_finetune_metrics_file(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"  # the shape cloudbridge-finetune writes (training/loop.py)
    metrics.write_text(json.dumps({"task": "text-classification", "num_processes": 2, "train_samples": 4800,
                                   "train_runtime_s": 10.0, "train_samples_per_second": 480.0}))
    assert parse_throughput(f"T4={metrics}") == {"T4": 240.0}  # per GPU: 480 / 2 processes
    metrics.write_text(json.dumps({"final": {}}))
    with pytest.raises(UserError, match="has no train_samples_per_second"):
        parse_throughput(f"T4={metrics}")


def test_rate_from_a_real_local_jobs_recorded_metrics(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A real local job writes CB_METRICS_FILE (as cloudbridge-finetune does); its record's
    train_samples_per_second divided by the GPUs its spec asked for is the per-GPU rate."""
    compute = local_compute(monkeypatch, fake_gpus="2")
    write = (f"{sys.executable} -c \"import json, os; json.dump({{'train_samples_per_second': 900.0}}, "
             "open(os.environ['CB_METRICS_FILE'], 'w'))\"")
    job = compute.wait(compute.submit(local_spec(tmp_path, write, resources={"accelerators": "FAKE:2"})).id, 60)
    assert job.state == JobState.SUCCEEDED and job.metrics["train_samples_per_second"] == 900.0
    assert parse_throughput(f"A100={job.id}") == {"A100": 450.0}
    plain = compute.wait(compute.submit(local_spec(tmp_path, "true", name="plain")).id, 60)
    with pytest.raises(UserError, match=f"job {plain.id} recorded no train_samples_per_second"):
        parse_throughput(f"A100={plain.id}")


def test_cost_from_throughput_when_max_runtime_is_unknown() -> None:
    # ml.g4dn.xlarge (1 x T4) at $0.736/h; 1.08 M samples at 300/s: exactly 1 h.
    est = estimate_cost(spec(accelerators="T4:1"), throughput={"T4": 300.0}, samples=1_080_000)
    assert est.instance_type == "ml.g4dn.xlarge" and est.runtime_source == "throughput"
    assert est.runtime_hours == pytest.approx(1.0) and est.total == pytest.approx(0.736)
    assert "1h (from measured throughput)" in est.describe()
    # Two nodes halve the time, so the total stays (linear scaling).
    two = estimate_cost(spec(accelerators="T4:1", nodes=2), throughput={"T4": 300.0}, samples=1_080_000)
    assert two.runtime_hours == pytest.approx(0.5) and two.total == pytest.approx(0.736)
    # max_runtime caps the estimate: the job is stopped then.
    capped = estimate_cost(spec(accelerators="T4:1", max_runtime="30m"), throughput={"T4": 300.0},
                           samples=1_080_000)
    assert (capped.runtime_hours, capped.runtime_source) == (0.5, "max_runtime")
    # No rate for the chosen accelerator: said, not guessed.
    unknown = estimate_cost(spec(accelerators="A100:8"), throughput={"T4": 300.0}, samples=1e6)
    assert unknown.total is None and "no measured throughput for A100" in unknown.warnings[0]
    # Budgets are checked against the measured estimate; max_cost no longer warns "cannot be estimated".
    ok = check_budget(spec(accelerators="T4:1", max_cost=1.0), estimate=est)
    assert not ok.warnings
    with pytest.raises(BudgetExceeded, match=r"estimated cost \$0.74 .* exceeds max_cost \$0.50"):
        check_budget(spec(accelerators="T4:1", max_cost=0.5), throughput={"T4": 300.0}, samples=1_080_000)


def test_placement_ranks_by_estimated_total() -> None:
    def row(name: str, accel: str, price: float) -> CatalogRow:
        return CatalogRow("acme", "r1", name, accel, 1, 80, 8, 64, price, None, "test", "2025-01-01")

    catalog = Catalog([row("slow-cheap", "A100", 1.0), row("fast-dear", "A100-80GB", 3.0)])
    job = spec("acme", accelerators="A100:1")

    def order(**kwargs: object) -> list[str]:
        report = plan_job(kwargs.pop("job", job), catalog=catalog, include_local=False, **kwargs)  # type: ignore[arg-type]
        return [p.instance_type for p in report.placements]

    assert order() == ["slow-cheap", "fast-dear"]  # by hourly price
    # 3.6 M samples: A100 at 100/s -> 10 h x $1 = $10; A100-80GB at 1000/s -> 1 h x $3 = $3.
    rates = {"A100": 100.0, "A100-80GB": 1000.0}
    report = plan_job(job, catalog=catalog, include_local=False, throughput=rates, samples=3_600_000)
    assert [p.instance_type for p in report.placements] == ["fast-dear", "slow-cheap"]
    assert [p.total_cost for p in report.placements] == [pytest.approx(3.0), pytest.approx(10.0)]
    assert [p.runtime_hours for p in report.placements] == [pytest.approx(1.0), pytest.approx(10.0)]
    # max_cost excludes on the measured totals.
    capped = job.model_copy(update={"resources": job.resources.model_copy(update={"max_cost": 5})})
    limited = plan_job(capped, catalog=catalog, include_local=False, throughput=rates, samples=3_600_000)
    assert [p.instance_type for p in limited.placements] == ["fast-dear"]
    assert [e.reason for e in limited.excluded] == ["max-cost"]
    # An offering without a measured rate comes after the estimated ones, its total unknown.
    partial = plan_job(job, catalog=catalog, include_local=False, throughput={"A100-80GB": 1000.0}, samples=3.6e6)
    assert [(p.instance_type, p.total_cost) for p in partial.placements] == [("fast-dear", pytest.approx(3.0)),
                                                                             ("slow-cheap", None)]


def test_plan_cli_with_throughput(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: ft\nrun: python t.py\nresources:\n  accelerators: T4:1\n")
    result = run_cli("plan", str(job), "--providers", "aws", "--throughput", "T4=300", "--samples", "1080000",
                     "--json")
    assert result.returncode == 0, result.stderr
    top = json.loads(result.stdout)["placements"][0]
    assert top["instance_type"] == "ml.g4dn.xlarge" and top["total_cost"] == pytest.approx(0.74)
    assert top["runtime_hours"] == pytest.approx(1.0)
    text = run_cli("plan", str(job), "--providers", "aws", "--throughput", "T4=300", "--samples", "1080000")
    assert "ranked by estimated total" in text.stderr and "$0.74" in text.stdout
    assert_one_error_line(run_cli("plan", str(job), "--throughput", "T4=300"), "--throughput and --samples go together")
    assert_one_error_line(run_cli("plan", str(job), "--throughput", "T5=3", "--samples", "10"),
                          "--throughput T5: unknown accelerator 'T5'")


def test_partition_cli() -> None:
    result = run_cli("plan", "--partition", "512", "--throughput", "A100=1200,T4=300", "--gpus", "A100:2,T4:2",
                     "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    batches = {w["name"]: w["batch"] for w in data["workers"]}
    assert sum(batches.values()) == 512 and batches["A100#0"] + batches["A100#1"] == 410
    assert batches["T4#0"] + batches["T4#1"] == 102
    # Proportional: every GPU finishes its share at about the same time, vs waiting for the T4s.
    assert data["step_seconds"] == pytest.approx(205 / 1200) and data["equal_split_step_seconds"] == pytest.approx(
        128 / 300)
    one_each = json.loads(run_cli("plan", "--partition", "10", "--throughput", "A100=3,T4=1", "--json").stdout)
    assert {w["name"]: w["batch"] for w in one_each["workers"]} == {"A100": 8, "T4": 2}
    local = run_cli("plan", "--partition", "8", "--throughput", "T4=100,A100=400", "--gpus", "local", "--json",
                    env={"CLOUDBRIDGE_FAKE_GPUS": "1:16:T4,1:40:A100"})
    assert {w["name"]: w["batch"] for w in json.loads(local.stdout)["workers"]} == {"gpu0": 2, "gpu1": 6}
    assert_one_error_line(run_cli("plan", "--partition", "64", "--throughput", "A100=1200", "--gpus", "T4:1"),
                          "--throughput has no rate for T4 (worker T4#0)")
    assert_one_error_line(run_cli("plan", "--partition", "1", "--throughput", "A100=2,T4=1"),
                          "global batch 1 is smaller than the 2 workers")
    assert_one_error_line(run_cli("plan", "--partition", "64"), "--partition needs --throughput")
