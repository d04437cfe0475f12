"""``s3://`` storage against the moto server: the shared conformance suite plus S3-only rules."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cloudbridge.testing.storage import StorageConformance


class TestS3StorageConformance(StorageConformance):
    """Every generic storage rule on S3 (moto)."""

    @pytest.fixture
    def storage(self, provider: Any) -> Any:
        return provider.storage

    @pytest.fixture
    def base_uri(self, bucket: str) -> str:
        return f"s3://{bucket}/conformance-{uuid.uuid4().hex[:8]}"
