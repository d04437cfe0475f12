"""Guards of the inference server against hostile clients: whole-request deadlines, the ``Host`` names
a loopback server answers (DNS rebinding) and bearer tokens. See :mod:`cloudbridge.serving.server`."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
import time
from typing import Any

__all__ = ["LOCAL_NAMES", "Deadlines", "bearer_ok", "hostname", "is_loopback"]

#: The names a loopback-bound server answers to (besides its own address and configured names).
LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def hostname(host: str) -> str:
    """``host[:port]`` or ``[v6]:port`` -> the lower-case name or address alone."""
    host = host.strip().lower().split("/", 1)[0]
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    """True for ``127.*``, ``localhost`` and ``::1``."""
    return host in LOCAL_NAMES or host.startswith("127.")


def bearer_ok(authorization: str, token_sha256: str) -> bool:
    """Whether the ``Authorization`` header carries the bearer token whose hex sha256 is ``token_sha256``
    (compared in constant time; the server never holds the token itself)."""
    token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
    digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
    return bool(token) and hmac.compare_digest(digest, token_sha256)


class Deadlines:
    """Shut a connection down when its request has not arrived whole in time.

    A per-read socket timeout does not stop a client sending one byte every few seconds; one thread
    here checks every armed connection ten times a second and shuts down the late ones, so the
    handler's blocked read returns at once and its thread ends.
    """

    def __init__(self) -> None:
        self._deadlines: dict[Any, float] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        threading.Thread(target=self._reap, name="cloudbridge-request-deadlines", daemon=True).start()

    def arm(self, conn: Any, seconds: float) -> None:
        """Shut ``conn`` down unless :meth:`disarm` is called within ``seconds``."""
        with self._lock:
            self._deadlines[conn] = time.monotonic() + seconds

    def disarm(self, conn: Any) -> None:
        """``conn``'s request arrived in time."""
        with self._lock:
            self._deadlines.pop(conn, None)

    def close(self) -> None:
        """Stop the checking thread."""
        self._closing.set()

    def _reap(self) -> None:
        while not self._closing.wait(0.1):
            now = time.monotonic()
            with self._lock:
                late = [conn for conn, deadline in self._deadlines.items() if deadline <= now]
                for conn in late:
                    del self._deadlines[conn]
            for conn in late:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
