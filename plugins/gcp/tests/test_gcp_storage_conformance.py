"""``gs://`` storage against gcp-storage-emulator: the shared conformance suites plus GCS-only rules."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.testing.storage import StorageConformance
from cloudbridge.testing.sync import SyncConformance


class TestGcsStorageConformance(StorageConformance):
    """Every generic storage rule on GCS (the 256 KiB chunk size makes the large objects resumable)."""

    @pytest.fixture
    def storage(self, provider: Any) -> Any:
        return provider.storage

    @pytest.fixture
    def base_uri(self, bucket: str) -> str:
        return f"gs://{bucket}/conformance-{uuid.uuid4().hex[:8]}"


def _prefix(bucket: str, name: str) -> str:
    return f"gs://{bucket}/{name}-{uuid.uuid4().hex[:8]}"


class TestSyncLocalToGcs(SyncConformance):
    @pytest.fixture
    def src_uri(self, tmp_path: Path) -> str:
        return str(tmp_path / "src")

    @pytest.fixture
    def dst_uri(self, bucket: str) -> str:
        return _prefix(bucket, "dst")


class TestSyncGcsToLocal(SyncConformance):
    source_mtime_settable = False

    @pytest.fixture
    def src_uri(self, bucket: str) -> str:
        return _prefix(bucket, "src")

    @pytest.fixture
    def dst_uri(self, tmp_path: Path) -> str:
        return str(tmp_path / "dst")


class TestSyncGcsToGcs(SyncConformance):
    source_mtime_settable = False

    @pytest.fixture
    def src_uri(self, bucket: str) -> str:
        return _prefix(bucket, "src")

    @pytest.fixture
    def dst_uri(self, gcs_env: Any, bucket: str) -> str:
        other = f"{bucket}-b"
        gcs_env.create_bucket(other)
        return _prefix(other, "dst")
