"""``StorageConformance``: the tests every :class:`~cloudbridge.interfaces.Storage` must pass.

A provider proves its storage by subclassing this class in its own test module and overriding
two fixtures (the model is fsspec's abstract test classes)::

    from cloudbridge.testing.storage import StorageConformance

    class TestS3Conformance(StorageConformance):
        @pytest.fixture
        def storage(self, moto_s3):            # the Storage under test
            return S3Storage(settings)

        @pytest.fixture
        def base_uri(self, storage):           # a fresh, empty prefix for each test
            return f"s3://bucket/conformance-{uuid.uuid4().hex}"

Contract checked here (beyond the docstrings of :class:`~cloudbridge.interfaces.Storage`):

* ``list(prefix)`` treats ``prefix`` as a directory: it returns objects under ``prefix/``, sorted
  by key, with keys relative to the prefix (``"a.txt"``, ``"sub/b.txt"``); ``recursive=False``
  returns direct child objects plus one zero-size entry per sub-prefix whose key ends in ``/``.
* ``stat`` fills ``size`` and at least one of ``etag``/``checksum``; ``checksum``, when given, is the
  hex sha256 of the content.
* deleting a missing object is fine; reading, stat-ing a missing one raises ``NotFound``.
* every operation on a missing bucket raises ``BucketNotFound`` ("bucket SCHEME://BUCKET does not exist").
* keys with ``..`` segments or NUL bytes raise ``UnsafeKey`` and write nothing.
* a write whose source stream fails leaves no object (and nothing listed) behind.

Set ``large_size`` lower in a subclass only if the backend cannot hold 9 MB objects.
"""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cloudbridge.errors import BucketNotFound, NotFound, UnsafeKey
from cloudbridge.interfaces import Storage
from cloudbridge.uri import parse_uri

__all__ = ["FailingStream", "StorageConformance", "join"]


def join(base_uri: str, key: str) -> str:
    """``base_uri`` + ``/`` + ``key`` (string form, so backends see what users type)."""
    return base_uri.rstrip("/") + "/" + key


class FailingStream(io.RawIOBase):
    """A readable stream that yields ``good`` bytes of data and then raises ``OSError``."""

    def __init__(self, good: int) -> None:
        self.left = good

    def readable(self) -> bool:
        """Always ``True``: this is a readable stream."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with ``x`` bytes until ``good`` bytes were given, then raise ``OSError``."""
        if self.left <= 0:
            raise OSError("simulated failure of the source stream")
        n = min(len(buffer), self.left, 64 * 1024)
        buffer[:n] = b"x" * n
        self.left -= n
        return n


class StorageConformance:
    """Pytest base class; subclass it and override the ``storage`` and ``base_uri`` fixtures."""

    #: Size of the "large" object; above 8 MB so multipart code paths run on clouds.
    large_size: int = 9 * 1024 * 1024 + 123
    #: Number of objects in the pagination test (more than one S3 page of 1,000).
    many_objects: int = 1100
    #: False for a backend without buckets (a local filesystem): the missing-bucket test is skipped.
    has_buckets: bool = True

    @pytest.fixture
    def storage(self) -> Storage:
        """The storage under test; a subclass must override this fixture."""
        raise NotImplementedError("override the `storage` fixture in your StorageConformance subclass")

    @pytest.fixture
    def base_uri(self) -> str:
        """A fresh, empty prefix for each test; a subclass must override this fixture."""
        raise NotImplementedError("override the `base_uri` fixture in your StorageConformance subclass")

    # ---- basic objects ------------------------------------------------------------------------
    def test_write_read_roundtrip(self, storage: Storage, base_uri: str) -> None:
        """``write_bytes`` then ``read_bytes`` and ``open_read`` (partial and rest) return the same bytes."""
        uri = join(base_uri, "hello.txt")
        info = storage.write_bytes(uri, b"hello world")
        assert info.size == 11
        assert storage.read_bytes(uri) == b"hello world"
        with storage.open_read(uri) as stream:
            assert stream.read(5) == b"hello"
            assert stream.read() == b" world"

    def test_overwrite_replaces(self, storage: Storage, base_uri: str) -> None:
        """Writing an existing key replaces its content and its size, even with a shorter object."""
        uri = join(base_uri, "f.bin")
        storage.write_bytes(uri, b"first version, longer")
        storage.write_bytes(uri, b"second")
        assert storage.read_bytes(uri) == b"second"
        assert storage.stat(uri).size == 6

    def test_stat_size_and_identity(self, storage: Storage, base_uri: str) -> None:
        """``stat`` reports the size, an etag or sha256 checksum, and an identity that changes with the content."""
        uri = join(base_uri, "data.bin")
        payload = os.urandom(1000)
        storage.write_bytes(uri, payload)
        info = storage.stat(uri)
        assert info.size == 1000
        assert info.etag or info.checksum, "stat must report an etag or a checksum"
        if info.checksum:
            assert info.checksum == hashlib.sha256(payload).hexdigest()
        assert info.mtime is None or info.mtime > 0
        storage.write_bytes(uri, os.urandom(1000))
        again = storage.stat(uri)
        assert (again.etag, again.checksum) != (info.etag, info.checksum), "identity must change with content"

    def test_exists(self, storage: Storage, base_uri: str) -> None:
        """``exists`` is False before a write and True after it."""
        uri = join(base_uri, "x")
        assert not storage.exists(uri)
        storage.write_bytes(uri, b"1")
        assert storage.exists(uri)

    def test_empty_object(self, storage: Storage, base_uri: str) -> None:
        """A zero-byte object can be written, stat-ed (size 0) and read back."""
        uri = join(base_uri, "empty")
        storage.write_bytes(uri, b"")
        assert storage.stat(uri).size == 0
        assert storage.read_bytes(uri) == b""

    def test_binary_safety(self, storage: Storage, base_uri: str) -> None:
        """Arbitrary bytes (NUL, CR/LF, every byte value) round-trip unchanged."""
        payload = bytes(range(256)) * 64 + b"\r\n\x00\r" + os.urandom(4096)
        uri = join(base_uri, "blob.bin")
        storage.write_bytes(uri, payload)
        assert storage.read_bytes(uri) == payload

    def test_unicode_keys(self, storage: Storage, base_uri: str) -> None:
        """Non-ASCII, emoji, space, ``+`` and ``=`` keys round-trip and list in sorted order."""
        names = ["données/été.txt", "日本語/ファイル.txt", "emoji-🚀.txt", "space name.txt", "plus+and=eq.txt"]
        for i, name in enumerate(names):
            storage.write_bytes(join(base_uri, name), f"payload {i}".encode())
        listed = [info.key for info in storage.list(base_uri, recursive=True)]
        assert listed == sorted(names)
        for i, name in enumerate(names):
            assert storage.read_bytes(join(base_uri, name)) == f"payload {i}".encode()

    # ---- missing objects, deletes ---------------------------------------------------------------
    def test_not_found(self, storage: Storage, base_uri: str) -> None:
        """``stat``, ``read_bytes`` and ``open_read`` of a missing object raise ``NotFound``."""
        uri = join(base_uri, "missing.txt")
        with pytest.raises(NotFound):
            storage.stat(uri)
        with pytest.raises(NotFound):
            storage.read_bytes(uri)
        with pytest.raises(NotFound):
            storage.open_read(uri)

    def test_missing_bucket_is_one_error(self, storage: Storage, base_uri: str) -> None:
        """Every operation on a bucket that does not exist raises :class:`BucketNotFound`, naming it.

        The same type, message and exit status on every backend (issue 18): a script or a user never
        has to know which cloud said "no such bucket" in its own words.
        """
        if not self.has_buckets:
            pytest.skip(f"{type(self).__name__}.has_buckets is False")
        parsed = parse_uri(base_uri)
        owner, _, _ = parsed.bucket.rpartition("/")  # az://account/container: the container is missing
        missing = f"{owner}/" if owner else ""
        missing += f"cb-missing-{os.urandom(4).hex()}"
        bucket_uri = f"{parsed.scheme}://{missing}"
        uri = f"{bucket_uri}/some/key.txt"
        operations = {
            "stat": lambda: storage.stat(uri),
            "read_bytes": lambda: storage.read_bytes(uri),
            "write_bytes": lambda: storage.write_bytes(uri, b"x"),
            "list": lambda: list(storage.list(f"{bucket_uri}/some", recursive=True)),
            "delete": lambda: storage.delete(uri),
        }
        for name, operation in operations.items():
            with pytest.raises(BucketNotFound) as caught:
                operation()
            error = caught.value
            assert error.bucket_uri == bucket_uri, name
            assert error.message == f"bucket {bucket_uri} does not exist", name
            assert error.exit_code == 2, name

    def test_list_missing_prefix_is_empty(self, storage: Storage, base_uri: str) -> None:
        """Listing a prefix that holds nothing yields nothing (no error), recursive or not."""
        assert list(storage.list(join(base_uri, "nothing-here"), recursive=True)) == []
        assert list(storage.list(join(base_uri, "nothing-here"), recursive=False)) == []

    def test_delete_idempotent(self, storage: Storage, base_uri: str) -> None:
        """Deleting removes the object; deleting it again, or a key that never existed, is not an error."""
        uri = join(base_uri, "gone.txt")
        storage.write_bytes(uri, b"bye")
        storage.delete(uri)
        assert not storage.exists(uri)
        storage.delete(uri)  # a second delete is not an error
        storage.delete(join(base_uri, "never-existed"))
        assert list(storage.list(base_uri)) == []

    def test_delete_leaves_siblings(self, storage: Storage, base_uri: str) -> None:
        """Deleting one object leaves the other objects under the same prefix alone."""
        storage.write_bytes(join(base_uri, "a/1"), b"1")
        storage.write_bytes(join(base_uri, "a/2"), b"2")
        storage.delete(join(base_uri, "a/1"))
        assert [i.key for i in storage.list(base_uri)] == ["a/2"]

    # ---- listing --------------------------------------------------------------------------------
    def _populate(self, storage: Storage, base_uri: str) -> dict[str, bytes]:
        files = {
            "a.txt": b"a",
            "b/c.txt": b"bc",
            "b/d/e.txt": b"bde",
            "b-sibling.txt": b"sib",
            "z.bin": b"z" * 10,
        }
        for key, data in files.items():
            storage.write_bytes(join(base_uri, key), data)
        return files

    def test_list_recursive(self, storage: Storage, base_uri: str) -> None:
        """A recursive listing returns every object sorted by relative key, with sizes and child URIs."""
        files = self._populate(storage, base_uri)
        infos = list(storage.list(base_uri, recursive=True))
        assert [i.key for i in infos] == sorted(files)
        for info in infos:
            assert info.size == len(files[info.key])
            assert parse_uri(info.uri) == parse_uri(join(base_uri, info.key))

    def test_list_trailing_slash_same(self, storage: Storage, base_uri: str) -> None:
        """A prefix with or without a trailing ``/`` lists the same objects."""
        self._populate(storage, base_uri)
        plain = [i.key for i in storage.list(base_uri)]
        slashed = [i.key for i in storage.list(base_uri.rstrip("/") + "/")]
        assert plain == slashed

    def test_list_sub_prefix(self, storage: Storage, base_uri: str) -> None:
        """A prefix is a directory: listing ``b`` never returns ``b-sibling.txt``."""
        self._populate(storage, base_uri)
        keys = [i.key for i in storage.list(join(base_uri, "b"), recursive=True)]
        assert keys == ["c.txt", "d/e.txt"], "a prefix is a directory: b-sibling.txt is not under b/"

    def test_list_non_recursive(self, storage: Storage, base_uri: str) -> None:
        """A non-recursive listing returns direct objects plus one ``sub/`` entry per sub-prefix."""
        self._populate(storage, base_uri)
        infos = list(storage.list(base_uri, recursive=False))
        assert [i.key for i in infos] == ["a.txt", "b-sibling.txt", "b/", "z.bin"]
        objects = {i.key: i.size for i in infos if not i.key.endswith("/")}
        assert objects == {"a.txt": 1, "b-sibling.txt": 3, "z.bin": 10}
        sub = [i.key for i in storage.list(join(base_uri, "b"), recursive=False)]
        assert sub == ["c.txt", "d/"]

    def test_list_many_objects(self, storage: Storage, base_uri: str) -> None:
        """Listings paginate: ``many_objects`` keys (over one S3 page) all come back, and ``du`` counts them."""
        keys = [f"many/{i:05d}.txt" for i in range(self.many_objects)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: storage.write_bytes(join(base_uri, k), k.encode()), keys))
        listed = [i.key for i in storage.list(join(base_uri, "many"), recursive=True)]
        assert listed == [k.split("/", 1)[1] for k in keys]
        assert storage.du(base_uri) == (len(keys), sum(len(k) for k in keys))

    # ---- large and streamed ---------------------------------------------------------------------
    def test_large_upload_download(self, storage: Storage, base_uri: str, tmp_path: Any) -> None:
        """A ``large_size`` file (multipart on clouds) uploads and downloads intact, leaving no temp files."""
        source = tmp_path / "large.bin"
        block = os.urandom(1024 * 1024)
        with open(source, "wb") as handle:
            for i in range(self.large_size // len(block)):
                handle.write(bytes([i % 256]) + block[1:])
            handle.write(os.urandom(self.large_size % len(block)))
        expected = hashlib.sha256(source.read_bytes()).hexdigest()
        uri = join(base_uri, "big/large.bin")
        info = storage.upload(source, uri)
        assert info.size == self.large_size
        assert storage.stat(uri).size == self.large_size
        target = tmp_path / "out" / "large.bin"
        storage.download(uri, target)
        assert hashlib.sha256(target.read_bytes()).hexdigest() == expected
        leftovers = [p.name for p in target.parent.iterdir() if p.name != "large.bin"]
        assert leftovers == [], f"download left files behind: {leftovers}"

    def test_write_stream_unknown_size(self, storage: Storage, base_uri: str) -> None:
        """``write_stream`` with ``size=None`` stores a large stream whose content reads back intact."""
        payload = os.urandom(self.large_size)
        uri = join(base_uri, "streamed.bin")
        info = storage.write_stream(uri, io.BufferedReader(io.BytesIO(payload)), size=None)
        assert info.size == len(payload)
        digest = hashlib.sha256()
        with storage.open_read(uri) as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()

    # ---- safety ---------------------------------------------------------------------------------
    @pytest.mark.parametrize("key", ["../escape.txt", "a/../../escape.txt", "a/\x00b"])
    def test_unsafe_keys_refused(self, storage: Storage, base_uri: str, key: str) -> None:
        """Keys with ``..`` segments or NUL raise ``UnsafeKey`` on write and stat, and write nothing."""
        inside = join(base_uri, "inner")
        uri = inside + "/" + key
        with pytest.raises(UnsafeKey):
            storage.write_bytes(uri, b"nope")
        with pytest.raises(UnsafeKey):
            storage.stat(uri)
        with pytest.raises(UnsafeKey):
            parse_uri(inside).child(key)
        assert list(storage.list(base_uri)) == [], "nothing may be written for an unsafe key"

    def test_absolute_child_key_refused(self, storage: Storage, base_uri: str) -> None:
        """An absolute child key (``/etc/passwd``) raises ``UnsafeKey``."""
        with pytest.raises(UnsafeKey):
            parse_uri(base_uri).child("/etc/passwd")

    def test_no_partial_object_visible(self, storage: Storage, base_uri: str) -> None:
        """A write whose source stream fails leaves no object and nothing listed."""
        uri = join(base_uri, "partial.bin")
        with pytest.raises(Exception):  # noqa: B017 - any error type; the point is what is left behind
            storage.write_stream(uri, io.BufferedReader(FailingStream(3 * 1024 * 1024)), size=None)
        assert not storage.exists(uri)
        assert list(storage.list(base_uri)) == []

    def test_failed_overwrite_keeps_old(self, storage: Storage, base_uri: str) -> None:
        """A failed overwrite keeps the previous content of the object."""
        uri = join(base_uri, "keep.txt")
        storage.write_bytes(uri, b"old content")
        with pytest.raises(Exception):  # noqa: B017
            storage.write_stream(uri, io.BufferedReader(FailingStream(100_000)), size=None)
        assert storage.read_bytes(uri) == b"old content"
