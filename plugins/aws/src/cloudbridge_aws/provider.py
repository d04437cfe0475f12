"""``AwsProvider``: settings, one boto3 session, and the three capabilities built on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudbridge.interfaces import Provider
from cloudbridge.records import CheckReport
from cloudbridge_aws.session import AwsSession
from cloudbridge_aws.settings import AwsSettings

if TYPE_CHECKING:
    from cloudbridge_aws.compute import SageMakerCompute
    from cloudbridge_aws.deploy import SageMakerDeploy
    from cloudbridge_aws.storage import S3Storage

__all__ = ["AwsProvider"]


class AwsProvider(Provider):
    """Amazon S3 storage, SageMaker training jobs and SageMaker real-time endpoints."""

    name = "aws"

    def __init__(self, settings: AwsSettings | None = None) -> None:
        super().__init__(settings if settings is not None else AwsSettings())
        self.session = AwsSession(self.settings)
        self._storage: S3Storage | None = None
        self._compute: SageMakerCompute | None = None
        self._deploy: SageMakerDeploy | None = None

    @property
    def storage(self) -> S3Storage:
        """:class:`~cloudbridge_aws.storage.S3Storage` for ``s3://`` URIs."""
        if self._storage is None:
            from cloudbridge_aws.storage import S3Storage

            self._storage = S3Storage(self.session)
        return self._storage

    @property
    def compute(self) -> SageMakerCompute:
        """:class:`~cloudbridge_aws.compute.SageMakerCompute` (SageMaker training jobs)."""
        if self._compute is None:
            from cloudbridge_aws.compute import SageMakerCompute

            self._compute = SageMakerCompute(self.session, self.storage)
        return self._compute

    @property
    def deploy(self) -> SageMakerDeploy:
        """:class:`~cloudbridge_aws.deploy.SageMakerDeploy` (SageMaker real-time endpoints)."""
        if self._deploy is None:
            from cloudbridge_aws.deploy import SageMakerDeploy

            self._deploy = SageMakerDeploy(self.session, self.storage)
        return self._deploy

    def check(self) -> CheckReport:
        """Region, credentials (STS ``GetCallerIdentity``), execution role and bucket, each with its fix."""
        from cloudbridge_aws.checks import run_checks

        return run_checks(self)

    def __repr__(self) -> str:
        region = self.settings.region or "default region"
        return f"<AwsProvider {region}>"
