"""Unit tests of cloudbridge.specs: parsing helpers and the JobSpec/Resources/EndpointSpec models."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudbridge.errors import InvalidSpec
from cloudbridge.specs import (
    EndpointSpec,
    JobSpec,
    Resources,
    job_spec_from_dict,
    parse_accelerators,
    parse_duration,
    parse_min_quantity,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90), ("90s", 90), ("30m", 1800), ("4h", 14400), ("1h30m", 5400), ("2d", 172800), ("1.5h", 5400)],
)
def test_parse_duration_accepts(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["forever", "", "4 hours", "h", "-1h", 0, -5, True, "1x"])
def test_parse_duration_refuses(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


def test_parse_accelerators() -> None:
    assert parse_accelerators("A100:8") == ("A100", 8)
    assert parse_accelerators("t4") == ("T4", 1)
    assert parse_accelerators(None) is None
    for bad in ("A100:", "A100:x", ":8", "A100:0", "8", "A 100"):
        with pytest.raises(ValueError):
            parse_accelerators(bad)


def test_parse_min_quantity() -> None:
    assert parse_min_quantity("8+") == 8.0
    assert parse_min_quantity(32) == 32.0
    assert parse_min_quantity(" 2.5 + ") == 2.5
    for bad in ("lots", "0", -1, True, "8++"):
        with pytest.raises(ValueError):
            parse_min_quantity(bad)  # type: ignore[arg-type]


def test_resources_properties() -> None:
    res = Resources(accelerators="a100:8", cpus="8+", memory=32, nodes=2, max_runtime="4h", start_timeout="15m")
    assert (res.accelerator_name, res.accelerator_count) == ("A100", 8)
    assert res.min_cpus == 8.0 and res.min_memory_gb == 32.0
    assert res.max_runtime_seconds == 14400 and res.start_timeout_seconds == 900
    cpu = Resources()
    assert cpu.accelerator_name is None and cpu.accelerator_count == 0 and cpu.nodes == 1


def test_jobspec_defaults_and_paths(tmp_path: Path) -> None:
    spec = job_spec_from_dict({"name": "j", "run": "echo hi"}, source=str(tmp_path / "job.yaml"))
    assert spec.provider == "local" and spec.distribution == "none"
    assert spec.base_dir == tmp_path.resolve()
    assert spec.resolved_workdir() == tmp_path.resolve()
    assert spec.with_provider("aws").provider == "aws" and spec.provider == "local"
    assert "source" not in spec.model_dump()


@pytest.mark.parametrize(
    ("data", "field", "needle"),
    [
        ({"name": "bad name!", "run": "x"}, "name", "not a valid job name"),
        ({"name": "j", "run": "   "}, "run", "empty"),
        ({"name": "j", "run": "x", "resources": {"nodes": -1}}, "resources.nodes", "greater than or equal to 1"),
        ({"name": "j", "run": "x", "resources": {"max_runtime": "forever"}}, "resources.max_runtime", "forever"),
        ({"name": "j", "run": "x", "resources": {"accelerators": "A100:lots"}}, "resources.accelerators", "A100"),
        ({"name": "j", "run": "x", "inputs": {"1data": "./d"}}, "inputs", "channel name"),
        ({"name": "j", "run": "x", "env": {"BAD-NAME": "1"}}, "env", "not valid"),
        ({"name": "j", "run": "x", "distribution": "mpi"}, "distribution", "accelerate"),
        ({"run": "x"}, "name", "required field is missing"),
    ],
)
def test_jobspec_errors_name_the_field(data: dict, field: str, needle: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        job_spec_from_dict(data, source="job.yaml")
    assert info.value.field == field
    assert needle in str(info.value)
    assert str(info.value).startswith("job.yaml: ")


def test_jobspec_typo_suggests_field() -> None:
    with pytest.raises(InvalidSpec) as info:
        job_spec_from_dict({"name": "j", "run": "x", "resources": {"acelerators": "T4"}})
    assert info.value.field == "resources.acelerators"
    assert "did you mean 'accelerators'?" in str(info.value)


def test_jobspec_env_values_become_strings() -> None:
    spec = JobSpec(name="j", run="x", env={"A": 1, "B": True})  # type: ignore[dict-item]
    assert spec.env == {"A": "1", "B": "true"}
    with pytest.raises(ValueError):
        JobSpec(name="j", run="x", env={"A": [1]})  # type: ignore[dict-item]


def test_endpoint_spec() -> None:
    spec = EndpointSpec(name="ep", model="./model", accelerators="T4")
    assert spec.min_replicas == 1 and spec.task == "auto"
    with pytest.raises(ValueError):
        EndpointSpec(name="ep", model="m", max_replicas=0)
