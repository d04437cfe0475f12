"""``SyncConformance``: sync semantics, run for every pair of storages.

Subclass it with two fixtures, each a fresh, empty prefix (the model is
:class:`cloudbridge.testing.storage.StorageConformance`)::

    class TestSyncLocalToS3(SyncConformance):
        @pytest.fixture
        def src_uri(self, tmp_path):
            return str(tmp_path / "src")

        @pytest.fixture
        def dst_uri(self, s3_bucket):
            return f"s3://{s3_bucket}/dst-{uuid.uuid4().hex}"

The storages are found through :func:`cloudbridge.transfers.resolve.resolve`, exactly as
``cloudbridge storage sync`` finds them.
"""

from __future__ import annotations

import os
import string
import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cloudbridge.errors import NotFound, UserError
from cloudbridge.interfaces import Storage
from cloudbridge.testing.storage import join
from cloudbridge.transfers.resolve import resolve
from cloudbridge.transfers.sync import sync

__all__ = ["SyncConformance", "put_tree", "read_tree"]


def put_tree(base_uri: str, files: dict[str, bytes]) -> Storage:
    """Write ``files`` (key -> bytes) under ``base_uri``; return the storage used."""
    storage, _ = resolve(base_uri)
    for key, data in files.items():
        storage.write_bytes(join(base_uri, key), data)
    return storage


def read_tree(base_uri: str) -> dict[str, bytes]:
    """Every object under ``base_uri`` as key -> bytes."""
    storage, parsed = resolve(base_uri)
    return {i.key: storage.read_bytes(i.uri) for i in storage.list(parsed, recursive=True)}


SAMPLE = {
    "a.txt": b"alpha",
    "empty": b"",
    "nested/deep/x.bin": bytes(range(256)) * 10,
    "nested/y.csv": b"1,2,3\n",
    "unicode/été-🚀.txt": "données".encode(),
    "logs/run.log": b"log line\n",
    "logs/tmp/scratch.tmp": b"scratch",
}


_segment = st.text(alphabet=string.ascii_lowercase + string.digits + "-_.é", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..") and not s.startswith(".cb-partial-")
)
#: Generated trees: key -> bytes, no key both a file and a directory.
TREES = st.dictionaries(
    st.lists(_segment, min_size=1, max_size=3).map("/".join), st.binary(max_size=1500), min_size=1, max_size=12
).filter(lambda d: not any(k != o and o.startswith(k + "/") for k in d for o in d))


class SyncConformance:
    """Pytest base class: override ``src_uri`` and ``dst_uri`` (fresh empty prefixes)."""

    #: False when the source storage cannot have its modification times set (clouds).
    source_mtime_settable: bool = True

    @pytest.fixture
    def src_uri(self) -> str:
        """A fresh, empty source prefix; override it."""
        raise NotImplementedError("override the `src_uri` fixture")

    @pytest.fixture
    def dst_uri(self) -> str:
        """A fresh, empty destination prefix; override it."""
        raise NotImplementedError("override the `dst_uri` fixture")

    def test_first_sync_copies_everything_then_noop(self, src_uri: str, dst_uri: str) -> None:
        """A first sync copies every file and byte; a second one copies nothing."""
        put_tree(src_uri, SAMPLE)
        first = sync(src_uri, dst_uri, progress=False)
        assert first.ok, first.failures
        assert sorted(first.copied) == sorted(SAMPLE)
        assert first.bytes_copied == sum(len(v) for v in SAMPLE.values())
        assert read_tree(dst_uri) == SAMPLE
        second = sync(src_uri, dst_uri, progress=False)
        assert second.copied == [] and second.unchanged == len(SAMPLE)

    def test_changed_size_is_recopied(self, src_uri: str, dst_uri: str) -> None:
        """A file whose size changed is copied again, and only that file."""
        put_tree(src_uri, SAMPLE)
        sync(src_uri, dst_uri, progress=False)
        put_tree(src_uri, {"nested/y.csv": b"1,2,3,4\n"})
        result = sync(src_uri, dst_uri, progress=False)
        assert result.copied == ["nested/y.csv"]
        assert read_tree(dst_uri)["nested/y.csv"] == b"1,2,3,4\n"

    def test_same_size_change_found_by_checksum(self, src_uri: str, dst_uri: str) -> None:
        """A same-size change with a newer destination is found only with ``checksum=True``."""
        put_tree(src_uri, SAMPLE)
        sync(src_uri, dst_uri, progress=False)
        put_tree(dst_uri, {"a.txt": b"ALPHA"})  # same size, destination newer: only a checksum sees it
        assert sync(src_uri, dst_uri, progress=False).copied == []
        result = sync(src_uri, dst_uri, checksum=True, progress=False)
        assert result.copied == ["a.txt"]
        assert read_tree(dst_uri) == SAMPLE
        assert sync(src_uri, dst_uri, checksum=True, progress=False).copied == []

    def test_newer_source_is_recopied(self, src_uri: str, dst_uri: str) -> None:
        """A source file newer than its copy is copied again."""
        if not self.source_mtime_settable:
            pytest.skip("the source storage's mtimes cannot be set")
        put_tree(src_uri, SAMPLE)
        sync(src_uri, dst_uri, progress=False)
        storage, parsed = resolve(src_uri)
        path = parsed.child("a.txt").path
        with open(path, "wb") as handle:
            handle.write(b"ALPHA")
        future = os.stat(path).st_mtime + 3600
        os.utime(path, (future, future))
        assert sync(src_uri, dst_uri, progress=False).copied == ["a.txt"]
        assert read_tree(dst_uri)["a.txt"] == b"ALPHA"

    def test_delete_removes_only_absent_and_stays_inside(self, src_uri: str, dst_uri: str) -> None:
        """``delete=True`` removes only files absent from the source, never outside the destination."""
        put_tree(src_uri, SAMPLE)
        sync(src_uri, dst_uri, progress=False)
        put_tree(dst_uri, {"extra.txt": b"x", "nested/extra2": b"y"})
        sibling = dst_uri.rstrip("/") + "-sibling"
        put_tree(sibling, {"keep.txt": b"k"})
        without = sync(src_uri, dst_uri, progress=False)
        assert without.deleted == [] and "extra.txt" in read_tree(dst_uri)
        dry = sync(src_uri, dst_uri, delete=True, dry_run=True, progress=False)
        assert [i.key for i in dry.plan.to_delete] == ["extra.txt", "nested/extra2"]
        assert "extra.txt" in read_tree(dst_uri), "a dry run changes nothing"
        result = sync(src_uri, dst_uri, delete=True, progress=False)
        assert result.deleted == ["extra.txt", "nested/extra2"]
        assert read_tree(dst_uri) == SAMPLE
        assert read_tree(sibling) == {"keep.txt": b"k"}, "delete must never leave the destination prefix"

    def test_include_exclude(self, src_uri: str, dst_uri: str) -> None:
        """``include``/``exclude`` patterns select the files copied and are counted in the plan."""
        put_tree(src_uri, SAMPLE)
        result = sync(src_uri, dst_uri, exclude=["*.tmp", "unicode/*"], progress=False)
        expected = {k: v for k, v in SAMPLE.items() if not k.endswith(".tmp") and not k.startswith("unicode/")}
        assert read_tree(dst_uri) == expected
        assert result.plan.excluded == 2
        only_logs = dst_uri.rstrip("/") + "-logs"
        sync(src_uri, only_logs, include=["logs/*"], exclude=["*.tmp"], progress=False)
        assert read_tree(only_logs) == {"logs/run.log": b"log line\n"}

    def test_delete_spares_excluded(self, src_uri: str, dst_uri: str) -> None:
        """``delete=True`` never removes destination files matched by ``exclude``."""
        put_tree(src_uri, {"keep.txt": b"1"})
        put_tree(dst_uri, {"local.cache": b"c", "gone.txt": b"g"})
        result = sync(src_uri, dst_uri, delete=True, exclude=["*.cache"], progress=False)
        assert result.deleted == ["gone.txt"]
        assert read_tree(dst_uri) == {"keep.txt": b"1", "local.cache": b"c"}

    def test_dry_run_writes_nothing(self, src_uri: str, dst_uri: str) -> None:
        """A dry run plans every copy and its bytes but writes nothing."""
        put_tree(src_uri, SAMPLE)
        result = sync(src_uri, dst_uri, dry_run=True, progress=False)
        assert sorted(i.key for i in result.plan.to_copy) == sorted(SAMPLE)
        assert result.copied == [] and read_tree(dst_uri) == {}
        assert result.to_dict()["plan"]["copy_bytes"] == sum(len(v) for v in SAMPLE.values())

    def test_large_object_roundtrip(self, src_uri: str, dst_uri: str) -> None:
        """A 9 MB object syncs intact and progress events report start, bytes and done."""
        big = os.urandom(9 * 1024 * 1024 + 7)
        put_tree(src_uri, {"big/model.bin": big, "small": b"s"})
        events: list[dict] = []
        result = sync(src_uri, dst_uri, progress=events.append)
        assert result.ok and result.bytes_copied == len(big) + 1
        storage, _ = resolve(dst_uri)
        assert storage.read_bytes(join(dst_uri, "big/model.bin")) == big
        assert events[0]["event"] == "start" and events[0]["files"] == 2
        assert sum(e["bytes"] for e in events if e["event"] == "bytes") == len(big) + 1
        assert sum(1 for e in events if e["event"] == "done") == 2

    #: Examples per run of the generated-tree test (each does three syncs on the pair).
    tree_examples: int = 8

    def test_generated_trees_converge(self, src_uri: str, dst_uri: str) -> None:
        """For generated trees A then B: sync --delete makes dst == A, then == B, then is a no-op."""

        @settings(
            max_examples=self.tree_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(first=TREES, second=TREES)
        @example(first={"a": b"1", "k": b"x"}, second={"a/b": b"2", "a/c": b"3", "k": b"y"})  # file -> directory
        @example(first={"a/b/c": b"1"}, second={"a/b": b"2", "z": b"z"})  # directory -> file
        def run(first: dict[str, bytes], second: dict[str, bytes]) -> None:
            tag = uuid.uuid4().hex[:8]
            src, dst = join(src_uri, tag), join(dst_uri, tag)
            put_tree(src, first)
            assert sync(src, dst, delete=True, progress=False).ok
            assert read_tree(dst) == first
            src2 = join(src_uri, tag + "-b")
            put_tree(src2, second)
            clashing = {k for k in second if any(k.startswith(o + "/") or o.startswith(k + "/") for o in first)}
            result = sync(src2, dst, delete=True, checksum=True, progress=False)
            if clashing and join(dst_uri, "").startswith(("/", "file:")):
                # A file where a directory is (or the reverse) is a permanent error on a filesystem:
                # exactly those keys are reported as failed copies, everything else still arrives.
                assert not result.ok
                assert {(f.key, f.op) for f in result.failures} == {(k, "copy") for k in clashing}
                assert all(f.error for f in result.failures)
                landed = read_tree(dst)
                assert {k: landed.get(k) for k in second if k not in clashing} == {
                    k: v for k, v in second.items() if k not in clashing
                }
                return
            assert result.ok, result.failures
            assert read_tree(dst) == second
            assert sync(src2, dst, delete=True, checksum=True, progress=False).copied == []

        run()

    def test_missing_source_is_clear(self, src_uri: str, dst_uri: str) -> None:
        """A missing source raises ``NotFound`` naming it and writes nothing."""
        missing = join(src_uri, f"missing-{uuid.uuid4().hex[:8]}")
        with pytest.raises(NotFound, match="missing-"):
            sync(missing, dst_uri, progress=False)
        assert read_tree(dst_uri) == {}

    def test_file_onto_prefix_refused(self, src_uri: str, dst_uri: str) -> None:
        """Syncing a single file onto a prefix is a ``UserError`` pointing at ``cp``."""
        put_tree(src_uri, {"one.txt": b"1"})
        with pytest.raises(UserError, match="cp"):
            sync(join(src_uri, "one.txt"), dst_uri, progress=False)
        assert read_tree(dst_uri) == {}
