"""The dashboard's Starlette app: server-rendered pages, an SSE log stream, a token on every request.

Routes: ``/`` jobs (paged, filtered), ``/jobs/{id}`` one job, ``POST /jobs/{id}/cancel``,
``/jobs/{id}/logs`` (server-sent events, ``?rank=N``), ``/api/jobs/{id}/metrics`` (JSON),
``/endpoints`` (+ ``POST /endpoints/{provider}/{name}/invoke``), ``/gpus``, ``/spend``, ``/static/*``.
Every request needs the token: ``?token=`` (which also sets a same-site cookie) or that cookie;
anything else is 403. Blocking work (the job store, providers) runs in a thread.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cloudbridge.dashboard import data, views

__all__ = ["TokenGuard", "create_app"]

HERE = Path(__file__).parent
COOKIE = "cloudbridge_dashboard"
RANK_RE = re.compile(r"^\[(?:rank\s*|default)(\d+)\]:?")


class TokenGuard:
    """ASGI middleware: 403 unless the request carries the token (query ``token`` or the cookie)."""

    def __init__(self, app: Any, token: str) -> None:
        """Guard ``app`` with ``token``."""
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Check the token; on a good ``?token=`` also set the cookie so links and assets work."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        cookie_header = dict(scope.get("headers") or []).get(b"cookie", b"").decode("latin-1")
        cookies = SimpleCookie()
        try:
            cookies.load(cookie_header)
        except Exception:  # noqa: BLE001 - a malformed cookie header is just no cookie
            cookies = SimpleCookie()
        cookie = cookies[COOKIE].value if COOKIE in cookies else ""
        expected = self.token.encode()
        if not (secrets.compare_digest(query.encode(), expected) or secrets.compare_digest(cookie.encode(), expected)):
            response = PlainTextResponse(
                "403 forbidden: missing or wrong token; open the URL that `cloudbridge dashboard` printed\n",
                status_code=403)
            await response(scope, receive, send)
            return
        if not query:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                value = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message.setdefault("headers", []).append((b"set-cookie", value.encode("latin-1")))
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


async def jobs_page(request: Request) -> HTMLResponse:
    """The jobs of every provider: filter by provider, state and text; paged."""
    q = request.query_params
    started = time.perf_counter()
    page = await run_in_threadpool(data.page_of_jobs, provider=q.get("provider") or None,
                                   state=q.get("state") or None, search=q.get("q") or None,
                                   page=_int(q.get("page"), 1))
    providers = await run_in_threadpool(views.provider_names)
    html = views.render("jobs.html", page=page, filters=dict(q), providers=providers, states=data.STATES,
                        query_ms=(time.perf_counter() - started) * 1000)
    return HTMLResponse(html)


def _job_or_404(job_id: str) -> Any:
    from cloudbridge import sdk
    from cloudbridge.errors import NotFound

    try:
        return sdk.get_job(job_id)
    except NotFound:
        return None


async def job_page(request: Request) -> HTMLResponse:
    """One job: state, events, charts, NER table, logs, spec, cost, outputs, Cancel."""
    job_id = request.path_params["job_id"]
    job = await run_in_threadpool(_job_or_404, job_id)
    if job is None:
        return HTMLResponse(views.render("missing.html", job_id=job_id), status_code=404)
    context = await run_in_threadpool(views.job_context, job, request.query_params.get("compare", ""))
    return HTMLResponse(views.render("job.html", **context))


async def cancel_job(request: Request) -> RedirectResponse:
    """Cancel the job (waits for it to stop), then show its page."""
    from cloudbridge import sdk

    job_id = request.path_params["job_id"]
    await run_in_threadpool(sdk.cancel, job_id)
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


async def job_metrics(request: Request) -> JSONResponse:
    """The job's metric series as JSON (the charts poll this while a job runs)."""
    job_id = request.path_params["job_id"]
    job = await run_in_threadpool(_job_or_404, job_id)
    if job is None:
        return JSONResponse({"error": f"no job with id {job_id!r}"}, status_code=404)
    history = await run_in_threadpool(job.metric_history)
    return JSONResponse({**views.chart_data(job.id, history), "state": job.state.value})


def _rank_of(line: str) -> int:
    match = RANK_RE.match(line)
    return int(match.group(1)) if match else 0


async def _local_tail(job: Any, rank: int | None) -> AsyncIterator[str]:
    """Follow a local job's log file without holding a thread; ends once the job has ended."""
    from cloudbridge import sdk

    path = Path(job.extra["job_dir"]) / "job.log"
    position, pending, done = 0, b"", job.state.is_terminal
    while True:
        chunk = await run_in_threadpool(_read_from, path, position)
        position += len(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").rstrip("\r")
            if rank is None or _rank_of(line) == rank:
                yield line
        if chunk:
            continue
        if done:
            return
        await asyncio.sleep(0.3)
        done = (await run_in_threadpool(sdk.get_job, job.id)).state.is_terminal


def _read_from(path: Path, position: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(position)
            return handle.read(1 << 20)
    except OSError:
        return b""


async def job_logs(request: Request) -> Any:
    """Server-sent events: one ``data:`` per log line, then ``event: end`` with the job's final state."""
    from cloudbridge import sdk

    job_id = request.path_params["job_id"]
    job = await run_in_threadpool(_job_or_404, job_id)
    if job is None:
        return PlainTextResponse(f"no job with id {job_id!r}\n", status_code=404)
    rank_text = request.query_params.get("rank", "")
    rank = int(rank_text) if rank_text.isdigit() else None

    async def lines() -> AsyncIterator[str]:
        if job.provider == "local" and job.extra.get("job_dir"):
            source: AsyncIterator[str] = _local_tail(job, rank)
        else:
            source = iterate_in_threadpool(line for line in sdk.logs(job_id, follow=True)
                                           if rank is None or _rank_of(line) == rank)
        async for line in source:
            yield f"data: {line}\n\n"
        final = await run_in_threadpool(sdk.get_job, job_id)
        yield f"event: end\ndata: {final.state.value}\n\n"

    return StreamingResponse(lines(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def endpoints_page(request: Request) -> HTMLResponse:
    """Endpoints of every provider, with the serving process's own counters when it has them."""
    rows = await run_in_threadpool(data.endpoints)
    return HTMLResponse(views.render("endpoints.html", endpoints=rows))


async def invoke_endpoint(request: Request) -> JSONResponse:
    """Send the posted JSON to an endpoint and return its reply (or the error)."""
    from cloudbridge.backends import get_provider
    from cloudbridge.errors import CloudbridgeError

    provider, name = request.path_params["provider"], request.path_params["name"]
    try:
        payload = json.loads(await request.body() or b"null")
    except ValueError as exc:
        return JSONResponse({"error": f"the request is not JSON: {exc}"}, status_code=400)
    try:
        reply = await run_in_threadpool(lambda: get_provider(provider).deploy.invoke(name, payload))
    except CloudbridgeError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"reply": reply})


async def gpus_page(request: Request) -> HTMLResponse:
    """Local GPUs: who holds which, utilisation and memory (NVML), and the queue."""
    info = await run_in_threadpool(data.local_gpus)
    return HTMLResponse(views.render("gpus.html", info=info))


async def spend_page(request: Request) -> HTMLResponse:
    """Estimated spend per provider per day."""
    table = await run_in_threadpool(data.spend, _int(request.query_params.get("days"), 30))
    return HTMLResponse(views.render("spend.html", spend=table))


def create_app(token: str) -> Any:
    """The dashboard as an ASGI app guarded by ``token``."""
    routes = [
        Route("/", jobs_page),
        Route("/jobs/{job_id}", job_page),
        Route("/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
        Route("/jobs/{job_id}/logs", job_logs),
        Route("/api/jobs/{job_id}/metrics", job_metrics),
        Route("/endpoints", endpoints_page),
        Route("/endpoints/{provider}/{name}/invoke", invoke_endpoint, methods=["POST"]),
        Route("/gpus", gpus_page),
        Route("/spend", spend_page),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return TokenGuard(Starlette(routes=routes), token)
