"""Training job logs from CloudWatch Logs: group ``/aws/sagemaker/TrainingJobs``, one stream per host
(``<job>/algo-1-<epoch>``), read in order and, with ``follow``, polled until the job ends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from cloudbridge.errors import NotFound, StageTimeout
from cloudbridge_aws.errors import aws_errors

__all__ = ["LOG_GROUP", "host_of", "read_logs", "tail_logs"]

LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def host_of(stream: str) -> str:
    """``job/algo-2-1700000000`` -> ``algo-2``."""
    tail = stream.split("/", 1)[-1]
    head, _, last = tail.rpartition("-")
    return head if last.isdigit() and head else tail


def _streams(logs: Any, job_name: str) -> list[str]:
    paginator = logs.get_paginator("describe_log_streams")
    names: list[str] = []
    try:
        with aws_errors("list the job's log streams", resource=f"{LOG_GROUP}/{job_name}"):
            for page in paginator.paginate(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/"):
                names.extend(s["logStreamName"] for s in page.get("logStreams", []))
    except NotFound:
        return []  # no job has logged in this region yet
    return sorted(names)


def _drain(logs: Any, stream: str, token: str | None) -> tuple[list[str], str | None]:
    """Every event after ``token`` in ``stream``, and the token to continue from."""
    lines: list[str] = []
    while True:
        kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": stream, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        with aws_errors("read the job's logs", resource=stream):
            page = logs.get_log_events(**kwargs)
        for event in page.get("events", []):
            lines.extend(event.get("message", "").rstrip("\n").split("\n"))
        nxt = page.get("nextForwardToken")
        if not nxt or nxt == token:
            return lines, token
        token = nxt
        if not page.get("events"):
            return lines, token


def tail_logs(logs: Any, job_name: str, lines: int) -> list[str]:
    """The last ``lines`` log lines of the job: one ``GetLogEvents`` from the end of each stream.

    A failed job's detail quotes this on every ``status``: reading the whole log each time (a long
    job logs megabytes) would cost time and CloudWatch requests for 20 lines.
    """
    streams = _streams(logs, job_name)
    multi = len({host_of(s) for s in streams}) > 1
    found: list[str] = []
    for stream in streams:
        with aws_errors("read the job's logs", resource=stream):
            page = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=False,
                                       limit=lines)
        prefix = f"[{host_of(stream)}] " if multi else ""
        for event in page.get("events", []):
            found.extend(prefix + line for line in event.get("message", "").rstrip("\n").split("\n"))
    return found[-lines:] if lines > 0 else []


def read_logs(
    logs: Any,
    job_name: str,
    *,
    follow: bool = False,
    is_done: Callable[[], bool] | None = None,
    poll_interval: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
) -> Iterator[str]:
    """Yield the job's log lines, host by host; lines of a multi-node job start with ``[algo-N]``.

    With ``follow`` the streams are polled every ``poll_interval`` seconds until ``is_done()`` says
    the job ended, then read one last time. Past ``deadline`` (a ``time.monotonic()`` value) a
    follow ends with :class:`~cloudbridge.errors.StageTimeout` (stage ``log follow``).
    """
    tokens: dict[str, str | None] = {}
    finishing = False
    while True:
        streams = _streams(logs, job_name)
        multi = len({host_of(s) for s in streams}) > 1
        for stream in streams:
            lines, tokens[stream] = _drain(logs, stream, tokens.get(stream))
            prefix = f"[{host_of(stream)}] " if multi else ""
            for line in lines:
                yield prefix + line
        if not follow or finishing:
            return
        finishing = bool(is_done and is_done())
        if finishing:
            continue
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StageTimeout(f"log follow of SageMaker job {job_name} timed out", stage="log follow")
            sleep(min(poll_interval, left))
        else:
            sleep(poll_interval)
