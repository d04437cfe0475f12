"""``cloudbridge migrate JOB.yaml --to PROVIDER``: move a local job's data and spec to a cloud."""

from __future__ import annotations

import typer

__all__ = ["register"]


def migrate_command(
    job: str = typer.Argument(..., help="The job spec (YAML) that runs on local."),
    to: str = typer.Option(..., "--to", help="Target provider, e.g. aws."),
    bucket: str = typer.Option(
        None, "--bucket", help="Target location, e.g. s3://my-bucket (default: the provider's)."
    ),
    include: list[str] = typer.Option([], "--include", help="Allow uploading this path outside the workdir."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan; upload and write nothing."),
    submit: bool = typer.Option(False, "--submit", help="Submit the migrated job and stream its logs."),
    json_output: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Upload what a local job reads, write JOB.<provider>.yaml with URIs, optionally submit it."""
    from cloudbridge.migrate import migrate

    plan = migrate(job, to, bucket=bucket, dry_run=dry_run, submit=submit, include=include, progress=None)
    if json_output:
        from cloudbridge.cli._output import echo_json

        echo_json(plan.to_dict())
    else:
        typer.echo(plan.summarize())
    if plan.job is None:
        return
    job_record = plan.job
    typer.echo(f"submitted {job_record.id}", err=json_output)
    if json_output:
        return
    for line in job_record.logs(follow=True):
        typer.echo(line)
    final = job_record.refresh()
    typer.echo(f"{final.id} {final.state}")
    if str(final.state) != "SUCCEEDED":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``cloudbridge migrate``."""
    app.command("migrate")(migrate_command)
