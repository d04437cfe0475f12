"""SageMaker training jobs: submit, describe, list, stop and CloudWatch logs.

The request itself is built by the pure :func:`~cloudbridge_aws.training_request.to_training_job_request`;
this module only uploads what the job needs (code package, launcher package: both content-addressed,
so unchanged code is never uploaded twice) and makes the SDK calls. What SageMaker does not enforce
itself (``start_timeout``, restarts after spot interruption) lives in :mod:`cloudbridge_aws.lifecycle`.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from cloudbridge.errors import CloudbridgeError, ConflictError, InvalidSpec, NotFound, StageTimeout, TransientError
from cloudbridge.interfaces import Compute
from cloudbridge.records import Job, JobState
from cloudbridge.specs import JobSpec
from cloudbridge_aws.errors import aws_errors
from cloudbridge_aws.lifecycle import SageMakerLifecycle, follow_logs
from cloudbridge_aws.logs import read_logs
from cloudbridge_aws.session import AwsSession
from cloudbridge_aws.states import JOB_SUFFIX_RE, job_from_description, map_state
from cloudbridge_aws.storage import S3Storage
from cloudbridge_aws.training_request import (
    job_name_for,
    launcher_package,
    launcher_uri,
    secret_env_warning,
    to_training_job_request,
)

__all__ = ["SageMakerCompute", "native_name"]

#: Log lines appended to the detail of a failed job.
TAIL_LINES = 20
_ID_RE = re.compile(r"^aws-([A-Za-z0-9](-*[A-Za-z0-9]){0,62})$")


def native_name(job_id: str) -> str:
    """``aws-<name>`` -> the SageMaker training job name; anything else is :class:`NotFound`."""
    match = _ID_RE.match(job_id)
    if not match:
        raise NotFound(f"no AWS job with id {job_id!r}", hint="AWS job ids look like aws-<sagemaker job name>")
    return match.group(1)


class SageMakerCompute(SageMakerLifecycle, Compute):
    """:class:`~cloudbridge.interfaces.Compute` on SageMaker training jobs (ids ``aws-<job name>``)."""

    poll_interval = 10.0
    #: ``submit`` packages and uploads the workdir (``cloudbridge run`` shows its size first).
    uploads_workdir = True

    def __init__(self, session: AwsSession, storage: S3Storage) -> None:
        self.session = session
        self.storage = storage
        self.settings = session.settings
        #: Bytes uploaded by the last :meth:`submit` (code + launcher packages; 0 when deduplicated).
        self.last_upload_bytes = 0
        self._spec_names: dict[str, str] = {}
        self._tails: dict[str, list[str]] = {}
        #: Requests this object submitted, by job name (restarts reuse them exactly).
        self._requests: dict[str, dict[str, Any]] = {}
        #: Tags read per job name (only final ones are kept), and jobs this object stopped itself.
        self._tag_cache: dict[str, dict[str, str]] = {}
        self._stopped: dict[str, str] = {}

    @property
    def sagemaker(self) -> Any:
        """The boto3 SageMaker client."""
        return self.session.client("sagemaker")

    # ---- uploads ---------------------------------------------------------------------------------
    def _prefix(self) -> str:
        from cloudbridge_aws.training_request import bucket_prefix

        return bucket_prefix(self.settings)

    def upload_code(self, spec: JobSpec) -> tuple[str, int]:
        """Package the workdir and upload it unless identical content is already there
        (:func:`cloudbridge.packaging.upload_workdir`, through this provider's S3 client).

        Returns ``(code package URI, bytes uploaded)``.
        """
        from cloudbridge.packaging import upload_workdir

        workdir = spec.resolved_workdir()
        if workdir is None:
            raise InvalidSpec("SageMaker jobs need a workdir to ship", source=spec.source, field="workdir")
        return upload_workdir(workdir, f"{self._prefix()}/code", storage=self.storage)

    def upload_launcher(self) -> int:
        """Upload the launcher package once per cloudbridge version; returns bytes uploaded."""
        uri = launcher_uri(self.settings)
        if self.storage.exists(uri):
            return 0
        data, _ = launcher_package()
        self.storage.write_bytes(uri, data)
        return len(data)

    # ---- Compute ---------------------------------------------------------------------------------
    def submit(self, spec: JobSpec) -> Job:
        """Upload code (deduplicated), create the training job, return its first record.

        A create call that times out (``connect_timeout`` / ``read_timeout``, after botocore's
        retries) is :class:`~cloudbridge.errors.StageTimeout` (stage ``submit``); a job that was
        created anyway is stopped, so nothing runs unseen.
        """
        job_name = self.validate(spec)  # everything that needs no upload, before uploading anything
        region = self.session.region
        code_uri, code_bytes = self.upload_code(spec)
        self.last_upload_bytes = code_bytes + self.upload_launcher()
        request = to_training_job_request(spec, self.settings, code_uri=code_uri, job_name=job_name, region=region)
        self._create(request)
        self._requests[job_name] = request
        self._spec_names[job_name] = spec.name
        job = self.get(f"aws-{job_name}")
        job.extra["code_uri"] = code_uri
        job.extra["uploaded_bytes"] = self.last_upload_bytes
        secret_env = secret_env_warning(spec)
        if secret_env:
            job.extra.setdefault("warnings", []).append(secret_env)
        if spec.resources.max_cost is not None and job.extra.get("budget_cap_seconds") is None:
            job.extra.setdefault("warnings", []).append(
                f"no catalog price for {job.extra.get('instance_type')}: max_cost cannot be enforced by SageMaker"
            )
        return job

    def validate(self, spec: JobSpec) -> str:
        """Check ``spec`` as SageMaker would take it (no AWS call, nothing uploaded); returns a job name.

        Bad input is :class:`InvalidSpec` naming the spec field (or ``settings.aws.*``), and an
        unaffordable budget :class:`~cloudbridge.errors.BudgetExceeded`.
        """
        suffix = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)
        restartable = spec.resources.spot and spec.checkpoints and spec.resources.max_restarts
        reserve = len(f"-r{spec.resources.max_restarts}") if restartable else 0
        job_name = job_name_for(spec.name, suffix, reserve=reserve)
        to_training_job_request(spec, self.settings, code_uri="s3://check/only", job_name=job_name,
                                region=self.session.region)
        return job_name

    def _create(self, request: dict[str, Any]) -> None:
        """``CreateTrainingJob``; timeouts become ``StageTimeout(stage="submit")``."""
        from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

        name = request["TrainingJobName"]
        try:
            with aws_errors("create the SageMaker training job", resource=name):
                self.sagemaker.create_training_job(**request)
        except ConflictError:
            # botocore retried a create whose first reply was lost: the job is ours if it carries our id.
            tags = self._tags(self._describe_name(name))
            if tags.get("cloudbridge:job-id") != f"aws-{name}":
                raise
        except TransientError as exc:
            cause = exc.__cause__
            if not isinstance(cause, (ConnectTimeoutError, ReadTimeoutError)):
                raise
            which = "connect_timeout" if isinstance(cause, ConnectTimeoutError) else "read_timeout"
            limit = getattr(self.settings, which)
            cleanup = "" if which == "connect_timeout" else self._stop_orphan(name)
            raise StageTimeout(
                f"submit timed out: SageMaker did not answer CreateTrainingJob for {name} within {which} "
                f"{limit:g}s ({self.settings.max_attempts} attempts){cleanup}",
                stage="submit",
            ) from cause

    def _stop_orphan(self, name: str) -> str:
        """After a create whose reply never came: stop the job if it exists; say what was done."""
        try:
            desc = self._describe_name(name)
        except NotFound:
            return "; no job was created"
        except CloudbridgeError:
            return f"; it may exist anyway: check `aws sagemaker describe-training-job --training-job-name {name}`"
        try:
            if not map_state(desc["TrainingJobStatus"], desc.get("SecondaryStatus")).is_terminal:
                with aws_errors("stop the training job", resource=name):
                    self.sagemaker.stop_training_job(TrainingJobName=name)
        except CloudbridgeError as exc:
            return f"; it was created and could not be stopped ({exc}): cloudbridge cancel aws-{name}"
        return "; it was created anyway and has been stopped"

    def describe(self, job_id: str) -> dict[str, Any]:
        """The raw ``DescribeTrainingJob`` reply of the job's first attempt; :class:`NotFound` if unknown."""
        return self._describe_name(native_name(job_id))

    def _describe_name(self, name: str) -> dict[str, Any]:
        try:
            with aws_errors("describe the training job", resource=name):
                return self.sagemaker.describe_training_job(TrainingJobName=name)
        except NotFound as exc:
            raise NotFound(f"no SageMaker training job {name!r} in {self.session.region}") from exc.__cause__

    def get(self, job_id: str) -> Job:
        """The job's current state from SageMaker, across its attempts.

        Enforces what SageMaker cannot: ``start_timeout`` (a job still provisioning past it is
        stopped and ``FAILED``) and ``max_restarts`` (a spot job ended for lack of capacity is
        resubmitted from its checkpoints); see :mod:`cloudbridge_aws.lifecycle`.
        """
        job = self.track(native_name(job_id))
        if job.state is JobState.FAILED and job.detail and job.native_id:
            tail = self._log_tail(job.native_id)
            if tail:
                job.detail += f"\nlast {len(tail)} job log lines:\n" + "\n".join(tail)
        return job.bind(self)

    def _log_tail(self, name: str) -> list[str]:
        """The last :data:`TAIL_LINES` lines the failed job logged (read once, then cached)."""
        if name not in self._tails:
            try:
                lines = deque(read_logs(self.session.client("logs"), name), maxlen=TAIL_LINES)
            except CloudbridgeError:
                return []  # logs are a courtesy here; the failure reason stands on its own
            self._tails[name] = list(lines)
        return self._tails[name]

    def list(self) -> list[Job]:
        """cloudbridge's SageMaker jobs in this region, newest first (one ``ListTrainingJobs`` pass).

        Restarts (``<name>-r<N>``) are not listed on their own: ``get`` folds them into their job.
        """
        jobs: list[Job] = []
        paginator = self.sagemaker.get_paginator("list_training_jobs")
        with aws_errors("list training jobs"):
            for page in paginator.paginate(SortBy="CreationTime", SortOrder="Descending"):
                for summary in page.get("TrainingJobSummaries", []):
                    name = summary["TrainingJobName"]
                    if not JOB_SUFFIX_RE.search(name):
                        continue
                    job = job_from_description(
                        {
                            "TrainingJobName": name,
                            "TrainingJobStatus": summary.get("TrainingJobStatus", "InProgress"),
                            "SecondaryStatus": summary.get("SecondaryStatus"),
                            "CreationTime": summary.get("CreationTime"),
                            "TrainingEndTime": summary.get("TrainingEndTime"),
                        }
                    )
                    jobs.append(job.bind(self))
        jobs.sort(key=lambda j: j.created_at or 0.0, reverse=True)
        return jobs

    def cancel(self, job_id: str) -> Job:
        """``StopTrainingJob`` of the newest attempt (SageMaker uploads what the job wrote so far)."""
        job = self.get(job_id)
        if job.state.is_terminal:
            return job
        with aws_errors("stop the training job", resource=job.native_id):
            self.sagemaker.stop_training_job(TrainingJobName=job.native_id)
        return self.get(job_id)

    def logs(self, job_id: str, follow: bool = False, timeout: float | None = None) -> Iterator[str]:
        """Lines from CloudWatch Logs (``/aws/sagemaker/TrainingJobs``), attempt after attempt.

        ``follow`` polls until the job ends (restarts included); with ``timeout`` seconds a follow
        ends with :class:`~cloudbridge.errors.StageTimeout` (stage ``log follow``); the job keeps running.
        """
        native_name(job_id)
        if follow:
            self.describe(job_id)  # an unknown job is NotFound now, not an endless poll
        return follow_logs(self, job_id, follow=follow, timeout=timeout)
