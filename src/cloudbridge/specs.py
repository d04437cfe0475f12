"""Job and endpoint specs: one pydantic v2 schema for every provider.

Specs are plain data. Loading a YAML file (:func:`load_job_spec`) keeps the line of every field,
so a mistake is reported as ``job.yaml:7: resources.nodes: must be at least 1`` and the CLI
exits with status 2 (see :class:`~cloudbridge.errors.InvalidSpec`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cloudbridge.errors import InvalidSpec  # also re-exported for callers of this module

__all__ = [
    "EndpointSpec",
    "JobSpec",
    "Resources",
    "parse_accelerators",
    "parse_duration",
    "parse_min_quantity",
    "check_workdir",
    "spec_error",
]

_DURATION_RE = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?"
    r"\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)
_ACCEL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)(?::(\d+))?$")
_QUANTITY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(\+)?\s*$")
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$")


def parse_duration(value: str | int | float | None) -> int | None:
    """Seconds in ``value``: ``90``, ``"90s"``, ``"30m"``, ``"4h"``, ``"1h30m"``, ``"2d"``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '4h', '30m', '1h30m'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION_RE.match(value)
        if not value.strip() or not match or not any(match.groups()):
            raise ValueError(f"{value!r} is not a duration; use e.g. '90s', '30m', '4h', '1h30m' or '2d'")
        d, h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = d * 86400 + h * 3600 + m * 60 + s
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return int(round(seconds))


def parse_accelerators(value: str | None) -> tuple[str, int] | None:
    """``"A100:8"`` -> ``("A100", 8)``; ``"T4"`` -> ``("T4", 1)``; ``None`` stays ``None``."""
    if value is None:
        return None
    match = _ACCEL_RE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not an accelerator request; use NAME[:COUNT], e.g. 'A100:8' or 'T4'")
    count = int(match.group(2)) if match.group(2) else 1
    if count < 1:
        raise ValueError(f"accelerator count in {value!r} must be at least 1")
    return match.group(1).upper(), count


def parse_min_quantity(value: str | int | float | None) -> float | None:
    """``"8+"`` or ``8`` -> ``8.0`` (a minimum); ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected a number such as 8 or '8+'")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = _QUANTITY_RE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a quantity; use a number such as 8 or '8+' (at least 8)")
        number = float(match.group(1))
    if number <= 0:
        raise ValueError("must be positive")
    return number


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


class _RedactedRepr(_Strict):
    """``repr``/``str`` show secret-looking ``env``/``overrides`` values as ``***redacted***``.

    Only the printed form changes: ``model_dump()`` keeps the real values the job needs.
    """

    def __repr_args__(self) -> Any:
        from cloudbridge.redaction import redact_mapping

        for name, value in super().__repr_args__():
            if name in ("env", "overrides") and isinstance(value, dict):
                value = redact_mapping(value)
            yield name, value


class Resources(_Strict):
    """What a job needs. Every field is optional; the provider picks sane defaults."""

    accelerators: str | None = Field(default=None, description="GPU type and count per node, e.g. 'A100:8' or 'T4'.")
    cpus: str | int | None = Field(default=None, description="vCPUs per node; '8+' means at least 8.")
    memory: str | int | None = Field(default=None, description="Memory per node in GB; '32+' means at least 32.")
    gpu_memory: str | int | None = Field(
        default=None, description="Memory per GPU in GB; '40+' means GPUs with at least 40 GB."
    )
    nodes: int = Field(default=1, ge=1, le=512, description="Number of machines.")
    processes: int | None = Field(
        default=None, ge=1, le=256, description="Processes per node; default: one per GPU, or 1 on CPU."
    )
    spot: bool = Field(default=False, description="Use spot/preemptible capacity (resumes from checkpoints).")
    max_runtime: str | int | None = Field(default=None, description="Stop the job after this long, e.g. '4h'.")
    start_timeout: str | int | None = Field(
        default=None, description="Fail the job if it has not started running after this long, e.g. '15m'."
    )
    max_restarts: int = Field(default=0, ge=0, le=100, description="Automatic resubmits after spot interruption.")
    max_cost: float | None = Field(default=None, gt=0, description="Budget in USD for the whole job.")
    max_hourly_cost: float | None = Field(default=None, gt=0, description="Budget in USD per hour.")
    instance_type: str | None = Field(default=None, description="Provider instance type; overrides the planner.")
    priority: int = Field(
        default=0, ge=0, le=1000,
        description="Queue priority where jobs wait for GPUs (the local queue): higher runs first; "
        "waiting jobs gain priority over time, so none starves.",
    )

    @field_validator("accelerators")
    @classmethod
    def _check_accelerators(cls, value: str | None) -> str | None:
        parse_accelerators(value)
        return value

    @field_validator("cpus", "memory", "gpu_memory")
    @classmethod
    def _check_quantity(cls, value: str | int | None) -> str | int | None:
        parse_min_quantity(value)
        return value

    @field_validator("max_runtime", "start_timeout")
    @classmethod
    def _check_duration(cls, value: str | int | None) -> str | int | None:
        parse_duration(value)
        return value

    @property
    def accelerator_name(self) -> str | None:
        """The GPU type, upper-cased (``"A100"``), or ``None`` for CPU jobs."""
        parsed = parse_accelerators(self.accelerators)
        return parsed[0] if parsed else None

    @property
    def accelerator_count(self) -> int:
        """GPUs per node (0 for CPU jobs)."""
        parsed = parse_accelerators(self.accelerators)
        return parsed[1] if parsed else 0

    @property
    def min_cpus(self) -> float | None:
        """Minimum vCPUs per node, or ``None``."""
        return parse_min_quantity(self.cpus)

    @property
    def min_memory_gb(self) -> float | None:
        """Minimum memory per node in GB, or ``None``."""
        return parse_min_quantity(self.memory)

    @property
    def min_gpu_memory_gb(self) -> float | None:
        """Minimum memory per GPU in GB, or ``None``."""
        return parse_min_quantity(self.gpu_memory)

    @property
    def max_runtime_seconds(self) -> int | None:
        """``max_runtime`` in seconds, or ``None``."""
        return parse_duration(self.max_runtime)

    @property
    def start_timeout_seconds(self) -> int | None:
        """``start_timeout`` in seconds, or ``None``."""
        return parse_duration(self.start_timeout)


class JobSpec(_RedactedRepr):
    """A job: code, command, resources, data in and out. The same spec runs on every provider."""

    name: str = Field(..., description="Job name: letters, digits, '.', '_' and '-'.")
    provider: str = Field(default="local", description="local | aws | gcp | azure | auto | any registered name.")
    workdir: str | None = Field(default=".", description="Directory shipped with the job; relative to the spec file.")
    follow_symlinks: bool = Field(
        default=False, description="Ship what symlinks leading out of the workdir point to (refused by default)."
    )
    run: str = Field(
        ..., description="What runs in the workdir: a bash command with distribution 'none'; with 'accelerate' or "
        "'torchrun' one python/console-script command the launcher rewrites, or a bash line using $CB_LAUNCH.",
    )
    resources: Resources = Field(default_factory=Resources, description="What the job needs (see Resources).")
    distribution: Literal["accelerate", "torchrun", "none"] = Field(
        default="none", description="How processes are launched: 'accelerate', 'torchrun' or 'none' (run as is)."
    )
    image: str | None = Field(default=None, description="Container image; the provider's PyTorch image by default.")
    inputs: dict[str, str] = Field(default_factory=dict, description="Channel name -> local path or URI.")
    outputs: dict[str, str] = Field(default_factory=dict, description="Channel name -> local path or URI.")
    checkpoints: str | None = Field(default=None, description="Checkpoint location, synced during the run.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables set for the run command.")
    overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Provider name -> provider-specific settings."
    )

    source: str | None = Field(default=None, exclude=True, description="The file the spec was loaded from.")
    #: ``field path -> line`` of the YAML file the spec was loaded from (kept by copies); see :func:`spec_error`.
    _lines: dict[tuple[Any, ...], int] | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a valid job name: use up to 63 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("run")
    @classmethod
    def _check_run(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the run command is empty")
        return value

    @field_validator("inputs", "outputs")
    @classmethod
    def _check_channels(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        seen: dict[str, str] = {}
        kind = "INPUT" if info.field_name == "inputs" else "OUTPUT"
        for channel in value:
            if not re.match(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$", channel):
                raise ValueError(f"channel name {channel!r} must start with a letter: letters, digits, '_', '-'")
            # channels become CB_<KIND>_<NAME> variables: two names for one variable would silently merge
            var = channel.upper().replace("-", "_")
            if var in seen:
                raise ValueError(f"channels {seen[var]!r} and {channel!r} both become CB_{kind}_{var}; rename one")
            if kind == "OUTPUT" and var == "DIR":
                raise ValueError(f"output channel name {channel!r} is reserved: CB_OUTPUT_DIR is the output folder")
            seen[var] = channel
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _check_env(cls, value: Any) -> Any:
        # "before": YAML numbers and booleans (``OMP_NUM_THREADS: 1``) become strings.
        if not isinstance(value, dict):
            return value
        for key in value:
            if not isinstance(key, str):
                raise ValueError(f"environment variable name {key!r} is not valid")
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(f"environment variable name {key!r} is not valid")
        return {k: v if isinstance(v, str) else _env_text(v) for k, v in value.items()}

    @model_validator(mode="after")
    def _check_run_line(self) -> JobSpec:
        from cloudbridge.runline import classify_run

        try:
            classify_run(self.run, self.distribution)
        except ValueError as exc:
            # reported against ``run`` (its file and line), see spec_loading.validation_to_invalid_spec
            raise PydanticCustomError("cb_field", "{message}", {"field": "run", "message": str(exc)}) from None
        return self

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in the spec are resolved against."""
        return Path(self.source).resolve().parent if self.source else Path.cwd()

    def resolved_workdir(self) -> Path | None:
        """``workdir`` as an absolute path (``None`` when the job ships no code)."""
        if self.workdir is None:
            return None
        path = Path(self.workdir).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    def with_provider(self, provider: str) -> JobSpec:
        """A copy of this spec targeted at ``provider``."""
        return self.model_copy(update={"provider": provider})


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, (dict, list)):
        raise ValueError(f"environment values must be text or numbers, got {type(value).__name__}")
    return str(value)


class EndpointSpec(_RedactedRepr):
    """A model served behind an HTTP endpoint (SageMaker's container contract everywhere)."""

    name: str = Field(..., description="Endpoint name.")
    provider: str = Field(default="local", description="local | aws | gcp | azure | any registered name.")
    model: str = Field(..., description="Model directory or URI (HF format, or a model.tar.gz on a cloud).")
    handler: str | None = Field(default=None, description="Path to an inference.py with model_fn/predict_fn.")
    task: Literal["text-classification", "token-classification", "auto"] = Field(
        default="auto", description="What the default handler serves; 'auto' reads it from the model config."
    )
    instance_type: str | None = Field(default=None, description="Provider instance type, e.g. 'ml.g5.xlarge'.")
    accelerators: str | None = Field(default=None, description="GPU type and count per replica, e.g. 'T4'.")
    min_replicas: int = Field(default=1, ge=0, le=100, description="Fewest replicas kept running (autoscaling floor).")
    max_replicas: int = Field(default=1, ge=1, le=100, description="Most replicas (autoscaling ceiling).")
    port: int | None = Field(default=None, ge=0, le=65535, description="Local backend: port to bind (0 = free port).")
    auth_token: SecretStr | None = Field(
        default=None,
        description="Local backend: bearer token required on /invocations ('generate': make one, shown once).",
    )
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables of the serving process.")
    overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Provider name -> provider-specific settings."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a valid endpoint name: letters, digits, '.', '_' or '-'")
        return value

    @field_validator("accelerators")
    @classmethod
    def _check_accelerators(cls, value: str | None) -> str | None:
        parse_accelerators(value)
        return value


def job_spec_from_dict(data: Any, *, source: str | None = None, lines: dict | None = None) -> JobSpec:
    """Validate ``data`` as a :class:`JobSpec`, turning the first pydantic error into
    :class:`InvalidSpec` with file, line and field."""
    from cloudbridge.spec_loading import validation_to_invalid_spec

    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        raise validation_to_invalid_spec(exc, JobSpec, source=source, lines=lines) from exc
    if source:
        spec.source = source
    spec._lines = lines
    return spec


def spec_error(spec: JobSpec, field: str, message: str, *, hint: str | None = None) -> InvalidSpec:
    """An :class:`InvalidSpec` about ``field`` (dotted, e.g. ``inputs.train``) of ``spec``, naming the
    spec file and the field's line when the spec was loaded from YAML: ``job.yaml:3: workdir: ...``."""
    from cloudbridge.spec_loading import field_line

    line = field_line(spec._lines, tuple(field.split("."))) if spec.source else None
    return InvalidSpec(message, source=spec.source, line=line, field=field, hint=hint)


def check_workdir(spec: JobSpec) -> Path | None:
    """The spec's workdir as an absolute path; ``InvalidSpec`` (file, line, field) when it is missing
    or a file. ``cloudbridge run``, ``run --dry-run`` and the local backend all check it here, so they agree."""
    workdir = spec.resolved_workdir()
    if workdir is not None and not workdir.is_dir():
        what = "is a file, not a directory" if workdir.exists() else "does not exist"
        raise spec_error(spec, "workdir", f"workdir {workdir} {what}")
    return workdir


def load_job_spec(path: str | Path) -> JobSpec:
    """Load a job spec from a YAML file; errors name the file, line and field."""
    from cloudbridge.spec_loading import load_yaml_with_lines

    data, lines = load_yaml_with_lines(path)
    return job_spec_from_dict(data, source=str(path), lines=lines)


def load_endpoint_spec(path: str | Path) -> EndpointSpec:
    """Load an endpoint spec from a YAML file; errors name the file, line and field."""
    from cloudbridge.spec_loading import load_yaml_with_lines, validation_to_invalid_spec

    data, lines = load_yaml_with_lines(path)
    try:
        return EndpointSpec.model_validate(data)
    except ValidationError as exc:
        raise validation_to_invalid_spec(exc, EndpointSpec, source=str(path), lines=lines) from exc
