"""The ``cloudbridge_job_event`` observer.

Configuration (environment variables win over ``[notify]`` in ``CLOUDBRIDGE_HOME/config.toml``):

``CLOUDBRIDGE_NOTIFY_WEBHOOK`` / ``webhook``
    URL that receives a JSON POST per state change (Slack-compatible: it has a ``text`` field).
``CLOUDBRIDGE_NOTIFY_STATES`` / ``states``
    Comma-separated states to notify about (default: all).
``CLOUDBRIDGE_NOTIFY_DESKTOP`` / ``desktop``
    ``1`` to also show a desktop notification with ``notify-send`` (when it is installed) for
    jobs that ended.

An observer must never break a job: every failure here is logged and swallowed.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from cloudbridge import hookimpl
from cloudbridge.hookspecs import JobEvent

CLOUDBRIDGE_PLUGIN_API = 1
TIMEOUT_SECONDS = 5.0
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}

log = logging.getLogger(__name__)


def _config() -> dict[str, Any]:
    values: dict[str, Any] = {}
    try:
        from cloudbridge.settings import profile_values

        values.update(profile_values("notify"))
    except Exception:
        log.warning("cannot read [notify] from config.toml", exc_info=True)
    for key in ("webhook", "states", "desktop"):
        env = os.environ.get(f"CLOUDBRIDGE_NOTIFY_{key.upper()}")
        if env:
            values[key] = env
    return values


def payload(event: JobEvent) -> dict[str, Any]:
    """The JSON body posted for ``event``."""
    text = (
        f"cloudbridge job {event.job_id} ({event.name}) on {event.provider}: {event.previous or 'new'} -> {event.state}"
    )
    if event.reason:
        text += f": {event.reason}"
    return {
        "text": text,
        "job_id": event.job_id,
        "provider": event.provider,
        "name": event.name,
        "state": event.state,
        "previous": event.previous,
        "time": event.time,
        "reason": event.reason,
        "detail": event.detail,
    }


def post_webhook(url: str, body: dict[str, Any]) -> int:
    """POST ``body`` as JSON to ``url``; returns the HTTP status."""
    import json
    import urllib.request  # here, not at the top: plugins load on every CLI start, so keep that cheap

    if not url.startswith(("http://", "https://")):
        raise ValueError(f"webhook URL must be http(s), got {url!r}")
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "cloudbridge-notify/0.1"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        return response.status


def desktop_notify(event: JobEvent) -> bool:
    """Show a desktop notification with ``notify-send``; False when it is not installed."""
    import shutil
    import subprocess

    binary = shutil.which("notify-send")
    if binary is None:
        return False
    urgency = "critical" if event.state == "FAILED" else "normal"
    body = event.reason or f"{event.name} on {event.provider}"
    subprocess.run(
        [binary, "-u", urgency, f"cloudbridge: {event.job_id} {event.state}", body],
        timeout=TIMEOUT_SECONDS,
        check=False,
        capture_output=True,
    )
    return True


@hookimpl
def cloudbridge_job_event(event: JobEvent) -> None:
    """Notify about one job state change."""
    try:
        config = _config()
        states = {s.strip().upper() for s in str(config.get("states", "")).split(",") if s.strip()}
        if states and event.state not in states:
            return
        if config.get("webhook"):
            post_webhook(str(config["webhook"]), payload(event))
        if str(config.get("desktop", "")).lower() in ("1", "true", "yes") and event.state in TERMINAL:
            desktop_notify(event)
    except Exception:
        log.warning("cloudbridge-notify could not deliver the event for %s", event.job_id, exc_info=True)
