"""Placement: feasibility and order checked against a plain-Python reference (hypothesis), grouped
explanations, choose_instance for plugins, provider: auto, and the local probe (through a stand-in
nvidia-smi executable on PATH, since this machine has no GPU)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudbridge.errors import ResourceUnavailable
from cloudbridge.planner.accelerators import UnknownAccelerator, satisfies
from cloudbridge.planner.catalog import Catalog, CatalogRow, load_catalog
from cloudbridge.planner.placement import choose_instance, plan_job, plan_placements, rank_rows, resolve_auto
from cloudbridge.planner.ranking import Requirements
from cloudbridge.specs import JobSpec, Resources, load_job_spec

CATALOG = load_catalog(include_plugins=False, include_env=False)


def spec(**resources: object) -> JobSpec:
    return JobSpec(name="job", run="python train.py", resources=resources)


@pytest.fixture
def fake_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in ``nvidia-smi`` on PATH reporting two A100 80GB (driver output format)."""
    from cloudbridge.backends.local import gpus

    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        '  *utilization.gpu*) printf "0, 35, 60000\\n1, 0, 81000\\n" ;;\n'
        '  *) printf "0, NVIDIA A100-SXM4-80GB, 81920, GPU-a\\n1, NVIDIA A100-SXM4-80GB, 81920, GPU-b\\n" ;;\n'
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:{Path('/usr/bin')}:{Path('/bin')}")
    monkeypatch.delenv(gpus.FAKE_GPUS_ENV, raising=False)
    monkeypatch.setattr(gpus, "_cache", {})
    return script


def test_cheapest_first_with_totals() -> None:
    placements = plan_placements(spec(accelerators="A100:8", nodes=2, max_runtime="4h"), providers=["aws", "azure"])
    assert placements
    hourly = [p.hourly for p in placements]
    assert hourly == sorted(hourly)
    top = placements[0]
    assert (top.provider, top.instance_type, top.region) == ("azure", "Standard_ND96asr_v4", "eastus")
    assert top.hourly == pytest.approx(27.197 * 2) and top.total_cost == pytest.approx(27.197 * 2 * 4)
    assert {p.provider for p in placements} == {"aws", "azure"}
    assert all(p.accelerator in ("A100", "A100-80GB") and p.gpus_per_node >= 8 for p in placements)


def test_exclusions_are_grouped_with_examples() -> None:
    report = plan_job(spec(accelerators="A100:8", max_runtime="2h", max_cost=50), providers=["gcp"],
                      max_price=40)
    reasons = {e.reason: e for e in report.excluded}
    assert set(reasons) >= {"accelerator", "gpu-count", "max-price"}
    assert reasons["gpu-count"].examples[0].endswith("has 1 per node, needs 8")
    assert "costs $" in reasons["max-price"].examples[0] and "> $40.00/h" in reasons["max-price"].examples[0]
    assert report.considered == len(report.placements) + sum(e.count for e in report.excluded)
    assert all(p.hourly <= 40 and p.total_cost <= 50 for p in report.placements)
    text = report.explain()
    assert any(line.startswith(f"{reasons['accelerator'].count} wrong accelerator (e.g. ") for line in text)


def test_gpu_memory_excludes_smaller_gpus() -> None:
    report = plan_job(spec(accelerators="A100:8", gpu_memory="70+"), providers=["aws", "gcp", "azure"])
    assert report.placements and all(p.row.gpu_memory_gb >= 70 for p in report.placements)
    assert {p.accelerator for p in report.placements} == {"A100-80GB"}
    memory = {e.reason: e for e in report.excluded}["gpu-memory"]
    assert memory.count >= 3 and memory.examples[0].endswith("GB per GPU, needs 70")


def test_spot_pinned_instance_and_multi_node() -> None:
    spot = plan_placements(spec(accelerators="T4", spot=True), providers=["aws"])
    assert spot[0].spot and spot[0].price_per_node == spot[0].row.spot_price_hour
    pinned = plan_placements(spec(accelerators="A10G:4", instance_type="ml.g5.12xlarge"))
    assert {p.instance_type for p in pinned} == {"ml.g5.12xlarge"}
    cpu = plan_placements(spec(cpus="1+", memory="1+"))
    assert cpu[0].provider == "local" and cpu[0].hourly == 0
    multi = plan_job(spec(cpus=2, nodes=3))
    assert all(p.provider != "local" for p in multi.placements)
    assert "multi-node" in {e.reason for e in multi.excluded}


def test_rows_without_spot_are_excluded_for_spot_jobs() -> None:
    rows = [CatalogRow("acme", "r", "a", "T4", 1, 16, 4, 16, 1.0, None, "s", "2025-01-01"),
            CatalogRow("acme", "r", "b", "T4", 1, 16, 4, 16, 2.0, 0.5, "s", "2025-01-01")]
    catalog = Catalog(rows)
    report = rank_rows(list(catalog.rows), catalog.arrays(), Requirements(accelerator="T4", gpus=1, spot=True))
    assert [p.instance_type for p in report.placements] == ["b"]
    assert report.excluded[0].reason == "no-spot"


def test_unknown_accelerator_names_the_spec_line(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("name: j\nrun: echo\nresources:\n  nodes: 1\n  accelerators: A10:2\n")
    with pytest.raises(UnknownAccelerator) as info:
        plan_job(load_job_spec(path))
    assert str(info.value).startswith(f"{path}:5: resources.accelerators: unknown accelerator 'A10'")
    assert "did you mean 'A10G'" in str(info.value)


def test_choose_instance_for_plugins() -> None:
    row = choose_instance("aws", Resources(accelerators="T4:1"))
    assert (row.instance_type, row.region) == ("ml.g4dn.xlarge", "us-east-1")
    assert choose_instance("aws", Resources(accelerators="T4"), region="eu-west-1").region == "eu-west-1"
    # A region the catalog does not list: instance names are global, so any region's row serves.
    elsewhere = choose_instance("aws", Resources(accelerators="H100:8"), region="sa-east-1")
    assert elsewhere.instance_type == "ml.p5.48xlarge"
    assert choose_instance("gcp", Resources(cpus="16+")).instance_type == "n1-standard-16"
    pinned = choose_instance("aws", Resources(accelerators="A10G", instance_type="ml.g5.2xlarge"))
    assert pinned.instance_type == "ml.g5.2xlarge"
    with pytest.raises(ResourceUnavailable, match="'ml.g9.huge' is not in the planner catalog for aws"):
        choose_instance("aws", Resources(instance_type="ml.g9.huge"))
    with pytest.raises(ResourceUnavailable, match="no instance types for provider 'acme'"):
        choose_instance("acme", Resources())
    with pytest.raises(ResourceUnavailable, match=r"no azure instance type fits resources A10G:1: .*wrong accelerator"):
        choose_instance("azure", Resources(accelerators="A10G:1"))


def test_resolve_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    import cloudbridge.planner.placement as placement

    named = spec(accelerators="T4")
    assert resolve_auto(named) is named
    cpu = resolve_auto(spec(cpus=1).with_provider("auto"))
    assert cpu.provider == "local" and cpu.resources.instance_type is None
    # No local GPU here; of the clouds, pretend only the AWS plugin is installed (the test venv may also
    # have cloudbridge-azure / cloudbridge-gcp, whose T4 machines are cheaper).
    monkeypatch.setattr(placement, "installed_compute_providers", lambda: {"local", "aws"})
    gpu = resolve_auto(spec(accelerators="T4:1").with_provider("auto"))
    assert gpu.provider == "aws" and gpu.resources.instance_type == "ml.g4dn.xlarge"
    with pytest.raises(ResourceUnavailable, match="provider: auto found no installed provider"):
        resolve_auto(spec(accelerators="L4:64").with_provider("auto"))


def test_local_gpus_from_the_driver_tool(fake_gpus: Path) -> None:
    from cloudbridge.planner.probe import local_rows, probe_local

    res = probe_local()
    assert res.gpu_source == "nvidia-smi"
    assert [(g.accelerator, g.memory_gb, g.utilization) for g in res.gpus] == [("A100-80GB", 80.0, 35.0),
                                                                                ("A100-80GB", 80.0, 0.0)]
    assert res.gpus[0].free_memory_gb == pytest.approx(60000 / 1024, abs=0.05)
    rows = local_rows(res)
    gpu_row = next(r for r in rows if r.accelerator)
    assert (gpu_row.instance_type, gpu_row.accelerator_count, gpu_row.price_hour) == ("localhost:gpu0,1", 2, 0.0)
    assert gpu_row.extra["gpu_indices"] == [0, 1]
    auto = resolve_auto(spec(accelerators="A100:2").with_provider("auto"))
    assert auto.provider == "local"
    too_many = plan_job(spec(accelerators="A100:4"))
    assert all(p.provider != "local" for p in too_many.placements)


# ---- the vectorised ranking agrees with a plain-Python reference --------------------------------

def reference(rows: list[CatalogRow], req: Requirements) -> list[tuple[str, str, str]]:
    ok = []
    for row in rows:
        price = row.price_hour if (not req.spot or row.provider == "local") else row.spot_price_hour
        if req.providers is not None and row.provider not in req.providers:
            continue
        if req.instance_type and row.instance_type != req.instance_type and row.provider != "local":
            continue
        if not satisfies(row.accelerator, req.accelerator) or row.accelerator_count < req.gpus:
            continue
        if req.min_cpus and row.vcpus < req.min_cpus or req.min_memory_gb and row.memory_gb < req.min_memory_gb:
            continue
        if req.nodes > 1 and row.provider == "local" or price is None:
            continue
        hourly = price * req.nodes
        if req.max_hourly is not None and hourly > req.max_hourly + 1e-9:
            continue
        if req.max_cost is not None and req.runtime_hours and hourly * req.runtime_hours > req.max_cost + 1e-9:
            continue
        ok.append((hourly, row.accelerator_count - req.gpus, row.key))
    return [key for *_, key in sorted(ok, key=lambda t: (t[0], t[1]))]


@settings(max_examples=200, deadline=None)
@given(
    accel=st.sampled_from([None, "T4", "A100", "A100-80GB", "H100", "L4", "A10G", "V100"]),
    gpus=st.sampled_from([1, 2, 4, 8]),
    nodes=st.integers(1, 4),
    cpus=st.one_of(st.none(), st.sampled_from([4.0, 16.0, 96.0])),
    memory=st.one_of(st.none(), st.sampled_from([16.0, 200.0, 1000.0])),
    spot=st.booleans(),
    providers=st.one_of(st.none(), st.sets(st.sampled_from(["aws", "gcp", "azure", "local"]), min_size=1)),
    max_hourly=st.one_of(st.none(), st.floats(0.1, 300)),
    runtime=st.one_of(st.none(), st.sampled_from([0.5, 4.0, 48.0])),
    max_cost=st.one_of(st.none(), st.floats(1, 5000)),
)
def test_ranking_matches_reference(accel: str | None, gpus: int, nodes: int, cpus: float | None,
                                   memory: float | None, spot: bool, providers: set[str] | None,
                                   max_hourly: float | None, runtime: float | None, max_cost: float | None) -> None:
    rows = list(CATALOG.rows) + [CatalogRow("local", "localhost", "localhost", None, 0, 0, 8, 32, 0.0, None, "p",
                                            "2025-01-01")]
    catalog = Catalog(rows)
    req = Requirements(accelerator=accel, gpus=gpus if accel else 0, nodes=nodes, min_cpus=cpus,
                       min_memory_gb=memory, spot=spot, providers=frozenset(providers) if providers else None,
                       max_hourly=max_hourly, max_cost=max_cost, runtime_hours=runtime)
    report = rank_rows(list(catalog.rows), catalog.arrays(), req)
    got = [p.row.key for p in report.placements]
    assert got == reference(list(catalog.rows), req)
    assert report.considered == len(got) + sum(e.count for e in report.excluded)


def test_cb_run_with_provider_auto_runs_on_the_top_placement(tmp_path: Path) -> None:
    import cloudbridge as cb

    job_spec = JobSpec(name="auto-cpu", provider="auto", run="echo planned", workdir=str(tmp_path),
                       resources={"cpus": 1, "max_runtime": "5m"})
    job = cb.run(job_spec, wait=True, timeout=120)
    assert job.provider == "local" and job.id.startswith("local-")
    assert job.state.value == "SUCCEEDED"
    assert any("planned" in line for line in job.logs())
