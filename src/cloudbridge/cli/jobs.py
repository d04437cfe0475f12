"""Job commands: ``run``, ``jobs``, ``status``, ``logs`` and ``cancel`` (a thin layer over the SDK)."""

from __future__ import annotations

import sys
from typing import Any

import typer

__all__ = ["register"]

def _sdk() -> Any:
    from cloudbridge import sdk

    return sdk


def _echo_err(text: str, **style: Any) -> None:
    typer.secho(text, err=True, **style)


def _estimate(spec: Any) -> tuple[Any, Exception | None]:
    """``(estimate, refusal)``: the cost estimate shown before submit, and the budget refusal if any.

    An estimate that cannot be made at all (no instance fits) is ``(None, None)`` plus a warning:
    the provider has the last word at submit.
    """
    from cloudbridge.errors import BudgetExceeded, CloudbridgeError

    try:
        return _sdk().budget_estimate(spec), None
    except BudgetExceeded as exc:
        return None, exc
    except CloudbridgeError as exc:
        _echo_err(f"warning: cost could not be estimated: {exc}", fg="yellow")
        return None, None


def _show_estimate(estimate: Any, refusal: Exception | None, *, err: bool = True) -> None:
    """Print the estimate, clearly labelled as one, and its warnings (budget unchecked, no price...)."""
    from cloudbridge.planner.cost import ESTIMATE_LABEL

    echo = _echo_err if err else typer.secho
    if estimate is not None:
        echo(f"cost estimate: {estimate.describe()} [{ESTIMATE_LABEL}]")
        for warning in estimate.warnings:
            echo(f"warning: {warning}", fg="yellow")
    if refusal is not None:
        echo(f"budget: {refusal}", fg="red")


def _dry_run(spec: Any, json_output: bool) -> None:
    """Show the resolved spec, the workdir package summary and the cost estimate; submit nothing.

    A spec whose estimate is over its budget is shown, then refused (exit 2) as ``run`` would.
    """
    from cloudbridge.cli.dry_run import describe_spec, package_summary

    resolved = describe_spec(spec)
    manifest = package_summary(spec)
    estimate, refusal = _estimate(spec)
    if json_output:
        from cloudbridge.cli._output import echo_json

        package = manifest.to_dict() if manifest is not None else None
        cost = estimate.to_dict() if estimate is not None else None
        if refusal is not None:
            cost = {"refused": str(refusal)}
        echo_json({"spec": resolved, "package": package, "estimate": cost, "submitted": False})
    else:
        import yaml

        typer.echo(f"# {spec.source or 'job spec'}: valid; resolved spec (nothing submitted)")
        from cloudbridge.cli.dry_run import for_people

        typer.echo(yaml.safe_dump(for_people(resolved), sort_keys=False, default_flow_style=False).rstrip())
        if manifest is not None:
            typer.echo("# workdir package")
            typer.echo(manifest.summarize())
        typer.echo("# cost")
        _show_estimate(estimate, None, err=False)
    if refusal is not None:
        raise refusal


def _validate(spec: Any, force: bool) -> Exception | None:
    """The provider's own checks, as submit makes them (nothing created); bad input raises at once.

    A budget refusal is returned instead, to be raised after the cost estimate (whose refusal,
    with the estimate's numbers, wins): ``run`` and ``run --dry-run`` refuse with the same line.
    """
    from cloudbridge.errors import BudgetExceeded

    try:
        _sdk().validate(spec, force=force)
    except BudgetExceeded as exc:
        return exc
    return None


def _dry_run_checked(spec: Any, json_output: bool, force: bool = False) -> None:
    """``run --dry-run``: every check submit makes (:func:`_validate`), then :func:`_dry_run`."""
    budget = _validate(spec, force)
    _dry_run(spec, json_output)
    if budget is not None:
        raise budget


def _show_package(spec: Any) -> None:
    """Before a provider uploads the workdir: its size, file count and largest entries on stderr.

    Only for providers whose compute says it ships the workdir (``uploads_workdir = True``, e.g.
    AWS); the local backend copies the packaged files into the job's own folder and reports the
    package on the job record instead. The over-100-MB warning is printed here
    as a ``warning:`` line (and not repeated by the packaging logger when the provider scans it
    again); a workdir over the limit is refused (one line, exit 2) before anything is submitted.
    """
    from cloudbridge.backends import get_provider

    workdir = spec.resolved_workdir()
    if workdir is None or spec.provider in ("local", "auto"):
        return
    compute = get_provider(spec.provider, overrides=spec.overrides.get(spec.provider)).compute
    if not getattr(compute, "uploads_workdir", False):
        return
    import logging

    from cloudbridge.packaging import scan_workdir

    logging.getLogger("cloudbridge.packaging").setLevel(logging.ERROR)  # its warning is printed below, once
    manifest = scan_workdir(workdir, spec=spec)
    for line in manifest.summarize().splitlines():
        if line.startswith("warning: "):
            _echo_err(line, fg="yellow")
        else:
            _echo_err(f"package: {line.strip()}" if line.startswith("workdir ") else line)


def _wait_terminal(job_id: str) -> Any:
    """Poll until the job is terminal (log streams may end a moment before the state is recorded)."""
    import time

    sdk = _sdk()
    delay = 0.1
    while True:
        job = sdk.get_job(job_id)
        if job.state.is_terminal:
            return job
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def _finish(job: Any) -> None:
    """Exit 0 when the job succeeded; raise an error line (exit 1) with its reason otherwise."""
    from cloudbridge.errors import CloudbridgeError, JobFailed

    state = job.state.value
    if state == "SUCCEEDED":
        _echo_err(f"job {job.id} SUCCEEDED", fg="green")
        return
    reason = job.reason or "no reason recorded"
    if state == "FAILED":
        raise JobFailed(
            f"job {job.id} FAILED: {reason} (details: cloudbridge status {job.id})",
            reason=job.reason,
            detail=job.detail,
        )
    raise CloudbridgeError(f"job {job.id} {state}: {reason}")


def run_command(
    spec_path: str = typer.Argument(..., metavar="JOB.yaml", help="The job spec (YAML)."),
    provider: str = typer.Option(None, "--provider", "-p", help="Run on this provider instead of the spec's."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Submit, print the job id and return at once."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate; show the resolved spec, workdir package and cost estimate; submit nothing."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the job record as JSON (logs go to stderr)."),
    follow_symlinks: bool = typer.Option(
        False, "--follow-symlinks", help="Ship what symlinks leading out of the workdir point to (refused otherwise)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Submit even if an unfinished job of this provider uses the same checkpoints location."
    ),
) -> None:
    """Run a job: show its cost estimate, submit it, stream its logs, exit with its status (0 succeeded, 1 failed).

    The estimate (catalog list price x nodes x max_runtime; local: price_per_hour) is printed before
    anything is submitted when the job has a price or a budget, with a warning when a budget cannot be
    checked; a job over its budget is refused (exit 2). On a provider that uploads the workdir, the
    package's size, file count and largest files are printed first (a warning above 100 MB).
    """
    from cloudbridge.specs import load_job_spec

    spec = load_job_spec(spec_path)
    if provider:
        spec = spec.with_provider(provider)
    if follow_symlinks:
        spec = spec.model_copy(update={"follow_symlinks": True})
    if spec.provider != "auto":
        from cloudbridge.plugins import provider_info

        provider_info(spec.provider)  # unknown provider: one line, exit 2, before anything is created
    from cloudbridge.cli.dry_run import validate_locations

    validate_locations(spec)
    sdk = _sdk()
    if dry_run:  # every check submit makes, the provider's included, so exit 0 predicts an accepted submit
        _dry_run_checked(spec, json_output, force)
        return
    budget = _validate(spec, force)  # the provider's own checks first: bad input stays one line, exit 2
    estimate, refusal = _estimate(spec)
    if refusal is not None or budget is not None:
        raise refusal or budget  # type: ignore[misc]  # over budget: one line, exit 2, nothing submitted
    res = spec.resources
    if res.max_cost is not None or res.max_hourly_cost is not None or (estimate is not None and estimate.hourly):
        _show_estimate(estimate, None)  # no budget and no price (a free local job): nothing to say
    _show_package(spec)  # size and file count before a provider uploads the workdir
    import logging

    logging.getLogger("cloudbridge.budget").setLevel(logging.ERROR)  # printed above; the SDK would repeat them
    job = sdk.run(spec, force=force)
    for warning in job.extra.get("warnings") or []:
        if estimate is None or warning not in estimate.warnings:
            _echo_err(f"warning: {warning}", fg="yellow")
    if detach:
        if json_output:
            from cloudbridge.cli._output import echo_json, job_json

            echo_json(job_json(job))
        else:
            typer.echo(job.id)
            _echo_err(f"submitted {job.id} ({job.state.value}); follow it with: cloudbridge logs -f {job.id}")
        return
    _echo_err(
        f"submitted {job.id} on {job.provider}; streaming logs (Ctrl-C detaches, the job keeps running)", fg="cyan"
    )
    out = sys.stderr if json_output else sys.stdout
    try:
        for line in sdk.logs(job.id, follow=True):
            out.write(line + "\n")
            out.flush()
        job = _wait_terminal(job.id)
    except KeyboardInterrupt:
        _echo_err(f"detached from {job.id}; it keeps running (stop it with: cloudbridge cancel {job.id})", fg="yellow")
        raise typer.Exit(130) from None
    if json_output:
        from cloudbridge.cli._output import echo_json, job_json

        echo_json(job_json(job))
    _finish(job)


def status_command(
    job_id: str = typer.Argument(..., metavar="ID", help="Job id, e.g. local-1a2b3c4d."),
    json_output: bool = typer.Option(False, "--json", help="Print the job record as JSON."),
    wait: bool = typer.Option(
        False, "--wait", help="Keep reading the job until it ends, then show it; exit 1 unless it SUCCEEDED."
    ),
) -> None:
    """Show one job: state, failure reason and detail, attempts and state-change events.

    Each read asks the provider: on clouds that is when ``start_timeout`` is enforced and job events
    fire, so ``--wait`` keeps a job nobody else watches honest (Ctrl-C stops waiting, not the job).
    """
    from cloudbridge.cli.status_view import print_status

    job = _sdk().get_job(job_id)
    if wait:
        try:
            job = _wait_terminal(job_id)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
    events = _events(job)
    if json_output:
        from cloudbridge.cli._output import echo_json, job_json

        echo_json(job_json(job, events=events))
    else:
        print_status(job, events)
    if wait and job.state.value != "SUCCEEDED":
        raise typer.Exit(1)


def _events(job: Any) -> list[dict[str, Any]]:
    """The job's state-change history as the builtin observer recorded it.

    ``get_job`` already attaches it as ``extra["events"]`` (the SDK for cloud jobs, the local
    backend for its own); the store is read only for a provider that does not.
    """
    if "events" in job.extra:
        return job.extra["events"]
    from cloudbridge.jobstore.store import JobStore

    return JobStore.default().events(job.id)


def logs_command(
    job_id: str = typer.Argument(..., metavar="ID", help="Job id."),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Keep streaming until the job ends (a running job: from its last 10 lines)."
    ),
    tail: str = typer.Option(None, "--tail", metavar="N",
                             help="Only the last N lines ('all': every line; default: all, or 10 with -f on a "
                                  "running job)."),
    timeout: str = typer.Option(
        None, "--timeout", metavar="DURATION",
        help="With -f: stop following after this long (e.g. 90, 30s, 10m); the job keeps running.",
    ),
    since: str = typer.Option(
        None, "--since", metavar="DURATION",
        help="Only lines that arrived in the last DURATION (e.g. 10m, 1h; local jobs: the supervisor "
             "records when each line arrived).",
    ),
) -> None:
    """Print a job's logs (-f follows them until the job ends, or --timeout passes: exit 1)."""
    import time
    from collections import deque

    from cloudbridge.cli._output import parse_duration

    seconds = parse_duration(timeout, "--timeout")
    age = parse_duration(since, "--since")
    cutoff = None if age is None else time.time() - age
    sdk = _sdk()
    job = sdk.get_job(job_id)  # an unknown id is one line and exit 2
    last = _tail_count(tail, default=10 if follow and not job.state.is_terminal else None)
    try:
        if not follow or job.state.is_terminal:
            lines = sdk.logs(job_id, follow=False, since=cutoff)
            for line in deque(lines, maxlen=last) if last is not None else lines:
                _write(line)
            return
        seen = list(sdk.logs(job_id, follow=False, since=cutoff))  # what is there now; the follow replays it
        for line in seen[len(seen) - last:] if last is not None and last < len(seen) else seen:
            _write(line)
        for index, line in enumerate(sdk.logs(job_id, follow=True, timeout=seconds, since=cutoff)):
            if index >= len(seen):
                _write(line)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _write(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _tail_count(text: str | None, default: int | None) -> int | None:
    """``--tail``: a count of lines, ``all`` (None: every line), or ``default`` when not given."""
    if text is None:
        return default
    if text.strip().lower() == "all":
        return None
    if not text.strip().isdigit():
        from cloudbridge.errors import UserError

        raise UserError(f"--tail: {text!r} is not a number of lines (or 'all')")
    return int(text)


def register(app: typer.Typer) -> None:
    """Add ``run``, ``status`` and ``logs`` to ``app`` (``jobs`` and ``cancel``: :mod:`cloudbridge.cli.joblist`)."""
    app.command("run", rich_help_panel="Jobs")(run_command)
    app.command("status", rich_help_panel="Jobs")(status_command)
    app.command("logs", rich_help_panel="Jobs")(logs_command)
