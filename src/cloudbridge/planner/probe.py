"""This machine as catalog rows: ``provider=local``, price 0.

The GPU inventory comes from the local backend's probe
(:func:`cloudbridge.gpus.machine_info`: nvidia-ml-py, else ``nvidia-smi``, else
none); this module adds the *live* numbers the planner and ``cloudbridge resources`` show:
utilisation and free memory per GPU (again nvidia-ml-py, else ``nvidia-smi``).

:func:`local_rows` returns one row per GPU model (``instance_type`` ``localhost:gpu0,1``, count =
how many of that model) plus one CPU-only row (``localhost``), so a job asking for ``A100:2`` fits
the local machine exactly when it has two A100s.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from cloudbridge.planner.accelerators import from_device_name
from cloudbridge.planner.catalog import CatalogRow

__all__ = ["LocalGPU", "LocalResources", "gpu_usage", "local_rows", "probe_local"]

LOCAL_SOURCE = "this machine (no charge)"


@dataclass(frozen=True)
class LocalGPU:
    """One local GPU: index, driver name, canonical accelerator name, memory and live usage."""

    index: int
    name: str
    accelerator: str
    memory_gb: float
    free_memory_gb: float | None = None
    utilization: float | None = None


@dataclass(frozen=True)
class LocalResources:
    """What this machine offers: its GPUs (and where that came from), vCPUs and memory."""

    gpus: tuple[LocalGPU, ...]
    gpu_source: str
    cpus: int
    memory_gb: float

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {"gpus": [asdict(g) for g in self.gpus], "gpu_source": self.gpu_source,
                "cpus": self.cpus, "memory_gb": self.memory_gb}


def _nvml_read_usage(pynvml: Any) -> dict[int, tuple[float, float]]:
    usage: dict[int, tuple[float, float]] = {}
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        free = pynvml.nvmlDeviceGetMemoryInfo(handle).free / 1024**3
        util = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        usage[index] = (util, free)
    return usage


def parse_smi_usage(text: str) -> dict[int, tuple[float, float]]:
    """Parse ``nvidia-smi --query-gpu=index,utilization.gpu,memory.free --format=csv,noheader,nounits``."""
    usage: dict[int, tuple[float, float]] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        try:
            usage[int(parts[0])] = (float(parts[1]), float(parts[2]) / 1024)
        except ValueError:  # "[N/A]" on some boards
            continue
    return usage


def _smi_usage() -> dict[int, tuple[float, float]] | None:
    from cloudbridge.gpus import smi_query

    out = smi_query("index,utilization.gpu,memory.free")
    return None if out is None else parse_smi_usage(out)


def gpu_usage() -> dict[int, tuple[float, float]]:
    """GPU index -> ``(utilisation %, free memory GB)``, live; empty when nothing can be read."""
    from cloudbridge.gpus import nvml_query

    return nvml_query(_nvml_read_usage) or _smi_usage() or {}


def probe_local() -> LocalResources:
    """Probe this machine now (the GPU inventory is cached per process; usage is read live)."""
    from cloudbridge.gpus import machine_info

    info = machine_info()
    usage = gpu_usage() if info.gpus and info.gpu_source != "fake" else {}
    gpus = []
    for gpu in info.gpus:
        memory = round(gpu.memory_mb / 1024, 1)
        util, free = usage.get(gpu.index, (None, None))
        gpus.append(LocalGPU(gpu.index, gpu.name, from_device_name(gpu.name, memory), memory,
                             round(free, 1) if free is not None else None, util))
    return LocalResources(tuple(gpus), info.gpu_source, info.cpus, info.memory_gb)


def local_rows(resources: LocalResources | None = None) -> list[CatalogRow]:
    """Catalog-shaped rows for this machine: one per GPU model, plus a CPU-only row. Price 0."""
    res = resources or probe_local()
    import datetime as dt

    today = dt.date.today().isoformat()
    rows = [CatalogRow("local", "localhost", "localhost", None, 0, 0.0, float(res.cpus), res.memory_gb,
                       0.0, None, LOCAL_SOURCE, today, origin="probe", extra={"gpu_source": res.gpu_source})]
    groups: dict[str, list[LocalGPU]] = defaultdict(list)
    for gpu in res.gpus:
        groups[gpu.accelerator].append(gpu)
    for accel, gpus in sorted(groups.items()):
        indices = ",".join(str(g.index) for g in gpus)
        free = [g.free_memory_gb for g in gpus if g.free_memory_gb is not None]
        extra = {
            "gpu_indices": [g.index for g in gpus],
            "gpu_names": sorted({g.name for g in gpus}),
            "free_memory_gb": min(free) if free else None,
            "utilization": [g.utilization for g in gpus],
            "gpu_source": res.gpu_source,
        }
        rows.append(CatalogRow("local", "localhost", f"localhost:gpu{indices}", accel, len(gpus),
                               min(g.memory_gb for g in gpus), float(res.cpus), res.memory_gb, 0.0, None,
                               LOCAL_SOURCE, today, origin="probe", extra=extra))
    return rows
