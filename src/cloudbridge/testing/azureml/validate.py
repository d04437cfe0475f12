"""What the Azure ML fake refuses in a job, with the error codes and messages Azure ML uses."""

from __future__ import annotations

import re
from typing import Any

from cloudbridge.testing.azureml.http import ApiError

__all__ = ["validate_job"]

#: Azure ML job names: a letter or digit, then letters, digits, '-' or '_', at most 255 characters.
JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$")


def validate_job(fake: Any, name: str, props: dict[str, Any]) -> None:
    """Raise :class:`ApiError` (400) for a job Azure ML would refuse."""
    if not JOB_NAME_RE.match(name):
        raise ApiError(400, "UserError", f"Invalid job name '{name}': it must start with a letter or a digit and "
                       "contain only letters, digits, '-' and '_' (at most 255 characters).")
    if props.get("jobType") != "Command":
        raise ApiError(400, "UserError", f"The fake runs Command jobs only, not {props.get('jobType')!r}.")
    if not props.get("command"):
        raise ApiError(400, "UserError", "The command of a command job cannot be empty.")
    if not props.get("environmentId"):
        raise ApiError(400, "UserError", "A command job needs an environment (environmentId).")
    resources = props.get("resources") or {}
    count = int(resources.get("instanceCount") or 1)
    if count < 1:
        raise ApiError(400, "UserError", "instanceCount must be at least 1.")
    compute_id = props.get("computeId")
    if compute_id:
        compute = compute_id.rstrip("/").rsplit("/", 1)[-1]
        found = fake.computes.get(compute)
        if found is None:
            raise ApiError(400, "UserError", f"Compute {compute} is not found in workspace {fake.workspace}.")
        maximum = int(found.get("maxNodeCount", 4))
        if count > maximum:
            raise ApiError(400, "UserError", f"Requested {count} nodes but AzureML cluster '{compute}' only has "
                           f"{maximum} maximum nodes.")
    elif not resources.get("instanceType"):
        raise ApiError(400, "UserError", "Serverless jobs need resources.instanceType.")
    distribution = props.get("distribution") or {}
    if distribution and distribution.get("distributionType") not in ("PyTorch", "Mpi", "TensorFlow"):
        raise ApiError(400, "UserError", f"Unknown distribution type {distribution.get('distributionType')!r}.")
