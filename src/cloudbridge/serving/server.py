"""The HTTP server: SageMaker's container contract around one :class:`Handler`.

* ``GET /ping`` -> ``200 {"status": "ok"}`` once the model is loaded, ``503`` while it loads;
* ``POST /invocations`` -> the handler's reply (JSON by default);
* ``GET /stats`` -> the server's own counters: requests, errors, rate, p50/p99 latency
  (:class:`~cloudbridge.serving.stats.RequestStats`);
* every error is a JSON body ``{"error": "..."}`` with a 4xx/5xx status; the server never dies
  of a bad request.

Requests are served by a thread each (``ThreadingHTTPServer``, HTTP/1.1 keep-alive); the model
is only ever called from one thread at a time (batched for the default handler, see
:mod:`cloudbridge.serving.batching`). Bodies are limited to ``max_body_bytes`` (6 MiB, SageMaker's
limit) and concurrent connections to ``max_connections`` (beyond: 503).

Hostile clients:

* **Slow clients.** A request (its line, headers and body; or an idle keep-alive connection) must
  arrive whole within ``request_timeout`` seconds (default 30), or the connection is closed: a
  client sending one header line every few seconds cannot hold a slot for long.
* **Health checks are never starved.** When every connection slot is taken, ``GET /ping`` is still
  answered, on one of ``max_health_connections`` extra slots with a 2-second deadline; anything
  else gets 503 there.
* **DNS rebinding.** Bound to a loopback address, the server answers only requests whose ``Host``
  is ``127.0.0.1``, ``localhost`` or ``[::1]`` (plus ``allowed_hosts``), and refuses a request a
  browser sends from another site's page (an ``Origin`` that is not local): 403.
* **Bearer token.** With ``auth_token_sha256`` (the hex sha256 of the token; the server never holds
  the token itself), every route but the health routes needs ``Authorization: Bearer <token>``: 401.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cloudbridge.serving.batching import Batcher, BatcherClosed
from cloudbridge.serving.guards import LOCAL_NAMES, Deadlines, bearer_ok, hostname, is_loopback
from cloudbridge.serving.handler import Handler, RequestError
from cloudbridge.serving.stats import RequestStats

__all__ = ["DEFAULT_MAX_BODY", "InferenceServer", "InferenceService", "make_server"]

log = logging.getLogger("cloudbridge.serving.server")

DEFAULT_MAX_BODY = 6 * 1024 * 1024


class InferenceService:
    """A handler plus its readiness and its model-calling discipline (batching or a lock)."""

    def __init__(self, handler: Handler, *, max_batch_size: int = 32) -> None:
        self.handler = handler
        self.max_batch_size = max_batch_size
        self.ready = threading.Event()
        self.batcher: Batcher | None = None
        self.load_seconds: float | None = None

    def load(self) -> None:
        """Load the model; the service answers ``/ping`` with 200 afterwards."""
        started = time.monotonic()
        self.handler.load()
        if self.handler.batchable:
            self.batcher = Batcher(self.handler.predict, max_items=self.max_batch_size)
        self.load_seconds = time.monotonic() - started
        self.ready.set()

    def close(self) -> None:
        """Stop the batcher thread."""
        if self.batcher is not None:
            self.batcher.close()

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """Decode, predict and encode one request; errors are :class:`RequestError`."""
        if not self.ready.is_set():
            raise RequestError(503, "the model is still loading; retry when GET /ping answers 200")
        data = self.handler.decode(body, content_type)
        try:
            if self.batcher is not None:
                prediction = self.batcher.submit(data)
            else:
                prediction = self.handler.predict(data)
        except (RequestError, BatcherClosed):
            raise
        except Exception as exc:
            log.exception("prediction failed")
            raise RequestError(500, f"prediction failed: {type(exc).__name__}: {exc}") from exc
        return self.handler.encode(prediction, accept)


def _json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode("utf-8")


class _RequestHandler(BaseHTTPRequestHandler):
    """One HTTP request; see the module docstring for the routes."""

    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # so even a garbled request line gets a status line and headers
    server_version = "cloudbridge-serve"
    timeout = 60  # seconds a connection may sit idle or half-sent
    disable_nagle_algorithm = True  # small replies must not wait for the client's delayed ACK
    server: InferenceServer

    # ---- replies ------------------------------------------------------------------------------
    def _reply(self, status: int, body: bytes, content_type: str, *, close: bool = False) -> None:
        started, self._started = getattr(self, "_started", None), None
        if started is not None:  # counted before the client can see the reply (and ask /stats)
            self.server.stats.record(time.monotonic() - started, status == 200)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _error(self, status: int, message: str, *, close: bool = False) -> None:
        self._reply(status, _json_body({"error": message}), "application/json", close=close)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors (bad request line, unknown method, ...) as JSON too."""
        self._error(code, message or HTTPStatus(code).phrase, close=True)

    def log_message(self, format: str, *args: Any) -> None:
        """Access log lines go to the ``cloudbridge.serving.server`` logger when enabled."""
        if self.server.access_log:
            log.info("%s %s", self.address_string(), format % args)

    # ---- guards -------------------------------------------------------------------------------
    def handle_one_request(self) -> None:
        """Serve one request, which must arrive whole within the server's ``request_timeout``."""
        self.server.arm(self.connection)
        self._started = None
        try:
            super().handle_one_request()
        finally:
            self.server.disarm(self.connection)

    def _refused(self, path: str) -> bool:
        """Answer 403/401 and return True when the Host, Origin or token is not acceptable."""
        server = self.server
        if server.loopback:
            host = self.headers.get("Host")
            if host is not None and hostname(host) not in server.allowed_hosts:
                self._discard_body_or_close()
                self._error(403, f"host {host!r} is not served here (DNS rebinding protection); use 127.0.0.1",
                            close=True)
                return True
            origin = self.headers.get("Origin")
            if origin is not None and hostname(origin.split("://", 1)[-1]) not in server.allowed_hosts:
                self._discard_body_or_close()
                self._error(403, f"requests from pages of {origin!r} are refused", close=True)
                return True
        if server.auth_token_sha256 and path not in server.health_routes:
            if not bearer_ok(self.headers.get("Authorization", ""), server.auth_token_sha256):
                self._discard_body_or_close()
                self._error(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
                return True
        return False

    # ---- routes -------------------------------------------------------------------------------
    def _route(self) -> str:
        return self.path.split("?", 1)[0]

    def do_GET(self) -> None:
        """``/ping``: readiness."""
        path = self._route()
        self.server.disarm(self.connection)  # the whole request is in
        if self._refused(path):
            return
        if path in self.server.health_routes:
            if self.server.service.ready.is_set():
                self._reply(200, _json_body({"status": "ok"}), "application/json")
            else:
                self._reply(503, _json_body({"status": "loading"}), "application/json")
        elif path == "/stats":
            self._reply(200, _json_body(self.server.stats.snapshot()), "application/json")
        elif path in self.server.predict_routes:
            self._error(405, f"use POST for {path}")
        else:
            self._error(404, f"no route {path}; use GET /ping or POST /invocations")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        """``/invocations``: one prediction request."""
        path = self._route()
        if self._refused(path):
            return
        if path not in self.server.predict_routes:
            self._discard_body_or_close()
            if path in self.server.health_routes:
                self._error(405, f"use GET for {path}")
            else:
                self._error(404, f"no route {path}; use GET /ping or POST /invocations")
            return
        self._started: float | None = time.monotonic()
        self._invoke()

    def _invoke(self) -> int:
        """Serve one prediction request; returns the status sent (0 when the body never arrived)."""
        body = self._read_body()
        if body is None:
            return 0
        try:
            reply, content_type = self.server.service.invoke(
                body, self.headers.get("Content-Type", ""), self.headers.get("Accept", "")
            )
        except RequestError as exc:
            self._error(exc.status, exc.message)
            return exc.status
        except BatcherClosed:
            self._error(503, "the server is shutting down", close=True)
            return 503
        except Exception as exc:
            log.exception("unexpected error while serving %s", self.path)
            self._error(500, f"internal error: {type(exc).__name__}: {exc}")
            return 500
        self._reply(200, reply, content_type)
        return 200

    def do_PUT(self) -> None:
        """Not supported: 405."""
        if self._refused(self._route()):
            return
        self._discard_body_or_close()
        self._error(405, f"method {self.command} not allowed; use GET /ping or POST /invocations")

    do_DELETE = do_PATCH = do_PUT

    # ---- bodies -------------------------------------------------------------------------------
    def _content_length(self) -> int | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._error(411, "chunked bodies are not accepted; send Content-Length", close=True)
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            self._error(411, "missing Content-Length header", close=True)
            return None
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            self._error(400, f"bad Content-Length {raw!r}", close=True)
            return None
        return length

    def _read_body(self) -> bytes | None:
        length = self._content_length()
        if length is None:
            return None
        if length > self.server.max_body_bytes:
            self._drain(length)
            self._error(
                413, f"request body is {length} bytes; the limit is {self.server.max_body_bytes} bytes", close=True
            )
            return None
        body = self.rfile.read(length)
        self.server.disarm(self.connection)  # the whole request is in: the model's time does not count
        if len(body) < length:
            self.close_connection = True
            return None
        return body

    def _drain(self, length: int, limit: int = 32 * 1024 * 1024) -> None:
        """Read and drop up to ``limit`` bytes of a refused body, so the client sees our reply
        instead of a connection reset (bigger bodies are cut off by closing)."""
        left = min(length, limit)
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            left -= len(chunk)

    def _discard_body_or_close(self) -> None:
        """Read (small) unwanted bodies so keep-alive stays in sync; close on big ones."""
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= 65536:
            self.rfile.read(int(length))
        elif length not in (None, "0"):
            self.close_connection = True


class InferenceServer(ThreadingHTTPServer):
    """A threaded HTTP server bound to one :class:`InferenceService`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        service: InferenceService,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        max_connections: int = 64,
        health_routes: tuple[str, ...] = ("/ping",),
        predict_routes: tuple[str, ...] = ("/invocations",),
        access_log: bool = False,
        request_timeout: float = 30.0,
        max_health_connections: int = 16,
        allowed_hosts: tuple[str, ...] = (),
        auth_token_sha256: str | None = None,
    ) -> None:
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.health_routes = frozenset(health_routes)
        self.predict_routes = frozenset(predict_routes)
        self.access_log = access_log
        self.stats = RequestStats()
        self.request_timeout = request_timeout
        self.loopback = is_loopback(address[0])
        self.allowed_hosts = LOCAL_NAMES | {address[0]} | {h.lower() for h in allowed_hosts}
        self.auth_token_sha256 = auth_token_sha256.lower() if auth_token_sha256 else None
        self._slots = threading.BoundedSemaphore(max_connections)
        self._health_slots = threading.BoundedSemaphore(max_health_connections)
        self._deadlines = Deadlines()
        super().__init__(address, _RequestHandler)

    def arm(self, conn: Any, seconds: float | None = None) -> None:
        """Close ``conn`` unless :meth:`disarm` is called within ``seconds`` (default ``request_timeout``)."""
        self._deadlines.arm(conn, self.request_timeout if seconds is None else seconds)

    def disarm(self, conn: Any) -> None:
        """The request on ``conn`` arrived in time."""
        self._deadlines.disarm(conn)

    def server_close(self) -> None:
        """Stop the deadline thread, then close the listening socket."""
        self._deadlines.close()
        super().server_close()

    @property
    def port(self) -> int:
        """The port actually bound (useful after binding port 0)."""
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a new thread; when ``max_connections`` are busy, answer health checks on a spare
        slot and everything else with 503."""
        if not self._slots.acquire(blocking=False):
            if self._health_slots.acquire(blocking=False):
                threading.Thread(target=self._overflow, args=(request,), daemon=True).start()
                return
            self._send_raw(request, 503, {"error": "too many concurrent connections; retry shortly"})
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def _overflow(self, request: Any) -> None:
        """All slots busy: read one request line within 2 s; answer ``GET /ping``, refuse the rest."""
        try:
            self.arm(request, 2.0)
            line = request.makefile("rb").readline(4096).decode("latin-1").split()
            self.disarm(request)
            if len(line) >= 2 and line[0] in ("GET", "HEAD") and line[1].split("?", 1)[0] in self.health_routes:
                ready = self.service.ready.is_set()
                self._send_raw(request, 200 if ready else 503, {"status": "ok" if ready else "loading"},
                               head_only=line[0] == "HEAD")
            else:
                self._send_raw(request, 503, {"error": "too many concurrent connections; retry shortly"})
        except OSError:
            pass
        finally:
            self.disarm(request)
            self.shutdown_request(request)
            self._health_slots.release()

    @staticmethod
    def _send_raw(request: Any, status: int, payload: dict[str, Any], *, head_only: bool = False) -> None:
        body = _json_body(payload)
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            request.sendall(head.encode("ascii") + (b"" if head_only else body))
        except OSError:
            pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (reset, broken pipe, time-out) is routine: one debug line, not a
        traceback on stderr. Anything else is logged with its traceback."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("client %s went away: %s", client_address[0], sys.exc_info()[1])
            return
        log.exception("error while serving %s", client_address[0])

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Release the connection slot when the thread ends."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def make_server(
    service: InferenceService, host: str = "127.0.0.1", port: int = 8080, **options: Any
) -> InferenceServer:
    """Bind an :class:`InferenceServer` (``port=0`` picks a free port; see ``.port``)."""
    return InferenceServer((host, port), service, **options)
