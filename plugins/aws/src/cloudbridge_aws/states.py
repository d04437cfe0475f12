"""SageMaker training job states and failure messages, in the core's neutral terms.

``TrainingJobStatus`` gives the terminal outcome; while ``InProgress``, ``SecondaryStatus`` says
how far the job got (SageMaker API reference, ``DescribeTrainingJob``). :func:`snapshot_of` turns a
``DescribeTrainingJob`` reply into the :class:`~cloudbridge.managed.adapter.Snapshot` the core reads;
the core names the reason of a job ended by a limit (:mod:`cloudbridge.managed.reading`).
"""

from __future__ import annotations

import re
from typing import Any

from cloudbridge.managed.adapter import NAME_SUFFIX_RE, Snapshot, classify_failure, lookup_state
from cloudbridge.reasons import (
    BAD_CONFIGURATION,
    IMAGE_PULL_FAILED,
    NO_CAPACITY,
    NON_ZERO_EXIT,
    OUT_OF_MEMORY,
    QUOTA_EXCEEDED,
    SPOT_RECLAIMED,
)
from cloudbridge.records import JobState

__all__ = ["JOB_SUFFIX_RE", "LIMIT_STOPS", "REASONS", "STATES", "ever_trained", "failure_reason", "map_state",
           "snapshot_of", "used_seconds"]

#: ``TrainingJobStatus`` -> state (``InProgress`` is refined by ``SecondaryStatus``).
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
#: ``SecondaryStatus`` values of a job SageMaker stopped at its own ``StoppingCondition``.
LIMIT_STOPS = ("MaxRuntimeExceeded", "MaxWaitTimeExceeded")

#: The state table the core reads: ``(status, secondary)`` pairs first, then the bare status.
STATES: dict[str | tuple[str, str], JobState] = {
    **{("InProgress", stage): state for stage, state in SECONDARY_STATES.items()},
    **{("Stopped", stage): JobState.FAILED for stage in LIMIT_STOPS},
    **PRIMARY_STATES,
}

_TIMEOUT = "timeout"  # refined by the job's limits (run time or budget) in the core
#: Ordered (pattern, neutral reason) rules applied to ``FailureReason``.
REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), reason)
    for pattern, reason in (
        (r"ResourceLimitExceeded|quota|account-level service limit", QUOTA_EXCEEDED),
        (r"out of memory|OutOfMemory|MemoryError|exit code[: ]+137|\bOOM\b", OUT_OF_MEMORY),
        (r"InsufficientCapacity|insufficient capacity|CapacityError", NO_CAPACITY),
        (r"spot|capacity was reclaimed|Interrupted", SPOT_RECLAIMED),
        (r"CannotStartContainer|CannotPullContainer|pull access denied|image|ECR|manifest", IMAGE_PULL_FAILED),
        (r"MaxRuntimeExceeded|MaxWaitTimeExceeded|exceeded the maximum|max runtime", _TIMEOUT),
        (r"AlgorithmError|non-zero|exit code|exited with|ExecuteUserScriptError", NON_ZERO_EXIT),
        (r"ClientError|AccessDenied|not authorized|does not exist|No S3 objects", BAD_CONFIGURATION),
    )
)
#: The ``-YYYYmmdd-HHMMSS-xxxx`` suffix cloudbridge adds to its SageMaker job names.
JOB_SUFFIX_RE = NAME_SUFFIX_RE


def failure_reason(message: str | None, secondary: str | None = None) -> str | None:
    """The provider-neutral reason for a SageMaker ``FailureReason`` (``None`` when empty).

    A non-zero exit names its code when SageMaker does (``non-zero exit (code 1)``, as on the
    local backend). Time limits read ``timeout`` here; the core names the limit.
    """
    if secondary in LIMIT_STOPS:
        return _TIMEOUT
    return classify_failure(message, REASONS)


def map_state(status: str, secondary: str | None) -> JobState:
    """The :class:`JobState` of a SageMaker ``TrainingJobStatus`` / ``SecondaryStatus`` pair."""
    return lookup_state(STATES, status, secondary)


def _ts(value: Any) -> float | None:
    return value.timestamp() if value is not None and hasattr(value, "timestamp") else None


def interruptions(desc: dict[str, Any]) -> int:
    """How many times managed spot capacity was reclaimed during this SageMaker job."""
    return sum(1 for t in desc.get("SecondaryStatusTransitions") or [] if t.get("Status") == "Interrupted")


def ever_trained(desc: dict[str, Any]) -> bool:
    """True once the job reached ``Training`` (provisioning is over)."""
    if desc.get("SecondaryStatus") in ("Training", "Uploading", "Completed", "Interrupted", "Restarting"):
        return True
    return any(t.get("Status") == "Training" for t in desc.get("SecondaryStatusTransitions") or [])


def used_seconds(desc: dict[str, Any]) -> float:
    """Run time an ended SageMaker job consumed (the larger of billable and training time)."""
    values = [desc.get("BillableTimeInSeconds") or 0, desc.get("TrainingTimeInSeconds") or 0]
    start, end = _ts(desc.get("TrainingStartTime")), _ts(desc.get("TrainingEndTime"))
    if start is not None and end is not None:
        values.append(end - start)
    return float(max(values))


def _limit_stop(desc: dict[str, Any]) -> str | None:
    """``spot_wait`` / ``runtime`` when SageMaker's ``StoppingCondition`` ended the job."""
    secondary, message = desc.get("SecondaryStatus"), desc.get("FailureReason") or ""
    if secondary == "MaxWaitTimeExceeded" or (secondary is None and "MaxWaitTimeExceeded" in message):
        return "spot_wait"
    if secondary == "MaxRuntimeExceeded" or failure_reason(message) == _TIMEOUT:
        return "runtime"
    return None


def snapshot_of(desc: dict[str, Any]) -> Snapshot:
    """A ``DescribeTrainingJob`` reply (or a ``ListTrainingJobs`` summary) as a core :class:`Snapshot`.

    ``ref`` keeps the reply itself (the ARN for tags, ``StoppingCondition`` for details).
    """
    name = desc["TrainingJobName"]
    status = desc.get("TrainingJobStatus", "InProgress")
    secondary = desc.get("SecondaryStatus")
    stopping = desc.get("StoppingCondition") or {}
    resource = desc.get("ResourceConfig") or {}
    output = (desc.get("OutputDataConfig") or {}).get("S3OutputPath", "").rstrip("/")
    artifacts = (desc.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    extra: dict[str, Any] = {
        "sagemaker_status": status,
        "secondary_status": secondary,
        "instance_type": resource.get("InstanceType"),
        "instance_count": resource.get("InstanceCount"),
        "spot": bool(desc.get("EnableManagedSpotTraining")),
        "arn": desc.get("TrainingJobArn"),
        "max_runtime_seconds": stopping.get("MaxRuntimeInSeconds"),
    }
    extra = {k: v for k, v in extra.items() if v is not None}
    if artifacts:
        extra["model_artifacts"] = artifacts
    if desc.get("BillableTimeInSeconds") is not None:
        extra["billable_seconds"] = desc["BillableTimeInSeconds"]
    return Snapshot(
        native_id=name,
        status=status,
        stage=secondary,
        message=desc.get("FailureReason"),
        created_at=_ts(desc.get("CreationTime")),
        started_at=_ts(desc.get("TrainingStartTime")),
        ended_at=_ts(desc.get("TrainingEndTime")),
        modified_at=_ts(desc.get("LastModifiedTime")),
        provisioning=status == "InProgress" and not ever_trained(desc),
        stopped=status in ("Stopping", "Stopped") and secondary not in LIMIT_STOPS,
        limit_stop=_limit_stop(desc),  # type: ignore[arg-type]
        runtime_cap=stopping.get("MaxRuntimeInSeconds"),
        used_seconds=used_seconds(desc),
        interruptions=interruptions(desc),
        name=JOB_SUFFIX_RE.sub("", name) or name,
        outputs_uri=f"{output}/{name}/output/" if output else None,
        metrics={m["MetricName"]: m["Value"] for m in desc.get("FinalMetricDataList") or [] if "MetricName" in m},
        extra=extra,
        ref=desc,
    )
