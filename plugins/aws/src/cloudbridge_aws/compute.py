"""SageMaker training jobs: submit, describe, list, stop and CloudWatch logs.

The request itself is built by the pure :func:`~cloudbridge_aws.training_request.to_training_job_request`;
this module only uploads what the job needs (code package, launcher package: both content-addressed,
so unchanged code is never uploaded twice) and makes the SDK calls.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from cloudbridge.errors import CloudbridgeError, InvalidSpec, NotFound
from cloudbridge.interfaces import Compute
from cloudbridge.records import Job, JobState
from cloudbridge.specs import JobSpec
from cloudbridge_aws.errors import aws_errors
from cloudbridge_aws.logs import read_logs
from cloudbridge_aws.session import AwsSession
from cloudbridge_aws.states import job_from_description
from cloudbridge_aws.storage import S3Storage
from cloudbridge_aws.training_request import job_name_for, launcher_package, launcher_uri, to_training_job_request

__all__ = ["SageMakerCompute", "native_name"]

#: Log lines appended to the detail of a failed job.
TAIL_LINES = 20
_ID_RE = re.compile(r"^aws-([A-Za-z0-9](-*[A-Za-z0-9]){0,62})$")
_OURS_RE = re.compile(r"-\d{8}-\d{6}-[0-9a-f]{4}$")


def native_name(job_id: str) -> str:
    """``aws-<name>`` -> the SageMaker training job name; anything else is :class:`NotFound`."""
    match = _ID_RE.match(job_id)
    if not match:
        raise NotFound(f"no AWS job with id {job_id!r}", hint="AWS job ids look like aws-<sagemaker job name>")
    return match.group(1)


class SageMakerCompute(Compute):
    """:class:`~cloudbridge.interfaces.Compute` on SageMaker training jobs (ids ``aws-<job name>``)."""

    poll_interval = 10.0

    def __init__(self, session: AwsSession, storage: S3Storage) -> None:
        self.session = session
        self.storage = storage
        self.settings = session.settings
        #: Bytes uploaded by the last :meth:`submit` (code + launcher packages; 0 when deduplicated).
        self.last_upload_bytes = 0
        self._spec_names: dict[str, str] = {}
        self._tails: dict[str, list[str]] = {}

    @property
    def sagemaker(self) -> Any:
        """The boto3 SageMaker client."""
        return self.session.client("sagemaker")

    # ---- uploads ---------------------------------------------------------------------------------
    def _prefix(self) -> str:
        from cloudbridge_aws.training_request import bucket_prefix

        return bucket_prefix(self.settings)

    def upload_code(self, spec: JobSpec) -> tuple[str, int]:
        """Package the workdir and upload it unless identical content is already there.

        Returns ``(code package URI, bytes uploaded)``.
        """
        from cloudbridge.packaging import build_archive, scan_workdir

        workdir = spec.resolved_workdir()
        if workdir is None:
            raise InvalidSpec("SageMaker jobs need a workdir to ship", source=spec.source, field="workdir")
        manifest = scan_workdir(workdir)
        uri = f"{self._prefix()}/code/{manifest.archive_name}"
        if self.storage.exists(uri):
            return uri, 0
        with tempfile.TemporaryDirectory(prefix="cb-aws-code-") as tmp:
            path = os.path.join(tmp, manifest.archive_name)
            size = build_archive(manifest, path)
            self.storage.upload(path, uri)
        return uri, size

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
        """Upload code (deduplicated), create the training job, return its first record."""
        suffix = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)
        job_name = job_name_for(spec.name, suffix)
        region = self.session.region
        # Validate everything that needs no upload before uploading anything.
        to_training_job_request(spec, self.settings, code_uri="s3://check/only", job_name=job_name, region=region)
        code_uri, code_bytes = self.upload_code(spec)
        self.last_upload_bytes = code_bytes + self.upload_launcher()
        request = to_training_job_request(spec, self.settings, code_uri=code_uri, job_name=job_name, region=region)
        with aws_errors("create the SageMaker training job", resource=job_name):
            self.sagemaker.create_training_job(**request)
        self._spec_names[job_name] = spec.name
        job = self.get(f"aws-{job_name}")
        job.extra["code_uri"] = code_uri
        job.extra["uploaded_bytes"] = self.last_upload_bytes
        return job

    def describe(self, job_id: str) -> dict[str, Any]:
        """The raw ``DescribeTrainingJob`` reply; :class:`NotFound` for an unknown job."""
        name = native_name(job_id)
        try:
            with aws_errors("describe the training job", resource=name):
                return self.sagemaker.describe_training_job(TrainingJobName=name)
        except NotFound as exc:
            raise NotFound(f"no SageMaker training job {name!r} in {self.session.region}") from exc.__cause__

    def get(self, job_id: str) -> Job:
        """The job's current state from SageMaker."""
        desc = self.describe(job_id)
        job = job_from_description(desc)
        job.name = self._spec_name(desc) or job.name
        if job.state is JobState.FAILED and job.detail:
            tail = self._log_tail(job.native_id or "")
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

    def _spec_name(self, desc: dict[str, Any]) -> str | None:
        """The job spec's own name, kept in the ``cloudbridge:name`` tag (read once per job)."""
        name = desc["TrainingJobName"]
        if name not in self._spec_names and desc.get("TrainingJobArn"):
            try:
                with aws_errors("read the job's tags", resource=name):
                    tags = self.sagemaker.list_tags(ResourceArn=desc["TrainingJobArn"]).get("Tags", [])
            except CloudbridgeError:
                return None  # the tag is a courtesy; the sanitized name stands in
            found = {t["Key"]: t["Value"] for t in tags}.get("cloudbridge:name")
            if found:
                self._spec_names[name] = found
        return self._spec_names.get(name)

    def list(self) -> list[Job]:
        """cloudbridge's SageMaker jobs in this region, newest first (one ``ListTrainingJobs`` pass)."""
        jobs: list[Job] = []
        paginator = self.sagemaker.get_paginator("list_training_jobs")
        with aws_errors("list training jobs"):
            for page in paginator.paginate(SortBy="CreationTime", SortOrder="Descending"):
                for summary in page.get("TrainingJobSummaries", []):
                    name = summary["TrainingJobName"]
                    if not _OURS_RE.search(name):
                        continue
                    created = summary.get("CreationTime")
                    status = summary.get("TrainingJobStatus", "InProgress")
                    secondary = summary.get("SecondaryStatus")
                    job = job_from_description(
                        {
                            "TrainingJobName": name,
                            "TrainingJobStatus": status,
                            "SecondaryStatus": secondary,
                            "CreationTime": created,
                            "TrainingEndTime": summary.get("TrainingEndTime"),
                        }
                    )
                    jobs.append(job.bind(self))
        jobs.sort(key=lambda j: j.created_at or 0.0, reverse=True)
        return jobs

    def cancel(self, job_id: str) -> Job:
        """``StopTrainingJob`` (SageMaker uploads what the job wrote so far); a no-op for ended jobs."""
        job = self.get(job_id)
        if job.state.is_terminal:
            return job
        with aws_errors("stop the training job", resource=job.native_id):
            self.sagemaker.stop_training_job(TrainingJobName=job.native_id)
        return self.get(job_id)

    def logs(self, job_id: str, follow: bool = False) -> Iterator[str]:
        """Lines from CloudWatch Logs (``/aws/sagemaker/TrainingJobs``); ``follow`` polls until the job ends."""
        name = native_name(job_id)
        if follow:
            self.describe(job_id)  # an unknown job is NotFound now, not an endless poll

        def done() -> bool:
            return self.get(job_id).state.is_terminal

        return read_logs(
            self.session.client("logs"), name, follow=follow, is_done=done, poll_interval=self.poll_interval
        )
