"""Azure ML job statuses as cloudbridge :class:`~cloudbridge.records.JobState`, and failure reasons.

Azure ML reports ``properties.status`` (``JobStatus`` of the REST API) and, for a failed job,
``properties.error`` with Azure's error shape ``{"code", "message", "details", "innerError"}``.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Any

from cloudbridge.managed.adapter import Snapshot
from cloudbridge.records import JobState

__all__ = ["PROVISIONING", "STATE_MAP", "TERMINAL", "failure_reason", "map_state", "snapshot_of"]

#: Every status of Azure ML's ``JobStatus`` enum.
STATE_MAP: dict[str, JobState] = {
    "NotStarted": JobState.PENDING,
    "Queued": JobState.PENDING,
    "Starting": JobState.STARTING,
    "Provisioning": JobState.STARTING,
    "Preparing": JobState.STARTING,
    "Running": JobState.RUNNING,
    "Finalizing": JobState.RUNNING,
    "CancelRequested": JobState.RUNNING,
    "NotResponding": JobState.RUNNING,
    "Paused": JobState.RUNNING,
    "Completed": JobState.SUCCEEDED,
    "Failed": JobState.FAILED,
    "Canceled": JobState.CANCELLED,
    "Unknown": JobState.PENDING,
}
TERMINAL = frozenset({"Completed", "Failed", "Canceled"})


def map_state(status: str | None) -> JobState:
    """The cloudbridge state of an Azure ML status (unknown statuses count as pending)."""
    return STATE_MAP.get(status or "Unknown", JobState.PENDING)


def failure_reason(properties: dict[str, Any]) -> str | None:
    """One line from a job's ``error``: Azure's message first, then its first detail and its code."""
    error = properties.get("error") or {}
    if not isinstance(error, dict) or not (error.get("code") or error.get("message")):
        return None
    text = str(error.get("message") or "").strip()
    details = error.get("details") or []
    if details and isinstance(details[0], dict) and details[0].get("message"):
        text += f" ({details[0]['message']})"
    if error.get("code"):
        text = f"{text} [error code {error['code']}]" if text else str(error["code"])
    return " ".join(text.split())[:500]


#: Statuses in which the job's code has not started yet (``start_timeout`` applies).
PROVISIONING = frozenset({"NotStarted", "Queued", "Starting", "Provisioning", "Preparing", "Unknown"})
_TIMEOUT_TEXT = re.compile(r"JobTimeout|exceeded its time limit", re.IGNORECASE)
_PREEMPT_TEXT = re.compile(r"preempt", re.IGNORECASE)


def _epoch(value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    text = str(value).replace("Z", "+00:00")
    if "." in text:  # Azure writes 7 fractional digits; Python 3.10 takes at most 6
        head, _, tail = text.partition(".")
        digits = re.match(r"\d*", tail).group(0)  # type: ignore[union-attr]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tail[len(digits):]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _seconds(iso: str | None) -> int | None:
    match = re.fullmatch(r"P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", iso or "")
    if not iso or not match:
        return None
    d, h, m, s = match.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(m or 0) * 60 + int(float(s or 0))


def snapshot_of(raw: dict[str, Any], details: dict[str, Any]) -> Snapshot:
    """A :class:`~cloudbridge.managed.adapter.Snapshot` from the job resource and its run details."""
    props = raw.get("properties") or {}
    status = props.get("status") or "NotStarted"
    tags = dict(props.get("tags") or {})
    error = details.get("error") or {}
    error = error.get("error", error) if isinstance(error, dict) else {}
    message = failure_reason({"error": error}) if status == "Failed" else None
    preempted = bool(message and _preempted(message))
    no_capacity = bool(message and "NoLowPriorityCapacity" in message)
    count = re.search(r"preempted (\d+) time", message or "")
    started, ended = _epoch(details.get("startTimeUtc")), _epoch(details.get("endTimeUtc"))
    limit_stop = "spot_wait" if preempted or no_capacity else (
        "runtime" if message and _TIMEOUT_TEXT.search(message) else None)
    used = (ended or time.time()) - started if started else 0.0
    outputs = {k: v.get("uri") for k, v in (props.get("outputs") or {}).items() if isinstance(v, dict)}
    return Snapshot(
        native_id=raw.get("name") or "",
        status=status,
        message=message,
        created_at=_epoch((raw.get("systemData") or {}).get("createdAt")),
        started_at=started,
        ended_at=ended if status in TERMINAL else None,
        tags=tags,
        provisioning=status in PROVISIONING,
        stopped=status in ("CancelRequested", "Canceled"),
        limit_stop=limit_stop,  # type: ignore[arg-type]
        runtime_cap=_seconds((props.get("limits") or {}).get("timeout")),
        used_seconds=max(used, 0.0),
        interruptions=(int(count.group(1)) if count else 1) if preempted else 0,
        name=tags.get("cloudbridge:name"),
        outputs_uri=next(iter(outputs.values()), None),
        extra={"azureml_status": status, "outputs": outputs} if outputs else {"azureml_status": status},
        ref=raw,
    )


def _preempted(message: str) -> bool:
    return bool(_PREEMPT_TEXT.search(message))
