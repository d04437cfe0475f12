"""The cost estimate before submit, budget warnings users see, and the log-follow timeout.

Real CLI processes and the real local backend; a provider the catalog has no prices for is the
small ``inline`` plugin of ``test_sdk.py`` (a real distribution found through its entry point).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, make_plugin, run_cli
from fixtures_local import local_compute
from test_sdk import INLINE_PROVIDER, inline  # noqa: F401 - the fixture is used by name

import cloudbridge as cb
from cloudbridge.errors import StageTimeout
from cloudbridge.planner.cost import ESTIMATE_LABEL
from cloudbridge.records import JobState

UNCHECKED = "the planner catalog has no prices for provider 'inline': cost cannot be estimated and the budget " \
            "cannot be checked before submit"


def write_job(tmp_path: Path, provider: str, run: str, resources: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(f"name: life\nprovider: {provider}\nworkdir: .\nrun: {run}\nresources: {resources}\n")
    return path


def test_a_budget_on_a_provider_without_prices_warns_on_the_job(inline: None, tmp_path: Path) -> None:  # noqa: F811
    job = cb.run({"name": "b", "provider": "inline", "run": "echo hi",
                  "resources": {"max_cost": 5, "max_runtime": "1h"}}, wait=True, timeout=30)
    assert job.state is JobState.SUCCEEDED
    budget = job.extra["budget"]
    assert budget["estimate"] == "no price known for provider 'inline' (estimate unavailable)"
    assert budget["warnings"] == [UNCHECKED] and budget["label"] == ESTIMATE_LABEL
    assert cb.get_job(job.id).extra["budget"] == budget, "kept in the job store"


def test_cli_run_prints_the_unchecked_budget_warning(tmp_path: Path) -> None:
    site = make_plugin(tmp_path / "site", dist="cb-inline", entry_name="inline",
                       modules={"cb_inline/plugin.py": INLINE_PROVIDER})
    spec = write_job(tmp_path, "inline", "echo hi", "{max_cost: 5, max_runtime: 1h}")
    result = run_cli("run", str(spec), paths=[site])
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    estimate = lines.index(f"cost estimate: no price known for provider 'inline' (estimate unavailable) "
                           f"[{ESTIMATE_LABEL}]")
    assert lines[estimate + 1] == f"warning: {UNCHECKED}"
    assert lines[estimate + 2].startswith("submitted inline-"), "the estimate comes before submit"
    assert result.stdout.strip() == "hi"


def test_dry_run_shows_the_estimate_and_refuses_over_budget(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    local_compute(monkeypatch, price_per_hour=2.5)
    spec = write_job(tmp_path, "local", "echo hi", "{max_runtime: 2h, max_cost: 10}")
    shown = run_cli("run", str(spec), "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert f"# cost\ncost estimate: $2.50/h x 1 node x 2h = $5.00 (local, estimate) [{ESTIMATE_LABEL}]" in shown.stdout
    as_json = run_cli("run", str(spec), "--dry-run", "--json")
    import json

    estimate = json.loads(as_json.stdout)["estimate"]
    assert (estimate["total"], estimate["hourly"], estimate["label"]) == (5.0, 2.5, ESTIMATE_LABEL)

    spec.write_text(spec.read_text().replace("max_cost: 10", "max_cost: 1"))
    refused = run_cli("run", str(spec), "--dry-run")
    assert_one_error_line(refused, "estimated cost $5.00", "exceeds max_cost $1.00")
    assert "# cost" in refused.stdout, "the spec and the estimate are still shown"
    not_run = run_cli("run", str(spec))
    assert_one_error_line(not_run, "exceeds max_cost $1.00")
    assert cb.jobs() == [], "nothing submitted"


def test_run_on_local_prints_the_estimate_and_the_no_price_warning_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local_compute(monkeypatch)
    spec = write_job(tmp_path, "local", "echo hi", "{max_runtime: 1m, max_cost: 3}")
    result = run_cli("run", str(spec))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"cost estimate: $0.00/h x 1 node x 1m = $0.00 (local, estimate) [{ESTIMATE_LABEL}]"
    assert lines[1].startswith("warning: the local machine has no price (0 USD/h)")
    assert sum("no price" in line for line in lines) == 1
    assert lines[2].startswith("submitted local-")


def test_logs_follow_timeout_names_the_stage_and_leaves_the_job_running(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local_compute(monkeypatch)
    spec = write_job(tmp_path, "local", "python -u -c \"import time; print('started'); time.sleep(60)\"",
                     "{max_runtime: 2m}")
    job_id = run_cli("run", str(spec), "--detach").stdout.strip()
    try:
        started = time.monotonic()
        followed = run_cli("logs", "-f", "--timeout", "2", job_id)
        assert time.monotonic() - started < 30
        line = assert_one_error_line(followed, "log follow timed out after 2s", f"job {job_id} is still RUNNING",
                                     "keeps running", code=1)
        assert line.startswith("error: log follow timed out")
        assert "started" in followed.stdout
        assert cb.get_job(job_id).state is JobState.RUNNING, "following stopped, the job did not"

        with pytest.raises(StageTimeout) as info:
            list(cb.logs(job_id, follow=True, timeout=1))
        assert info.value.stage == "log follow"
        assert_one_error_line(run_cli("logs", "-f", "--timeout", "soon", job_id), "--timeout", "'soon'")
    finally:
        cb.cancel(job_id)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_cost", "-5", "greater than 0"),
        ("max_cost", "lots", "valid number"),
        ("max_hourly_cost", "0", "greater than 0"),
        ("max_hourly_cost", "'ten dollars'", "valid number"),
    ],
)
def test_negative_or_non_numeric_budgets_are_one_line(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    """Bad budgets name the file, line and field, exit 2, and nothing is recorded."""
    spec = write_job(tmp_path, "local", "echo hi", f"{{{field}: {value}}}")
    for extra in ((), ("--dry-run",)):
        result = run_cli("run", str(spec), *extra)
        assert_one_error_line(result, f"{spec}:5: resources.{field}:", message)
    assert cb.jobs() == [], "nothing recorded"


def _cost_of(job_id: str) -> dict:
    import json

    report = run_cli("cost", "--since", "1h", "--json")
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    return {"job": next(j for j in data["jobs"] if j["job_id"] == job_id), "by_provider": data["by_provider"]}


def test_a_local_job_stopped_for_budget_shows_what_it_cost(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`cloudbridge cost` prices a local job with the price its budget was enforced with."""
    local_compute(monkeypatch, price_per_hour=3600)  # one dollar per second
    spec = write_job(tmp_path, "local", "sleep 300", "{max_cost: 1.5}")
    ran = run_cli("run", str(spec))
    assert ran.returncode == 1 and "FAILED: budget exceeded" in ran.stderr.splitlines()[-1], ran.stderr
    (job,) = cb.jobs()
    assert job.reason == "budget exceeded" and "at $3600/h" in (job.detail or "")
    spent = _cost_of(job.id)
    assert spent["job"]["hourly"] == 3600.0
    assert 1.4 <= spent["job"]["cost"] < 30, spent  # stopped at $1.50 (plus the time SIGTERM took)
    assert spent["by_provider"]["local"] == pytest.approx(spent["job"]["cost"], abs=0.01)


def test_a_catalog_price_for_local_is_enforced_and_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No price_per_hour setting: a catalog row for provider local (CLOUDBRIDGE_CATALOG) is the price,
    for the estimate, the refusal at submit, the budget stop and the spend report alike."""
    from cloudbridge import sdk
    from cloudbridge.errors import BudgetExceeded
    from cloudbridge.planner.catalog import COLUMNS

    catalog = tmp_path / "local.csv"
    catalog.write_text(",".join(COLUMNS) + "\nlocal,localhost,localhost,,0,0,2,8,3600,,injected,2025-01-01\n")
    monkeypatch.setenv("CLOUDBRIDGE_CATALOG", str(catalog))
    compute = local_compute(monkeypatch)
    job_spec = {"name": "cat", "provider": "local", "workdir": str(tmp_path), "run": "sleep 300"}
    estimate = sdk.budget_estimate({**job_spec, "resources": {"max_runtime": "1m", "max_cost": 100}})
    assert (estimate.hourly, estimate.total, estimate.warnings) == (3600.0, pytest.approx(60.0), ())
    with pytest.raises(BudgetExceeded, match=r"estimated cost \$3600\.00 \(max_runtime 1h at \$3600/h\)"):
        cb.run({**job_spec, "resources": {"max_runtime": "1h", "max_cost": 5}})
    assert cb.jobs() == [], "refused before anything was recorded"
    job = cb.run({**job_spec, "resources": {"max_cost": 1.5}})
    job = compute.wait(job.id, 60)
    assert (job.state, job.reason) == (JobState.FAILED, "budget exceeded")
    assert "at $3600/h" in (job.detail or "") and job.extra["price_per_hour"] == 3600.0
    spent = _cost_of(job.id)
    assert spent["job"]["hourly"] == 3600.0 and 1.4 <= spent["job"]["cost"] < 30
