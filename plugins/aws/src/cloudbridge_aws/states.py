"""SageMaker training job states and failure messages, mapped onto cloudbridge's neutral terms.

``TrainingJobStatus`` gives the terminal outcome; while ``InProgress``, ``SecondaryStatus`` says
how far the job got (SageMaker API reference, ``DescribeTrainingJob``).
"""

from __future__ import annotations

import re
from typing import Any

from cloudbridge.reasons import (
    BUDGET_EXCEEDED,
    OUT_OF_MEMORY,
    fmt_duration,
    runtime_timeout_reason,
    start_timeout_reason,
)
from cloudbridge.records import Job, JobState
from cloudbridge_aws.limits import DEFAULT_MAX_RUNTIME, Limits

__all__ = [
    "JOB_SUFFIX_RE",
    "PRIMARY_STATES",
    "SECONDARY_STATES",
    "SPOT_REASONS",
    "attempt_record",
    "failure_reason",
    "job_from_description",
    "map_state",
    "runtime_timeout_reason",
    "start_timeout_reason",
    "used_seconds",
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

SPOT_RECLAIMED = "spot reclaimed"
NO_SPOT_CAPACITY = "no spot capacity"
QUOTA_EXCEEDED = "quota exceeded"
NO_CAPACITY = "no capacity"
IMAGE_PULL_FAILED = "image pull failed"
NON_ZERO_EXIT = "non-zero exit"
BAD_CONFIGURATION = "bad configuration"
FAILED = "failed"
_TIMEOUT = "timeout"  # refined by the job's limits: run time or budget
#: Reasons after which a job with checkpoints and ``max_restarts`` is resubmitted.
SPOT_REASONS = frozenset({SPOT_RECLAIMED, NO_SPOT_CAPACITY})

#: Ordered (pattern, neutral reason) rules applied to ``FailureReason``.
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
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
JOB_SUFFIX_RE = re.compile(r"-\d{8}-\d{6}-[0-9a-f]{4}$")
_EXIT_CODE = re.compile(r"exit(?:ed with)?(?: non-zero)? code[: ]+(\d+)", re.IGNORECASE)


def failure_reason(message: str | None, secondary: str | None = None) -> str | None:
    """The provider-neutral reason for a SageMaker ``FailureReason`` (``None`` when empty).

    A non-zero exit names its code when SageMaker does (``non-zero exit (code 1)``, as on the
    local backend). Time limits read ``timeout`` here; :func:`job_from_description` names the limit.
    """
    if secondary in ("MaxRuntimeExceeded", "MaxWaitTimeExceeded"):
        return _TIMEOUT
    if not message:
        return None
    for pattern, reason in _REASONS:
        if pattern.search(message):
            if reason == NON_ZERO_EXIT:
                code = _EXIT_CODE.search(message)
                return f"{NON_ZERO_EXIT} (code {code.group(1)})" if code else NON_ZERO_EXIT
            return reason
    return FAILED


def map_state(status: str, secondary: str | None) -> JobState:
    """The :class:`JobState` of a SageMaker ``TrainingJobStatus`` / ``SecondaryStatus`` pair."""
    if status == "InProgress" and secondary in SECONDARY_STATES:
        return SECONDARY_STATES[secondary]
    if status == "Stopped" and secondary in ("MaxRuntimeExceeded", "MaxWaitTimeExceeded"):
        return JobState.FAILED
    return PRIMARY_STATES.get(status, JobState.PENDING)


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


def _ended_by_limit(desc: dict[str, Any], limits: Limits, stopped_by: str | None) -> tuple[str, str] | None:
    """``(reason, detail)`` when a time limit, the budget cap or spot capacity ended the job."""
    status, secondary = desc.get("TrainingJobStatus"), desc.get("SecondaryStatus")
    stopping = desc.get("StoppingCondition") or {}
    if stopped_by == "start_timeout" and limits.start_timeout:
        return (start_timeout_reason(limits.start_timeout),
                f"cloudbridge stopped SageMaker job {desc['TrainingJobName']}: it had not started training "
                f"{fmt_duration(limits.start_timeout)} after it was created (SageMaker status {status}/{secondary})")
    message = desc.get("FailureReason") or ""
    if secondary == "MaxWaitTimeExceeded" or (secondary is None and "MaxWaitTimeExceeded" in message):
        count = interruptions(desc)
        wait = stopping.get("MaxWaitTimeInSeconds")
        waited = f"MaxWaitTimeInSeconds={wait}" if wait else "MaxWaitTimeInSeconds"
        if count:
            return SPOT_RECLAIMED, (f"managed spot capacity was reclaimed {count} time(s) and the job did not finish "
                                    f"within {waited}; SageMaker stopped it ({status}/{secondary})")
        return NO_SPOT_CAPACITY, (f"no spot capacity was found within {waited}; SageMaker stopped the job "
                                  f"({status}/{secondary})")
    if secondary == "MaxRuntimeExceeded" or failure_reason(message) == _TIMEOUT:
        cap = stopping.get("MaxRuntimeInSeconds")
        if limits.binding == "budget":
            return BUDGET_EXCEEDED, (f"SageMaker stopped the job at MaxRuntimeInSeconds={cap}, the cap set by the "
                                     f"budget: {limits.describe_budget()}")
        return (runtime_timeout_reason(limits.max_runtime if limits.tagged or not cap else cap),
                f"SageMaker stopped the job at MaxRuntimeInSeconds={cap} ({status}/{secondary})"
                + (f": {message}" if message else ""))
    return None


def job_from_description(desc: dict[str, Any], limits: Limits | None = None, stopped_by: str | None = None) -> Job:
    """A :class:`Job` from a ``DescribeTrainingJob`` reply.

    ``limits`` (parsed from the job's :data:`~cloudbridge_aws.limits.LIMITS_TAG`) name the limit
    that ended a stopped job; ``stopped_by`` is the job's ``cloudbridge:stopped-by`` tag (a job
    cloudbridge stopped after ``start_timeout`` is ``FAILED``, not ``CANCELLED``).
    """
    name = desc["TrainingJobName"]
    status = desc.get("TrainingJobStatus", "InProgress")
    secondary = desc.get("SecondaryStatus")
    stopping = desc.get("StoppingCondition") or {}
    if limits is None:
        limits = Limits(max_runtime=stopping.get("MaxRuntimeInSeconds") or DEFAULT_MAX_RUNTIME)
    state = map_state(status, secondary)
    message = desc.get("FailureReason")
    reason = detail = None
    ended = None
    if stopped_by == "start_timeout" or state is JobState.FAILED:
        ended = _ended_by_limit(desc, limits, stopped_by)
    if ended is not None:
        state, (reason, detail) = JobState.FAILED, ended
    elif state is JobState.FAILED:
        reason = failure_reason(message, secondary) or FAILED
        detail = message or f"SageMaker reported {status}/{secondary} without a FailureReason"
    metrics = {m["MetricName"]: m["Value"] for m in desc.get("FinalMetricDataList") or [] if "MetricName" in m}
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
    job = Job(
        id=f"aws-{name}",
        provider="aws",
        name=_spec_name(name),
        state=state,
        native_id=name,
        outputs_uri=f"{output}/{name}/output/" if output else None,
        metrics=metrics,
        reason=reason,
        detail=detail,
        created_at=_ts(desc.get("CreationTime")),
        started_at=_ts(desc.get("TrainingStartTime")),
        ended_at=_ts(desc.get("TrainingEndTime")) if state.is_terminal else None,
        extra=extra,
    )
    if state.is_terminal and job.ended_at is None:
        job.ended_at = _ts(desc.get("LastModifiedTime"))
    job.attempts = [attempt_record(desc, 1, job)]
    return job


def used_seconds(desc: dict[str, Any]) -> float:
    """Run time an ended SageMaker job consumed (the larger of billable and training time)."""
    values = [desc.get("BillableTimeInSeconds") or 0, desc.get("TrainingTimeInSeconds") or 0]
    start, end = _ts(desc.get("TrainingStartTime")), _ts(desc.get("TrainingEndTime"))
    if start is not None and end is not None:
        values.append(end - start)
    return float(max(values))


def attempt_record(desc: dict[str, Any], number: int, job: Job) -> dict[str, Any]:
    """One entry of ``Job.attempts``: one SageMaker job (managed spot's own restarts counted inside)."""
    record = {
        "attempt": number,
        "native_id": desc["TrainingJobName"],
        "state": job.state.value,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "reason": job.reason,
    }
    count = interruptions(desc)
    if count:
        record["interruptions"] = count
    return record


def _spec_name(job_name: str) -> str:
    """``sst2-minilm-20250101-120000-1a2b`` -> ``sst2-minilm`` (the suffix cloudbridge adds)."""
    return JOB_SUFFIX_RE.sub("", job_name) or job_name
