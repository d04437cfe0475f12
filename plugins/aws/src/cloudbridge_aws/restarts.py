"""Resubmitting a spot job that SageMaker ended for lack of spot capacity. Pure: no AWS call.

SageMaker's managed spot training restarts a reclaimed job inside the same training job until
``MaxWaitTimeInSeconds`` runs out; then the job ends ``Stopped``/``MaxWaitTimeExceeded``. A job
with ``checkpoints`` and ``resources.max_restarts`` is then resubmitted by cloudbridge as a new
training job ``<name>-r<N>``: the same request (image, channels, ``CheckpointConfig``, so the
program resumes from its last checkpoint), with the run time and budget that earlier attempts
left. The cloudbridge id (``aws-<name>``) stays the same and points at the newest attempt.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from cloudbridge.managed.adapter import restart_name, restart_number
from cloudbridge.managed.limits import ATTEMPT_TAG, LIMITS_TAG, RESTART_OF_TAG, STOPPED_BY_TAG, Limits
from cloudbridge_aws.limits import stopping_condition

__all__ = ["request_from_description", "restart_name", "restart_number", "restart_request"]

#: ``DescribeTrainingJob`` fields that are ``CreateTrainingJob`` parameters of the same name.
_REQUEST_FIELDS = (
    "TrainingJobName", "HyperParameters", "AlgorithmSpecification", "RoleArn", "InputDataConfig",
    "OutputDataConfig", "ResourceConfig", "VpcConfig", "StoppingCondition", "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining", "CheckpointConfig", "Environment",
    "RetryStrategy",
)
_ALGORITHM_FIELDS = ("TrainingImage", "TrainingInputMode", "MetricDefinitions", "EnableSageMakerMetricsTimeSeries")


def request_from_description(desc: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
    """The ``CreateTrainingJob`` request that produced ``desc`` (a ``DescribeTrainingJob`` reply).

    Used when the original request is not at hand (another process submitted the job).
    """
    request = {key: copy.deepcopy(desc[key]) for key in _REQUEST_FIELDS if desc.get(key) not in (None, {}, [])}
    algorithm = request.get("AlgorithmSpecification") or {}
    request["AlgorithmSpecification"] = {k: v for k, v in algorithm.items() if k in _ALGORITHM_FIELDS}
    request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items() if not k.startswith("aws:")]
    return request


def restart_request(base: dict[str, Any], number: int, limits: Limits, used: float) -> dict[str, Any]:
    """``base`` (the first attempt's request) as restart ``number``, after ``used`` seconds of run time.

    The name, the ``sagemaker_job_name`` hyperparameter, the stopping condition (what is left of
    ``max_runtime`` and the budget cap) and the limits tag change; ``CheckpointConfig``,
    channels, image, environment (``CB_JOB_ID`` included) stay as they were.
    """
    request = copy.deepcopy(base)
    original = base["TrainingJobName"]
    name = restart_name(original, number)
    request["TrainingJobName"] = name
    hyper = request.get("HyperParameters") or {}
    if "sagemaker_job_name" in hyper:
        hyper["sagemaker_job_name"] = json.dumps(name)
    attempt_limits = limits.for_attempt(used)
    request["StoppingCondition"] = stopping_condition(attempt_limits, bool(request.get("EnableManagedSpotTraining")),
                                                      used)
    dropped = {LIMITS_TAG, STOPPED_BY_TAG, ATTEMPT_TAG, RESTART_OF_TAG}
    tags = [t for t in request.get("Tags") or [] if t["Key"] not in dropped]
    tags += [
        {"Key": LIMITS_TAG, "Value": attempt_limits.to_tag()},
        {"Key": ATTEMPT_TAG, "Value": str(number + 1)},
        {"Key": RESTART_OF_TAG, "Value": original},
    ]
    request["Tags"] = tags
    return request
