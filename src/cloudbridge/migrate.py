"""Moving a job that runs on ``local`` to a cloud: ``cb.migrate(...)`` / ``cloudbridge migrate``.

``migrate("job.yaml", to="aws", bucket="s3://my-bucket")``:

1. finds every local path the job uses: ``workdir`` (shipped by the provider at submit, as a
   content-addressed package -- shown in the plan, not rewritten), ``inputs``, ``outputs`` and
   ``checkpoints``. One rule for all of them: a path outside the workdir (inputs, outputs and
   checkpoints alike) is refused unless listed in ``include`` -- every such path in one error,
   before anything is uploaded -- so a job never uploads ``/home/me/private`` by accident;
2. syncs inputs (and existing local checkpoints) to a stable prefix keyed by project,
   ``<bucket>/cloudbridge/<job-name>-<8 hex>/{inputs/<channel>,checkpoints}`` (the hex is a hash of
   the workdir's absolute path and the name, so two projects with one job name never share files);
   outputs are mapped to ``.../outputs/<channel>``. The bucket is ``--bucket`` or the provider's
   default bucket (under its own ``prefix`` setting instead of ``cloudbridge``): one place either
   way. Sync only moves what changed, so re-running is cheap;
3. writes ``JOB.<provider>.yaml`` beside the original, with URIs in place of the local paths and
   ``overrides.<provider>`` filled from the resolved provider settings (secrets and connection
   settings of this machine, such as ``endpoint_url``, are never written; unset settings appear as
   commented placeholders). A spec written by migrate is refused as input: it is already migrated;
4. reports the plan: what is uploaded, how many bytes, and -- from :mod:`cloudbridge.planner` --
   the chosen instance type and its estimated price per hour;
5. with ``submit=True``, submits the migrated spec through :func:`cloudbridge.sdk.run`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudbridge.errors import CapabilityNotSupported, InvalidSpec, UserError
from cloudbridge.specs import JobSpec

__all__ = ["MigrationItem", "MigrationPlan", "migrate", "project_key"]


@dataclass
class MigrationItem:
    """One local path of the job and where it goes."""

    field: str  # "workdir", "inputs.data", "outputs.model", "checkpoints"
    local: str
    uri: str | None
    action: str  # "package" | "upload" | "map"
    files: int = 0
    copied: int = 0
    bytes: int = 0
    note: str = ""


@dataclass
class MigrationPlan:
    """What :func:`migrate` did (or, on a dry run, would do)."""

    source: str | None
    provider: str
    prefix: str
    spec_path: str | None
    dry_run: bool
    items: list[MigrationItem] = field(default_factory=list)
    instance_type: str | None = None
    hourly: float | None = None
    estimate: str | None = None
    warnings: list[str] = field(default_factory=list)
    job: Any = None

    @property
    def upload_bytes(self) -> int:
        """Bytes uploaded (or to upload) for inputs and checkpoints."""
        return sum(i.bytes for i in self.items if i.action == "upload")

    def summarize(self) -> str:
        """The plan as text lines (``cloudbridge migrate`` prints it)."""
        verb = "would upload" if self.dry_run else "uploaded"
        lines = [f"migrate {self.source or 'job'} -> {self.provider} ({self.prefix})"]
        for item in self.items:
            if item.action == "upload":
                detail = f"{verb} {item.copied} of {item.files} file(s), {_human(item.bytes)} -> {item.uri}"
            elif item.action == "package":
                detail = f"packaged at submit: {item.files} file(s), {_human(item.bytes)}"
            else:
                detail = f"-> {item.uri}"
            lines.append(f"  {item.field:<20} {item.local}  {detail}" + (f"  ({item.note})" if item.note else ""))
        if self.instance_type or self.estimate:
            lines.append(f"  instance: {self.instance_type or '?'}; {self.estimate}")
        lines.append(f"  spec: {self.spec_path}" + (" (not written: dry run)" if self.dry_run else ""))
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json``)."""
        return {
            "source": self.source,
            "provider": self.provider,
            "prefix": self.prefix,
            "spec_path": self.spec_path,
            "dry_run": self.dry_run,
            "upload_bytes": self.upload_bytes,
            "items": [i.__dict__ for i in self.items],
            "instance_type": self.instance_type,
            "hourly": self.hourly,
            "estimate": self.estimate,
            "warnings": self.warnings,
            "job_id": getattr(self.job, "id", None),
        }


def _human(n: float) -> str:
    from cloudbridge.transfers.progress import human_bytes

    return human_bytes(n)


def _load(job: JobSpec | dict[str, Any] | str | os.PathLike[str]) -> JobSpec:
    from cloudbridge.specs import job_spec_from_dict, load_job_spec

    if isinstance(job, JobSpec):
        return job
    if isinstance(job, dict):
        return job_spec_from_dict(job)
    return load_job_spec(job)


def _is_local(value: str) -> bool:
    from cloudbridge.uri import is_remote

    return not is_remote(value)


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _target_prefix(spec: JobSpec, provider: str, bucket: str | None, settings: Any) -> str:
    from cloudbridge.plugins import provider_info
    from cloudbridge.uri import parse_uri

    info = provider_info(provider)
    if "storage" not in info.capabilities or not info.schemes:
        raise CapabilityNotSupported(f"provider {provider!r} offers no storage to migrate data to")
    folder = "cloudbridge"
    if bucket is None:
        name = getattr(settings, "bucket", None) or getattr(settings, "staging_bucket", None)
        if not name:
            scheme = info.schemes[0]
            raise UserError(
                f"no bucket to migrate to: pass --bucket {scheme}://BUCKET",
                hint=f"or set the provider's default bucket (overrides.{provider}.bucket)",
            )
        bucket = name if "://" in name else f"{info.schemes[0]}://{name}"
        folder = str(getattr(settings, "prefix", None) or folder).strip("/")  # the provider's own key prefix
    parsed = parse_uri(bucket)
    if parsed.scheme not in info.schemes:
        raise UserError(f"--bucket {bucket} is not a {provider} location (expected {', '.join(info.schemes)}://)")
    for part in folder.split("/"):
        parsed = parsed.child(part)
    return str(parsed.child(project_key(spec)))


def project_key(spec: JobSpec) -> str:
    """``<name>-<8 hex>``: the job name plus a hash of the project's absolute workdir (or spec folder).

    The same project always maps to the same prefix (re-runs upload only what changed), and two
    projects that share a job name never mix their data.
    """
    import hashlib

    where = spec.resolved_workdir() or spec.base_dir
    digest = hashlib.sha256(f"{Path(where).resolve()}\0{spec.name}".encode()).hexdigest()[:8]
    return f"{spec.name}-{digest}"


#: The first line of every spec migrate writes; a spec that starts with it is already migrated.
HEADER = "# written by `cloudbridge migrate`; local paths replaced by storage URIs"
#: Settings about this machine's connection (test servers, proxies), never written into a spec.
MACHINE_SETTINGS = ("endpoint_url", "profile")


def _refuse_migrated(spec: JobSpec) -> None:
    if not spec.source:
        return
    try:
        with open(spec.source, encoding="utf-8") as handle:
            first = handle.readline().rstrip("\n")
    except OSError:
        return
    if first == HEADER:
        raise UserError(
            f"{spec.source} is already migrated (written by cloudbridge migrate, provider {spec.provider})",
            hint=f"submit it with: cloudbridge run {spec.source}; or migrate the original local spec again",
        )


def _resolved_settings(provider: str, spec: JobSpec) -> Any:
    from cloudbridge.backends import get_provider

    return get_provider(provider, overrides=spec.overrides.get(provider)).settings


def _settings_block(provider: str, settings: Any, others: dict[str, Any], extra: dict[str, Any]) -> str:
    """``overrides:`` as YAML text. For ``provider``: its set, non-default, non-secret settings, and
    the unset ones as commented placeholders; other providers' overrides are kept as they were."""
    import yaml
    from pydantic import SecretStr

    values: dict[str, Any] = {}
    unset: list[tuple[str, str]] = []
    fields = getattr(type(settings), "model_fields", {}) if settings is not None else {}
    for name, info in fields.items():
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr) or any(word in name for word in ("secret", "token", "password")):
            continue
        extra_info = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if name in MACHINE_SETTINGS or extra_info.get("migrate") is False:
            continue  # e.g. AWS_ENDPOINT_URL pointing at a test server: this machine's, not the job's
        if name in extra:
            values[name] = extra[name]
        elif value is None:
            unset.append((name, info.description or ""))
        elif value != info.default and value not in ([], {}):
            values[name] = value if isinstance(value, (str, int, float, bool, list, dict)) else str(value)
    lines = ["overrides:"]
    if others:
        body = yaml.safe_dump(others, sort_keys=True, default_flow_style=False).rstrip().splitlines()
        lines.extend(f"  {line}" for line in body)
    lines.append(f"  {provider}:")
    if values:
        body = yaml.safe_dump(values, sort_keys=True, default_flow_style=False).rstrip().splitlines()
        lines.extend(f"    {line}" for line in body)
    lines.extend(f"    # {name}: <unset>  {description}".rstrip() for name, description in unset)
    if not values:
        lines.append("    {}")
    return "\n".join(lines) + "\n"


def _write_spec(spec: JobSpec, provider: str, path: Path, settings: Any, extra: dict[str, Any]) -> None:
    """Write the migrated spec atomically (temp file + rename)."""
    import yaml

    data = spec.model_dump(mode="json", exclude_none=True, exclude={"source"})
    data["provider"] = provider
    others = {k: v for k, v in (data.pop("overrides", None) or {}).items() if k != provider}
    text = HEADER + "\n"
    text += yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    text += _settings_block(provider, settings, others, extra)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def migrate(
    job_path_or_spec: JobSpec | dict[str, Any] | str | os.PathLike[str],
    to: str,
    *,
    bucket: str | None = None,
    dry_run: bool = False,
    submit: bool = False,
    include: tuple[str, ...] | list[str] = (),
    progress: Any = False,
) -> MigrationPlan:
    """Migrate a local job to provider ``to`` (see the module docstring); returns the plan/result."""
    from cloudbridge.packaging import scan_workdir
    from cloudbridge.transfers.sync import sync

    spec = _load(job_path_or_spec)
    _refuse_migrated(spec)
    settings = _resolved_settings(to, spec)
    prefix = _target_prefix(spec, to, bucket, settings)
    base = spec.base_dir
    source = spec.source
    spec_path = Path(source).with_name(f"{Path(source).stem}.{to}.yaml") if source else base / f"{spec.name}.{to}.yaml"
    plan = MigrationPlan(source, to, prefix, str(spec_path), dry_run)
    workdir = spec.resolved_workdir()
    workdir = workdir.resolve() if workdir is not None else None
    allowed = [Path(p).expanduser().resolve() for p in include]

    def local_path(value: str) -> Path:
        path = Path(value).expanduser()
        return (path if path.is_absolute() else base / path).resolve()

    for channel, value in spec.inputs.items():
        if _is_local(value) and not local_path(value).exists():
            raise InvalidSpec(
                f"input path {local_path(value)} does not exist", source=source, field=f"inputs.{channel}"
            )
    _refuse_outside(_local_fields(spec, local_path), workdir, allowed)
    manifest = None
    if workdir is not None:
        manifest = scan_workdir(workdir, spec=spec)
        plan.items.append(
            MigrationItem(
                "workdir", str(workdir), None, "package", files=manifest.file_count, bytes=manifest.total_size
            )
        )
        plan.warnings.extend(manifest.warnings)
    new_inputs: dict[str, str] = {}
    uploads: list[tuple[MigrationItem, Path]] = []
    for channel, value in spec.inputs.items():
        if not _is_local(value):
            new_inputs[channel] = value
            continue
        path = local_path(value)
        uri = f"{prefix}/inputs/{channel}"
        if path.is_file():
            uri = f"{uri}/{path.name}"
        item = MigrationItem(f"inputs.{channel}", str(path), uri, "upload")
        if workdir is not None and _within(path, workdir) and _packaged(manifest, path.relative_to(workdir)):
            item.note = "also inside the workdir: list it in .cloudbridgeignore to ship it once"
        uploads.append((item, path))
        new_inputs[channel] = uri
    new_outputs = dict(spec.outputs)
    for channel, value in spec.outputs.items():
        if _is_local(value):
            new_outputs[channel] = f"{prefix}/outputs/{channel}"
            plan.items.append(MigrationItem(f"outputs.{channel}", str(local_path(value)), new_outputs[channel], "map"))
    new_checkpoints = spec.checkpoints
    if spec.checkpoints and _is_local(spec.checkpoints):
        path = local_path(spec.checkpoints)
        new_checkpoints = f"{prefix}/checkpoints"
        if path.is_dir() and any(path.iterdir()):
            uploads.append((MigrationItem("checkpoints", str(path), new_checkpoints, "upload"), path))
        else:
            plan.items.append(MigrationItem("checkpoints", str(path), new_checkpoints, "map"))
    for item, path in uploads:
        _upload(item, path, dry_run=dry_run, progress=progress, sync=sync)
        plan.items.append(item)
    migrated = spec.model_copy(
        update={"provider": to, "inputs": new_inputs, "outputs": new_outputs, "checkpoints": new_checkpoints}
    )
    _estimate(plan, migrated, to)
    if not dry_run:
        _write_spec(migrated, to, spec_path, settings, _bucket_override(settings, bucket))
        if submit:
            from cloudbridge.sdk import run

            plan.job = run(str(spec_path), provider=to)
    return plan


def _local_fields(spec: JobSpec, local_path: Any) -> list[tuple[str, Path]]:
    """Every local path the job uses besides its workdir: ``(field, absolute path)``."""
    fields = [(f"inputs.{c}", v) for c, v in spec.inputs.items()]
    fields += [(f"outputs.{c}", v) for c, v in spec.outputs.items()]
    if spec.checkpoints:
        fields.append(("checkpoints", spec.checkpoints))
    return [(name, local_path(value)) for name, value in fields if _is_local(value)]


def _refuse_outside(paths: list[tuple[str, Path]], workdir: Path | None, allowed: list[Path]) -> None:
    """One rule for every local path: inside the workdir, or listed in ``include`` -- else refuse
    them all in one error, before anything is uploaded or written."""
    outside = [
        f"{name}={path}"
        for name, path in paths
        if not (workdir is not None and _within(path, workdir)) and not any(_within(path, a) for a in allowed)
    ]
    if outside:
        raise UserError(
            "the job uses paths outside its workdir: " + ", ".join(outside),
            hint="pass --include PATH for each one to migrate it too",
        )


def _bucket_override(settings: Any, bucket: str | None) -> dict[str, Any]:
    """``{"bucket": NAME}`` when ``--bucket`` was given and the provider has no default bucket set:
    the migrated job then keeps its code package and outputs in the same bucket."""
    fields = getattr(type(settings), "model_fields", {}) if settings is not None else {}
    field = "bucket" if "bucket" in fields else "staging_bucket"  # GCP calls its default bucket staging_bucket
    if not bucket or field not in fields or getattr(settings, field, None):
        return {}
    from cloudbridge.uri import parse_uri

    return {field: parse_uri(bucket).bucket}


def _packaged(manifest: Any, rel: Path) -> bool:
    """True when the workdir package already holds ``rel`` (a file or a directory)."""
    if manifest is None:
        return False
    text = rel.as_posix()
    return any(e.path == text or e.path.startswith(text + "/") for e in manifest.entries)


def _upload(item: MigrationItem, path: Path, *, dry_run: bool, progress: Any, sync: Any) -> None:
    if path.is_file():
        from cloudbridge.transfers.resolve import resolve

        storage, target = resolve(item.uri or "")
        item.files = 1
        local = path.stat()
        try:
            info = storage.stat(target)
            same = info.size == local.st_size and (info.mtime or 0) >= local.st_mtime - 1
        except Exception:  # noqa: BLE001 - absent (or unreadable): upload it
            same = False
        item.bytes = 0 if same else local.st_size
        item.copied = 0 if same else 1
        if not dry_run and not same:
            storage.upload(path, target)
        return
    result = sync(str(path), item.uri, dry_run=dry_run, progress=progress)
    result.raise_for_errors()
    item.files = len(result.plan.to_copy) + result.plan.unchanged
    item.bytes = result.plan.copy_bytes
    item.copied = len(result.plan.to_copy)


def _estimate(plan: MigrationPlan, spec: JobSpec, provider: str) -> None:
    try:
        from cloudbridge.planner import estimate_cost

        estimate = estimate_cost(spec, provider)
    except Exception as exc:  # noqa: BLE001 - an estimate must never block a migration
        plan.estimate = f"no estimate: {exc}"
        return
    plan.instance_type = estimate.instance_type
    plan.hourly = estimate.hourly
    plan.estimate = estimate.describe()
