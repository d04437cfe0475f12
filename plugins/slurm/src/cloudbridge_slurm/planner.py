"""The cluster as the planner sees it: one row per partition and GPU type, from ``sinfo --json``."""

from __future__ import annotations

from typing import Any

from cloudbridge_slurm.cluster import ClusterInfo

__all__ = ["partition_rows"]


def partition_rows(cluster: ClusterInfo) -> list[dict[str, Any]]:
    """``[{partition, nodes, idle, gpu_type, gpus_per_node, cpus, memory_gb, max_time_s, state}]``."""
    rows = []
    for part in cluster.partitions.values():
        groups: dict[tuple[str | None, int], list[Any]] = {}
        for node in part.nodes:
            groups.setdefault((node.gpu_type, node.gpus), []).append(node)
        for (kind, gpus), nodes in sorted(groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
            rows.append({
                "partition": part.name, "default": part.default, "nodes": len(nodes),
                "usable": sum(1 for n in nodes if n.usable),
                "idle": sum(1 for n in nodes if n.state.startswith("IDLE")),
                "gpu_type": kind, "gpus_per_node": gpus, "cpus": min(n.cpus for n in nodes),
                "memory_gb": round(min(n.memory_mb for n in nodes) / 1024, 1), "max_time_s": part.max_time,
                "state": part.state, "node_states": sorted({n.state for n in nodes}),
            })
    return rows
