"""``az://`` storage on Azurite: the shared storage conformance suite, and sync with every scheme."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.testing.azurite import ACCOUNT
from cloudbridge.testing.storage import StorageConformance
from cloudbridge.testing.sync import SyncConformance


class TestBlobStorageConformance(StorageConformance):
    """Every generic storage rule on Azure Blob (Azurite).

    Listing pages hold 100 blobs here (5,000 by default), so the 300 objects of the pagination test
    span three pages and the continuation markers are really followed.
    """

    many_objects = 300

    @pytest.fixture
    def storage(self, settings_values: dict[str, Any]) -> Any:
        from cloudbridge_azure.provider import AzureProvider
        from cloudbridge_azure.settings import AzureSettings

        return AzureProvider(AzureSettings(**settings_values, list_page_size=100)).storage

    @pytest.fixture
    def base_uri(self, container: str) -> str:
        return f"az://{ACCOUNT}/{container}/conformance-{uuid.uuid4().hex[:8]}"


class TestSyncLocalToBlob(SyncConformance):
    """sync local -> az:// (the storage is found by scheme, as `cloudbridge storage sync` does)."""

    @pytest.fixture
    def src_uri(self, tmp_path: Path) -> str:
        return str(tmp_path / "src")

    @pytest.fixture
    def dst_uri(self, container: str) -> str:
        return f"az://{ACCOUNT}/{container}/dst-{uuid.uuid4().hex[:8]}"


class TestSyncBlobToLocal(SyncConformance):
    """sync az:// -> local."""

    source_mtime_settable = False

    @pytest.fixture
    def src_uri(self, container: str) -> str:
        return f"az://{ACCOUNT}/{container}/src-{uuid.uuid4().hex[:8]}"

    @pytest.fixture
    def dst_uri(self, tmp_path: Path) -> str:
        return str(tmp_path / "dst")
