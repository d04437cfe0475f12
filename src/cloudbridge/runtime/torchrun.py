"""Plain torchrun / ``accelerate launch`` workers (and any launcher speaking the same variables).

Contract (https://pytorch.org/docs/stable/elastic/run.html#environment-variables): each worker gets
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``GROUP_RANK`` (the node's rank),
``MASTER_ADDR`` and ``MASTER_PORT``. There are no directory conventions, so outputs default to
``./outputs`` unless ``CB_*_DIR`` variables say otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cloudbridge.runtime._env import Env, env_int
from cloudbridge.runtime.context import DEFAULT_MASTER_PORT, RuntimeContext

__all__ = ["detect"]


def detect(env: Env, probe_gpus: Callable[[], int]) -> RuntimeContext | None:
    """The context of a torchrun/accelerate worker, or ``None`` when ``RANK``/``WORLD_SIZE`` are unset."""
    rank, world = env_int(env, "RANK"), env_int(env, "WORLD_SIZE")
    if rank is None or world is None:
        return None
    local_rank = env_int(env, "LOCAL_RANK", 0) or 0
    local_size = env_int(env, "LOCAL_WORLD_SIZE", world) or world
    output = os.path.abspath("outputs")
    return RuntimeContext(
        platform="torchrun",
        node_rank=env_int(env, "GROUP_RANK", rank // max(local_size, 1)) or 0,
        num_nodes=max(world // max(local_size, 1), 1),
        processes_per_node=local_size,
        master_addr=env.get("MASTER_ADDR") or "127.0.0.1",
        master_port=env_int(env, "MASTER_PORT", DEFAULT_MASTER_PORT) or DEFAULT_MASTER_PORT,
        output_dir=output,
        model_dir=os.path.join(output, "model"),
        checkpoint_dir=os.path.join(output, "checkpoints"),
        gpus_per_node=probe_gpus(),
        rank=rank,
        local_rank=local_rank,
        world_size=world,
    )
