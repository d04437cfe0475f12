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

__all__ = ["OOM_SIGNAL", "SACCT_FIELDS", "STATES", "SlurmRecord", "forgotten_message", "parse_sacct", "parse_scontrol",
           "parse_squeue", "record_from_exit_status"]

#: How Slurm reports an out-of-memory kill in an exit code: its ``SIG_OOM`` (253) as ``0:125``. A job whose
#: batch script was OOM-killed ends ``OUT_OF_MEMORY``; one whose ``srun`` step was ends ``FAILED`` with
#: this signal in its *derived* exit code (the worst of its steps).
OOM_SIGNAL = 125

#: The ``sacct -o`` fields :func:`parse_sacct` reads, in order.
SACCT_FIELDS = "JobID,State,ExitCode,Submit,Start,End,Timelimit,NodeList,Partition,DerivedExitCode"

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
    derived_exit_code: int | None = None
    derived_signal: int | None = None

    @property
    def step_out_of_memory(self) -> bool:
        """True when Slurm says a step of the job was OOM-killed (derived exit code ``0:125``)."""
        return self.derived_signal == OOM_SIGNAL or (self.signal == OOM_SIGNAL and not self.exit_code)


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
        code, signal = _exit(job.get("exit_code"))
        derived_code, derived_signal = _exit(job.get("derived_exit_code"))
        limit = _number(job.get("time_limit"))
        records.append(SlurmRecord(
            str(job.get("job_id")), str(state).upper(), job.get("state_reason") or None, code, signal,
            _epoch(job.get("submit_time")), _epoch(job.get("start_time")), _epoch(job.get("end_time")),
            None if limit is None else limit * 60, int(_number(job.get("restart_cnt")) or 0), job.get("nodes"),
            job.get("partition"), "squeue", derived_code, derived_signal))
    return records


def _exit(raw: Any) -> tuple[int | None, int | None]:
    """An exit code of ``squeue --json``: 22.05's raw wait status, or 23.02+'s ``{"return_code", "signal"}``."""
    if isinstance(raw, dict):
        return _number(raw.get("return_code")), _number((raw.get("signal") or {}).get("id")) or None
    if raw is None:
        return None, None
    status = int(raw)
    return (status >> 8) & 0xFF, (status & 0x7F) or None


def _split_exit(value: str | None) -> tuple[int | None, int | None]:
    """``"3:0"`` -> ``(3, None)``; ``"0:9"`` -> ``(0, 9)``."""
    if not value or ":" not in value:
        return None, None
    code, sig = value.split(":", 1)
    return int(code), (int(sig) or None)


def parse_scontrol(text: str) -> SlurmRecord | None:
    """The job in ``scontrol show job -d -o ID`` output (``None`` when it names none)."""
    line = next((ln for ln in text.splitlines() if "JobId=" in ln), "")
    if not line:
        return None
    fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
    code, signal = _split_exit(fields.get("ExitCode"))
    derived_code, derived_signal = _split_exit(fields.get("DerivedExitCode"))
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
                       "scontrol", derived_code, derived_signal)


def parse_sacct(text: str) -> SlurmRecord | None:
    """The allocation line of ``sacct -X -n -P -o`` :data:`SACCT_FIELDS` (the last line when Slurm reused
    the job id: the newest job)."""
    found = None
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
        derived_code, derived_signal = _split_exit(parts[9] if len(parts) > 9 else None)
        found = SlurmRecord(parts[0], state, None, code, signal, _epoch(parts[3]), _epoch(parts[4]), _epoch(parts[5]),
                            limit, 0, parts[7] or None, parts[8] or None, "sacct", derived_code, derived_signal)
    return found


def record_from_exit_status(job_id: str, text: str | None) -> SlurmRecord:
    """A job Slurm no longer knows, from its ``exit-status`` file (written when its script ran to its end):
    ``COMPLETED`` or ``FAILED`` with the code; ``UNKNOWN`` without the file (``text`` ``None``)."""
    if text is None:
        return SlurmRecord(job_id, "UNKNOWN", source="staging")
    code = int(text.strip()) if text.strip().isdigit() else None
    return SlurmRecord(job_id, "COMPLETED" if code == 0 else "FAILED", exit_code=code, source="exit-status file")


def forgotten_message(job_id: str, why: str, log: str) -> str:
    """The one line for a job whose end nobody can tell: Slurm forgot it, accounting cannot say (``why``)."""
    return (f"Slurm no longer knows job {job_id} (it ended more than MinJobAge ago) and {why}; its script did not "
            f"run to its end (cancelled, timed out or its node failed); its log: {log}")
