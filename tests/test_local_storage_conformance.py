"""The storage conformance suite on the builtin local filesystem storage, plus local-only rules."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cloudbridge.backends.local.storage import PARTIAL_PREFIX, LocalStorage
from cloudbridge.errors import NotFound, UnsafeKey, UserError
from cloudbridge.testing.storage import StorageConformance


class TestLocalStorageConformance(StorageConformance):
    """Every generic storage rule, on ``file://`` paths."""

    has_buckets = False

    @pytest.fixture
    def storage(self) -> LocalStorage:
        return LocalStorage()

    @pytest.fixture
    def base_uri(self, tmp_path: Path) -> str:
        root = tmp_path / "store"
        root.mkdir()
        return str(root)


class TestLocalStorageFileURIs(StorageConformance):
    """The same suite addressed with ``file:///`` URIs and a confining root."""

    has_buckets = False

    many_objects = 300

    @pytest.fixture
    def storage(self, tmp_path: Path) -> LocalStorage:
        return LocalStorage(root=tmp_path)

    @pytest.fixture
    def base_uri(self, tmp_path: Path) -> str:
        (tmp_path / "store").mkdir()
        return f"file://{tmp_path}/store"


def test_root_confines_paths(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.txt").write_text("secret")
    storage = LocalStorage(root=root)
    with pytest.raises(UnsafeKey):
        storage.stat(tmp_path / "outside.txt")
    os.symlink(tmp_path, root / "link")
    with pytest.raises(UnsafeKey, match="outside the storage root"):
        storage.read_bytes(root / "link" / "outside.txt")


def test_relative_parent_paths_are_user_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data.txt").write_bytes(b"d")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert LocalStorage().read_bytes("../data.txt") == b"d"


def test_checksum_lazy_and_cached(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    payload = os.urandom(50_000)
    path.write_bytes(payload)
    storage = LocalStorage()
    assert storage.stat(path).checksum is None, "stat must not hash files it has not seen"
    digest = storage.checksum(path)
    assert digest == hashlib.sha256(payload).hexdigest()
    assert storage.stat(path).checksum == digest
    assert LocalStorage().stat(path).checksum == digest, "the on-disk cache serves a new instance"
    path.write_bytes(b"changed")
    assert storage.stat(path).checksum is None
    assert storage.checksum(path) == hashlib.sha256(b"changed").hexdigest()


def test_written_objects_carry_checksum(tmp_path: Path) -> None:
    info = LocalStorage().write_bytes(tmp_path / "w.bin", b"abc")
    assert info.checksum == hashlib.sha256(b"abc").hexdigest()
    assert [i.checksum for i in LocalStorage().list(tmp_path)] == [info.checksum]


def test_write_stream_sets_mtime(tmp_path: Path) -> None:
    import io

    info = LocalStorage().write_stream(tmp_path / "m.txt", io.BytesIO(b"x"), mtime=1_600_000_000.5)
    assert abs(info.mtime - 1_600_000_000.5) < 1e-3


def test_partials_hidden_and_cleaned(tmp_path: Path) -> None:
    storage = LocalStorage()
    storage.write_bytes(tmp_path / "real.txt", b"r")
    dead = tmp_path / f"{PARTIAL_PREFIX}999999999-abcd-real.txt"
    dead.write_bytes(b"half")
    live = tmp_path / f"{PARTIAL_PREFIX}{os.getpid()}-abcd-other.txt"
    live.write_bytes(b"half")
    assert [i.key for i in storage.list(tmp_path)] == ["real.txt"]
    assert storage.cleanup_partials(tmp_path) == 1
    assert not dead.exists() and live.exists()


def test_a_cloud_download_in_progress_survives_another_syncs_cleanup(tmp_path: Path) -> None:
    """The verified temp file of a cloud download (``partial_file``, S3/GCS/Azure) carries this
    process's pid, so a second sync into the same folder does not take it for a dead one's."""
    from cloudbridge.transfers.digests import partial_file

    with partial_file(tmp_path / "sub" / "model.bin") as tmp:
        Path(tmp).write_bytes(b"half")
        assert Path(tmp).name.startswith(f"{PARTIAL_PREFIX}{os.getpid()}-")
        assert LocalStorage().cleanup_partials(tmp_path) == 0 and Path(tmp).exists()
    assert (tmp_path / "sub" / "model.bin").read_bytes() == b"half"


def test_short_stream_leaves_nothing(tmp_path: Path) -> None:
    import io

    from cloudbridge.errors import StorageError

    with pytest.raises(StorageError, match="short write"):
        LocalStorage().write_stream(tmp_path / "s.bin", io.BytesIO(b"abc"), size=10)
    assert os.listdir(tmp_path) == []


def test_directory_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    storage = LocalStorage()
    with pytest.raises(NotFound):
        storage.stat(tmp_path / "d")
    with pytest.raises(UserError):
        storage.delete(tmp_path / "d")
    with pytest.raises(UserError):
        storage.write_bytes(tmp_path / "d", b"x")


def test_symlinked_file_listed_dir_not_followed(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f.txt").write_text("f")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "g.txt").write_text("g")
    os.symlink(tmp_path / "src" / "f.txt", tmp_path / "src" / "link.txt")
    os.symlink(tmp_path / "other", tmp_path / "src" / "dirlink")
    keys = [i.key for i in LocalStorage().list(tmp_path / "src")]
    assert keys == ["f.txt", "link.txt"]


def test_non_local_uri_refused() -> None:
    with pytest.raises(UserError):
        LocalStorage().stat("s3://bucket/key")
