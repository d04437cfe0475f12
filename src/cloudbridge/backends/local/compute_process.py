"""Process plumbing for the local backend: detached launch, liveness, process-group signals.

Liveness is judged by the PID *and* the process's start time (``/proc/PID/stat`` field 22), so a
recycled PID is not mistaken for the supervisor, and a zombie counts as dead. Where ``/proc`` is
missing (macOS) only the PID is checked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

__all__ = [
    "group_alive",
    "group_is",
    "kill_group",
    "launch_detached",
    "pid_alive",
    "process_start_time",
    "signal_group",
]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ..." -- comm may hold spaces and parentheses: split after the last ")"
    return text[text.rfind(")") + 2 :].split()


def process_start_time(pid: int) -> str | None:
    """An opaque token identifying this incarnation of ``pid`` (its start time), or ``None``."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def pid_alive(pid: int | None, start_time: str | None = None) -> bool:
    """True while ``pid`` runs (not a zombie) and, if given, still has ``start_time``."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat_fields(pid)
    if fields is None:
        return not os.path.isdir("/proc/self")  # no /proc at all: trust kill(0); with /proc: it is gone
    if fields[0] in ("Z", "X"):
        return False
    return start_time is None or fields[19] == start_time


def group_alive(pgid: int | None) -> bool:
    """True while any non-zombie process is in process group ``pgid``."""
    if not pgid or pgid <= 0:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc/self"):
        return True
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
    return False


def group_is(pgid: int | None, leader_start: str | None) -> bool:
    """True when process group ``pgid`` is still the one whose leader started at ``leader_start``.

    A recorded pgid outlives its group: once every member has exited, the number is free and an
    unrelated process may lead a new group with it. So before any signal to a group read back from a
    record: its leader, if it runs, must have the recorded start time (``None`` recorded: it cannot be
    told apart, so no). With the leader gone but members left, the kernel keeps the number reserved
    for them, so they are still the job's. Without ``/proc`` (macOS) only liveness can be checked.
    """
    if not pgid or pgid <= 1 or pgid == os.getpgrp():
        return False
    fields = _stat_fields(pgid)
    if fields is None:
        return group_alive(pgid)  # leader gone (or no /proc): members, if any, still hold this group id
    if fields[0] in ("Z", "X"):  # an unreaped leader still holds the number: the members are its group's
        return group_alive(pgid)
    return leader_start is not None and fields[19] == leader_start and fields[2] == str(pgid)


def signal_group(pgid: int | None, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid``; False when the group is gone."""
    if not pgid or pgid <= 1 or pgid == os.getpgrp():
        return False  # never signal our own group (or init's)
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def kill_group(pgid: int | None, grace: float, poll: float = 0.05) -> str | None:
    """SIGTERM the group, wait up to ``grace`` seconds for it to empty, then SIGKILL what is left.

    Returns the last signal needed (``"SIGTERM"`` or ``"SIGKILL"``), or ``None`` if the group was gone.
    """
    if not signal_group(pgid, signal.SIGTERM):
        return None
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return "SIGTERM"
        time.sleep(poll)
    signal_group(pgid, signal.SIGKILL)
    return "SIGKILL"


def launch_detached(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: str, log_path: str
) -> tuple[int, str | None]:
    """Start ``argv`` fully detached; return ``(pid, start_time)``.

    The command runs in a new session (no controlling terminal, so closing the terminal sends it
    no SIGHUP), with stdin from ``/dev/null`` and stdout/stderr appended to ``log_path``. An
    intermediate ``sh`` backgrounds it and exits at once, so the caller is not its parent: it
    survives the caller exiting and never lingers as the caller's zombie.
    """
    script = '"$@" </dev/null >>"$0" 2>&1 & echo $!'
    proc = subprocess.Popen(
        ["/bin/sh", "-c", script, log_path, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        close_fds=True,
    )
    out, _ = proc.communicate(timeout=60)
    text = out.decode().strip()
    if proc.returncode != 0 or not text.isdigit():
        raise OSError(f"could not start {argv[0]} (sh exited {proc.returncode}, printed {text!r})")
    pid = int(text)
    return pid, process_start_time(pid)
