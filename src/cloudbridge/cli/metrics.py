"""``cloudbridge metrics JOB…`` (latest values, terminal charts, side by side) and ``cloudbridge tensorboard JOB…``."""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["register"]

#: Per-epoch chart: the first of these a job recorded.
EPOCH_METRICS = ("accuracy", "f1", "f1_macro", "eval_loss")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _histories(job_ids: list[str]) -> list[tuple[Any, Any]]:
    """``(job, history)`` per id; an unknown id is one line and exit 2 (before anything is printed)."""
    from cloudbridge import sdk

    jobs = [sdk.get_job(job_id) for job_id in job_ids]
    return [(job, job.metric_history()) for job in jobs]


def _table(pairs: list[tuple[Any, Any]]) -> None:
    from cloudbridge.cli._output import print_table

    latest = [history.latest() for _, history in pairs]
    names: dict[str, None] = {"step": None, "epoch": None}
    for _, history in pairs:
        names.update(dict.fromkeys(history.names()))
    rows = [[name, *(_fmt(values.get(name)) for values in latest)] for name in names]
    print_table(["METRIC", *(job.id for job, _ in pairs)], rows)


def _charts(pairs: list[tuple[Any, Any]]) -> None:
    from cloudbridge.cli.textchart import render

    several = len(pairs) > 1
    loss = [(job.id if several else "loss", history.series("loss")) for job, history in pairs]
    chart = render("loss per step", loss)
    if chart:
        typer.echo("\n" + chart)
    per_epoch = []
    for job, history in pairs:
        name = next((n for n in EPOCH_METRICS if history.per_epoch(n)), None)
        if name:
            per_epoch.append((f"{job.id} {name}" if several else name, history.per_epoch(name)))
    chart = render("per epoch", per_epoch, x_label="epoch")
    if chart:
        typer.echo("\n" + chart)


def metrics_command(
    job_ids: list[str] = typer.Argument(..., metavar="JOB...", help="One or more job ids (several: side by side)."),
    json_output: bool = typer.Option(False, "--json", help="Print every job's series as JSON."),
) -> None:
    """Show jobs' metrics: a table of the latest values and small charts of loss and accuracy.

    The values are what the jobs recorded with ``cloudbridge.runtime.log_metrics`` (cloudbridge-finetune
    does it itself); a running local job shows what it has recorded so far.
    """
    from cloudbridge.metrics import HOW_TO_RECORD

    pairs = _histories(job_ids)
    if json_output:
        from cloudbridge.cli._output import echo_json

        echo_json([history.to_dict() for _, history in pairs])
        return
    recorded = [(job, history) for job, history in pairs if history]
    for job, history in pairs:
        if not history:
            typer.echo(f"{job.id}: {HOW_TO_RECORD}")
    if not recorded:
        return
    _table(recorded)
    _charts(recorded)
    for job, history in recorded:
        table = history.tables.get("ner_per_tag")
        if table:
            _ner_table(job.id, table)


def _ner_table(job_id: str, table: dict[str, Any]) -> None:
    from cloudbridge.cli._output import print_table

    rows = [[tag, _fmt(v.get("precision")), _fmt(v.get("recall")), _fmt(v.get("f1")), _fmt(v.get("support"))]
            for tag, v in sorted(table["rows"].items())]
    typer.echo("")
    print_table(["TAG", "PRECISION", "RECALL", "F1", "SUPPORT"], rows,
                title=f"{job_id}: per tag (epoch {_fmt(table.get('epoch'))})")


def register(app: typer.Typer) -> None:
    """Add ``metrics`` and ``tensorboard`` to ``app``."""
    from cloudbridge.cli.tensorboard import tensorboard_command

    app.command("metrics", rich_help_panel="Jobs")(metrics_command)
    app.command("tensorboard", rich_help_panel="Jobs")(tensorboard_command)
