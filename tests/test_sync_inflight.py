"""The sync engine's async lane (``cloudbridge.transfers.inflight``), end to end through ``sync()``.

Most tests use ``LaneStore``, a small but real asynchronous storage registered in-process for the
``lanetest://`` scheme: objects are files under a directory, and ``start_download``/``start_upload``
hand each request to one background "reactor" thread (no thread per request, like the AWS CRT),
which copies the bytes when the request is due and then calls ``done(finish)`` from that thread.
``finish()`` raises the faults a test queued for an object (``TransientError``, ``StorageError``,
``KeyboardInterrupt``). The store counts every ``start_*`` call, every blocking ``download``/
``upload`` (the thread pool's path), every ``cancel()``, and the most requests it had in flight.

Covered:

* downloads and uploads through the lane: byte-identical trees, the source mtime on downloaded
  files, ``SyncResult.copied``/``bytes_copied``; every object went through ``start_*``; more
  requests in flight at once than the thread pool's ``DEFAULT_WORKERS`` when the storage's
  ``inflight_default`` allows it, and exactly ``k`` (never more) with ``sync(..., workers=k)``;
* a ``TransientError`` from ``finish()`` is retried (``result.retries``); one that keeps failing past
  ``RetryPolicy(attempts=...)``, or a ``StorageError``, is one failure while the rest is copied;
* a ``start_*`` that declines (``None``) sends the object to the thread pool, which copies it;
* no ``.cb-partial-*`` file is left by a failed or retried download, nor by a ``KeyboardInterrupt``
  (from a progress callback, from a real SIGINT while the engine waits, from ``finish()`` or from
  ``start_download``), which cancels every request in flight and (a real SIGINT) the thread pool's
  queued copies too;
* an unsafe key (``../x``) in a bucket listing is that object's failure, the lane copies the rest;
* with the real S3 plugin, awscrt and moto: 300 small files up and back down go through
  ``S3Storage.start_upload``/``start_download`` and come back byte-identical.
"""

from __future__ import annotations

import heapq
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from fixtures_storage import aws_env, moto, s3_bucket  # noqa: F401 - pytest fixtures

from cloudbridge import ProviderInfo, hookimpl
from cloudbridge.backends.local.storage import LocalStorage
from cloudbridge.errors import NotFound, StorageError, TransientError
from cloudbridge.interfaces import PARTIAL_PREFIX, Provider, Storage, URILike, as_uri
from cloudbridge.plugins import register_plugin, unregister_plugin
from cloudbridge.records import ObjectInfo
from cloudbridge.transfers.retry import RetryPolicy
from cloudbridge.transfers.sync import DEFAULT_WORKERS, sync

SCHEME = "lanetest"
FAST = RetryPolicy(attempts=4, base=0.005, cap=0.02)  # real backoff, short waits


# ---- a small asynchronous storage ---------------------------------------------------------------
class _Request:
    """One request handed to the reactor: ``run(fault)`` does the I/O, then ``done(finish)``."""

    def __init__(self, name: str, run: Callable[[BaseException | None], Callable[[], Any]], done: Any) -> None:
        self.name = name
        self.run = run
        self.done = done
        self.cancelled = False
        self.fired = False


class _Handle:
    def __init__(self, store: LaneStore, request: _Request) -> None:
        self._store = store
        self._request = request

    def cancel(self) -> None:
        self._store._cancel(self._request)


class LaneStore(Storage):
    """``lanetest://bucket/key`` -> ``root/bucket/key``, with an asynchronous transfer client."""

    schemes = (SCHEME,)

    def __init__(self, root: Path) -> None:
        self.root = root
        self.disk = LocalStorage()
        self.inflight_default = 64
        self.delay: Callable[[str], float] = lambda name: 0.01  # seconds from start to reply
        self.gate = 0  # the first reply waits until this many requests are in flight (at most 3 s)
        self.faults: dict[str, list[BaseException]] = {}  # raised by finish(), one per attempt
        self.start_raises: dict[str, BaseException] = {}
        self.decline: set[str] = set()
        self.blocking_delay = 0.0  # seconds each blocking download/upload takes
        self.started: list[str] = []
        self.blocking: list[str] = []
        self.cancelled: list[str] = []
        self.active = 0
        self.peak = 0
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Request]] = []
        self._order = itertools.count()
        self._first_start: float | None = None
        self._released = False
        self._closed = False
        self._thread = threading.Thread(target=self._reactor, name="lanestore-reactor", daemon=True)
        self._thread.start()

    # the reactor: one thread serves every request in flight
    def _reactor(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    now = time.monotonic()
                    if self._heap and not self._released:
                        assert self._first_start is not None
                        if self.active >= self.gate or now - self._first_start > 3.0:
                            self._released = True
                        else:
                            self._cond.wait(0.005)
                            continue
                    if self._heap and self._heap[0][0] <= now:
                        request = heapq.heappop(self._heap)[2]
                        if request.fired:
                            continue
                        request.fired = True
                        self.active -= 1
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            if request.cancelled:
                fault: BaseException | None = StorageError(f"request for {request.name} cancelled")
            else:
                queued = self.faults.get(request.name)
                fault = queued.pop(0) if queued else None
            request.done(request.run(fault))

    def _submit(self, name: str, run: Callable[[BaseException | None], Callable[[], Any]], done: Any) -> _Handle:
        request = _Request(name, run, done)
        with self._cond:
            now = time.monotonic()
            if self._first_start is None:
                self._first_start = now
            self.active += 1
            self.peak = max(self.peak, self.active)
            heapq.heappush(self._heap, (now + self.delay(name), next(self._order), request))
            self._cond.notify()
        return _Handle(self, request)

    def _cancel(self, request: _Request) -> None:
        with self._cond:
            self.cancelled.append(request.name)
            request.cancelled = True
            heapq.heappush(self._heap, (0.0, next(self._order), request))
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(5)

    def _begin(self, name: str) -> None:
        with self._cond:
            self.started.append(name)
        if name in self.start_raises:
            raise self.start_raises[name]

    # the async lane's protocol (cloudbridge.transfers.inflight.AsyncTransfers)
    def start_download(self, info: ObjectInfo, local_path: str, done: Any) -> _Handle | None:
        name = info.key.rsplit("/", 1)[-1]
        self._begin(name)
        if name in self.decline:
            return None
        assert os.path.isfile(local_path), "the engine hands over an existing (partial) file"
        source = self._file(info.uri)

        def run(fault: BaseException | None) -> Callable[[], Any]:
            data = Path(source).read_bytes()
            with open(local_path, "wb") as out:  # what a client writes before it notices a failure
                out.write(data if fault is None else data[: len(data) // 2] + b"?")

            def finish() -> None:
                if fault is not None:
                    raise fault

            return finish

        return self._submit(name, run, done)

    def start_upload(self, local_path: str, uri: Any, done: Any) -> _Handle | None:
        name = as_uri(uri).key.rsplit("/", 1)[-1]
        self._begin(name)
        if name in self.decline:
            return None
        body = Path(local_path).read_bytes()  # read when the request starts, like the CRT

        def run(fault: BaseException | None) -> Callable[[], Any]:
            if fault is None:
                self.disk.write_bytes(self._file(uri), body)

            def finish() -> ObjectInfo:
                if fault is not None:
                    raise fault
                return self.stat(uri)

            return finish

        return self._submit(name, run, done)

    # the blocking path (the thread pool's copy_object)
    def download(self, uri: URILike, local_path: str | os.PathLike[str]) -> None:
        with self._cond:
            self.blocking.append(as_uri(uri).key.rsplit("/", 1)[-1])
        time.sleep(self.blocking_delay)
        super().download(uri, local_path)

    def upload(self, local_path: str | os.PathLike[str], uri: URILike) -> ObjectInfo:
        with self._cond:
            self.blocking.append(as_uri(uri).key.rsplit("/", 1)[-1])
        time.sleep(self.blocking_delay)
        return super().upload(local_path, uri)

    # the five primitives, over root/bucket/key
    def _file(self, uri: URILike) -> str:
        parsed = as_uri(uri)
        assert parsed.scheme == SCHEME, parsed
        return os.path.join(self.root, parsed.bucket, parsed.key)

    def stat(self, uri: URILike) -> ObjectInfo:
        parsed = as_uri(uri)
        local = self.disk.stat(self._file(parsed))
        return ObjectInfo(str(parsed), parsed.key.rsplit("/", 1)[-1], local.size, local.mtime, local.etag)

    def list(self, uri: URILike, recursive: bool = True) -> Iterator[ObjectInfo]:
        parsed = as_uri(uri)
        bucket_dir = os.path.join(self.root, parsed.bucket)
        if not os.path.isdir(bucket_dir):
            raise NotFound(f"no such bucket: {parsed.bucket}")
        prefix = parsed.key.strip("/")
        for local in self.disk.list(os.path.join(bucket_dir, prefix) if prefix else bucket_dir, recursive):
            full = f"{prefix}/{local.key}" if prefix else local.key
            yield ObjectInfo(f"{SCHEME}://{parsed.bucket}/{full}", local.key, local.size, local.mtime, local.etag)

    def open_read(self, uri: URILike) -> IO[bytes]:
        return self.disk.open_read(self._file(uri))

    def write_stream(self, uri: URILike, stream: IO[bytes], size: int | None = None) -> ObjectInfo:
        self.disk.write_stream(self._file(uri), stream, size)
        return self.stat(uri)

    def delete(self, uri: URILike) -> None:
        self.disk.delete(self._file(uri))


_CURRENT: list[LaneStore] = []


class LaneProvider(Provider):
    name = SCHEME

    @property
    def storage(self) -> Storage:
        return _CURRENT[0]


class LanePlugin:
    @hookimpl
    def cloudbridge_register_providers(self, register: Callable[[ProviderInfo], None]) -> None:
        register(
            ProviderInfo(name=SCHEME, factory=f"{__name__}:LaneProvider", capabilities={"storage"}, schemes=(SCHEME,))
        )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LaneStore]:
    """The ``lanetest`` provider, registered in-process, serving ``lanetest://bkt/...``."""
    lane = LaneStore(tmp_path / "remote")
    (tmp_path / "remote" / "bkt").mkdir(parents=True)
    _CURRENT[:] = [lane]
    plugin = LanePlugin()
    register_plugin(plugin, name=SCHEME)
    try:
        yield lane
    finally:
        unregister_plugin(plugin)
        lane.close()
        _CURRENT.clear()


# ---- helpers ------------------------------------------------------------------------------------
def _name(i: int) -> str:
    return f"f{i:03d}.bin"


def _key(i: int) -> str:
    return f"d{i % 3}/{_name(i)}"


def _write_tree(root: Path, n: int, *, mtimes: bool = True) -> dict[str, bytes]:
    """``n`` files of 0..~4 KiB in three folders; mtime ``1.6e9 + i`` when ``mtimes``."""
    files = {}
    for i in range(n):
        path = root / _key(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom((i * 97) % 4096)
        path.write_bytes(data)
        if mtimes:
            os.utime(path, (1_600_000_000 + i, 1_600_000_000 + i))
        files[_key(i)] = data
    return files


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _partials(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(f"{PARTIAL_PREFIX}*"))


def _ends(store: LaneStore, tmp_path: Path, direction: str, n: int) -> tuple[str, str, Path, dict[str, bytes]]:
    """(source, destination, the local folder that receives files or the remote one, files)."""
    remote = store.root / "bkt" / "data"
    if direction == "down":
        files = _write_tree(remote, n)
        return f"{SCHEME}://bkt/data", str(tmp_path / "down"), tmp_path / "down", files
    files = _write_tree(tmp_path / "up", n)
    return str(tmp_path / "up"), f"{SCHEME}://bkt/data", remote, files


# ---- 1. the lane copies, many at once -----------------------------------------------------------
def test_downloads_through_the_lane_are_identical_with_source_mtimes_and_many_in_flight(store, tmp_path) -> None:
    n = 150
    files = _write_tree(store.root / "bkt" / "data", n)
    store.gate = store.inflight_default = 64
    store.delay = lambda name: 0.05
    result = sync(f"{SCHEME}://bkt/data", tmp_path / "down", progress=False, retry=FAST)
    assert result.ok, result.failures
    assert result.copied == sorted(files) and result.bytes_copied == sum(map(len, files.values()))
    assert result.retries == 0
    assert _tree(tmp_path / "down") == files
    for i in range(n):
        assert (tmp_path / "down" / _key(i)).stat().st_mtime == 1_600_000_000 + i, _key(i)
    assert sorted(store.started) == sorted(_name(i) for i in range(n)) and store.blocking == []
    assert store.peak == 64 > DEFAULT_WORKERS, "the storage's inflight_default, not the thread count"
    assert _partials(tmp_path / "down") == []
    store.started.clear()
    again = sync(f"{SCHEME}://bkt/data", tmp_path / "down", progress=False)
    assert again.copied == [] and again.unchanged == n and store.started == [], "the mtimes make it a no-op"


def test_uploads_through_the_lane_are_identical_and_many_in_flight(store, tmp_path) -> None:
    n = 150
    files = _write_tree(tmp_path / "up", n)
    store.gate = store.inflight_default = 64
    store.delay = lambda name: 0.05
    result = sync(tmp_path / "up", f"{SCHEME}://bkt/data", progress=False, retry=FAST)
    assert result.ok, result.failures
    assert result.copied == sorted(files) and result.bytes_copied == sum(map(len, files.values()))
    assert _tree(store.root / "bkt" / "data") == files
    assert sorted(store.started) == sorted(_name(i) for i in range(n)) and store.blocking == []
    assert store.peak == 64 > DEFAULT_WORKERS


@pytest.mark.parametrize("direction", ["down", "up"])
def test_workers_caps_the_requests_in_flight(store, tmp_path, direction: str) -> None:
    src, dst, landed, files = _ends(store, tmp_path, direction, 30)
    store.inflight_default = 64
    store.gate = 5
    store.delay = lambda name: 0.03
    result = sync(src, dst, workers=5, progress=False, retry=FAST)
    assert result.ok and result.copied == sorted(files)
    assert _tree(landed) == files
    assert len(store.started) == 30 and store.blocking == []
    assert store.peak == 5, "sync(workers=5) caps the lane at 5 requests in flight, and uses all 5"


# ---- 2. retries and failures --------------------------------------------------------------------
@pytest.mark.parametrize("direction", ["down", "up"])
def test_transient_errors_from_finish_are_retried(store, tmp_path, direction: str) -> None:
    src, dst, landed, files = _ends(store, tmp_path, direction, 20)
    store.faults = {_name(3): [TransientError("503 slow down")] * 2, _name(10): [TransientError("reset")]}
    result = sync(src, dst, progress=False, retry=FAST)
    assert result.ok, result.failures
    assert result.copied == sorted(files) and result.bytes_copied == sum(map(len, files.values()))
    assert result.retries == 3
    assert store.started.count(_name(3)) == 3 and store.started.count(_name(10)) == 2
    assert store.blocking == [], "retried in the lane, not handed to the thread pool"
    assert _tree(landed) == files
    if direction == "down":
        assert (landed / _key(3)).stat().st_mtime == 1_600_000_000 + 3
    assert _partials(landed) == []


@pytest.mark.parametrize("direction", ["down", "up"])
@pytest.mark.parametrize(
    ("faults", "attempts", "error_type"),
    [
        ([TransientError("503 slow down")] * 10, 3, "TransientError"),
        ([StorageError("checksum mismatch")], 1, "StorageError"),
    ],
    ids=["transient-past-attempts", "permanent"],
)
def test_a_request_that_keeps_failing_is_one_failure(store, tmp_path, direction, faults, attempts, error_type) -> None:
    src, dst, landed, files = _ends(store, tmp_path, direction, 20)
    store.faults = {_name(4): list(faults)}
    result = sync(src, dst, progress=False, retry=RetryPolicy(attempts=3, base=0.005, cap=0.02))
    assert [(f.key, f.op, f.error_type) for f in result.failures] == [(_key(4), "copy", error_type)]
    assert result.retries == attempts - 1
    assert store.started.count(_name(4)) == attempts
    rest = {k: v for k, v in files.items() if k != _key(4)}
    assert result.copied == sorted(rest) and result.bytes_copied == sum(map(len, rest.values()))
    assert _tree(landed) == rest, "the failed object is absent, every other is copied"
    assert _partials(landed) == [], "no attempt leaves its partial file"


# ---- 3. declined requests go to the thread pool -------------------------------------------------
@pytest.mark.parametrize("direction", ["down", "up"])
def test_declined_objects_are_copied_by_the_thread_pool(store, tmp_path, direction: str) -> None:
    src, dst, landed, files = _ends(store, tmp_path, direction, 20)
    store.decline = {_name(1), _name(7)}
    result = sync(src, dst, progress=False, retry=FAST)
    assert result.ok, result.failures
    assert result.copied == sorted(files) and result.bytes_copied == sum(map(len, files.values()))
    assert len(store.started) == 20, "every object was offered to the lane first"
    assert sorted(store.blocking) == [_name(1), _name(7)], "the declined ones, through download/upload"
    assert _tree(landed) == files
    if direction == "down":
        assert (landed / _key(7)).stat().st_mtime == 1_600_000_000 + 7
    assert _partials(landed) == [], "the partial file made for a declined download is removed"


# ---- 4. interrupts ------------------------------------------------------------------------------
def _interrupt_setup(store: LaneStore, files: dict[str, bytes]) -> list[str]:
    """The first object (in the lane's key order) replies at once; every other request only ends
    when cancelled (or after 30 s). Returns the names in the order the lane starts them."""
    order = [key.rsplit("/", 1)[-1] for key in sorted(files)]
    store.delay = lambda name: 0.01 if name == order[0] else 30.0
    return order


@pytest.mark.parametrize("direction", ["down", "up"])
def test_ctrl_c_in_a_progress_callback_cancels_the_requests_in_flight(store, tmp_path, direction: str) -> None:
    src, dst, landed, files = _ends(store, tmp_path, direction, 30)
    order = _interrupt_setup(store, files)

    def progress(event: dict[str, Any]) -> None:
        if event["event"] == "done":
            raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sync(src, dst, workers=6, progress=progress, retry=FAST)
    assert time.monotonic() - started < 4.0, "cancelled requests end at once; nothing waits for them"
    assert sorted(store.cancelled) == sorted(order[1:6]), "the 5 requests still in flight"
    assert len(store.started) == 6, "nothing starts after the interrupt"
    assert _partials(landed) == []
    if direction == "down":
        first = sorted(files)[0]
        assert _tree(landed) == {first: files[first]}


def _sync_until_sigint(src: str, dst: str, after: float, **kwargs: Any) -> None:
    """``sync()`` on this (main) thread, with a real SIGINT sent to the process ``after`` seconds."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT reaches the main thread only")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(after, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            sync(src, dst, progress=False, retry=FAST, **kwargs)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)


def test_sigint_while_the_engine_waits_cancels_everything(store, tmp_path) -> None:
    src, dst, landed, files = _ends(store, tmp_path, "down", 30)
    store.delay = lambda name: 30.0
    _sync_until_sigint(src, dst, 0.5, workers=8)
    assert sorted(store.cancelled) == sorted(key.rsplit("/", 1)[-1] for key in sorted(files)[:8])
    assert _partials(landed) == [] and _tree(landed) == {}


@pytest.mark.parametrize("where", ["finish", "start_download"])
def test_ctrl_c_inside_the_run_leaves_no_partial_file(store, tmp_path, where: str) -> None:
    src, dst, landed, files = _ends(store, tmp_path, "down", 30)
    order = _interrupt_setup(store, files)
    if where == "finish":  # Ctrl-C while the engine's thread verifies the first reply
        store.faults = {order[0]: [KeyboardInterrupt()]}
        in_flight = order[1:6]
    else:  # Ctrl-C while the engine's thread starts the fourth request
        store.start_raises = {order[3]: KeyboardInterrupt()}
        in_flight = order[:3]
    with pytest.raises(KeyboardInterrupt):
        sync(src, dst, workers=6, progress=False, retry=FAST)
    assert sorted(store.cancelled) == in_flight
    assert _partials(landed) == []


def test_sigint_during_the_lane_also_stops_the_thread_pool_copies(store, tmp_path) -> None:
    src, dst, landed, files = _ends(store, tmp_path, "down", 40)
    order = [key.rsplit("/", 1)[-1] for key in sorted(files)]
    store.decline = set(order[:30])  # handed to the thread pool (4 threads, 0.25 s each) at once
    store.blocking_delay = 0.25
    store.delay = lambda name: 30.0  # the lane's 4 requests only end when cancelled
    _sync_until_sigint(src, dst, 0.3, workers=4)
    assert sorted(store.cancelled) == sorted(order[30:34])
    assert _partials(landed) == []
    assert len(store.blocking) <= 12, f"{len(store.blocking)} of 30 queued copies ran after Ctrl-C"


# ---- 5. unsafe keys (S3 through moto, the CRT lane) ---------------------------------------------
def _count_calls(storage: Any, *names: str) -> dict[str, Any]:
    """Wrap bound methods on this instance, calling the originals: the first argument of every call
    by method name, and under ``"peak"`` the most ``start_*`` requests started and not yet done."""
    calls: dict[str, Any] = {name: [] for name in names}
    calls["peak"] = 0
    active = 0
    lock = threading.Lock()
    for name in names:
        original = getattr(storage, name)

        def wrapper(*args: Any, _original: Any = original, _name: str = name) -> Any:
            nonlocal active
            if _name.startswith("start_"):
                first, target, done = args

                def ended(finish: Any) -> None:
                    nonlocal active
                    with lock:
                        active -= 1
                    done(finish)

                args = (first, target, ended)
                with lock:
                    active += 1
                    calls["peak"] = max(calls["peak"], active)
            with lock:
                calls[_name].append(args[0])
            handle = _original(*args)
            if handle is None and _name.startswith("start_"):
                with lock:
                    active -= 1
            return handle

        setattr(storage, name, wrapper)
    return calls


def _s3_storage(uri: str) -> Any:
    from cloudbridge.transfers import storage_for
    from cloudbridge.transfers.resolve import resolve

    storage = storage_for(uri)
    assert resolve(uri)[0] is storage, "sync() will use this very instance"
    assert hasattr(storage, "start_download") and storage.crt(as_uri(uri).bucket) is not None, "awscrt in use"
    return storage


def test_unsafe_keys_in_a_listing_are_refused_while_the_lane_copies_the_rest(aws_env, s3_bucket, tmp_path) -> None:  # noqa: F811
    client = aws_env.client("s3")
    good = {f"k{i:02d}.txt": os.urandom(100 + i) for i in range(12)}
    for key, body in good.items():
        client.put_object(Bucket=s3_bucket, Key=f"src/{key}", Body=body)
    client.put_object(Bucket=s3_bucket, Key="src/../x", Body=b"evil")
    client.put_object(Bucket=s3_bucket, Key="src//abs.txt", Body=b"evil")
    storage = _s3_storage(f"s3://{s3_bucket}/src")
    calls = _count_calls(storage, "start_download", "download")
    dst = tmp_path / "deep" / "dst"
    result = sync(f"s3://{s3_bucket}/src", dst, progress=False, retry=FAST)
    assert result.copied == sorted(good)
    assert sorted((f.key, f.error_type) for f in result.failures) == [("../x", "UnsafeKey"), ("/abs.txt", "UnsafeKey")]
    assert sorted(info.key for info in calls["start_download"]) == sorted(good), "the lane copied the safe keys"
    assert calls["download"] == []
    assert _tree(dst) == good
    assert not (tmp_path / "deep" / "x").exists() and not (tmp_path / "x").exists()
    assert _partials(tmp_path) == []


# ---- 6. the real thing: 300 small files through the CRT ------------------------------------------
def test_300_small_files_up_and_down_through_the_crt_lane(aws_env, s3_bucket, tmp_path) -> None:  # noqa: F811
    n = 300
    files = _write_tree(tmp_path / "src", n, mtimes=False)
    uri = f"s3://{s3_bucket}/rt"
    storage = _s3_storage(uri)
    calls = _count_calls(storage, "start_upload", "start_download", "upload", "download")
    up = sync(tmp_path / "src", uri, progress=False, retry=FAST)
    assert up.ok, up.failures[:3]
    assert up.copied == sorted(files) and up.bytes_copied == sum(map(len, files.values()))
    assert len(calls["start_upload"]) == n and calls["upload"] == []
    assert calls["peak"] > DEFAULT_WORKERS, "more PUTs in flight at once than the thread pool has threads"
    calls["peak"] = 0
    down = sync(uri, tmp_path / "down", progress=False, retry=FAST)
    assert down.ok, down.failures[:3]
    assert down.copied == sorted(files)
    assert len(calls["start_download"]) == n and calls["download"] == []
    assert calls["peak"] > DEFAULT_WORKERS, "more GETs in flight at once than the thread pool has threads"
    assert _tree(tmp_path / "down") == files
    assert _partials(tmp_path / "down") == []
    listed = {o["Key"][len("rt/") :]: o for o in _client_list(aws_env.client("s3"), s3_bucket, "rt/")}
    assert sorted(listed) == sorted(files)
    for key, obj in listed.items():
        assert (tmp_path / "down" / key).stat().st_mtime == obj["LastModified"].timestamp(), key
    again = sync(tmp_path / "src", uri, progress=False)
    assert again.copied == [] and len(calls["start_upload"]) == n, "a no-op sync starts no request"


def _client_list(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    return [
        obj
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]
