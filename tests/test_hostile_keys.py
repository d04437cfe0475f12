"""A hostile bucket cannot write outside the folder it is downloaded into (issue 12, item 1).

Every download path (local job staging, ``emulate``, the training data cache, serving's model
download, ``sync``) is fed listings of hostile keys by an in-memory bucket that behaves as S3 does:
keys are stored raw, listed raw, and an object URI is normalised by ``parse_uri`` when read. The
oracle (:func:`_clean`) is written here, independently of ``cloudbridge.uri.key_problem``.
"""

from __future__ import annotations

import io
import os
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudbridge.errors import NotFound, UnsafeKey
from cloudbridge.interfaces import Storage, URILike, as_uri
from cloudbridge.records import ObjectInfo


class HostileBucket(Storage):
    """An in-memory bucket ``mem://bucket`` whose keys are anything S3 accepts."""

    schemes = ("mem",)

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def _key(self, uri: URILike) -> str:
        return as_uri(uri).key  # what a real plugin does: parse_uri normalises the key

    def stat(self, uri: URILike) -> ObjectInfo:
        key = self._key(uri)
        if key not in self.objects:
            raise NotFound(f"no such object: {uri}")
        return ObjectInfo(uri=f"mem://bucket/{key}", key=key.rsplit("/", 1)[-1], size=len(self.objects[key]))

    def list(self, uri: URILike, recursive: bool = True) -> Iterator[ObjectInfo]:
        key = self._key(uri)
        prefix = key.rstrip("/") + "/" if key else ""
        for raw in sorted(self.objects):
            if raw.startswith(prefix):
                yield ObjectInfo(uri=f"mem://bucket/{raw}", key=raw[len(prefix) :], size=len(self.objects[raw]))

    def open_read(self, uri: URILike) -> IO[bytes]:
        return io.BytesIO(self.objects[self.stat(uri).uri.removeprefix("mem://bucket/")])

    def write_stream(self, uri: URILike, stream: IO[bytes], size: int | None = None) -> ObjectInfo:
        self.objects[self._key(uri)] = stream.read()
        return self.stat(uri)

    def delete(self, uri: URILike) -> None:
        self.objects.pop(self._key(uri), None)


def _clean(key: str) -> bool:
    """The test's own rule: a relative key whose every segment is a plain name."""
    if not key or key.startswith("/"):
        return False
    if any(c in key for c in "\\") or any(ord(c) < 32 or ord(c) == 127 for c in key):
        return False
    return all(seg not in ("", ".", "..") for seg in key.split("/"))


def _files(root: Path) -> dict[str, bytes]:
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            found[str(path)] = path.read_bytes()
    return found


def _via_compute_paths(uri: str, target: Path, home: Path) -> None:
    from cloudbridge.backends.local.compute_paths import _download

    _download(uri, target)


def _via_emulate(uri: str, target: Path, home: Path) -> None:
    from cloudbridge.emulate import _stage

    _stage(uri, str(target), home)


def _via_training_data(uri: str, target: Path, home: Path) -> None:
    from cloudbridge.training.data import fetch

    fetch(uri, str(target))


def _via_serving(uri: str, target: Path, home: Path) -> None:
    from cloudbridge.serving.artifacts import materialize_model

    materialize_model(uri, target)


def _via_sync(uri: str, target: Path, home: Path) -> None:
    from cloudbridge.transfers.sync import sync

    result = sync(uri, str(target))
    if result.failures:  # every per-object failure, not only the first one raise_for_errors names
        raise RuntimeError("; ".join(f"{f.key!r}: {f.error}" for f in result.failures))


PATHS: dict[str, Callable[[str, Path, Path], None]] = {
    "compute_paths": _via_compute_paths,
    "emulate": _via_emulate,
    "training_data": _via_training_data,
    "serving": _via_serving,
    "sync": _via_sync,
}

_SEGMENTS = st.sampled_from(["a", "b", "T", "", ".", "..", "x\\y", "n\x00ul", "l\nf", "c\x1b", "del\x7f", "ok.txt"])


@st.composite
def hostile_keys(draw: st.DrawFn, outside: str) -> list[str]:
    """1-5 keys below ``data/``: plain, hostile, or aimed at the absolute folder ``outside``."""
    keys = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            segs = draw(st.lists(_SEGMENTS, min_size=1, max_size=4))
            keys.append("/".join(segs))
        else:  # 'data//<outside>/pwned' and its normalised twin 'data/<outside>/pwned' (the reproduction)
            keys.append(draw(st.sampled_from([outside + "/pwned", outside.lstrip("/") + "/pwned"])))
    return keys


@pytest.mark.parametrize("path_name", sorted(PATHS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_nothing_lands_outside_the_target(path_name: str, data: st.DataObject, tmp_path_factory) -> None:
    sandbox = tmp_path_factory.mktemp("sandbox")
    outside = sandbox / "T" / "X"
    target = sandbox / "target"
    keys = data.draw(hostile_keys(str(outside)))
    objects = {f"data/{key}": f"body of {key!r}".encode() for key in keys}
    bucket = HostileBucket(objects)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("cloudbridge.transfers.storage_for", lambda uri, **_: bucket)
        mp.setattr("cloudbridge.transfers.resolve.resolve", lambda uri, **_: _resolve(uri, bucket), raising=True)
        mp.setattr("cloudbridge.transfers.sync.resolve", lambda uri, **_: _resolve(uri, bucket), raising=True)
        refused = None
        try:
            PATHS[path_name]("mem://bucket/data", target, sandbox)
        except Exception as exc:  # noqa: BLE001 - each path has its own error type; the message is checked
            refused = exc
    written = _files(sandbox)
    assert all(path.startswith(str(target) + os.sep) for path in written), (keys, sorted(written))
    listed = [k for k in keys if not k.endswith("/")]  # 'name/' is a folder marker: skipped, never written
    clean = all(_clean(k) for k in listed) and not _file_folder_clash(listed)
    if not listed:  # only folder markers: nothing to fetch ("not found" or an empty sync)
        assert not written
    elif clean:
        assert refused is None, (keys, refused)
        bodies = sorted(written.values())
        assert bodies == sorted(objects[f"data/{k}"] for k in set(listed)), (keys, sorted(written))
    else:
        assert refused is not None, (keys, sorted(written))
        hostile = [k for k in listed if not _clean(k)]
        if hostile:  # refused, and the message names a refused key
            assert "refused" in str(refused), refused
            assert any(repr(k) in str(refused) for k in hostile), (keys, str(refused))


def _file_folder_clash(keys: list[str]) -> bool:
    names = set(keys)
    return any(k.startswith(other + "/") for k in keys for other in names)


def _resolve(uri: URILike, bucket: HostileBucket):
    from cloudbridge.transfers.resolve import local_storage

    parsed = as_uri(uri)
    return (local_storage() if parsed.is_local else bucket), parsed


def test_a_key_with_only_safe_characters_is_kept_exactly(tmp_path: Path) -> None:
    from cloudbridge.transfers.download import download

    keys = ["a b/c-d_e.txt", "ünï/çødé", "x/" + string.ascii_letters]
    bucket = HostileBucket({f"p/{k}": k.encode() for k in keys})
    written = download("mem://bucket/p", tmp_path / "t", storage=bucket)
    assert sorted(p.relative_to(tmp_path / "t").as_posix() for p in written) == sorted(keys)


def test_refusal_names_the_key_and_writes_nothing(tmp_path: Path) -> None:
    from cloudbridge.transfers.download import download

    bucket = HostileBucket({"data/good.txt": b"1", "data//etc/passwd": b"2"})
    with pytest.raises(UnsafeKey, match=r"'/etc/passwd'.*refused"):
        download("mem://bucket/data", tmp_path / "t", storage=bucket)
    assert not list((tmp_path / "t").rglob("*"))


def test_a_symlinked_folder_in_the_target_does_not_lead_out(tmp_path: Path) -> None:
    from cloudbridge.transfers.download import download

    (tmp_path / "t").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "t" / "link")
    bucket = HostileBucket({"data/link/x": b"1"})
    with pytest.raises(UnsafeKey, match="outside"):
        download("mem://bucket/data", tmp_path / "t", storage=bucket)
    assert not (tmp_path / "elsewhere" / "x").exists()


def test_s3_reproduction_stays_in_the_job_folder(s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    """The reported case on the moto server: 'data//T/X/pwned' must not become /T/X/pwned."""
    import boto3  # noqa: F401 - the moto fixture needs the AWS plugin anyway

    from cloudbridge.backends.local.compute_paths import _download

    outside = tmp_path / "T" / "X"
    client = _s3_client()
    client.put_object(Bucket=s3_bucket, Key=f"data/{outside}/pwned", Body=b"evil")
    client.put_object(Bucket=s3_bucket, Key=f"data/{str(outside).lstrip('/')}/pwned", Body=b"evil")
    with pytest.raises(UnsafeKey, match=r"starts with '/'.*refused"):
        _download(f"s3://{s3_bucket}/data", tmp_path / "job" / "inputs" / "d")
    assert not (outside / "pwned").exists()


def _s3_client():
    from cloudbridge.transfers import storage_for

    return storage_for("s3://any/x").client


from fixtures_storage import aws_env, moto, s3_bucket  # noqa: E402,F401 - pytest fixtures


def test_rm_r_refuses_a_key_that_would_delete_another_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """``storage rm -r``: deleting 'data/a//b' through a normalised URI would delete 'data/a/b' instead."""
    from cloudbridge.transfers.ops import rm

    bucket = HostileBucket({"data/a//b": b"1", "data/a/b": b"2"})
    monkeypatch.setattr("cloudbridge.transfers.ops.resolve", lambda uri, **_: _resolve(uri, bucket))
    with pytest.raises(UnsafeKey, match=r"'a//b'"):
        rm("mem://bucket/data", recursive=True)
    assert bucket.objects == {"data/a//b": b"1", "data/a/b": b"2"}, "nothing was deleted"


def test_metrics_and_tensorboard_fetch_skip_keys_and_members_that_lead_out(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    """``cloudbridge metrics``/``tensorboard`` download a cloud job's series: hostile object keys and archive
    members are skipped, the good series still arrives, nothing is written outside the job's folder."""
    import tarfile

    from cloudbridge.metrics import history_of
    from cloudbridge.records import Job, JobState
    from cloudbridge.settings import cloudbridge_home

    monkeypatch.setenv("CLOUDBRIDGE_HOME", str(tmp_path / "a" / "b" / "home"))  # '../../../' stays in tmp_path
    outside = tmp_path / "T" / "X"
    good = b'{"step": 1, "epoch": 1, "time": 0, "values": {"loss": 0.5}}\n'
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name in ("../../../metrics.jsonl", f"{outside}/metrics.jsonl", "run/metrics.jsonl"):
            member = tarfile.TarInfo(name)
            member.size = len(good)
            tar.addfile(member, io.BytesIO(good))
    bucket = HostileBucket({f"out//{outside}/metrics.jsonl": b"evil\n", "out/../metrics.jsonl": b"evil\n",
                            "out/output.tar.gz": archive.getvalue()})
    monkeypatch.setattr("cloudbridge.transfers.storage_for", lambda uri, **_: bucket)
    job = Job(id="aws-hostile-1", provider="aws", name="h", state=JobState.SUCCEEDED, outputs_uri="mem://bucket/out")
    assert history_of(job).series("loss") == [(1, 0.5)]
    home = cloudbridge_home() / "metrics" / job.id
    written = [p for p in _files(tmp_path) if p.endswith("metrics.jsonl")]
    assert written and all(p.startswith(str(home) + os.sep) for p in written), written
    assert [p.relative_to(home).as_posix() for p in home.rglob("metrics.jsonl")] == ["run/metrics.jsonl"]
    for path in [home.parent, home, *home.rglob("*")]:  # state is private (issue 12.4's class)
        assert path.stat().st_mode & 0o077 == 0, f"{path} is {oct(path.stat().st_mode & 0o777)}"
