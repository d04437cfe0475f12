"""The sbatch script of a job: a pure function of (spec, placement, limits) and where things are staged.

=====================================  ===================================================
spec                                   sbatch
=====================================  ===================================================
``resources.nodes``                    ``--nodes=N --ntasks-per-node=1`` (one launcher per node)
``resources.accelerators`` (``A100:4``)  ``--gpus-per-node=a100:4``
``resources.cpus`` (``8+``)             ``--cpus-per-task=8``
``resources.memory`` (``32+``, GB)      ``--mem=32G``
``max_runtime`` / ``max_cost``          ``--time=D-HH:MM:SS`` (the run-time cap the core computed)
``resources.spot``                     ``--requeue`` (preemptible partitions), else ``--no-requeue``
settings ``partition/account/qos/constraint``  ``--partition --account --qos --constraint``
settings ``sbatch_options``                  added as they are
=====================================  ===================================================

The script exports the ``CB_*`` contract (job id, staged input folders, output, model and
checkpoint folders), unpacks the code package once per job, downloads URI inputs on the cluster,
then runs ``srun cloudbridge-launch -- RUN`` so ``run:`` means what it means everywhere (with
``distribution: none``, ``RUN`` is a bash command). URI outputs are uploaded when the run ends,
whatever its status; local outputs are fetched back by the client.
"""

from __future__ import annotations

import math
import posixpath
import shlex
from dataclasses import dataclass
from typing import Any

from cloudbridge.specs import JobSpec
from cloudbridge.uri import is_remote, parse_uri
from cloudbridge_slurm.cluster import format_time
from cloudbridge_slurm.settings import STAGING_BUCKET, SlurmSettings

__all__ = ["JobLayout", "build_script", "channel_env", "input_paths", "output_paths", "secret_env_warning"]


#: Downloads one URI input into its folder on the cluster with cloudbridge's checked helper (an object
#: or every object under a prefix; unsafe keys refused before anything is written).
_DOWNLOAD = "import sys; from cloudbridge.transfers.download import download; download(sys.argv[1], sys.argv[2])"


def channel_env(name: str) -> str:
    """``train-data`` -> ``TRAIN_DATA``."""
    return name.upper().replace("-", "_")


@dataclass(frozen=True)
class JobLayout:
    """Where one attempt of a job lives on the cluster: ``<staging>/jobs/<name>/``.

    ``first`` is the first attempt's name: restarts share its checkpoint folder.
    """

    staging: str
    name: str
    first: str

    @property
    def job_dir(self) -> str:
        """The attempt's folder."""
        return posixpath.join(self.staging, "jobs", self.name)

    @property
    def log(self) -> str:
        """The attempt's output file pattern (``%j``: the Slurm job id)."""
        return posixpath.join(self.job_dir, "slurm-%j.out")

    def path(self, *parts: str) -> str:
        """A path inside the attempt's folder."""
        return posixpath.join(self.job_dir, *parts)

    @property
    def checkpoints(self) -> str:
        """The checkpoint folder every attempt of the job shares."""
        return posixpath.join(self.staging, "jobs", self.first, "checkpoints")


def _staged(value: str, staging: str) -> str | None:
    """The cluster path of a ``slurm://staging/...`` value, else ``None``."""
    if not value.startswith("slurm://"):
        return None
    parsed = parse_uri(value)
    if parsed.bucket != STAGING_BUCKET:
        return None
    return posixpath.join(staging, parsed.key.strip("/"))


def input_paths(spec: JobSpec, layout: JobLayout) -> dict[str, tuple[str, str]]:
    """channel -> ``(how, cluster folder)``; ``how`` is ``in-place`` (``slurm://``), ``staged`` (a local
    path copied at submit) or ``download`` (a URI fetched by the job)."""
    found = {}
    for name, value in spec.inputs.items():
        staged = _staged(value, layout.staging)
        if staged is not None:
            found[name] = ("in-place", staged)
        elif is_remote(value):
            found[name] = ("download", layout.path("inputs", name))
        else:
            found[name] = ("staged", layout.path("inputs", name))
    return found


def output_paths(spec: JobSpec, layout: JobLayout) -> dict[str, tuple[str, str]]:
    """channel -> ``(how, cluster folder)``; ``how`` is ``in-place``, ``fetch`` (copied back to a local
    path by the client) or ``upload`` (a URI the job uploads to when it ends)."""
    found = {}
    for name, value in spec.outputs.items():
        staged = _staged(value, layout.staging)
        folder = layout.path("model") if name == "model" else layout.path("output", name)
        if staged is not None:
            found[name] = ("in-place", staged)
        elif is_remote(value):
            found[name] = ("upload", folder)
        else:
            found[name] = ("fetch", folder)
    return found


def secret_env_warning(spec: JobSpec) -> str | None:
    """One line when ``spec.env`` holds values that look secret (names only, never values), else ``None``.

    ``env:`` values are exported in the script, so they are stored in the job's folder. Credentials the
    job needs (an object store's, for URI inputs) travel best in the submitting environment, which
    sbatch passes on, and are then written nowhere by cloudbridge.
    """
    from cloudbridge.redaction import is_secret

    names = sorted(k for k, v in spec.env.items() if is_secret(k, v))
    if not names:
        return None
    return (f"env {', '.join(names)} look{'s' if len(names) == 1 else ''} secret: the Slurm plugin writes env: "
            "values into job.sbatch and job.json in the job's folder under staging_dir (mode 0700: yours and "
            "root's to read); leave them out of the spec (the job inherits the environment you submit from) or "
            "read them in settings.slurm.setup (e.g. 'source ~/.secrets')")


def _directives(spec: JobSpec, settings: SlurmSettings, layout: JobLayout, run_cap: int, tags: dict[str, str],
                partition: str | None) -> list[str]:
    res = spec.resources
    lines = [
        f"--job-name={layout.name}",
        f"--output={layout.log}",
        f"--nodes={res.nodes}",
        "--ntasks-per-node=1",
        f"--time={format_time(run_cap)}",
        "--requeue" if res.spot else "--no-requeue",
    ]
    if res.accelerator_count:
        lines.append(f"--gpus-per-node={res.accelerator_name.lower()}:{res.accelerator_count}"
                     if res.accelerator_name and res.accelerator_name not in ("GPU", "ANY")
                     else f"--gpus-per-node={res.accelerator_count}")
    if res.min_cpus:
        lines.append(f"--cpus-per-task={math.ceil(res.min_cpus)}")
    if res.min_memory_gb:
        lines.append(f"--mem={math.ceil(res.min_memory_gb)}G")
    for option, value in (("partition", partition), ("account", settings.account), ("qos", settings.qos),
                          ("constraint", settings.constraint)):
        if value:
            lines.append(f"--{option}={value}")
    lines += list(settings.sbatch_options)
    comment = " ".join(f"{k}={v}" for k, v in sorted(tags.items()) if k == "cloudbridge:job-id")
    if comment:
        lines.append(f"--comment={comment}")
    return [f"#SBATCH {line}" for line in lines]


def build_script(spec: JobSpec, placement: Any, limits: Any, *, settings: SlurmSettings, layout: JobLayout,
                 code_path: str | None, tags: dict[str, str], run_cap: int | None = None) -> str:
    """The sbatch script for one attempt of ``spec`` (see the module docstring). Pure.

    ``placement.instance_type`` is the partition (``None``: the cluster's default); ``limits.run_cap()``
    the ``--time`` unless ``run_cap`` is given (restarts); ``code_path`` the code package on the cluster.
    """
    partition = getattr(placement, "instance_type", None) or None
    if partition == "default":
        partition = None
    cap = run_cap if run_cap is not None else limits.run_cap()
    q = shlex.quote
    inputs, outputs = input_paths(spec, layout), output_paths(spec, layout)
    env: dict[str, str] = {
        "CB_PLATFORM": "slurm",
        "CB_JOB_ID": f"slurm-{layout.first}",
        "CB_JOB_NAME": spec.name,
        "CB_JOB_DIR": layout.job_dir,
        "CB_DISTRIBUTION": spec.distribution,
        "CB_OUTPUT_DIR": layout.path("output"),
        "CB_MODEL_DIR": outputs["model"][1] if "model" in outputs else layout.path("model"),
        "CB_CHECKPOINT_DIR": _staged(spec.checkpoints, layout.staging) or layout.checkpoints
        if spec.checkpoints else layout.checkpoints,
        "CB_METRICS_FILE": layout.path("metrics.json"),
    }
    if spec.resources.processes:
        env["CB_NUM_PROCESSES"] = str(spec.resources.processes)
    for name, (_, folder) in inputs.items():
        env[f"CB_INPUT_{channel_env(name)}"] = folder
    for name, (_, folder) in outputs.items():
        env[f"CB_OUTPUT_{channel_env(name)}"] = folder
    lines = ["#!/bin/bash", f"# cloudbridge job {spec.name} ({layout.name}), written by cloudbridge-slurm",
             *_directives(spec, settings, layout, cap, tags, partition), "", "set -uo pipefail"]
    if settings.setup.strip():
        lines += ["# settings.slurm.setup", settings.setup.strip()]
    lines += [f"export {k}={q(v)}" for k, v in env.items()]
    lines += [f"export {k}={q(v)}" for k, v in spec.env.items()]
    lines += [
        "# the master: the first node, at the address Slurm itself reaches it by",
        'first_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        'MASTER_ADDR=$(scontrol show node "$first_node" 2>/dev/null | sed -n "s/.*NodeAddr=\\([^ ]*\\).*/\\1/p")',
        'export MASTER_ADDR="${MASTER_ADDR:-$first_node}"',
        f"mkdir -p {q(layout.path('output'))} {q(env['CB_MODEL_DIR'])} {q(env['CB_CHECKPOINT_DIR'])}",
    ]
    code_dir = layout.path("code")
    if code_path:
        lines.append(f"if [ ! -e {q(code_dir + '/.cb-unpacked')} ]; then mkdir -p {q(code_dir)} && "
                     f"tar -xzf {q(code_path)} -C {q(code_dir)} && touch {q(code_dir + '/.cb-unpacked')} "
                     "|| { echo '[cloudbridge] cannot unpack the code package' >&2; exit 2; }; fi")
    for name, (how, folder) in inputs.items():
        if how == "download":
            lines.append(f"echo {q(f'[cloudbridge] downloading input {name}')} >&2")
            lines.append(f"python3 -c {q(_DOWNLOAD)} {q(spec.inputs[name])} {q(folder)} >&2 || "
                         f"{{ echo {q(f'[cloudbridge] cannot download input {name}')} >&2; exit 2; }}")
    lines.append(f"cd {q(code_dir if code_path else layout.job_dir)}")
    run = ["bash", "-c", spec.run] if spec.distribution == "none" else shlex.split(spec.run)
    lines += [
        f"srun --kill-on-bad-exit=1 cloudbridge-launch -- {shlex.join(run)}",
        "status=$?",
    ]
    for name, (how, folder) in outputs.items():
        if how == "upload":
            lines.append(f"cloudbridge storage sync {q(folder)} {q(spec.outputs[name])} >&2 || "
                         f"echo {q(f'[cloudbridge] upload of output {name} failed')} >&2")
    lines += ['echo "$status" > ' + q(layout.path("exit-status")), 'exit "$status"', ""]
    return "\n".join(lines)
