"""What ``cloudbridge run --dry-run`` shows: the resolved spec and the workdir package summary."""

from __future__ import annotations

from typing import Any

__all__ = ["describe_spec", "for_people", "package_summary", "validate_locations"]


def validate_locations(spec: Any) -> None:
    """Check every input/output/checkpoint location and the workdir, for ``run`` and ``run --dry-run``.

    A bad URI or unserved scheme raises ``InvalidURI``; a local input or a workdir that does not
    exist (or a workdir that is a file) raises ``InvalidSpec``; each names the spec file, the
    field's line and the field (``job.yaml:5: inputs.train: ...``).
    """
    import os

    from cloudbridge.errors import InvalidURI, UnsafeKey
    from cloudbridge.plugins import provider_for_scheme
    from cloudbridge.specs import check_workdir, spec_error
    from cloudbridge.uri import parse_uri

    check_workdir(spec)
    base = str(spec.base_dir)
    locations = [(f"inputs.{k}", v) for k, v in spec.inputs.items()]
    locations += [(f"outputs.{k}", v) for k, v in spec.outputs.items()]
    if spec.checkpoints:
        locations.append(("checkpoints", spec.checkpoints))
    for field, value in locations:
        try:
            parsed = parse_uri(value, base_dir=base)
            provider_for_scheme(parsed.scheme)
        except (InvalidURI, UnsafeKey) as exc:
            where = spec_error(spec, field, "")
            prefix = str(where).removesuffix(": ")
            raise type(exc)(f"{prefix}: {exc.message}", hint=exc.hint) from exc
        if field.startswith("inputs.") and parsed.scheme == "file" and not os.path.exists(parsed.path):
            raise spec_error(spec, field, f"{parsed.path} does not exist")


def describe_spec(spec: Any) -> dict[str, Any]:
    """The spec as it will be submitted: defaults filled in, paths absolute, quantities parsed.

    Secret-looking ``env``/``overrides`` values are shown as ``***redacted***``
    (:func:`cloudbridge.redaction.redact_spec`); the job itself still gets the real values.
    """
    from cloudbridge.redaction import redact_spec
    from cloudbridge.uri import is_remote, parse_uri

    data = redact_spec(spec.model_dump(mode="json"))
    workdir = spec.resolved_workdir()
    data["workdir"] = str(workdir) if workdir else None
    base = str(spec.base_dir)
    for channel in ("inputs", "outputs"):
        data[channel] = {
            name: value if is_remote(value) else str(parse_uri(value, base_dir=base))
            for name, value in getattr(spec, channel).items()
        }
    if spec.checkpoints and not is_remote(spec.checkpoints):
        data["checkpoints"] = str(parse_uri(spec.checkpoints, base_dir=base))
    res = spec.resources
    data["resolved"] = {
        "accelerator": res.accelerator_name,
        "accelerators_per_node": res.accelerator_count,
        "min_cpus": res.min_cpus,
        "min_memory_gb": res.min_memory_gb,
        "max_runtime_seconds": res.max_runtime_seconds,
        "start_timeout_seconds": res.start_timeout_seconds,
    }
    return data


def package_summary(spec: Any) -> Any | None:
    """The workdir package manifest (``cloudbridge.packaging``), or ``None`` without a workdir.

    The manifest has ``summarize()`` (a few lines for people) and ``to_dict()`` (for ``--json``).
    A workdir over the size limit raises the packaging error (one line, exit 2).
    """
    from cloudbridge import packaging
    from cloudbridge.specs import check_workdir

    workdir = check_workdir(spec)
    if workdir is None:
        return None

    return packaging.build_manifest(workdir, spec=spec)


def for_people(data: Any) -> Any:
    """The resolved spec as ``run --dry-run`` prints it: no null or empty fields, ``*_seconds`` as ``5m``.

    (``--json`` keeps every field, with seconds, for scripts.)
    """
    from cloudbridge.planner.cost import duration_text

    if isinstance(data, dict):
        shown = {}
        for key, value in data.items():
            if isinstance(key, str) and key.endswith("_seconds") and isinstance(value, (int, float)):
                key, value = key.removesuffix("_seconds"), duration_text(value)
            value = for_people(value)
            if value is None or value == {} or value == []:
                continue
            shown[key] = value
        return shown
    if isinstance(data, list):
        return [for_people(item) for item in data]
    return data
