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


@pytest.mark.parametrize("size", [100_000, 700_000], ids=["one-request", "resumable"])
def test_an_upload_stored_with_other_bytes_is_refused_and_removed(gcs: Any, provider: Any, bucket: str,
                                                                  monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    """The emulator stores a flipped byte (and reports that content's crc32c): the upload fails, no object stays."""
    import base64

    import google_crc32c

    storage_backend = gcs._server._storage
    original = storage_backend.create_file

    def flip(bucket_name: str, file_name: str, content: bytes, file_obj: dict[str, Any], *rest: Any) -> Any:
        if file_name.startswith("flipped-"):
            content = bytes([content[0] ^ 0xFF]) + content[1:]
            file_obj["crc32c"] = base64.b64encode(google_crc32c.Checksum(content).digest()).decode()
        return original(bucket_name, file_name, content, file_obj, *rest)

    monkeypatch.setattr(storage_backend, "create_file", flip)
    uri = f"gs://{bucket}/flipped-{size}.bin"
    with pytest.raises(StorageError, match="integrity check failed"):
        provider.storage.write_bytes(uri, os.urandom(size))  # chunk_size is 256 KiB: 700 KB is a resumable session
    monkeypatch.setattr(storage_backend, "create_file", original)
    assert not provider.storage.exists(uri), "the corrupt object was left in the bucket"
