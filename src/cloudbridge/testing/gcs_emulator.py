"""gcp-storage-emulator on 127.0.0.1 and a free port, for test sessions (Cloud Storage's JSON API).

Use it from a session-scoped fixture::

    from cloudbridge.testing.gcs_emulator import gcs_emulator

    @pytest.fixture(scope="session")
    def gcs():
        with gcs_emulator() as server:
            yield server

    @pytest.fixture
    def gcs_env(gcs, monkeypatch):
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint)
        return gcs

The server runs in threads of the test process, in memory (``in_memory=True``): resumable
uploads (308/308/200), ranged reads, prefix/delimiter listing with page tokens and crc32c/MD5
checks of uploads all work, as measured in ``shared/CLOUD-FAKES.md``. It is stopped on exit.

Two changes to how the emulator serves, neither to what it answers: connections are accepted by a
threading server with a deep backlog (the emulator's own single-threaded ``HTTPServer`` keeps a
backlog of 5, so eight parallel uploads time out connecting) while requests are still handled one
at a time under a lock (its storage is not thread-safe); and its in-memory mode no longer re-writes
a JSON copy of every object's metadata after each write (never read back in memory, it made a
session with thousands of objects quadratic).
``google-cloud-storage`` honours ``STORAGE_EMULATOR_HOST``; a loopback ``http://`` host makes the
cloudbridge GCP plugin use anonymous credentials. The emulator is imported only when it starts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import ThreadingHTTPServer
from typing import Any

__all__ = ["GcsEmulator", "gcs_emulator", "gcs_emulator_available"]


def gcs_emulator_available() -> bool:
    """True when ``gcp-storage-emulator`` is installed (tests skip with a reason otherwise)."""
    import importlib.util

    return importlib.util.find_spec("gcp_storage_emulator") is not None


@dataclass
class GcsEmulator:
    """A running emulator: its ``endpoint`` and helpers to drive it."""

    host: str
    port: int
    _server: Any = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: the value of ``STORAGE_EMULATOR_HOST``."""
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """``STORAGE_EMULATOR_HOST`` pointing here."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (no error when it exists)."""
        from gcp_storage_emulator.handlers import buckets

        if self._server._storage.buckets.get(name) is None:
            buckets.create_bucket(name, self._server._storage)

    def corrupt(self, bucket: str, key: str, data: bytes) -> None:
        """Replace the stored bytes of ``bucket/key`` without touching its metadata (crc32c, md5).

        What a storage fault or a tampered object looks like to a reader: the object's recorded
        checksums no longer match its content.
        """
        self._server._storage.create_file(bucket, key, data, self._server._storage.objects[bucket][key])

    def wipe(self) -> None:
        """Forget every bucket and object."""
        self._server.wipe()

    def stop(self) -> None:
        """Stop the server (also done by :func:`gcs_emulator` on exit)."""
        if self._server is not None:
            self._server.stop()
            self._server = None


class _ServingThread(threading.Thread):
    """The emulator's API thread, with a threading server that serialises request handling."""

    def __init__(self, storage: Any) -> None:
        super().__init__(daemon=True, name="gcs-emulator")
        from gcp_storage_emulator.server import RequestHandler

        lock = threading.Lock()

        class Handler(RequestHandler):
            def handle_one_request(self) -> None:
                with lock:
                    super().handle_one_request()

        class Server(ThreadingHTTPServer):
            request_queue_size = 256
            daemon_threads = True

        self.is_running = threading.Event()
        self._httpd = Server(("127.0.0.1", 0), partial(Handler, storage))

    def run(self) -> None:
        self.is_running.set()
        self._httpd.serve_forever(poll_interval=0.1)

    def join(self, timeout: float | None = None) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        super().join(timeout)


@contextmanager
def gcs_emulator(*, buckets: tuple[str, ...] = (), quiet: bool = True) -> Iterator[GcsEmulator]:
    """Start gcp-storage-emulator in memory on 127.0.0.1 and a free port; stop it on exit."""
    from gcp_storage_emulator.server import create_server

    if quiet:
        logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    server = create_server("127.0.0.1", 0, in_memory=True)
    server._storage._write_config_to_file = lambda: None  # in memory: the JSON copy is never read
    server._api = _ServingThread(server._storage)
    server.start()
    host, port = server._api._httpd.server_address[:2]
    handle = GcsEmulator(host=host, port=port, _server=server)
    try:
        for name in buckets:
            handle.create_bucket(name)
        yield handle
    finally:
        handle.stop()
