"""What the cluster offers, read from ``sinfo --json`` and ``scontrol show partition -o``. Parsing is pure.

:func:`read_cluster` asks the cluster once; the planner (``cloudbridge resources --provider slurm``,
``plan --pool``) and the submit-time checks (:func:`check_fits`: unknown partition, more GPUs per node
than any node has, ``--time`` above the partition's limit) read the same :class:`ClusterInfo`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import ProviderError

if TYPE_CHECKING:
    from cloudbridge_slurm.runner import Runner

__all__ = ["ClusterInfo", "NodeInfo", "PartitionInfo", "format_time", "parse_gres", "parse_nodes",
           "parse_partitions", "parse_time", "read_cluster"]

_GRES_RE = re.compile(r"^gpu(?::([A-Za-z0-9_.-]+))?:(\d+)")
_TIME_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_gres(gres: str) -> tuple[str | None, int]:
    """GPUs in a node's ``gres`` text: ``"gpu:a100:4(S:0-1),shard:8"`` -> ``("A100", 4)``; none -> ``(None, 0)``."""
    for item in re.split(r",(?![^(]*\))", gres or ""):
        match = _GRES_RE.match(item.strip())
        if match:
            kind = match.group(1)
            return (kind.upper() if kind else None), int(match.group(2))
    return None, 0


def parse_time(text: str | None) -> int | None:
    """A Slurm time limit in seconds: ``"UNLIMITED"``/``"infinite"`` -> ``None``; ``"1-02:03:04"``,
    ``"02:03:04"``, ``"03:04"`` (minutes:seconds), ``"30"`` (minutes)."""
    value = (text or "").strip()
    if not value or value.upper() in ("UNLIMITED", "INFINITE", "NONE", "N/A"):
        return None
    match = _TIME_RE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a Slurm time")
    days, a, b, c = (int(g) if g else None for g in match.groups())
    if days is not None:  # days-hours[:minutes[:seconds]]
        return days * 86400 + (a or 0) * 3600 + (b or 0) * 60 + (c or 0)
    if c is not None:
        return (a or 0) * 3600 + (b or 0) * 60 + c
    if b is not None:
        return (a or 0) * 60 + b
    return (a or 0) * 60


def format_time(seconds: int) -> str:
    """Seconds as sbatch's ``--time``: ``D-HH:MM:SS`` (at least one second)."""
    seconds = max(1, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


@dataclass(frozen=True)
class NodeInfo:
    """One node: its state, CPUs, memory (MB), GPUs (type and count, from its gres) and partitions."""

    name: str
    state: str
    cpus: int
    memory_mb: int
    gpus: int
    gpu_type: str | None
    partitions: tuple[str, ...]

    @property
    def usable(self) -> bool:
        """False for nodes that are down, drained or failing (they take no new jobs)."""
        bad = ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING", "INVAL", "MAINT", "FUTURE")
        return not any(word in self.state.upper() for word in bad)


@dataclass(frozen=True)
class PartitionInfo:
    """One partition: its nodes, whether it is the default, its time limit (``None``: unlimited) and state."""

    name: str
    nodes: tuple[NodeInfo, ...]
    default: bool = False
    max_time: int | None = None
    state: str = "UP"

    @property
    def max_gpus_per_node(self) -> int:
        """The most GPUs any node of the partition has."""
        return max((n.gpus for n in self.nodes), default=0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["max_gpus_per_node"] = self.max_gpus_per_node
        return data


@dataclass
class ClusterInfo:
    """Partitions by name (in ``sinfo``'s order)."""

    partitions: dict[str, PartitionInfo] = field(default_factory=dict)

    @property
    def default(self) -> PartitionInfo | None:
        """The default partition (``Default=YES``), else the first one."""
        for part in self.partitions.values():
            if part.default:
                return part
        return next(iter(self.partitions.values()), None)


def parse_nodes(text: str) -> list[NodeInfo]:
    """Nodes from ``sinfo --json`` (Slurm 22.05+: ``{"nodes": [...]}``)."""
    data = json.loads(text)
    nodes = []
    for node in data.get("nodes", []):
        state = node.get("state", "")
        flags = node.get("state_flags") or []
        if isinstance(state, list):
            state = "+".join(state)
        full = "+".join([str(state), *[str(f) for f in flags]])
        kind, count = parse_gres(node.get("gres", ""))
        nodes.append(NodeInfo(node.get("name") or node.get("hostname", "?"), full.upper(),
                              int(node.get("cpus") or 0), int(node.get("real_memory") or 0), count, kind,
                              tuple(node.get("partitions") or ())))
    return nodes


def parse_partitions(text: str) -> dict[str, dict[str, str]]:
    """``scontrol show partition -o`` (one ``Key=Value ...`` line per partition) -> name -> fields."""
    found: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if "PartitionName" in fields:
            found[fields["PartitionName"]] = fields
    return found


def build_cluster(nodes: list[NodeInfo], partitions: dict[str, dict[str, str]]) -> ClusterInfo:
    """Join the nodes onto the partitions."""
    info = ClusterInfo()
    names = list(partitions) or sorted({p for n in nodes for p in n.partitions})
    for name in names:
        fields = partitions.get(name, {})
        members = tuple(n for n in nodes if name in n.partitions)
        info.partitions[name] = PartitionInfo(name, members, fields.get("Default", "NO") == "YES",
                                              parse_time(fields.get("MaxTime")), fields.get("State", "UP"))
    return info


def read_cluster(runner: Runner) -> ClusterInfo:
    """Ask the cluster (``sinfo --json``, ``scontrol show partition -o``); errors name the command."""
    nodes_text = runner.text(["sinfo", "--json"], what="read the cluster's nodes (sinfo --json)")
    parts_text = runner.text(["scontrol", "show", "partition", "-o"], what="read the partitions")
    try:
        return build_cluster(parse_nodes(nodes_text), parse_partitions(parts_text))
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError(f"cannot read the cluster's nodes: sinfo --json gave unexpected output ({exc})",
                            provider="slurm", hint="cloudbridge-slurm needs Slurm 22.05 or newer") from exc
