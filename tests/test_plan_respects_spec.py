"""``cloudbridge plan``: the spec's provider is a filter (unless auto), rows of uninstalled providers say
what to install, and a throughput measured on CPU is never taken as a GPU's rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli
from fixtures_local import local_compute

import cloudbridge as cb


def _gpu_spec(tmp_path: Path, provider: str) -> Path:
    spec = tmp_path / "gpu.yaml"
    spec.write_text(f"name: gpu\nprovider: {provider}\nworkdir: null\nrun: python t.py\n"
                    "resources: {accelerators: 'A100:1', max_runtime: 1h}\n")
    return spec


def _providers(result: object) -> list[str]:
    return [p["provider"] for p in json.loads(result.stdout)["placements"]]  # type: ignore[attr-defined]


def test_the_spec_provider_filters_unless_auto(tmp_path: Path) -> None:
    pytest.importorskip("cloudbridge_aws")
    shown = run_cli("plan", str(_gpu_spec(tmp_path, "aws")), "--json", "--limit", "0")
    assert shown.returncode == 0, shown.stderr
    assert set(_providers(shown)) == {"aws"}
    table = run_cli("plan", str(_gpu_spec(tmp_path, "aws")))
    assert "provider: aws (from the spec)" in table.stderr
    assert {line.split()[1] for line in table.stdout.splitlines()[1:] if line.strip()} == {"aws"}
    everywhere = run_cli("plan", str(_gpu_spec(tmp_path, "auto")), "--json")
    assert {"aws", "gcp", "azure"} <= set(_providers(everywhere))
    chosen = run_cli("plan", str(_gpu_spec(tmp_path, "aws")), "--providers", "gcp", "--json")
    assert set(_providers(chosen)) == {"gcp"}, "--providers overrides the spec"


def test_rows_of_uninstalled_providers_say_what_to_install(tmp_path: Path) -> None:
    env = {"CLOUDBRIDGE_DISABLE_PLUGINS": "gcp"}
    table = run_cli("plan", str(_gpu_spec(tmp_path, "gcp")), "--limit", "3", env=env)
    rows = [line for line in table.stdout.splitlines()[1:] if line.strip()]
    assert rows and all(row.rstrip().endswith("no: pip install cloudbridge-gcp") for row in rows), table.stdout
    as_json = json.loads(run_cli("plan", str(_gpu_spec(tmp_path, "gcp")), "--json", env=env).stdout)
    assert {(p["installed"], p["install"]) for p in as_json["placements"]} == {(False, "pip install cloudbridge-gcp")}


def test_throughput_measured_on_cpu_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"train_samples_per_second": 40.0, "num_processes": 2, "device": "cpu"}))
    spec = _gpu_spec(tmp_path, "auto")
    refused = run_cli("plan", str(spec), "--throughput", f"A100={metrics}", "--samples", "100000")
    assert_one_error_line(refused, "--throughput A100", "measured on CPU")
    metrics.write_text(json.dumps({"train_samples_per_second": 40.0, "num_processes": 2, "device": "cuda"}))
    assert run_cli("plan", str(spec), "--throughput", f"A100={metrics}", "--samples", "100000").returncode == 0
    local_compute(monkeypatch)
    job = cb.run({"name": "cpu-run", "workdir": None,
                  "run": "echo '{\"train_samples_per_second\": 50}' > \"$CB_METRICS_FILE\""}, wait=True, timeout=60)
    assert job.metrics.get("train_samples_per_second") == 50, job.metrics
    from_job = run_cli("plan", str(spec), "--throughput", f"A100={job.id}", "--samples", "100000")
    assert_one_error_line(from_job, f"job {job.id} was measured on CPU")
