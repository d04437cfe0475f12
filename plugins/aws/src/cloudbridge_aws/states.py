"""SageMaker training job states and failure messages, mapped onto cloudbridge's neutral terms.

``TrainingJobStatus`` gives the terminal outcome; while ``InProgress``, ``SecondaryStatus`` says
how far the job got (SageMaker API reference, ``DescribeTrainingJob``).
"""

from __future__ import annotations

import re
from typing import Any

from cloudbridge.records import Job, JobState

__all__ = [
    "PRIMARY_STATES",
    "SECONDARY_STATES",
    "failure_reason",
    "job_from_description",
    "map_state",
]

#: ``TrainingJobStatus`` -> state (``InProgress`` is refined by ``SECONDARY_STATES``).
PRIMARY_STATES: dict[str, JobState] = {
    "InProgress": JobState.RUNNING,
    "Completed": JobState.SUCCEEDED,
    "Failed": JobState.FAILED,
    "Stopping": JobState.RUNNING,
    "Stopped": JobState.CANCELLED,
}

#: ``SecondaryStatus`` of an ``InProgress`` job -> state.
SECONDARY_STATES: dict[str, JobState] = {
    "Pending": JobState.PENDING,
    "Starting": JobState.STARTING,
    "LaunchingMLInstances": JobState.STARTING,
    "PreparingTrainingStack": JobState.STARTING,
    "Downloading": JobState.STARTING,
    "DownloadingTrainingImage": JobState.STARTING,
    "Restarting": JobState.STARTING,  # managed spot: capacity came back, resuming from checkpoints
    "Interrupted": JobState.PENDING,  # managed spot: instances reclaimed, waiting for capacity
    "Training": JobState.RUNNING,
    "Uploading": JobState.RUNNING,
    "Updating": JobState.RUNNING,
}

#: Ordered (pattern, neutral reason) rules applied to ``FailureReason``.
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), reason)
    for pattern, reason in (
        (r"out of memory|OutOfMemory|MemoryError|CUDA error: out of memory|exit code[: ]+137|OOM", "out of memory"),
        (r"spot|capacity was reclaimed|Interrupted", "spot reclaimed"),
        (r"ResourceLimitExceeded|quota|account-level service limit", "quota"),
        (r"InsufficientCapacity|insufficient capacity|CapacityError", "no capacity"),
        (r"image|ECR|CannotPullContainer|pull access denied|manifest", "image pull"),
        (r"MaxRuntimeExceeded|MaxWaitTimeExceeded|exceeded the maximum|max runtime", "timeout"),
        (r"AlgorithmError|non-zero|exit code|exited with|ExecuteUserScriptError", "non-zero exit"),
        (r"ClientError|AccessDenied|not authorized|does not exist|No S3 objects", "bad configuration"),
    )
)


def failure_reason(message: str | None, secondary: str | None = None) -> str | None:
    """The provider-neutral reason for a SageMaker ``FailureReason`` (``None`` when empty)."""
    if secondary in ("MaxRuntimeExceeded", "MaxWaitTimeExceeded"):
        return "timeout"
    if not message:
        return None
    for pattern, reason in _REASONS:
        if pattern.search(message):
            return reason
    return "failed"


def map_state(status: str, secondary: str | None) -> JobState:
    """The :class:`JobState` of a SageMaker ``TrainingJobStatus`` / ``SecondaryStatus`` pair."""
    if status == "InProgress" and secondary in SECONDARY_STATES:
        return SECONDARY_STATES[secondary]
    if status == "Stopped" and secondary in ("MaxRuntimeExceeded", "MaxWaitTimeExceeded"):
        return JobState.FAILED
    return PRIMARY_STATES.get(status, JobState.PENDING)


def _ts(value: Any) -> float | None:
    return value.timestamp() if value is not None and hasattr(value, "timestamp") else None


def job_from_description(desc: dict[str, Any]) -> Job:
    """A :class:`Job` from a ``DescribeTrainingJob`` reply."""
    name = desc["TrainingJobName"]
    status = desc.get("TrainingJobStatus", "InProgress")
    secondary = desc.get("SecondaryStatus")
    state = map_state(status, secondary)
    output = (desc.get("OutputDataConfig") or {}).get("S3OutputPath", "").rstrip("/")
    artifacts = (desc.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    message = desc.get("FailureReason")
    reason = failure_reason(message, secondary) if state is JobState.FAILED else None
    if state is JobState.FAILED and not reason:
        reason = "failed"
    metrics = {m["MetricName"]: m["Value"] for m in desc.get("FinalMetricDataList") or [] if "MetricName" in m}
    resource = desc.get("ResourceConfig") or {}
    extra: dict[str, Any] = {
        "sagemaker_status": status,
        "secondary_status": secondary,
        "instance_type": resource.get("InstanceType"),
        "instance_count": resource.get("InstanceCount"),
        "spot": bool(desc.get("EnableManagedSpotTraining")),
        "arn": desc.get("TrainingJobArn"),
    }
    extra = {k: v for k, v in extra.items() if v is not None}
    if artifacts:
        extra["model_artifacts"] = artifacts
    if desc.get("BillableTimeInSeconds") is not None:
        extra["billable_seconds"] = desc["BillableTimeInSeconds"]
    return Job(
        id=f"aws-{name}",
        provider="aws",
        name=_spec_name(name),
        state=state,
        native_id=name,
        outputs_uri=f"{output}/{name}/output/" if output else None,
        metrics=metrics,
        reason=reason,
        detail=message if state is JobState.FAILED else None,
        created_at=_ts(desc.get("CreationTime")),
        started_at=_ts(desc.get("TrainingStartTime")),
        ended_at=_ts(desc.get("TrainingEndTime")) if state.is_terminal else None,
        attempts=_attempts(desc.get("SecondaryStatusTransitions") or []),
        extra=extra,
    )


def _attempts(transitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (re)start: managed spot restarts a reclaimed job inside the same SageMaker job."""
    starts = [t for t in transitions if t.get("Status") in ("Starting", "Restarting")]
    return [
        {"attempt": n, "status": t.get("Status"), "message": t.get("StatusMessage"), "start": _ts(t.get("StartTime"))}
        for n, t in enumerate(starts, 1)
    ]


_SUFFIX_RE = re.compile(r"-\d{8}-\d{6}-[0-9a-f]{4}$")


def _spec_name(job_name: str) -> str:
    """``sst2-minilm-20250101-120000-1a2b`` -> ``sst2-minilm`` (the suffix cloudbridge adds)."""
    return _SUFFIX_RE.sub("", job_name) or job_name
