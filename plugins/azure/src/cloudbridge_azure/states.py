"""Azure ML job statuses as cloudbridge :class:`~cloudbridge.records.JobState`, and failure reasons.

Azure ML reports ``properties.status`` (``JobStatus`` of the REST API) and, for a failed job,
``properties.error`` with Azure's error shape ``{"code", "message", "details", "innerError"}``.
"""

from __future__ import annotations

from typing import Any

from cloudbridge.records import JobState

__all__ = ["STATE_MAP", "TERMINAL", "failure_reason", "map_state"]

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
    """One line from a job's ``error`` (code, message, first detail), or ``None`` when it has none."""
    error = properties.get("error") or {}
    if not isinstance(error, dict) or not (error.get("code") or error.get("message")):
        return None
    text = f"{error.get('code') or 'Error'}: {error.get('message') or ''}".strip().rstrip(":")
    details = error.get("details") or []
    if details and isinstance(details[0], dict) and details[0].get("message"):
        text += f" ({details[0]['message']})"
    return " ".join(text.split())[:500]
