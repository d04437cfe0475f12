"""What this machine offers: GPUs, CPUs and memory.

GPUs are probed with nvidia-ml-py (``pynvml``), else ``nvidia-smi --query-gpu``, else none.

**Test hook** ``CLOUDBRIDGE_FAKE_GPUS``: set it to ``N`` or ``N:GB`` (e.g. ``2:24``) and the probe
reports ``N`` fake GPUs of ``GB`` GiB each (default 16) named ``FAKE-GPU`` instead of looking at the
hardware. A mixed machine is comma-separated groups ``N:GB:MODEL`` (e.g. ``2:16:T4,1:80:A100-80GB``:
GPUs 0-1 are named ``FAKE T4``, GPU 2 ``FAKE A100-80GB``, which the planner reads as T4 and
A100-80GB). Nothing runs on them -- jobs still get ``CUDA_VISIBLE_DEVICES`` -- but allocation, the
queue and refusals behave exactly as they would with real GPUs, so they are tested for real on
machines without one. Never set it outside tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cloudbridge.errors import InvalidSpec

__all__ = ["FAKE_GPUS_ENV", "GpuInfo", "MachineInfo", "machine_info", "nvml_query", "probe_gpus", "smi_query"]

FAKE_GPUS_ENV = "CLOUDBRIDGE_FAKE_GPUS"
_T = TypeVar("_T")
_cache: dict[str, tuple[tuple[GpuInfo, ...], str]] = {}


@dataclass(frozen=True)
class GpuInfo:
    """One GPU: its index (as ``CUDA_VISIBLE_DEVICES`` counts), model name and memory."""

    index: int
    name: str
    memory_mb: int
    uuid: str | None = None


@dataclass(frozen=True)
class MachineInfo:
    """This machine: GPUs (and where that list came from), logical CPUs and memory in GiB."""

    gpus: tuple[GpuInfo, ...]
    gpu_source: str
    cpus: int
    memory_gb: float
    notes: tuple[str, ...] = field(default=())


def _fake_gpus(value: str) -> tuple[GpuInfo, ...]:
    gpus: list[GpuInfo] = []
    for group in value.split(","):
        count_text, _, rest = group.strip().partition(":")
        mem_text, _, model = rest.partition(":")
        try:
            count = int(count_text)
            memory_gb = float(mem_text) if mem_text else 16.0
        except ValueError:
            raise InvalidSpec(f"{FAKE_GPUS_ENV}={value!r}: expected N, N:GB or N:GB:MODEL groups separated by "
                              "commas, e.g. '2', '2:24' or '2:16:T4,1:80:A100-80GB'") from None
        if count < 0 or memory_gb <= 0:
            raise InvalidSpec(f"{FAKE_GPUS_ENV}={value!r}: the count must be >= 0 and the memory > 0")
        name = f"FAKE {model.strip()}" if model.strip() else "FAKE-GPU"
        for _ in range(count):
            i = len(gpus)
            gpus.append(GpuInfo(i, name, int(memory_gb * 1024), f"FAKE-{i}"))
    return tuple(gpus)


def nvml_query(read: Callable[[Any], _T]) -> _T | None:
    """``read(pynvml)`` between ``nvmlInit`` and ``nvmlShutdown``; ``None`` when nvidia-ml-py is not
    installed, no driver answers, or ``read`` fails."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - NVMLError when no driver is present
        return None
    try:
        return read(pynvml)
    except Exception:  # noqa: BLE001
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def smi_query(fields: str) -> str | None:
    """What ``nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits`` prints; ``None`` when
    ``nvidia-smi`` is not on ``PATH`` or fails (e.g. no driver loaded)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        return subprocess.run(
            [smi, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def _nvml_read_gpus(pynvml: Any) -> tuple[GpuInfo, ...]:
    gpus = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
        uuid = pynvml.nvmlDeviceGetUUID(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
        gpus.append(
            GpuInfo(
                index,
                name.decode() if isinstance(name, bytes) else str(name),
                int(memory // (1024 * 1024)),
                uuid.decode() if isinstance(uuid, bytes) else str(uuid),
            )
        )
    return tuple(gpus)


def _smi_gpus() -> tuple[GpuInfo, ...] | None:
    out = smi_query("index,name,memory.total,uuid")
    if out is None:
        return None
    gpus = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3 and parts[0].isdigit():
            memory = int(float(parts[2])) if parts[2].replace(".", "", 1).isdigit() else 0
            gpus.append(GpuInfo(int(parts[0]), parts[1], memory, parts[3] if len(parts) > 3 else None))
    return tuple(gpus)


def probe_gpus() -> tuple[tuple[GpuInfo, ...], str]:
    """``(gpus, source)``; source is ``fake``, ``nvml``, ``nvidia-smi`` or ``none``. Cached per process."""
    fake = os.environ.get(FAKE_GPUS_ENV, "").strip()
    key = f"fake={fake}"
    if key in _cache:
        return _cache[key]
    if fake:
        result: tuple[tuple[GpuInfo, ...], str] = (_fake_gpus(fake), "fake")
    else:
        nvml = nvml_query(_nvml_read_gpus)
        if nvml is not None:
            result = (nvml, "nvml")
        else:
            smi = _smi_gpus()
            result = (smi, "nvidia-smi") if smi is not None else ((), "none")
    _cache[key] = result
    return result


def _memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 0.0


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def machine_info(allowed: list[int] | None = None) -> MachineInfo:
    """This machine's resources; ``allowed`` restricts the GPUs to those indices (``LocalSettings.gpus``)."""
    gpus, source = probe_gpus()
    notes: list[str] = []
    if allowed is not None:
        missing = sorted(set(allowed) - {g.index for g in gpus})
        if missing:
            notes.append(f"configured GPUs {missing} do not exist on this machine")
        gpus = tuple(g for g in gpus if g.index in set(allowed))
    return MachineInfo(gpus=gpus, gpu_source=source, cpus=_cpus(), memory_gb=round(_memory_gb(), 1),
                       notes=tuple(notes))
