"""SageMaker training jobs: the core's :class:`~cloudbridge.managed.compute.ManagedCompute` on
:class:`~cloudbridge_aws.adapter.SageMakerAdapter` (ids ``aws-<job name>``).

The request is built by the pure :func:`~cloudbridge_aws.training_request.to_training_job_request`
steps; code and launcher packages are content-addressed, so unchanged code is never uploaded twice.
What SageMaker does not enforce itself (``start_timeout``, restarts after spot interruption) is the
core's (:mod:`cloudbridge.managed.lifecycle`).
"""

from __future__ import annotations

from typing import Any

from cloudbridge.managed.compute import TAIL_LINES, ManagedCompute
from cloudbridge_aws.adapter import SageMakerAdapter, native_name
from cloudbridge_aws.session import AwsSession
from cloudbridge_aws.storage import S3Storage

__all__ = ["TAIL_LINES", "SageMakerCompute", "native_name"]


class SageMakerCompute(ManagedCompute):
    """:class:`~cloudbridge.interfaces.Compute` on SageMaker training jobs (ids ``aws-<job name>``)."""

    adapter: SageMakerAdapter

    def __init__(self, session: AwsSession, storage: S3Storage) -> None:
        super().__init__(SageMakerAdapter(session), storage)
        self.session = session
        self.settings = session.settings

    @property
    def sagemaker(self) -> Any:
        """The boto3 SageMaker client."""
        return self.session.client("sagemaker")

    def describe(self, job_id: str) -> dict[str, Any]:
        """The raw ``DescribeTrainingJob`` reply of the job's first attempt; :class:`NotFound` if unknown."""
        return self.adapter.describe_raw(native_name(job_id))
