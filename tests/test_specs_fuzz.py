"""Hypothesis fuzzing of job specs: any input is a valid JobSpec or one InvalidSpec, never a crash."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudbridge.errors import InvalidSpec
from cloudbridge.specs import JobSpec, Resources, job_spec_from_dict, load_job_spec

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["4h", "forever", "A100:8", "T4", "8+", "32", "0", "-1", "1h30m", "local", "x:y:z"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
_job_keys = st.sampled_from([*JobSpec.model_fields, "resource", "nmae", "inputs", "env"]) | st.text(max_size=8)
_res_keys = st.sampled_from([*Resources.model_fields, "gpus", "node"])

_resources = st.dictionaries(_res_keys, _values, max_size=5)
_specs = st.fixed_dictionaries(
    {"name": st.sampled_from(["job", "sst2-minilm", "", "bad name"]), "run": st.sampled_from(["echo hi", " "])},
    optional={"resources": _resources | _values},
).flatmap(lambda base: st.dictionaries(_job_keys, _values, max_size=4).map(lambda extra: {**base, **extra}))


def _check(data: object) -> None:
    try:
        spec = job_spec_from_dict(data, source="fuzz.yaml")
    except InvalidSpec as exc:
        text = str(exc)
        assert text.startswith("fuzz.yaml")
        assert "\n" not in text
        return
    assert isinstance(spec, JobSpec)
    # derived values of a valid spec never raise
    res = spec.resources
    assert res.nodes >= 1
    _ = (res.accelerator_count, res.min_cpus, res.min_memory_gb, res.max_runtime_seconds)
    assert JobSpec.model_validate(spec.model_dump()) == spec.model_copy(update={"source": None})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_specs)
def test_random_spec_dicts(data: dict) -> None:
    _check(data)


@settings(max_examples=100, deadline=None)
@given(_values)
def test_random_documents(data: object) -> None:
    _check(data)


_yaml_text = st.text(alphabet=st.sampled_from(list("ab:- \n{}[]'\"#&*!|>%@`19.,\t")), max_size=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_yaml_text)
def test_random_yaml_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        spec = load_job_spec(path)
    except InvalidSpec as exc:
        assert str(exc).startswith(str(path))
        assert "\n" not in str(exc)
        return
    assert isinstance(spec, JobSpec)
