"""Why a local job ended: short provider-neutral reasons, details, durations and budget numbers.

Reasons (``Job.reason``) are fixed sentences so scripts can match them (the shared vocabulary is
:mod:`cloudbridge.reasons`, re-exported here); the details (``Job.detail``) carry the specifics
(exit code, last log lines, numbers).
"""

from __future__ import annotations

import os
import re
import signal
from collections import deque
from pathlib import Path

from cloudbridge.reasons import (
    BUDGET_EXCEEDED,
    CANCELLED_BY_USER,
    OUT_OF_MEMORY,
    fmt_duration,
    queued_timeout_reason,
    runtime_timeout_reason,
)

__all__ = [
    "CANCELLED_BY_USER",
    "LOG_PREFIX",
    "OUT_OF_MEMORY",
    "SUPERVISOR_DIED",
    "BUDGET_EXCEEDED",
    "classify_exit",
    "fmt_duration",
    "oom_kill_count",
    "queued_timeout_reason",
    "runtime_timeout_reason",
    "tail_lines",
]

LOG_PREFIX = "[cloudbridge] "
SUPERVISOR_DIED = "supervisor died"
TAIL_LINES = 20

_OOM_RE = re.compile(
    r"out of memory|MemoryError|Cannot allocate memory|std::bad_alloc|OutOfMemoryError|oom[-_ ]kill",
    re.IGNORECASE,
)


def tail_lines(path: str | os.PathLike[str], count: int = TAIL_LINES) -> list[str]:
    """The last ``count`` lines the job printed (cloudbridge's own ``[cloudbridge]`` lines skipped)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            handle.seek(max(0, size - 256 * 1024))
            data = handle.read()
    except OSError:
        return []
    lines: deque[str] = deque(maxlen=count)
    for raw in data.decode("utf-8", errors="replace").splitlines():
        if not raw.startswith(LOG_PREFIX):
            lines.append(raw)
    return list(lines)


def oom_kill_count() -> int | None:
    """The ``oom_kill`` counter of this process's cgroup (v2), or ``None`` when unreadable."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as handle:
            rel = next((line.split("::", 1)[1].strip() for line in handle if line.startswith("0::")), None)
        if rel is None:
            return None
        with open(f"/sys/fs/cgroup{rel.rstrip('/')}/memory.events", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError, StopIteration):
        return None
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def classify_exit(returncode: int, tail: list[str], *, oom_killed: bool = False) -> tuple[str | None, str | None]:
    """``(reason, detail)`` for a command that exited with ``returncode`` on its own.

    ``(None, None)`` for success. Out of memory is recognised by an OOM message in the last log
    lines (``MemoryError``, ``CUDA out of memory``, ``Cannot allocate memory``...) or by a SIGKILL
    (exit -9/137) -- the kernel OOM killer's signature -- especially when the cgroup's ``oom_kill``
    counter rose (``oom_killed``).
    """
    if returncode == 0:
        return None, None
    text = "\n".join(tail)
    log_part = f"; last {len(tail)} log lines:\n{text}" if tail else "; the job printed nothing"
    killed = returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)
    if _OOM_RE.search(text) or (killed and oom_killed):
        how = "killed by SIGKILL after the cgroup's OOM killer fired" if oom_killed else f"exit code {returncode}"
        return OUT_OF_MEMORY, f"the job ran out of memory ({how}){log_part}"
    if killed:
        return (
            OUT_OF_MEMORY,
            f"the job was killed by SIGKILL (exit {returncode}), most likely by the kernel's out-of-memory "
            f"killer{log_part}",
        )
    if returncode < 0:
        name = _signal_name(-returncode)
        return f"killed by signal {name}", f"the command was killed by {name}{log_part}"
    if returncode > 128 and returncode - 128 < 65:
        name = _signal_name(returncode - 128)
        return f"killed by signal {name}", f"exit code {returncode} (128 + {name}){log_part}"
    return f"non-zero exit (code {returncode})", f"the command exited with code {returncode}{log_part}"
