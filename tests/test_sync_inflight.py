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

The S3 cases (unsafe keys in a bucket, 300 files through the CRT) are in ``test_sync_inflight_s3.py``;
``LaneStore`` is in ``fixtures_lane.py``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
from fixtures_lane import (
    FAST,
    SCHEME,
    LaneStore,
    _ends,
    _key,
    _name,
    _partials,
    _tree,
    _write_tree,
    store,  # noqa: F401 - a pytest fixture
)

from cloudbridge.errors import StorageError, TransientError
from cloudbridge.transfers.retry import RetryPolicy
from cloudbridge.transfers.sync import DEFAULT_WORKERS, sync


# ---- 1. the lane copies, many at once -----------------------------------------------------------
def test_downloads_through_the_lane_are_identical_with_source_mtimes_and_many_in_flight(store, tmp_path) -> None:  # noqa: F811
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


@pytest.mark.parametrize("direction", ["down", "up"])
def test_cloudbridge_sync_async_0_turns_the_lane_off(store, tmp_path, monkeypatch, direction: str) -> None:  # noqa: F811
    src, dst, landed, files = _ends(store, tmp_path, direction, 12)
    monkeypatch.setenv("CLOUDBRIDGE_SYNC_ASYNC", "0")
    result = sync(src, dst, progress=False, retry=FAST)
    assert result.ok and result.copied == sorted(files)
    assert store.started == [] and len(store.blocking) == 12, "every object through the thread pool"
    assert _tree(landed) == files


def test_uploads_through_the_lane_are_identical_and_many_in_flight(store, tmp_path) -> None:  # noqa: F811
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
def test_workers_caps_the_requests_in_flight(store, tmp_path, direction: str) -> None:  # noqa: F811
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
def test_transient_errors_from_finish_are_retried(store, tmp_path, direction: str) -> None:  # noqa: F811
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
def test_a_request_that_keeps_failing_is_one_failure(store, tmp_path, direction, faults, attempts, error_type) -> None:  # noqa: F811
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
def test_declined_objects_are_copied_by_the_thread_pool(store, tmp_path, direction: str) -> None:  # noqa: F811
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
def _interrupt_setup(store: LaneStore, files: dict[str, bytes]) -> list[str]:  # noqa: F811
    """The first object (in the lane's key order) replies at once; every other request only ends
    when cancelled (or after 30 s). Returns the names in the order the lane starts them."""
    order = [key.rsplit("/", 1)[-1] for key in sorted(files)]
    store.delay = lambda name: 0.01 if name == order[0] else 30.0
    return order


@pytest.mark.parametrize("direction", ["down", "up"])
def test_ctrl_c_in_a_progress_callback_cancels_the_requests_in_flight(store, tmp_path, direction: str) -> None:  # noqa: F811
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


def test_sigint_while_the_engine_waits_cancels_everything(store, tmp_path) -> None:  # noqa: F811
    src, dst, landed, files = _ends(store, tmp_path, "down", 30)
    store.delay = lambda name: 30.0
    _sync_until_sigint(src, dst, 0.5, workers=8)
    assert sorted(store.cancelled) == sorted(key.rsplit("/", 1)[-1] for key in sorted(files)[:8])
    assert _partials(landed) == [] and _tree(landed) == {}


@pytest.mark.parametrize("where", ["finish", "start_download"])
def test_ctrl_c_inside_the_run_leaves_no_partial_file(store, tmp_path, where: str) -> None:  # noqa: F811
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


def test_sigint_during_the_lane_also_stops_the_thread_pool_copies(store, tmp_path) -> None:  # noqa: F811
    src, dst, landed, files = _ends(store, tmp_path, "down", 40)
    order = [key.rsplit("/", 1)[-1] for key in sorted(files)]
    store.decline = set(order[:30])  # handed to the thread pool (4 threads, 0.25 s each) at once
    store.blocking_delay = 0.25
    store.delay = lambda name: 30.0  # the lane's 4 requests only end when cancelled
    _sync_until_sigint(src, dst, 0.3, workers=4)
    assert sorted(store.cancelled) == sorted(order[30:34])
    assert _partials(landed) == []
    assert len(store.blocking) <= 12, f"{len(store.blocking)} of 30 queued copies ran after Ctrl-C"
