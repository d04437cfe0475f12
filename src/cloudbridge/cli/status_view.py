"""The human-readable ``cloudbridge status ID`` view."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import typer

__all__ = ["print_status"]

_COLORS = {"SUCCEEDED": "green", "FAILED": "red", "CANCELLED": "magenta", "RUNNING": "cyan"}


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return _dt.datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds")


def _field(label: str, value: Any, **style: Any) -> None:
    if value is None or value == "" or value == {} or value == []:
        return
    typer.echo(f"{label + ':':<12} ", nl=False)
    typer.secho(str(value), **style)


def print_status(job: Any, events: list[dict[str, Any]] | None = None) -> None:
    """Print state, reason, detail, timings, attempts and events of ``job``."""
    from cloudbridge.cli._output import format_duration, print_table

    state = job.state.value
    _field("id", job.id, bold=True)
    _field("name", job.name)
    _field("provider", job.provider)
    _field("native id", job.native_id)
    _field("state", state, fg=_COLORS.get(state))
    _field("reason", job.reason)
    _field("exit code", job.exit_code)
    _field("created", _when(job.created_at))
    _field("started", _when(job.started_at) if job.started_at else None)
    _field("ended", _when(job.ended_at) if job.ended_at else None)
    if job.started_at and job.ended_at:
        _field("ran for", format_duration(job.ended_at - job.started_at))
    _field("outputs", job.outputs_uri)
    if job.metrics:
        _field("metrics", ", ".join(f"{k}={v}" for k, v in job.metrics.items()))
    if job.detail:
        typer.echo("detail:")
        for line in str(job.detail).splitlines():
            typer.echo(f"  {line}")
    if job.attempts:
        typer.echo("attempts:")
        keys: list[str] = []
        for attempt in job.attempts:
            keys += [k for k in attempt if k not in keys]
        print_table([k.upper() for k in keys], [[_fmt(a.get(k)) for k in keys] for a in job.attempts])
    if events:
        typer.echo("events:")
        rows = []
        for event in events:
            rows.append(
                [_when(event.get("time")), event.get("previous") or "-", event.get("state"), event.get("reason") or ""]
            )
        print_table(["TIME", "FROM", "TO", "REASON"], rows)


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value > 1e9:
        return _when(value)
    return "" if value is None else str(value)
