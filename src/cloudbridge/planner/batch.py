"""Batch allocation inputs: tasks and a pool of resources, loaded from YAML and checked.

``TASKS.yaml``::

    tasks:
      - name: ft-small
        gpus: 1              # GPUs at once
        gpu_memory: 16       # GB per GPU (optional)
        accelerator: A100    # optional; a family name accepts every member
        duration: 2h         # on a speed-1.0 resource
        priority: 1          # >= 0; higher deadlines are kept first
        deadline: 6h         # optional, from the start of the plan

``POOL.yaml``::

    horizon: 24h             # how long the pool is available (default 24h)
    quotas: {aws: 16}        # optional: GPUs at once per provider
    resources:
      - {name: box, provider: local, probe: true}                 # this machine's GPUs
      - {name: ws, provider: local, accelerator: RTX-4090, gpus: 2, gpu_memory: 24, price: 0}
      - {name: g5, provider: aws, region: us-east-1, instance_type: ml.g5.12xlarge, quota: 3}
      - {name: cheap-a100, provider: acme, accelerator: A100, gpus: 8, gpu_memory: 40, price: 9.5, quota: 1}
      - {name: hpc, provider: slurm, probe: true, instance_type: gpu}   # a cluster's partition, read live

A local resource has ``gpus`` GPUs and ``price`` per GPU-hour; a cloud resource has ``quota``
instances at once of ``gpus`` GPUs each, at ``price`` per instance-hour (from the catalog when
``instance_type`` is given). A provider with machines of its own (``slurm``) is read live with ``probe:
true`` (``instance_type`` names the partition): its usable nodes at ``price`` per node-hour (default 0).
Every problem is one line naming the file, line and field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cloudbridge.errors import InvalidSpec
from cloudbridge.planner.accelerators import UnknownAccelerator, normalize_accelerator, satisfies
from cloudbridge.planner.catalog import Catalog, load_catalog
from cloudbridge.specs import parse_duration

__all__ = ["Pool", "Resource", "Task", "load_pool", "load_tasks", "make_pool", "make_tasks"]

DEFAULT_HORIZON_HOURS = 24.0
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class Task:
    """One task: ``gpus`` GPUs with ``gpu_memory_gb`` each for ``duration_hours`` (at speed 1)."""

    name: str
    gpus: int
    duration_hours: float
    gpu_memory_gb: float = 0.0
    priority: int = 0
    deadline_hours: float | None = None
    accelerator: str | None = None


@dataclass(frozen=True)
class Resource:
    """``units`` units at once of ``gpus_per_unit`` GPUs each, at ``price_per_unit_hour``.

    Local resources have one GPU per unit; cloud resources one instance per unit.
    """

    name: str
    provider: str
    accelerator: str | None
    gpus_per_unit: int
    units: int
    gpu_memory_gb: float
    price_per_unit_hour: float
    speed: float = 1.0
    region: str | None = None
    instance_type: str | None = None

    @property
    def gpus(self) -> int:
        """GPUs available at once."""
        return self.gpus_per_unit * self.units


@dataclass(frozen=True)
class Pool:
    """Resources available for ``horizon_hours``, with optional per-provider GPU quotas."""

    resources: tuple[Resource, ...]
    horizon_hours: float = DEFAULT_HORIZON_HOURS
    quotas: dict[str, int] = field(default_factory=dict)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _TaskIn(_Model):
    name: str = Field(..., min_length=1, max_length=100)
    gpus: int = Field(1, ge=1, le=4096)
    gpu_memory: float = Field(0, ge=0)
    accelerator: str | None = None
    duration: str | float
    priority: int = Field(0, ge=0, le=1000)
    deadline: str | float | None = None

    @field_validator("duration", "deadline")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        parse_duration(value)
        return value


class _TasksFile(_Model):
    tasks: list[_TaskIn] = Field(..., min_length=1)


class _ResourceIn(_Model):
    name: str = Field(..., min_length=1, max_length=100)
    provider: str
    probe: bool = False
    region: str | None = None
    instance_type: str | None = None
    accelerator: str | None = None
    gpus: int | None = Field(None, ge=0, le=4096)
    gpu_memory: float | None = Field(None, ge=0)
    price: float | None = Field(None, ge=0)
    quota: int = Field(1, ge=0, le=10000)
    spot: bool = False
    speed: float = Field(1.0, gt=0, le=1000)


class _PoolFile(_Model):
    horizon: str | float = "24h"
    quotas: dict[str, int] = Field(default_factory=dict)
    resources: list[_ResourceIn] = Field(..., min_length=1)

    @field_validator("horizon")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        parse_duration(value)
        return value


def _hours(value: str | float | None) -> float | None:
    seconds = parse_duration(value)
    return None if seconds is None else seconds / 3600


def _err(message: str, source: str | None, lines: dict | None, loc: tuple[Any, ...],
         hint: str | None = None) -> InvalidSpec:
    from cloudbridge.spec_loading import field_line

    return InvalidSpec(message, source=source, line=field_line(lines, loc),
                       field=".".join(f"[{p}]" if isinstance(p, int) else p for p in loc).replace(".[", "["),
                       hint=hint)


def _validated(model: type[_M], data: Any, source: str | None, lines: dict | None) -> _M:
    """``model`` validated from ``data``; a validation error names the file, line and field."""
    from cloudbridge.spec_loading import validation_to_invalid_spec

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_to_invalid_spec(exc, model, source=source, lines=lines) from exc


def _claim_name(name: str, seen: set[str], kind: str, source: str | None, lines: dict | None,
                loc: tuple[Any, ...]) -> None:
    """Add ``name`` to ``seen``; a second ``kind`` of the same name is an error at ``loc``."""
    if name in seen:
        raise _err(f"duplicate {kind} name {name!r}", source, lines, (*loc, "name"))
    seen.add(name)


def make_pool(data: Any, *, source: str | None = None, lines: dict | None = None,
              catalog: Catalog | None = None) -> Pool:
    """Validate pool ``data`` (the parsed YAML) into a :class:`Pool`."""
    raw = _validated(_PoolFile, data, source, lines)
    catalog = catalog or load_catalog()
    resources: list[Resource] = []
    names: set[str] = set()
    for i, item in enumerate(raw.resources):
        loc: tuple[Any, ...] = ("resources", i)
        _claim_name(item.name, names, "resource", source, lines, loc)
        resources.append(_resource(item, catalog, source, lines, loc))
    for provider, gpus in raw.quotas.items():
        if gpus < 0:
            raise _err("a quota must be >= 0 GPUs", source, lines, ("quotas", provider))
    return Pool(tuple(resources), _hours(raw.horizon) or DEFAULT_HORIZON_HOURS, dict(raw.quotas))


def _resource(item: _ResourceIn, catalog: Catalog, source: str | None, lines: dict | None,
              loc: tuple[Any, ...]) -> Resource:
    if item.provider == "local":
        if item.probe:
            return _probed(item)
        if item.gpus is None:
            raise _err("gpus is missing (how many GPUs this machine has), or set probe: true",
                       source, lines, (*loc, "gpus"))
        accel = _accel(item.accelerator, None, source, lines, (*loc, "accelerator"), local=True)
        return Resource(item.name, "local", accel, 1, item.gpus, item.gpu_memory or 0.0, item.price or 0.0,
                        item.speed)
    if item.probe:
        return _probed_provider(item, source, lines, loc)
    if item.instance_type:
        rows = [r for r in catalog.rows if r.provider == item.provider and r.instance_type == item.instance_type
                and (item.region is None or r.region == item.region)]
        if not rows:
            import difflib

            known = sorted({r.instance_type for r in catalog.rows if r.provider == item.provider})
            close = difflib.get_close_matches(item.instance_type, known, n=1)
            where = f" in {item.region}" if item.region else ""
            raise _err(f"instance type {item.instance_type!r} is not in the catalog for {item.provider}{where}",
                       source, lines, (*loc, "instance_type"), hint=f"did you mean {close[0]!r}?" if close else None)
        row = min(rows, key=lambda r: r.price_hour)
        price = row.price(item.spot)
        if price is None:
            raise _err(f"{row.label} has no spot price in the catalog", source, lines, (*loc, "spot"))
        if item.price is not None:
            price = item.price
        return Resource(item.name, item.provider, row.accelerator, row.accelerator_count, item.quota,
                        row.gpu_memory_gb, price, item.speed, row.region, row.instance_type)
    if item.price is None:
        raise _err(f"price is missing for resource {item.name!r} (USD per instance-hour), or name a catalog "
                   "instance_type", source, lines, (*loc, "price"))
    if item.gpus is None:
        raise _err("gpus is missing (GPUs per instance)", source, lines, (*loc, "gpus"))
    accel = _accel(item.accelerator, catalog, source, lines, (*loc, "accelerator"), local=False)
    return Resource(item.name, item.provider, accel, item.gpus, item.quota, item.gpu_memory or 0.0, item.price,
                    item.speed, item.region, None)


def _accel(name: str | None, catalog: Catalog | None, source: str | None, lines: dict | None,
           loc: tuple[Any, ...], *, local: bool) -> str | None:
    if not name:
        return None
    from cloudbridge.planner.accelerators import KNOWN_ACCELERATORS, canonical_spelling

    try:
        vocab = set(KNOWN_ACCELERATORS) | (catalog.accelerators() if catalog else set())
        return normalize_accelerator(name, vocab)
    except UnknownAccelerator as exc:
        if local:  # a workstation may have any GPU (RTX-4090, ...): keep its name
            return canonical_spelling(name)
        raise _err(exc.message, source, lines, loc, hint=exc.hint) from None


def _probed(item: _ResourceIn) -> Resource:
    from cloudbridge.planner.probe import probe_local

    res = probe_local()
    if not res.gpus:
        return Resource(item.name, "local", None, 1, 0, 0.0, item.price or 0.0, item.speed)
    names = {g.accelerator for g in res.gpus}
    accel = names.pop() if len(names) == 1 else None
    return Resource(item.name, "local", accel, 1, len(res.gpus), min(g.memory_gb for g in res.gpus),
                    item.price or 0.0, item.speed)


def _probed_provider(item: _ResourceIn, source: str | None, lines: dict | None, loc: tuple[Any, ...]) -> Resource:
    """A resource read from a provider's own machines (``Provider.resources()``, e.g. Slurm's ``sinfo``).

    ``instance_type`` names the partition (default: the first listed), ``accelerator`` picks a GPU type
    in it; the resource is that group's usable nodes, ``gpus_per_node`` GPUs each, at ``price`` (default 0).
    """
    from cloudbridge.backends import get_provider
    from cloudbridge.errors import CloudbridgeError
    from cloudbridge.planner.accelerators import KNOWN_ACCELERATORS, canonical_spelling

    try:
        rows = get_provider(item.provider).resources()
    except CloudbridgeError as exc:
        raise _err(f"cannot probe provider {item.provider!r}: {exc}", source, lines, (*loc, "probe")) from None
    parts = list(dict.fromkeys(r["partition"] for r in rows))
    wanted = item.instance_type or (parts[0] if parts else None)
    chosen = [r for r in rows if r["partition"] == wanted and r.get("gpus_per_node")]
    if item.accelerator:
        chosen = [r for r in chosen if satisfies(r.get("gpu_type"), canonical_spelling(item.accelerator))]
    if not chosen:
        what = f" with {item.accelerator} GPUs" if item.accelerator else " with GPUs"
        raise _err(f"provider {item.provider!r} has no partition {wanted!r}{what} (partitions: {', '.join(parts)})",
                   source, lines, (*loc, "instance_type"))
    row = max(chosen, key=lambda r: (r.get("usable", r["nodes"]), r["gpus_per_node"]))
    accel = row.get("gpu_type")
    memory = item.gpu_memory if item.gpu_memory is not None else KNOWN_ACCELERATORS.get(accel or "", 0.0)
    return Resource(item.name, item.provider, accel, int(row["gpus_per_node"]), int(row.get("usable", row["nodes"])),
                    float(memory), item.price or 0.0, item.speed, None, row["partition"])


def make_tasks(data: Any, pool: Pool, *, source: str | None = None, lines: dict | None = None) -> list[Task]:
    """Validate tasks ``data`` against ``pool``: every task must be placeable somewhere, and its
    deadline reachable; otherwise one line names the task, the file line and why."""
    raw = _validated(_TasksFile, data, source, lines)
    vocab = {r.accelerator for r in pool.resources if r.accelerator}
    tasks: list[Task] = []
    seen: set[str] = set()
    for i, item in enumerate(raw.tasks):
        loc: tuple[Any, ...] = ("tasks", i)
        _claim_name(item.name, seen, "task", source, lines, loc)
        accel = None
        if item.accelerator:
            try:
                accel = normalize_accelerator(item.accelerator, vocab)
            except UnknownAccelerator as exc:
                raise _err(f"task {item.name!r}: {exc.message}", source, lines, (*loc, "accelerator"),
                           hint=exc.hint) from None
        task = Task(item.name, item.gpus, _hours(item.duration) or 0.0, item.gpu_memory, item.priority,
                    _hours(item.deadline), accel)
        _check_placeable(task, pool, source, lines, loc)
        tasks.append(task)
    return tasks


def fits(task: Task, res: Resource) -> bool:
    """True when ``task`` can ever run on ``res`` (type, memory, size, horizon)."""
    return (
        res.gpus_per_unit > 0
        and math.ceil(task.gpus / res.gpus_per_unit) <= res.units
        and (task.accelerator is None or satisfies(res.accelerator, task.accelerator))
        and task.gpu_memory_gb <= res.gpu_memory_gb + 1e-9
    )


def _check_placeable(task: Task, pool: Pool, source: str | None, lines: dict | None, loc: tuple[Any, ...]) -> None:
    gpu_res = [r for r in pool.resources if r.gpus > 0]
    who = f"task {task.name!r}"
    if not gpu_res:
        raise _err(f"{who} needs {task.gpus} GPU(s) but the pool has no GPUs", source, lines, (*loc, "gpus"))
    typed = [r for r in gpu_res if task.accelerator is None or satisfies(r.accelerator, task.accelerator)]
    if not typed:
        have = ", ".join(sorted({r.accelerator or "unnamed" for r in gpu_res}))
        raise _err(f"{who} needs {task.accelerator} GPUs; the pool has {have}", source, lines, (*loc, "accelerator"))
    roomy = [r for r in typed if task.gpu_memory_gb <= r.gpu_memory_gb + 1e-9]
    if not roomy:
        best = max(typed, key=lambda r: r.gpu_memory_gb)
        raise _err(f"{who} needs {task.gpu_memory_gb:g} GB per GPU; the largest in the pool is "
                   f"{best.gpu_memory_gb:g} GB ({best.name})", source, lines, (*loc, "gpu_memory"))
    big = [r for r in roomy if fits(task, r)]
    if not big:
        most = max(roomy, key=lambda r: r.gpus)
        raise _err(f"{who} needs {task.gpus} GPUs at once; the most any suitable resource has is {most.gpus} "
                   f"({most.name})", source, lines, (*loc, "gpus"))
    fastest = max(r.speed for r in big)
    shortest = task.duration_hours / fastest
    if task.deadline_hours is not None and shortest > task.deadline_hours + 1e-9:
        raise _err(f"{who} has deadline {task.deadline_hours:g}h but needs at least {shortest:g}h to run: "
                   "the deadline can never be met", source, lines, (*loc, "deadline"))
    if shortest > pool.horizon_hours + 1e-9:
        raise _err(f"{who} needs {shortest:g}h but the pool is only available for {pool.horizon_hours:g}h "
                   "(horizon)", source, lines, (*loc, "duration"))


def load_pool(path: str, *, catalog: Catalog | None = None) -> Pool:
    """Load and validate a pool YAML file."""
    from cloudbridge.spec_loading import load_yaml_with_lines

    data, lines = load_yaml_with_lines(path)
    return make_pool(data, source=str(path), lines=lines, catalog=catalog)


def load_tasks(path: str, pool: Pool) -> list[Task]:
    """Load and validate a tasks YAML file against ``pool``."""
    from cloudbridge.spec_loading import load_yaml_with_lines

    data, lines = load_yaml_with_lines(path)
    return make_tasks(data, pool, source=str(path), lines=lines)
