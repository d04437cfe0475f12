"""``cloudbridge emulate JOB.yaml --as sagemaker|vertex|azureml``: run a job under a cloud's contract locally.

::

    cloudbridge emulate examples/finetune-sentiment/job.yaml --as sagemaker
    cloudbridge emulate job.yaml --as azureml --processes 2 --root /tmp/az --json
"""

from __future__ import annotations

import typer

__all__ = ["emulate_command", "register"]


def emulate_command(
    job: str = typer.Argument(..., help="Job spec (YAML)."),
    platform: str = typer.Option(..., "--as", help="sagemaker | vertex | azureml"),
    processes: int = typer.Option(None, "--processes",
                                  help="Processes per node (default: resources.processes, else 2)."),
    root: str = typer.Option(None, "--root", help="Directory standing in for the container's / (default: a temp dir)."),
    timeout: str = typer.Option(None, "--timeout", metavar="DURATION",
                                help="Stop the run after this long (90, 30s, 10m, 1h)."),
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary root (default: deleted when the run ends)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run JOB locally with the platform's exact environment variables and directory layout."""
    import sys

    from cloudbridge.emulate import PLATFORMS, emulate
    from cloudbridge.errors import UserError
    from cloudbridge.specs import load_job_spec

    if platform not in PLATFORMS:
        raise UserError(f"--as {platform!r} is not an emulated platform; choose one of {', '.join(PLATFORMS)}")
    from cloudbridge.cli._output import parse_duration

    seconds = parse_duration(timeout, "--timeout")
    spec = load_job_spec(job)
    result = emulate(spec, platform, processes=processes, root=root, timeout=seconds, keep=keep)
    if as_json:
        from cloudbridge.cli._output import echo_json

        echo_json(result.to_dict())
    else:
        state = "succeeded" if result.exit_code == 0 else f"failed (exit status {result.exit_code})"
        lines = [
            f"emulated {platform} job {spec.name} {state} in {result.duration_s:.1f}s on {len(result.nodes)} "
            f"{'process' if platform == 'azureml' else 'node'}(s)",
            f"  root        {result.root}" + (" (deleted; --keep keeps it)" if result.removed else ""),
            f"  model       {result.model_dir}",
            f"  outputs     {result.output_dir}",
            f"  checkpoints {result.checkpoint_dir}",
        ]
        print("\n".join(lines), file=sys.stderr if result.exit_code else sys.stdout)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add ``cloudbridge emulate``."""
    app.command("emulate")(emulate_command)
