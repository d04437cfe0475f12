"""cloudbridge's local backend: the ``CB_*`` variables its supervisor exports.

The local compute backend sets ``CB_JOB_ID``, ``CB_NUM_PROCESSES``, ``CB_GPU_IDS`` (and
``CUDA_VISIBLE_DEVICES``), ``MASTER_ADDR``, ``MASTER_PORT``, ``CB_DISTRIBUTION``,
``CB_INPUT_<NAME>``, ``CB_OUTPUT_DIR``, ``CB_MODEL_DIR`` and ``CB_CHECKPOINT_DIR``, then runs
``cloudbridge-launch -- <run>``. The same variables are what ``cloudbridge-launch`` exports to the
processes it starts, so a launched worker reads its context back from them on any platform.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cloudbridge.runtime._env import Env, env_int
from cloudbridge.runtime.context import DEFAULT_MASTER_PORT, RuntimeContext

__all__ = ["detect"]


def detect(env: Env, probe_gpus: Callable[[], int]) -> RuntimeContext | None:
    """The context of a job run by the local backend (or re-read by a launched worker)."""
    if not (env.get("CB_JOB_ID") or env.get("CB_OUTPUT_DIR") or env.get("CB_PLATFORM")):
        return None
    gpu_ids = [g for g in env.get("CB_GPU_IDS", "").split(",") if g.strip()]
    gpus = len(gpu_ids) if "CB_GPU_IDS" in env else probe_gpus()
    output = env.get("CB_OUTPUT_DIR") or os.path.abspath("outputs")
    hosts = tuple(h for h in env.get("CB_HOSTS", "").split(",") if h)
    return RuntimeContext(
        platform=env.get("CB_PLATFORM") or "local",
        node_rank=env_int(env, "CB_NODE_RANK", 0) or 0,
        num_nodes=env_int(env, "CB_NUM_NODES", 1) or 1,
        processes_per_node=env_int(env, "CB_NUM_PROCESSES", max(gpus, 1)) or 1,
        master_addr=env.get("MASTER_ADDR") or "127.0.0.1",
        master_port=env_int(env, "MASTER_PORT", DEFAULT_MASTER_PORT) or DEFAULT_MASTER_PORT,
        output_dir=output,
        model_dir=env.get("CB_MODEL_DIR") or os.path.join(output, "model"),
        checkpoint_dir=env.get("CB_CHECKPOINT_DIR") or os.path.join(output, "checkpoints"),
        hosts=hosts,
        gpus_per_node=gpus,
        job_id=env.get("CB_JOB_ID"),
    )
