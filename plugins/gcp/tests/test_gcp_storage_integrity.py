"""A GCS object whose bytes no longer match its recorded crc32c is refused, by every read path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.errors import StorageError


@pytest.mark.parametrize("how", ["download", "read_bytes", "open_read"])
def test_corrupted_object_is_refused(gcs: Any, provider: Any, bucket: str, tmp_path: Path, how: str) -> None:
    uri = f"gs://{bucket}/model-{how}.bin"
    good = os.urandom(300_000)  # more than one read chunk of the stream
    provider.storage.write_bytes(uri, good)
    bad = bytearray(good)
    bad[150_000] ^= 0xFF
    gcs.corrupt(bucket, f"model-{how}.bin", bytes(bad))  # same metadata (crc32c), other bytes
    target = tmp_path / "out" / "model.bin"
    with pytest.raises(StorageError, match="integrity check failed"):
        if how == "download":
            provider.storage.download(uri, target)
        elif how == "read_bytes":
            provider.storage.read_bytes(uri)
        else:
            with provider.storage.open_read(uri) as stream:
                while stream.read(65536):
                    pass
    assert not target.exists() and not list(tmp_path.rglob("*.bin"))


def test_intact_object_reads_back(provider: Any, bucket: str) -> None:
    uri = f"gs://{bucket}/intact.bin"
    data = os.urandom(300_000)
    provider.storage.write_bytes(uri, data)
    with provider.storage.open_read(uri) as stream:
        assert stream.read() == data
