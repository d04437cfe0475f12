"""``LaneStore``: a small but real asynchronous storage for the async-lane tests.

Registered in-process for the ``lanetest://`` scheme: objects are files under a directory, and
``start_download``/``start_upload`` hand each request to one background "reactor" thread (no thread
per request, like the AWS CRT), which copies the bytes when the request is due and then calls
``done(finish)`` from that thread. ``finish()`` raises the faults a test queued for an object
(``TransientError``, ``StorageError``, ``KeyboardInterrupt``). The store counts every ``start_*``
call, every blocking ``download``/``upload`` (the thread pool's path), every ``cancel()``, and the
most requests it had in flight. Also the helpers the lane tests share.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from cloudbridge import ProviderInfo, hookimpl
from cloudbridge.backends.local.storage import LocalStorage
from cloudbridge.errors import NotFound, StorageError
from cloudbridge.interfaces import PARTIAL_PREFIX, Provider, Storage, URILike, as_uri
from cloudbridge.plugins import register_plugin, unregister_plugin
from cloudbridge.records import ObjectInfo
from cloudbridge.transfers.retry import RetryPolicy

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
