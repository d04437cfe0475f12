"""A Slurm job's state, read from ``squeue --json``, ``scontrol show job -o`` or ``sacct``. Parsing is pure.

``squeue --json -t all`` knows every job the controller still holds (running, pending, and finished
ones for ``MinJobAge`` seconds); ``scontrol show job`` the same, in text; ``sacct`` (only when the
cluster keeps accounting) every job ever run. :class:`SlurmRecord` is what all three have in common.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from cloudbridge.records import JobState

__all__ = ["STATES", "SlurmRecord", "parse_sacct", "parse_scontrol", "parse_squeue"]

#: Slurm's job states (``JOB_STATE_CODES`` in squeue(1)) -> cloudbridge's.
STATES: dict[str, JobState] = {
    "PENDING": JobState.PENDING, "REQUEUED": JobState.PENDING, "REQUEUE_HOLD": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING, "CONFIGURING": JobState.STARTING, "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING, "SUSPENDED": JobState.RUNNING, "STOPPED": JobState.RUNNING,
    "RESIZING": JobState.RUNNING, "SIGNALING": JobState.RUNNING, "STAGE_OUT": JobState.RUNNING,
    "COMPLETED": JobState.SUCCEEDED, "FAILED": JobState.FAILED, "TIMEOUT": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED, "NODE_FAIL": JobState.FAILED, "BOOT_FAIL": JobState.FAILED,
    "DEADLINE": JobState.FAILED, "PREEMPTED": JobState.FAILED, "SPECIAL_EXIT": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED, "REVOKED": JobState.CANCELLED,
}


@dataclass(frozen=True)
class SlurmRecord:
    """One Slurm job as the controller (or accounting) reports it."""

    job_id: str
    state: str
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    submit_time: float | None = None
    start_time: float | None = None
    end_time: float | None = None
    time_limit: int | None = None
    restarts: int = 0
    nodes: str | None = None
    partition: str | None = None
    source: str = "squeue"


def _epoch(value: Any) -> float | None:
    if isinstance(value, dict):  # Slurm 23.02+: {"set": true, "number": N}
        value = value.get("number") if value.get("set", True) else None
    if value in (None, "", 0, "Unknown", "None", "N/A"):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(str(value)).timestamp()  # scontrol/sacct: local time, no zone
    except ValueError:
        return None


def _number(value: Any) -> int | None:
    if isinstance(value, dict):
        value = value.get("number") if value.get("set", True) else None
    return None if value is None else int(value)


def parse_squeue(text: str) -> list[SlurmRecord]:
    """Every job in ``squeue --json`` output (Slurm 22.05: ``exit_code`` is the raw wait status)."""
    records = []
    for job in json.loads(text).get("jobs", []):
        state = job.get("job_state")
        if isinstance(state, list):
            state = state[0] if state else "PENDING"
        raw = job.get("exit_code")
        code = signal = None
        if isinstance(raw, dict):  # 23.02+: {"status": [...], "return_code": N, "signal": {...}}
            code = _number(raw.get("return_code"))
            signal = _number((raw.get("signal") or {}).get("id"))
        elif raw is not None:
            status = int(raw)
            code, signal = (status >> 8) & 0xFF, (status & 0x7F) or None
        limit = _number(job.get("time_limit"))
        records.append(SlurmRecord(
            str(job.get("job_id")), str(state).upper(), job.get("state_reason") or None, code, signal,
            _epoch(job.get("submit_time")), _epoch(job.get("start_time")), _epoch(job.get("end_time")),
            None if limit is None else limit * 60, int(_number(job.get("restart_cnt")) or 0), job.get("nodes"),
            job.get("partition"), "squeue"))
    return records


def _split_exit(value: str | None) -> tuple[int | None, int | None]:
    """``"3:0"`` -> ``(3, None)``; ``"0:9"`` -> ``(0, 9)``."""
    if not value or ":" not in value:
        return None, None
    code, sig = value.split(":", 1)
    return int(code), (int(sig) or None)


def parse_scontrol(text: str) -> SlurmRecord | None:
    """The job in ``scontrol show job -o ID`` output (``None`` when it names none)."""
    line = next((ln for ln in text.splitlines() if "JobId=" in ln), "")
    if not line:
        return None
    fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
    code, signal = _split_exit(fields.get("ExitCode"))
    from cloudbridge_slurm.cluster import parse_time

    try:
        limit = parse_time(fields.get("TimeLimit"))
    except ValueError:
        limit = None
    reason = fields.get("Reason")
    return SlurmRecord(fields["JobId"], fields.get("JobState", "PENDING").upper(),
                       None if reason in (None, "None") else reason, code, signal,
                       _epoch(fields.get("SubmitTime")), _epoch(fields.get("StartTime")), _epoch(fields.get("EndTime")),
                       limit, int(fields.get("Restarts", "0") or 0), fields.get("NodeList"), fields.get("Partition"),
                       "scontrol")


def parse_sacct(text: str) -> SlurmRecord | None:
    """The allocation line of ``sacct -X -n -P -o JobID,State,ExitCode,Submit,Start,End,Timelimit,NodeList,
    Partition``."""
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 9 or "." in parts[0]:
            continue
        code, signal = _split_exit(parts[2])
        state = parts[1].split()[0].upper() if parts[1] else "PENDING"  # "CANCELLED by 0"
        from cloudbridge_slurm.cluster import parse_time

        try:
            limit = parse_time(parts[6])
        except ValueError:
            limit = None
        return SlurmRecord(parts[0], state, None, code, signal, _epoch(parts[3]), _epoch(parts[4]), _epoch(parts[5]),
                           limit, 0, parts[7] or None, parts[8] or None, "sacct")
    return None
