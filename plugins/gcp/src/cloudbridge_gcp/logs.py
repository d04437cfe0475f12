"""A Vertex AI job's logs, read from Cloud Logging (``entries.list``, REST).

Vertex AI writes every replica's stdout and stderr to Cloud Logging as entries of
``resource.type="ml_job"`` labelled with the job's numeric id (``resource.labels.job_id``) and the
replica (``resource.labels.task_name``, e.g. ``workerpool0-0``). cloudbridge reads them with
``POST https://logging.googleapis.com/v2/entries:list`` (the ``roles/logging.viewer`` role), ordered
by time; following re-polls from the last timestamp and skips entries already seen. When
``api_endpoint`` is a local fake, the same call goes to the fake.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from cloudbridge.errors import StageTimeout
from cloudbridge_gcp.errors import gcp_errors

__all__ = ["LOGGING_ENDPOINT", "read_job_logs"]

LOGGING_ENDPOINT = "https://logging.googleapis.com"


def _http(session: Any) -> tuple[Any, str]:
    if session.vertex_is_local():
        import requests

        return requests.Session(), session.settings.api_endpoint
    from google.auth.transport.requests import AuthorizedSession

    return AuthorizedSession(session.adc()[0]), LOGGING_ENDPOINT


def _page(http: Any, base: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    from google.api_core import exceptions as gx

    answer = http.post(f"{base}/v2/entries:list", json=body, timeout=timeout)
    if answer.status_code >= 400:
        raise gx.from_http_response(answer)
    return answer.json()


def read_job_logs(session: Any, job_id: str, *, follow: bool = False, is_done: Callable[[], bool] | None = None,
                  poll_interval: float = 5.0, deadline: float | None = None, native_id: str = "") -> Iterator[str]:
    """The text of the job's log entries; with ``follow``, poll until ``is_done()`` (then read once more)."""
    http, base = _http(session)
    seen: set[str] = set()
    since = ""
    while True:
        done = is_done() if (follow and is_done is not None) else False
        query = f'resource.type="ml_job" AND resource.labels.job_id="{job_id}"'
        if since:
            query += f' AND timestamp>="{since}"'
        body: dict[str, Any] = {"resourceNames": [f"projects/{session.project}"], "filter": query,
                                "orderBy": "timestamp asc", "pageSize": 1000}
        with gcp_errors("read the job's logs from Cloud Logging", resource=native_id or job_id):
            while True:
                page = _page(http, base, body, session.settings.timeout)
                for entry in page.get("entries", []):
                    key = entry.get("insertId") or f"{entry.get('timestamp')}{entry.get('textPayload')}"
                    if key in seen:
                        continue
                    seen.add(key)
                    since = entry.get("timestamp") or since
                    text = entry.get("textPayload")
                    if text is None:
                        text = str((entry.get("jsonPayload") or {}).get("message", ""))
                    yield from text.splitlines() or [""]
                if not page.get("nextPageToken"):
                    break
                body["pageToken"] = page["nextPageToken"]
            body.pop("pageToken", None)
        if not follow or done:
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise StageTimeout(f"log follow of Vertex AI job {native_id or job_id} timed out", stage="log follow")
        time.sleep(poll_interval)
