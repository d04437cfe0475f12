"""HTTPS plumbing of the Azure ML fake: a threading server on 127.0.0.1 and a regex route table."""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["ApiError", "HttpsServer", "Reply", "Request", "Router"]


class ApiError(Exception):
    """An error answer in Azure's shape: ``{"error": {"code", "message", "details": []}}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON error body ARM and Azure ML answer with."""
        return {"error": {"code": self.code, "message": self.message, "details": [], "additionalInfo": []}}


class Request:
    """One parsed request: method, path, query, headers, JSON body and the route's groups."""

    def __init__(self, method: str, raw_path: str, headers: Any, body: bytes, groups: dict[str, str]) -> None:
        parts = urlsplit(raw_path)
        self.method, self.path, self.headers, self.raw = method, parts.path, headers, body
        self.query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.groups = groups

    def json(self) -> Any:
        """The body as JSON (``{}`` when empty)."""
        return json.loads(self.raw or b"{}")


class Reply:
    """An answer: status, JSON (or raw bytes) body and headers."""

    def __init__(self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None,
                 raw: bytes | None = None) -> None:
        self.status, self.body, self.headers, self.raw = status, body, headers or {}, raw


Handler = Callable[[Request], Reply]


class Router:
    """``(method, regex) -> handler``; the first match wins; named groups go to ``Request.groups``."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Route ``method`` requests whose path fully matches ``pattern`` (case-insensitive) to ``handler``."""
        self.routes.append((method, re.compile(pattern + r"/?$", re.IGNORECASE), handler))

    def find(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """The handler and groups for a request, or ``None``."""
        for route_method, pattern, handler in self.routes:
            match = pattern.match(path)
            if match and route_method == method:
                return handler, match.groupdict()
        return None


class HttpsServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 (TLS when a certificate is given) calling ``dispatch``."""

    def __init__(self, dispatch: Callable[[str, str, Any, bytes], Reply], cert: tuple[str, str] | None) -> None:
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = dispatch(self.command, self.path, self.headers, body)
                data = reply.raw if reply.raw is not None else (
                    b"" if reply.body is None else json.dumps(reply.body).encode())
                self.send_response(reply.status)
                if reply.raw is None and reply.body is not None:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("x-ms-request-id", "fake")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.tls = cert is not None
        if cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*cert)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="azureml-fake", daemon=True)
        self._thread.start()
        self._outer = outer

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT`` (``http`` without a certificate)."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
