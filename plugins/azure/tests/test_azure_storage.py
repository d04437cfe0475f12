"""Blob specifics beyond the conformance suite: block uploads with concurrency, MD5 integrity."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.errors import NotFound, StorageError
from cloudbridge.testing.azurite import ACCOUNT


@pytest.fixture
def small_blocks(settings_values: dict[str, Any]) -> Any:
    from cloudbridge_azure.provider import AzureProvider
    from cloudbridge_azure.settings import AzureSettings

    return AzureProvider(AzureSettings(**settings_values, single_put_size=256 * 1024, block_size=64 * 1024,
                                       max_concurrency=4))


def test_large_file_goes_up_in_blocks_with_whole_md5(small_blocks: Any, container: str, tmp_path: Path) -> None:
    payload = os.urandom(1024 * 1024 + 17)
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    uri = f"az://{ACCOUNT}/{container}/big.bin"
    info = small_blocks.storage.upload(source, uri)
    assert info.checksum == hashlib.sha256(payload).hexdigest()
    blob = small_blocks.storage.container_client(f"{ACCOUNT}/{container}").get_blob_client("big.bin")
    committed, uncommitted = blob.get_block_list("all")
    assert len(committed) == 17 and not uncommitted, "1 MiB + 17 B in 64 KiB blocks"
    props = blob.get_blob_properties()
    assert bytes(props.content_settings.content_md5) == hashlib.md5(payload).digest()
    target = tmp_path / "back.bin"
    small_blocks.storage.download(uri, target)
    assert target.read_bytes() == payload


@pytest.mark.parametrize("how", ["download", "read"])
def test_corrupted_blob_is_refused(provider: Any, container: str, tmp_path: Path, how: str) -> None:
    """A blob whose bytes no longer match its recorded MD5 is refused, and no file appears."""
    from azure.storage.blob import ContentSettings

    uri = f"az://{ACCOUNT}/{container}/model.bin"
    good = os.urandom(4096)
    provider.storage.write_bytes(uri, good)
    blob = provider.storage.container_client(f"{ACCOUNT}/{container}").get_blob_client("model.bin")
    bad = bytearray(good)
    bad[100] ^= 0xFF
    # another writer replaces the bytes, then puts the old MD5 back on the blob (a silent corruption;
    # Azurite checks an MD5 sent with Put Blob, so it is restored afterwards with Set Blob Properties)
    blob.upload_blob(bytes(bad), overwrite=True)
    blob.set_http_headers(ContentSettings(content_md5=bytearray(hashlib.md5(good).digest())))
    target = tmp_path / "out" / "model.bin"
    with pytest.raises(StorageError, match="integrity check failed .*(MD5|sha256) differs"):
        if how == "download":
            provider.storage.download(uri, target)
        else:
            provider.storage.read_bytes(uri)
    assert not target.exists()


def test_missing_container_names_the_fix(provider: Any) -> None:
    with pytest.raises(NotFound, match="az storage container create --account-name devstoreaccount1"):
        provider.storage.write_bytes(f"az://{ACCOUNT}/no-such-container/x", b"1")
