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
    """How many processes the kernel's OOM killer has killed in this process's memory cgroup, or
    ``None`` when that cannot be read: cgroup v2 ``memory.events`` (``oom_kill``), else cgroup v1
    ``memory.oom_control`` (``oom_kill``, Linux 4.13+). Inside a container the cgroup is usually
    mounted as the root of ``/sys/fs/cgroup``, so the root files are tried after the full path."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as handle:
            entries = [line.rstrip("\n").split(":", 2) for line in handle]
    except OSError:
        return None
    candidates = []
    for _number, controllers, rel in (e for e in entries if len(e) == 3):
        rel = rel.rstrip("/")
        if controllers == "":
            candidates += [f"/sys/fs/cgroup{rel}/memory.events", "/sys/fs/cgroup/memory.events"]
        elif "memory" in controllers.split(","):
            candidates += [f"/sys/fs/cgroup/memory{rel}/memory.oom_control", "/sys/fs/cgroup/memory/memory.oom_control"]
    for path in dict.fromkeys(candidates):
        try:
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def classify_exit(
    returncode: int, tail: list[str], *, oom_killed: bool | None = None
) -> tuple[str | None, str | None]:
    """``(reason, detail)`` for a command that exited with ``returncode`` on its own.

    ``(None, None)`` for success. ``out of memory`` needs evidence: the cgroup's ``oom_kill``
    counter rose while the job ran (``oom_killed=True``), or an out-of-memory message in the last
    log lines (``MemoryError``, ``CUDA out of memory``, ``Cannot allocate memory``, ...; e.g. a
    child under ``ulimit -v``). A SIGKILL without evidence is ``killed by signal SIGKILL``: the OOM
    killer is one possible cause, named in the detail, but so is ``kill -9`` or a watchdog.
    ``oom_killed=None`` means the counter could not be read.
    """
    if returncode == 0:
        return None, None
    text = "\n".join(tail)
    log_part = f"; last {len(tail)} log lines:\n{text}" if tail else "; the job printed nothing"
    killed = returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)
    if oom_killed:
        return OUT_OF_MEMORY, (
            f"the job ran out of memory: the kernel's OOM killer killed a process in its cgroup while it ran "
            f"(the cgroup's oom_kill counter rose; exit {returncode}){log_part}"
        )
    if _OOM_RE.search(text):
        how = f"exit code {returncode}; an out-of-memory error in its log"
        return OUT_OF_MEMORY, f"the job ran out of memory ({how}){log_part}"
    if killed:
        counter = ("the cgroup's oom_kill counter could not be read" if oom_killed is None
                   else "the cgroup's oom_kill counter did not rise")
        return (
            "killed by signal SIGKILL",
            f"the command was killed by SIGKILL (exit {returncode}) from outside: the kernel's out-of-memory "
            f"killer is one possible cause ({counter}, and the log shows no out-of-memory error), "
            f"kill -9 or a watchdog another{log_part}",
        )
    if returncode < 0:
        name = _signal_name(-returncode)
        return f"killed by signal {name}", f"the command was killed by {name}{log_part}"
    if returncode > 128 and returncode - 128 < 65:
        name = _signal_name(returncode - 128)
        return f"killed by signal {name}", f"exit code {returncode} (128 + {name}){log_part}"
    return f"non-zero exit (code {returncode})", f"the command exited with code {returncode}{log_part}"
