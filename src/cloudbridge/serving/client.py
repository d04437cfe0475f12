"""HTTP calls to a server speaking the container contract (stdlib ``urllib`` only).

Replies are mapped onto :mod:`cloudbridge.errors`: a 4xx is the caller's mistake
(:class:`~cloudbridge.errors.UserError`, carrying the server's ``error`` text), a 503 is
:class:`~cloudbridge.errors.TransientError`, any other 5xx or an unreachable server
:class:`~cloudbridge.errors.ProviderError`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from cloudbridge.errors import ProviderError, TransientError, UserError

__all__ = ["encode_payload", "invoke_url", "ping_url"]


def ping_url(base_url: str, timeout: float = 2.0) -> bool:
    """True when ``GET base_url/ping`` answers 200."""
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/ping", timeout=timeout) as reply:
            return reply.status == 200
    except (OSError, ValueError):
        return False


def encode_payload(payload: Any) -> tuple[bytes, str]:
    """Body and content type for ``payload``: bytes go as they are, anything else as JSON."""
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload), "application/json"
    try:
        return json.dumps(payload).encode("utf-8"), "application/json"
    except (TypeError, ValueError) as exc:
        raise UserError(f"the payload cannot be sent as JSON: {exc}") from exc


def _server_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:500]
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return json.dumps(data)[:500]


def invoke_url(
    base_url: str, payload: Any, *, name: str = "endpoint", provider: str = "local", timeout: float = 60.0,
    auth_token: str | None = None,
) -> Any:
    """``POST base_url/invocations`` with ``payload`` (and ``auth_token`` as a bearer token) and return the
    decoded JSON reply."""
    body, content_type = encode_payload(payload)
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    if auth_token:
        headers["Authorization"] = f"Bearer {auth_token}"
    request = urllib.request.Request(base_url.rstrip("/") + "/invocations", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            raw = reply.read()
    except urllib.error.HTTPError as exc:
        message = _server_message(exc.read())
        text = f"endpoint {name!r} answered HTTP {exc.code}: {message}"
        if 400 <= exc.code < 500:
            raise UserError(text) from exc
        if exc.code == 503:
            raise TransientError(text, provider=provider) from exc
        raise ProviderError(text, provider=provider) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ProviderError(f"endpoint {name!r} is not reachable at {base_url}: {reason}", provider=provider) from exc
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
