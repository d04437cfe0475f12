"""``RuntimeContext``: where a job runs, how many processes it has, and where its files go.

The same training code runs on SageMaker, Vertex AI, Azure ML, under plain torchrun/accelerate and
on cloudbridge's local backend. Each platform describes the job differently (environment variables,
JSON files, fixed paths); one small reader module per platform turns its contract into this one
record. :meth:`RuntimeContext.detect` tries them in a fixed order and then applies cloudbridge's own
``CB_*`` variables, which always win.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from cloudbridge.runtime._env import Env, RuntimeContractError, env_int, gcs_to_fuse

__all__ = ["RuntimeContext", "count_local_gpus", "detect"]

DEFAULT_MASTER_PORT = 29500
DISTRIBUTIONS = ("accelerate", "torchrun", "none")


@dataclass(frozen=True)
class RuntimeContext:
    """Everything a training program needs to know about the job it runs in.

    Node-level fields (``node_rank``, ``num_nodes``, ``processes_per_node``, ``master_*``) describe
    the cluster; ``rank``/``local_rank``/``world_size`` are set only inside an already launched
    worker process (torchrun, accelerate, or a platform such as Azure ML that starts one process per
    GPU itself). Directories are local filesystem paths; ``input_dirs`` maps a channel name
    (lower-case, e.g. ``"train"``) to its directory.
    """

    platform: str
    node_rank: int = 0
    num_nodes: int = 1
    processes_per_node: int = 1
    master_addr: str = "127.0.0.1"
    master_port: int = DEFAULT_MASTER_PORT
    input_dirs: dict[str, str] = field(default_factory=dict)
    output_dir: str = "outputs"
    model_dir: str = "outputs/model"
    checkpoint_dir: str | None = None
    tensorboard_dir: str | None = None
    hosts: tuple[str, ...] = ()
    gpus_per_node: int = 0
    distribution: str = "accelerate"
    job_id: str | None = None
    rank: int | None = None
    local_rank: int | None = None
    world_size: int | None = None

    @property
    def total_processes(self) -> int:
        """Processes in the whole job (``world_size`` once launched)."""
        return self.world_size if self.world_size is not None else self.num_nodes * self.processes_per_node

    @property
    def is_launched(self) -> bool:
        """True inside a worker process that a launcher (or the platform) already started."""
        return self.rank is not None and self.world_size is not None

    @property
    def is_distributed(self) -> bool:
        """True when the job has more than one process."""
        return self.total_processes > 1

    @property
    def is_main_process(self) -> bool:
        """True on global rank 0 (or before launching, on node 0)."""
        return (self.rank or 0) == 0 if self.is_launched else self.node_rank == 0

    def input_dir(self, *names: str) -> str | None:
        """The directory of the first channel in ``names`` that exists, or ``None``."""
        for name in names:
            path = self.input_dirs.get(name.lower())
            if path:
                return path
        return None

    def to_env(self) -> dict[str, str]:
        """The ``CB_*`` variables (and ``MASTER_ADDR/PORT``, ``NODE_RANK``) a launcher exports.

        Child processes re-detect the same context from them whatever the platform.
        """
        env = {
            "CB_PLATFORM": self.platform,
            "CB_NODE_RANK": str(self.node_rank),
            "CB_NUM_NODES": str(self.num_nodes),
            "CB_NUM_PROCESSES": str(self.processes_per_node),
            "CB_DISTRIBUTION": self.distribution,
            "CB_OUTPUT_DIR": self.output_dir,
            "CB_MODEL_DIR": self.model_dir,
            "MASTER_ADDR": self.master_addr,
            "MASTER_PORT": str(self.master_port),
            "NODE_RANK": str(self.node_rank),
        }
        if self.checkpoint_dir:
            env["CB_CHECKPOINT_DIR"] = self.checkpoint_dir
        if self.tensorboard_dir:
            env["CB_TENSORBOARD_DIR"] = self.tensorboard_dir
        if self.job_id:
            env["CB_JOB_ID"] = self.job_id
        for name, path in self.input_dirs.items():
            env[f"CB_INPUT_{name.upper().replace('-', '_')}"] = path
        return env

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["hosts"] = list(self.hosts)
        return data

    @classmethod
    def detect(cls, environ: Mapping[str, str] | None = None, *, gpu_count: int | None = None) -> RuntimeContext:
        """Read whichever contract the current platform speaks. See :func:`detect`."""
        return detect(environ, gpu_count=gpu_count)


def count_local_gpus() -> int:
    """NVIDIA GPUs visible on this machine without importing torch (``CUDA_VISIBLE_DEVICES`` wins)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    exe = shutil.which("nvidia-smi")
    if not exe:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def detect(environ: Mapping[str, str] | None = None, *, gpu_count: int | None = None) -> RuntimeContext:
    """The :class:`RuntimeContext` of this process.

    Readers are tried in order: SageMaker, Vertex AI, Azure ML, Slurm, cloudbridge's local backend,
    torchrun/accelerate; the first that recognises its contract wins, otherwise a single-process
    context rooted in the working directory is returned. ``gpu_count`` is the number of GPUs on this
    node when the platform does not say (probed with ``nvidia-smi`` when ``None``).
    """
    from cloudbridge.runtime import azureml, local, sagemaker, slurm, torchrun, vertex

    env: Env = dict(os.environ if environ is None else environ)
    gpus = gpu_count if gpu_count is not None else None
    probe = (lambda: gpus) if gpus is not None else count_local_gpus
    for reader in (sagemaker, vertex, azureml, slurm, local, torchrun):
        ctx = reader.detect(env, probe)
        if ctx is not None:
            break
    else:
        ctx = _fallback(env, probe)
    return apply_overrides(ctx, env)


def _fallback(env: Env, probe: Any) -> RuntimeContext:
    base = os.path.abspath("outputs")
    gpus = probe()
    return RuntimeContext(
        platform="none",
        processes_per_node=max(gpus, 1),
        gpus_per_node=gpus,
        output_dir=base,
        model_dir=os.path.join(base, "model"),
        checkpoint_dir=os.path.join(base, "checkpoints"),
    )


def apply_overrides(ctx: RuntimeContext, env: Env) -> RuntimeContext:
    """Apply cloudbridge's own variables (``CB_*``) and process-level torch variables to ``ctx``."""
    changes: dict[str, Any] = {}
    for name, attr in (("CB_OUTPUT_DIR", "output_dir"), ("CB_MODEL_DIR", "model_dir"),
                       ("CB_CHECKPOINT_DIR", "checkpoint_dir"), ("CB_TENSORBOARD_DIR", "tensorboard_dir")):
        if env.get(name):
            changes[attr] = gcs_to_fuse(env[name], env)  # Vertex: a gs:// location is read through /gcs/
    inputs = dict(ctx.input_dirs)
    for name, value in env.items():
        if name.startswith("CB_INPUT_") and value and len(name) > len("CB_INPUT_"):
            inputs[name[len("CB_INPUT_") :].lower()] = gcs_to_fuse(value, env)  # Vertex: gs:// is /gcs/
    changes["input_dirs"] = inputs
    procs = env_int(env, "CB_NUM_PROCESSES")
    if procs is not None and ctx.rank is None:
        if procs < 1:
            raise RuntimeContractError(f"environment variable CB_NUM_PROCESSES={procs} must be at least 1")
        changes["processes_per_node"] = procs
    dist = env.get("CB_DISTRIBUTION", "").strip().lower()
    if dist:
        if dist not in DISTRIBUTIONS:
            raise RuntimeContractError(
                f"environment variable CB_DISTRIBUTION={dist!r} must be one of {', '.join(DISTRIBUTIONS)}"
            )
        changes["distribution"] = dist
    if env.get("CB_JOB_ID") and not ctx.job_id:
        changes["job_id"] = env["CB_JOB_ID"]
    rank, local_rank, world = env_int(env, "RANK"), env_int(env, "LOCAL_RANK"), env_int(env, "WORLD_SIZE")
    if rank is not None and world is not None and ctx.rank is None:
        changes.update(rank=rank, local_rank=local_rank if local_rank is not None else 0, world_size=world)
    return replace(ctx, **changes)
