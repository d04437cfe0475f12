"""``cloudbridge jobs`` (list, filter, ``prune``) and ``cloudbridge cancel`` (one job, or ``--all``)."""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["register"]

STATE_STYLES = {
    "PENDING": "yellow",
    "STARTING": "yellow",
    "RUNNING": "cyan",
    "SUCCEEDED": "green",
    "FAILED": "red",
    "CANCELLED": "magenta",
}

jobs_app = typer.Typer(name="jobs", invoke_without_command=True, no_args_is_help=False)


def _states(values: list[str]) -> set[str]:
    """``--state RUNNING --state failed`` (or ``RUNNING,FAILED``) -> upper-case names; unknown: exit 2."""
    from cloudbridge.errors import UserError
    from cloudbridge.records import JobState

    known = [s.value for s in JobState]
    wanted = {part.strip().upper() for value in values for part in value.split(",") if part.strip()}
    unknown = sorted(wanted - set(known))
    if unknown:
        raise UserError(f"--state: unknown state {', '.join(unknown)}; choose from {', '.join(known)}")
    return wanted


def _select(provider: str | None, states: list[str], name: str | None, limit: int | None) -> list[Any]:
    """Jobs matching every filter, newest first, at most ``limit`` (0 or ``None``: all)."""
    import fnmatch

    from cloudbridge import sdk

    wanted = _states(states)
    jobs = sdk.jobs(provider=provider) if provider else sdk.jobs()
    if wanted:
        jobs = [job for job in jobs if job.state.value in wanted]
    if name:
        jobs = [job for job in jobs if fnmatch.fnmatchcase(job.name or "", name)]
    return jobs[:limit] if limit else jobs


@jobs_app.callback()
def jobs_command(
    ctx: typer.Context,
    provider: str = typer.Option(None, "--provider", "-p", help="Only this provider's jobs."),
    state: list[str] = typer.Option([], "--state", "-s", metavar="STATE",
                                    help="Only jobs in this state (repeatable, or RUNNING,FAILED)."),
    name: str = typer.Option(None, "--name", metavar="GLOB", help="Only jobs whose name matches (sst2-*)."),
    limit: int = typer.Option(0, "--limit", "-l", help="Show at most this many (newest first; 0: all)."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON (times as ISO 8601) instead of a table."),
) -> None:
    """List jobs of every provider, newest first.

    ``cloudbridge jobs prune --older-than 30d`` forgets old finished jobs.
    """
    if ctx.invoked_subcommand is not None:
        return
    if limit < 0:
        from cloudbridge.errors import UserError

        raise UserError(f"--limit: must be 0 (all) or more, got {limit}")
    from cloudbridge.cli._output import echo_json, format_age, format_duration, job_json, print_table

    jobs = _select(provider, state, name, limit)
    if json_output:
        echo_json([job_json(job) for job in jobs])
        return
    from cloudbridge.metrics import main_metric

    rows = []
    for job in jobs:
        if job.provider == "local" and job.state.value == "RUNNING":  # what it has recorded so far
            job.metrics = {**job.metrics, **job.metric_history().latest()}
        metric = main_metric(job.metrics or {})
        end = job.ended_at
        duration = (end - job.started_at) if (job.started_at and end) else None
        rows.append([job.id, job.name, job.provider, job.state.value, format_age(job.created_at),
                     format_duration(duration), f"{metric[0]} {metric[1]:.4g}" if metric else "", job.reason or ""])
    print_table(["ID", "NAME", "PROVIDER", "STATE", "CREATED", "RAN", "METRIC", "REASON"], rows,
                styles=STATE_STYLES)


def _remove_job_files(job: Any, home: Any) -> list[str]:
    """Delete a local job's folder (code copy, job.log, outputs kept there); only under ``home``."""
    import shutil
    from pathlib import Path

    removed = []
    folder = job.extra.get("job_dir")
    if folder:
        path = Path(folder).resolve()
        if path.is_dir() and path.is_relative_to(Path(home).resolve()) and path != Path(home).resolve():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


@jobs_app.command("prune")
def prune_command(
    older_than: str = typer.Option(..., "--older-than", metavar="DURATION",
                                   help="Forget finished jobs that ended longer ago than this (30d, 12h, 1w)."),
    provider: str = typer.Option(None, "--provider", "-p", help="Only this provider's jobs."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be removed; remove nothing."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Forget finished jobs older than --older-than: their records, events, code copies and logs.

    Running and pending jobs are never pruned. For a local job the job folder (the code copy,
    job.log and everything the job wrote there) is deleted too; outputs uploaded to a bucket are not.
    """
    import time

    from cloudbridge.cli._output import echo_json, parse_duration
    from cloudbridge.jobstore.store import JobStore
    from cloudbridge.settings import home_path

    cutoff = time.time() - (parse_duration(older_than, "--older-than") or 0)
    store = JobStore.default()
    home = home_path()
    pruned = []
    for job in store.list(provider):
        ended = job.ended_at or job.created_at
        if not job.state.is_terminal or ended is None or ended > cutoff:
            continue
        files = [] if dry_run else _remove_job_files(job, home)
        if not dry_run:
            store.delete(job.id)
        pruned.append({"id": job.id, "name": job.name, "provider": job.provider, "state": job.state.value,
                       "files": files})
    if json_output:
        echo_json({"pruned": pruned, "dry_run": dry_run})
        return
    for row in pruned:
        typer.echo(f"{'would remove' if dry_run else 'removed'} {row['id']} ({row['name']}, {row['state']})")
    typer.echo(f"{len(pruned)} job(s) {'would be ' if dry_run else ''}pruned (finished more than {older_than} ago)",
               err=True)


def cancel_command(
    job_id: str = typer.Argument(None, metavar="[ID]", help="Job id (or --all)."),
    all_jobs: bool = typer.Option(False, "--all", help="Cancel every job that has not ended (with the filters)."),
    state: list[str] = typer.Option([], "--state", "-s", metavar="STATE",
                                    help="With --all: only jobs in this state (e.g. RUNNING; repeatable)."),
    provider: str = typer.Option(None, "--provider", "-p", help="With --all: only this provider's jobs."),
    json_output: bool = typer.Option(False, "--json", help="Print the job record(s) as JSON."),
) -> None:
    """Cancel a job (on local: its whole process group); a finished job is left as it is."""
    from cloudbridge import sdk
    from cloudbridge.cli._output import echo_json, job_json
    from cloudbridge.errors import UserError

    if all_jobs == bool(job_id):
        raise UserError("give a job ID or --all (with --state/--provider to narrow it), not both")
    if not all_jobs and (state or provider):
        raise UserError("--state and --provider are used with --all")
    if all_jobs:
        targets = [job for job in _select(provider, state, None, None) if not job.state.is_terminal]
    else:
        targets = [sdk.get_job(job_id)]
    results = []
    for before in targets:
        job = before if before.state.is_terminal else sdk.cancel(before.id)  # a finished job stays as it is
        results.append(job)
        if not json_output:
            typer.echo(f"{job.id} already ended: {job.state.value}" if before.state.is_terminal
                       else f"{job.id}: {job.state.value}")
    if json_output:
        data = [job_json(job) for job in results]
        echo_json(data if all_jobs else data[0])
    elif all_jobs:
        typer.echo(f"{len(results)} job(s) cancelled", err=True)


def register(app: typer.Typer) -> None:
    """Add ``jobs`` (with ``jobs prune``) and ``cancel`` to ``app``."""
    app.add_typer(jobs_app, name="jobs", rich_help_panel="Jobs")
    app.command("cancel", rich_help_panel="Jobs")(cancel_command)
