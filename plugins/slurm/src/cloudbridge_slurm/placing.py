"""Checking a job against the cluster before anything is staged, and pricing it: what ``place`` does.

Bad input is :class:`~cloudbridge.errors.InvalidSpec` (one line, exit status 2, nothing submitted):
an unknown partition (with the ones that exist), more GPUs per node than any node of the partition
has, more nodes than it has, ``max_runtime`` above its time limit, a node-local or unwritable staging
folder, an unreachable login host, and what ``sbatch`` itself refuses (account, qos, constraint).
A setting the job gave itself (``overrides.slurm.*``) is reported at its line in the spec file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import InvalidSpec
from cloudbridge.managed.adapter import Placement
from cloudbridge.specs import JobSpec, spec_error
from cloudbridge_slurm.cluster import format_time
from cloudbridge_slurm.runner import CommandFailed

if TYPE_CHECKING:
    from cloudbridge_slurm.adapter import SlurmAdapter

__all__ = ["from_overrides", "place", "price_list", "refused"]


def place(adapter: SlurmAdapter, spec: JobSpec) -> Placement:
    """The partition, checked against what the cluster has (partition, GPUs per node, time limit).

    A bad setting the job itself gave (``overrides.slurm.*``) is reported at its line in the spec file.
    """
    try:
        adapter.check_staging()
        cluster = adapter.cluster()
    except InvalidSpec as exc:
        raise from_overrides(spec, exc) from exc.__cause__
    wanted = adapter.settings.partition
    part = cluster.partitions.get(wanted) if wanted else cluster.default
    if part is None:
        known = ", ".join(cluster.partitions) or "none"
        raise from_overrides(spec, InvalidSpec(f"unknown partition {wanted!r} (partitions: {known})",
                                                field="settings.slurm.partition"))
    res = spec.resources
    if res.accelerator_count:
        kind = res.accelerator_name
        nodes = [n for n in part.nodes if kind in (None, "GPU", "ANY") or (n.gpu_type or "") == kind]
        most = max((n.gpus for n in nodes), default=0)
        if res.accelerator_count > most:
            have = ", ".join(sorted({f"{n.gpus}x{n.gpu_type or 'GPU'}" for n in part.nodes if n.gpus})) or "no GPUs"
            raise spec_error(spec, "resources.accelerators",
                             f"{res.accelerators} asks for {res.accelerator_count} GPUs per node, but no node of "
                             f"partition {part.name!r} has that many {kind} GPUs (nodes have: {have})")
    if res.nodes > len(part.nodes):
        raise spec_error(spec, "resources.nodes",
                         f"{res.nodes} nodes asked for, partition {part.name!r} has {len(part.nodes)}")
    runtime = res.max_runtime_seconds
    if runtime and part.max_time is not None and runtime > part.max_time:
        raise spec_error(spec, "resources.max_runtime",
                         f"max_runtime {res.max_runtime} is above the time limit of partition {part.name!r} "
                         f"({format_time(part.max_time)})", hint="ask for less, or use another partition")
    if adapter.settings.node_hour_price is not None:
        adapter.catalog = price_list(part, res.accelerator_name, res.accelerator_count,
                                   adapter.settings.node_hour_price)
    return Placement(part.name, None, res.nodes, res.spot)


def from_overrides(spec: JobSpec, exc: InvalidSpec) -> InvalidSpec:
    """``exc`` about ``settings.slurm.X`` as ``overrides.slurm.X`` of ``spec`` when the job set X itself."""
    key = (exc.field or "").removeprefix("settings.slurm.")
    if exc.field and exc.field.startswith("settings.slurm.") and key in (spec.overrides.get("slurm") or {}):
        return spec_error(spec, f"overrides.slurm.{key}", exc.message, hint=exc.hint)
    return exc


def price_list(part: Any, accelerator: str | None, gpus: int, node_hour_price: float) -> Any:
    """A one-row planner catalog: a node of ``part`` as the job uses it, at ``node_hour_price`` (so budgets work)."""
    import datetime as dt

    from cloudbridge.planner.catalog import Catalog, CatalogRow

    nodes = part.nodes or ()
    cpus = float(min((n.cpus for n in nodes), default=0))
    memory = round(min((n.memory_mb for n in nodes), default=0) / 1024, 1)
    row = CatalogRow("slurm", "cluster", part.name, accelerator if gpus else None, gpus, 0.0, cpus, memory,
                     node_hour_price, node_hour_price, "settings.slurm.node_hour_price", dt.date.today().isoformat())
    return Catalog([row], version="slurm-settings")


#: sbatch's refusals that are the user's input: (message pattern, settings field).
_SBATCH_REFUSALS = (
    (re.compile(r"Invalid account", re.I), "settings.slurm.account"),
    (re.compile(r"Invalid qos", re.I), "settings.slurm.qos"),
    (re.compile(r"Invalid feature specification", re.I), "settings.slurm.constraint"),
    (re.compile(r"Invalid partition", re.I), "settings.slurm.partition"),
    (re.compile(r"Invalid generic resource|Requested node configuration is not available", re.I), "resources"),
)


def refused(exc: CommandFailed) -> Exception:
    """sbatch's error as :class:`InvalidSpec` naming the setting when the input was wrong, else ``exc``."""
    for pattern, field in _SBATCH_REFUSALS:
        if pattern.search(exc.stderr):
            last = exc.stderr.strip().splitlines()[-1].removeprefix("sbatch: error: ")
            return InvalidSpec(f"Slurm refused the job: {last}", field=field)
    return exc
