"""``SageMakerAdapter``: SageMaker training jobs as a :class:`~cloudbridge.managed.adapter.ManagedAdapter`.

A translator: the request comes from the pure :func:`~cloudbridge_aws.training_request.training_job_request`,
states and failure messages from :mod:`cloudbridge_aws.states`, restarts from
:mod:`cloudbridge_aws.restarts`; everything else (budget, limits, ``start_timeout``, restarts,
reasons, log tail) is the core's :class:`~cloudbridge.managed.compute.ManagedCompute`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from cloudbridge.errors import CloudbridgeError, NotFound, StageTimeout, TransientError
from cloudbridge.managed.adapter import Cause, ManagedAdapter, Placement, Snapshot, name_suffix
from cloudbridge.managed.limits import Limits, fmt_duration
from cloudbridge.specs import JobSpec
from cloudbridge_aws.errors import aws_errors
from cloudbridge_aws.limits import SAGEMAKER_MAX_RUNTIME
from cloudbridge_aws.logs import read_logs, tail_logs
from cloudbridge_aws.restarts import request_from_description, restart_number, restart_request
from cloudbridge_aws.session import AwsSession
from cloudbridge_aws.states import JOB_SUFFIX_RE, REASONS, STATES, failure_reason, snapshot_of
from cloudbridge_aws.training_request import (
    bucket_prefix,
    job_name_for,
    launcher_package,
    launcher_uri,
    place_training,
    secret_env_warning,
    training_job_request,
)

__all__ = ["SageMakerAdapter", "native_name"]

_ID_RE = re.compile(r"^aws-([A-Za-z0-9](-*[A-Za-z0-9]){0,62})$")


def native_name(job_id: str) -> str:
    """``aws-<name>`` -> the SageMaker training job name; anything else is :class:`NotFound`."""
    match = _ID_RE.match(job_id)
    if not match:
        raise NotFound(f"no AWS job with id {job_id!r}", hint="AWS job ids look like aws-<sagemaker job name>")
    return match.group(1)


class SageMakerAdapter(ManagedAdapter):
    """SageMaker ``CreateTrainingJob`` / ``DescribeTrainingJob`` / ``StopTrainingJob`` and CloudWatch logs."""

    provider = "aws"
    service = "SageMaker"
    states = STATES
    reasons = REASONS
    longest_runtime = SAGEMAKER_MAX_RUNTIME
    spot_name = "managed spot"

    def __init__(self, session: AwsSession) -> None:
        self.session = session
        self.settings = session.settings

    @property
    def sagemaker(self) -> Any:
        """The boto3 SageMaker client."""
        return self.session.client("sagemaker")

    # ---- pure ------------------------------------------------------------------------------------
    def place(self, spec: JobSpec) -> Placement:
        return place_training(spec, self.settings, self.session.region)

    def new_name(self, spec: JobSpec) -> str:
        """``<spec name>-YYYYmmdd-HHMMSS-xxxx``, leaving room for a restart suffix (``-r2``)."""
        suffix = name_suffix()
        restartable = spec.resources.spot and spec.checkpoints and spec.resources.max_restarts
        reserve = len(f"-r{spec.resources.max_restarts}") if restartable else 0
        return job_name_for(spec.name, suffix, reserve=reserve)

    def code_uri_prefix(self) -> str:
        return f"{bucket_prefix(self.settings)}/code"

    def build_request(self, spec: JobSpec, placement: Placement, limits: Limits, *, code_uri: str, name: str,
                      tags: dict[str, str]) -> dict[str, Any]:
        return training_job_request(spec, self.settings, placement, limits, code_uri=code_uri, job_name=name,
                                    tags=tags)

    def restart_request(self, base: dict[str, Any], number: int, limits: Limits, used: float) -> dict[str, Any]:
        return restart_request(base, number, limits, used)

    def request_of(self, first: Snapshot, tags: dict[str, str]) -> dict[str, Any]:
        return request_from_description(first.ref, tags)

    def failure_reason(self, snapshot: Snapshot) -> str | None:
        return failure_reason(snapshot.message, snapshot.stage)

    def explain(self, snapshot: Snapshot, cause: Cause, limits: Limits) -> str:
        """SageMaker's own terms: ``MaxRuntimeInSeconds``, ``MaxWaitTimeInSeconds``, ``FailureReason``."""
        status, secondary, message = snapshot.status, snapshot.stage, snapshot.message
        stopping = (snapshot.ref or {}).get("StoppingCondition") or {}
        wait = stopping.get("MaxWaitTimeInSeconds")
        waited = f"MaxWaitTimeInSeconds={wait}" if wait else "MaxWaitTimeInSeconds"
        cap = snapshot.runtime_cap
        if cause == "start_timeout":
            return (f"cloudbridge stopped SageMaker job {snapshot.native_id}: it had not started training "
                    f"{fmt_duration(limits.start_timeout or 0)} after it was created (SageMaker status "
                    f"{status}/{secondary})")
        if cause == "spot_reclaimed":
            return (f"managed spot capacity was reclaimed {snapshot.interruptions} time(s) and the job did not "
                    f"finish within {waited}; SageMaker stopped it ({status}/{secondary})")
        if cause == "no_spot_capacity":
            return f"no spot capacity was found within {waited}; SageMaker stopped the job ({status}/{secondary})"
        if cause == "budget":
            return (f"SageMaker stopped the job at MaxRuntimeInSeconds={cap}, the cap set by the budget: "
                    f"{limits.describe_budget()}")
        if cause == "max_runtime":
            return (f"SageMaker stopped the job at MaxRuntimeInSeconds={cap} ({status}/{secondary})"
                    + (f": {message}" if message else ""))
        return message or f"SageMaker reported {status}/{secondary} without a FailureReason"

    def warnings(self, spec: JobSpec) -> list[str]:
        warning = secret_env_warning(spec)
        return [warning] if warning else []

    def native_id_of(self, job_id: str) -> str:
        return native_name(job_id)

    # ---- calls -----------------------------------------------------------------------------------
    def upload_support(self, storage: Any) -> int:
        """Upload the launcher package once per cloudbridge version; returns bytes uploaded."""
        uri = launcher_uri(self.settings)
        if storage.exists(uri):
            return 0
        data, _ = launcher_package()
        storage.write_bytes(uri, data)
        return len(data)

    def create(self, request: dict[str, Any]) -> str:
        """``CreateTrainingJob``; a reply that never came is ``StageTimeout(stage="submit")``."""
        from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

        name = request["TrainingJobName"]
        try:
            with aws_errors("create the SageMaker training job", resource=name):
                self.sagemaker.create_training_job(**request)
        except TransientError as exc:
            cause = exc.__cause__
            if not isinstance(cause, (ConnectTimeoutError, ReadTimeoutError)):
                raise
            which = "connect_timeout" if isinstance(cause, ConnectTimeoutError) else "read_timeout"
            raise StageTimeout(
                f"submit timed out: SageMaker did not answer CreateTrainingJob for {name} within {which} "
                f"{getattr(self.settings, which):g}s ({self.settings.max_attempts} attempts)",
                stage="submit",
            ) from cause
        return name

    def may_have_created(self, error: CloudbridgeError) -> bool:
        """Only a create whose request went out and whose reply was lost (read timeout) may have made a job."""
        from botocore.exceptions import ReadTimeoutError

        return isinstance(error, StageTimeout) and isinstance(error.__cause__, ReadTimeoutError)

    def describe_raw(self, name: str) -> dict[str, Any]:
        """The ``DescribeTrainingJob`` reply; :class:`NotFound` naming the region when unknown."""
        try:
            with aws_errors("describe the training job", resource=name):
                return self.sagemaker.describe_training_job(TrainingJobName=name)
        except NotFound as exc:
            raise NotFound(f"no SageMaker training job {name!r} in {self.session.region}") from exc.__cause__

    def describe(self, native_id: str) -> Snapshot:
        return snapshot_of(self.describe_raw(native_id))

    def stop(self, native_id: str) -> None:
        with aws_errors("stop the training job", resource=native_id):
            self.sagemaker.stop_training_job(TrainingJobName=native_id)

    def read_logs(self, native_id: str, *, follow: bool = False, is_done: Callable[[], bool] | None = None,
                  poll_interval: float = 5.0, deadline: float | None = None) -> Iterator[str]:
        return read_logs(self.session.client("logs"), native_id, follow=follow, is_done=is_done,
                         poll_interval=poll_interval, deadline=deadline)

    def tail_logs(self, native_id: str, lines: int) -> list[str]:
        """The last ``lines`` lines: one request from the end of each CloudWatch stream, not the whole log."""
        return tail_logs(self.session.client("logs"), native_id, lines)

    def list_jobs(self) -> list[Snapshot]:
        """cloudbridge's SageMaker jobs in this region (one ``ListTrainingJobs`` pass; restarts left out)."""
        found: list[Snapshot] = []
        paginator = self.sagemaker.get_paginator("list_training_jobs")
        with aws_errors("list training jobs"):
            for page in paginator.paginate(SortBy="CreationTime", SortOrder="Descending"):
                for summary in page.get("TrainingJobSummaries", []):
                    if JOB_SUFFIX_RE.search(summary["TrainingJobName"]):
                        found.append(snapshot_of({"TrainingJobStatus": "InProgress", **summary}))
        return found

    def read_tags(self, snapshot: Snapshot) -> dict[str, str]:
        arn = (snapshot.ref or {}).get("TrainingJobArn")
        if not arn:
            return {}
        tags: dict[str, str] = {}
        with aws_errors("read the job's tags", resource=snapshot.native_id):
            for page in self.sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn):
                tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        return tags

    def add_tags(self, snapshot: Snapshot, tags: dict[str, str]) -> None:
        with aws_errors("tag the training job", resource=snapshot.native_id):
            self.sagemaker.add_tags(ResourceArn=snapshot.ref["TrainingJobArn"],
                                    Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def find_restarts(self, original: str) -> list[str]:
        found: dict[int, str] = {}
        paginator = self.sagemaker.get_paginator("list_training_jobs")
        with aws_errors("list the job's restarts", resource=original):
            for page in paginator.paginate(NameContains=f"{original}-r"):
                for summary in page.get("TrainingJobSummaries", []):
                    number = restart_number(original, summary["TrainingJobName"])
                    if number is not None:
                        found[number] = summary["TrainingJobName"]
        return [found[n] for n in sorted(found)]
