"""A local job's folder, the paths and ``CB_*`` variables it sees, and copying data in and out.

Layout of ``<log_dir>/<job id>/`` (``log_dir`` defaults to ``CLOUDBRIDGE_HOME/jobs``)::

    code/              the job's own copy of the workdir package (see compute_code); the command runs here
    job.log            what the command printed (stdout and stderr), plus ``[cloudbridge]`` lines
    supervisor.log     the supervisor's own diagnostics
    inputs/<name>/     inputs given as URIs are downloaded here; a single local file is linked here
    output/            CB_OUTPUT_DIR; output channel <name> (other than ``model``) is output/<name>
    model/             CB_MODEL_DIR; copied to the ``model`` output channel
    checkpoints/       CB_CHECKPOINT_DIR unless ``checkpoints`` is a local path (then used in place)
    metrics.json       CB_METRICS_FILE: a JSON object the job may write; it becomes ``Job.metrics``
                       (over the latest values of output/metrics.jsonl, the series of ``log_metrics``)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudbridge.specs import JobSpec, check_workdir, spec_error
from cloudbridge.uri import is_remote, parse_uri

__all__ = ["InputDownloadError", "JobPaths", "channel_env", "check_workdir", "copy_outputs", "job_environment",
           "read_metrics", "resolve_spec", "stage_inputs", "sync_checkpoints"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class JobPaths:
    """Where one local job keeps its files."""

    root: Path

    @property
    def log(self) -> Path:
        """The job's combined stdout/stderr."""
        return self.root / "job.log"

    @property
    def supervisor_log(self) -> Path:
        """The supervisor's own diagnostics."""
        return self.root / "supervisor.log"

    @property
    def code(self) -> Path:
        """The job's private copy of its workdir package: the command's working directory."""
        return self.root / "code"

    @property
    def inputs(self) -> Path:
        """Parent of downloaded input channels."""
        return self.root / "inputs"

    @property
    def output(self) -> Path:
        """``CB_OUTPUT_DIR``."""
        return self.root / "output"

    @property
    def model(self) -> Path:
        """``CB_MODEL_DIR``."""
        return self.root / "model"

    @property
    def metrics(self) -> Path:
        """``CB_METRICS_FILE``."""
        return self.root / "metrics.json"

    def checkpoints(self, spec: JobSpec) -> Path:
        """``CB_CHECKPOINT_DIR``: the spec's local checkpoint folder, else ``checkpoints/`` here."""
        if spec.checkpoints and not is_remote(spec.checkpoints):
            return Path(parse_uri(spec.checkpoints).path)
        return self.root / "checkpoints"

    def output_channel(self, name: str) -> Path:
        """The folder whose contents go to output channel ``name``."""
        return self.model if name == "model" else self.output / name


RANK_TAGS_VAR = "CB_LOG_RANK_TAGS"
LINEBUFFER_DIR = str(Path(__file__).resolve().parents[2] / "runtime" / "linebuffer")


def channel_env(name: str) -> str:
    """A channel name as it appears in variable names: ``train-data`` -> ``TRAIN_DATA``."""
    return name.upper().replace("-", "_")


def resolve_spec(spec: JobSpec) -> JobSpec:
    """A copy of ``spec`` with every local path absolute (relative to the spec file) and checked.

    Raises :class:`~cloudbridge.errors.InvalidSpec` naming the spec file, line and field for a
    missing workdir or local input, and ``InvalidURI`` for a URI no installed provider serves.
    """
    from cloudbridge.plugins import provider_for_scheme

    base = spec.base_dir
    source = spec.source

    def local(value: str, field: str, *, must_exist: bool) -> str:
        if is_remote(value):
            provider_for_scheme(parse_uri(value).scheme)
            return value
        path = parse_uri(value, base_dir=str(base)).path
        if must_exist and not os.path.exists(path):
            raise spec_error(spec, field, f"{path} does not exist")
        return path

    workdir = check_workdir(spec)
    update: dict[str, Any] = {
        "workdir": str(workdir) if workdir else None,
        "inputs": {k: local(v, f"inputs.{k}", must_exist=True) for k, v in spec.inputs.items()},
        "outputs": {k: local(v, f"outputs.{k}", must_exist=False) for k, v in spec.outputs.items()},
        "checkpoints": local(spec.checkpoints, "checkpoints", must_exist=False) if spec.checkpoints else None,
    }
    resolved = spec.model_copy(update=update)
    resolved.source = source
    return resolved


class InputDownloadError(Exception):
    """An input channel could not be downloaded; the message names the channel, its URI and the cause."""


def stage_inputs(spec: JobSpec, paths: JobPaths, log: Log) -> dict[str, str]:
    """Make every input channel a folder; return ``channel -> folder``.

    A local folder is used in place; a local file is linked into ``inputs/<name>/``; a URI (a
    single object or a prefix) is downloaded into ``inputs/<name>/``.
    """
    dirs: dict[str, str] = {}
    for name, value in spec.inputs.items():
        target = paths.inputs / name
        if not is_remote(value):
            if os.path.isdir(value):
                dirs[name] = value
                continue
            target.mkdir(parents=True, exist_ok=True)
            link = target / os.path.basename(value)
            if not link.exists():
                os.symlink(value, link)
            dirs[name] = str(target)
            continue
        log(f"downloading input {name} from {value}")
        try:
            count = _download(value, target)
        except Exception as exc:  # the job's failure detail names the channel and its URI
            raise InputDownloadError(f"input {name} ({value}): {type(exc).__name__}: {exc}") from exc
        log(f"input {name}: {count} file(s) in {target}")
        dirs[name] = str(target)
    return dirs


def _download(uri: str, target: Path, *, required: bool = True) -> int:
    """Download the object or every object under the prefix ``uri`` into ``target``.

    Nothing there is :class:`NotFound` when ``required`` (an input), fine otherwise (checkpoints).
    """
    from cloudbridge.transfers.download import download

    return len(download(uri, target, required=required))


def _upload_dir(source: Path, dest: str) -> int:
    """Copy the files under ``source`` to ``dest`` (a local path or a URI); returns the file count."""
    if not source.is_dir():
        return 0
    if not is_remote(dest):
        target = parse_uri(dest).path
        os.makedirs(target, exist_ok=True)
        if os.path.realpath(target) != os.path.realpath(source):
            shutil.copytree(source, target, dirs_exist_ok=True, symlinks=False)
        return sum(len(files) for _, _, files in os.walk(source))
    from cloudbridge.transfers import storage_for

    storage = storage_for(dest)
    base = parse_uri(dest)
    count = 0
    for folder, _, files in os.walk(source):
        for filename in sorted(files):
            path = Path(folder) / filename
            storage.upload(path, base.child(path.relative_to(source).as_posix()))
            count += 1
    return count


def copy_outputs(spec: JobSpec, paths: JobPaths, log: Log) -> list[str]:
    """Copy each output channel's folder to its destination; return one message per failure."""
    errors = []
    for name, dest in spec.outputs.items():
        try:
            count = _upload_dir(paths.output_channel(name), dest)
            log(f"output {name}: copied {count} file(s) to {dest}")
        except Exception as exc:  # noqa: BLE001 - report every channel, then fail the job
            errors.append(f"output {name} -> {dest}: {type(exc).__name__}: {exc}")
            log(f"output {name}: copy to {dest} FAILED: {exc}")
    return errors


def sync_checkpoints(spec: JobSpec, paths: JobPaths, *, download: bool) -> int:
    """Download (before the run) or upload (during and after it) a remote ``checkpoints`` URI."""
    if not spec.checkpoints or not is_remote(spec.checkpoints):
        return 0
    local_dir = paths.checkpoints(spec)
    if download:
        return _download(spec.checkpoints, local_dir, required=False)
    return _upload_dir(local_dir, spec.checkpoints)


def read_metrics(paths: JobPaths) -> dict[str, Any]:
    """The latest values of the job's series (``output/metrics.jsonl``, see
    :func:`cloudbridge.runtime.log_metrics`), overlaid by the JSON object in ``CB_METRICS_FILE``."""
    from cloudbridge.metrics import SERIES_FILE, read_history

    latest = read_history(paths.output / SERIES_FILE).latest()
    try:
        data = json.loads(paths.metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return latest
    return {**latest, **data} if isinstance(data, dict) else latest


def job_environment(
    base: Mapping[str, str],
    spec: JobSpec,
    *,
    job_id: str,
    paths: JobPaths,
    input_dirs: Mapping[str, str],
    gpu_ids: list[int],
    master_port: int,
) -> dict[str, str]:
    """The environment of the job's command: ``base`` + ``spec.env`` + the ``CB_*`` contract."""
    env = {k: v for k, v in base.items() if not k.startswith("_CB_")}
    env.update(spec.env)
    processes = spec.resources.processes or (len(gpu_ids) if gpu_ids else 1)
    gpu_list = ",".join(str(g) for g in gpu_ids)
    env.update(
        {
            "CB_PLATFORM": "local",
            "CB_JOB_ID": job_id,
            "CB_JOB_NAME": spec.name,
            "CB_JOB_DIR": str(paths.root),
            "CB_OUTPUT_DIR": str(paths.output),
            "CB_MODEL_DIR": str(paths.model),
            "CB_CHECKPOINT_DIR": str(paths.checkpoints(spec)),
            "CB_METRICS_FILE": str(paths.metrics),
            "CB_DISTRIBUTION": spec.distribution,
            "CB_NUM_NODES": "1",
            "CB_NODE_RANK": "0",
            "CB_NUM_PROCESSES": str(processes),
            "CB_GPU_IDS": gpu_list,
            "CUDA_VISIBLE_DEVICES": gpu_list,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(master_port),
        }
    )
    for name, folder in input_dirs.items():
        env[f"CB_INPUT_{channel_env(name)}"] = folder
    for name in spec.outputs:
        env[f"CB_OUTPUT_{channel_env(name)}"] = str(paths.output_channel(name))
    # Whole lines, streamed live: every Python process of the job line-buffers its stdout (see
    # cloudbridge.runtime.linebuffer), so ranks printing at once never splice lines in the log.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (LINEBUFFER_DIR, env.get("PYTHONPATH")) if p)
    # several processes share job.log: their lines say their rank ("[rankN] "), unless spec.env says
    # CB_LOG_RANK_TAGS=0; one process keeps its lines exactly as printed
    if (processes > 1 or spec.resources.nodes > 1) and RANK_TAGS_VAR not in spec.env:
        env[RANK_TAGS_VAR] = "1"
    return env
