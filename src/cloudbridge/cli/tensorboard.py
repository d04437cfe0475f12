"""``cloudbridge tensorboard JOB…``: the jobs' event files brought local, TensorBoard on 127.0.0.1.

Local jobs are read in place (their folder's ``output/``). A job whose outputs are in cloud storage
has its ``events.out.tfevents.*`` files (objects, or members of ``*.tar.gz`` archives such as
SageMaker's ``output.tar.gz``) downloaded into ``CLOUDBRIDGE_HOME/tensorboard/<job id>/`` (again on
each call while it runs). TensorBoard is the ``tensorboard`` extra; it runs as a child
process, and Ctrl-C stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

__all__ = ["event_dirs", "tensorboard_command"]

INSTALL_HINT = "pip install 'cloudbridge-ai[tensorboard]'"


def _require_tensorboard() -> None:
    from cloudbridge.errors import UserError

    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UserError(f"the tensorboard package is not installed; install it with: {INSTALL_HINT}") from None


def _local_root(job: Any) -> Path | None:
    from cloudbridge.uri import is_remote, parse_uri

    if job.extra.get("job_dir"):
        return Path(job.extra["job_dir"]) / "output"
    if job.outputs_uri and not is_remote(job.outputs_uri):
        return Path(parse_uri(job.outputs_uri).path)
    return None


def _download_events(job: Any) -> Path | None:
    from cloudbridge.metrics import fetch_remote_files

    return fetch_remote_files(job, lambda name: "tfevents" in name, "tensorboard")


def event_dirs(job: Any) -> Path | None:
    """The local folder holding ``job``'s TensorBoard event files (downloaded when remote), or ``None``."""
    for root in (_local_root(job), _download_events(job)):
        if root is not None and root.is_dir() and next(root.rglob("events.out.tfevents.*"), None) is not None:
            return root
    return None


def _free_port() -> int:
    from cloudbridge.runtime.launch import free_port

    return free_port()


def tensorboard_command(
    job_ids: list[str] = typer.Argument(..., metavar="JOB...", help="One or more job ids (several: one run each)."),
    port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (0: a free one)."),
) -> None:
    """Start TensorBoard on 127.0.0.1 over the jobs' event files (synced from the cloud if needed); Ctrl-C stops it."""
    from cloudbridge import sdk
    from cloudbridge.errors import UserError

    _require_tensorboard()
    jobs = [sdk.get_job(job_id) for job_id in job_ids]
    runs = []
    for job in jobs:
        folder = event_dirs(job)
        if folder is None:
            raise UserError(f"job {job.id} has no TensorBoard event files; record scalars from the job with "
                            "cloudbridge.runtime.log_metrics(step=..., loss=...) (cloudbridge-finetune does)")
        runs.append(f"{job.id}:{folder}")
    port = port or _free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir_spec", ",".join(runs), "--host", "127.0.0.1",
               "--port", str(port), "--reload_interval", "5"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    typer.echo(f"TensorBoard for {', '.join(j.id for j in jobs)}: http://127.0.0.1:{port}/ (Ctrl-C stops it)")
    try:
        _, err = process.communicate()
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        typer.echo("TensorBoard stopped")
        return
    if process.returncode:
        tail = " ".join((err or "").strip().splitlines()[-1:])
        raise UserError(f"TensorBoard exited with status {process.returncode}: {tail}")
