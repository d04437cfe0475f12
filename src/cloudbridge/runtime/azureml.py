"""Azure Machine Learning command jobs: the PyTorch/MPI launch variables and ``./outputs``.

Contract (https://learn.microsoft.com/azure/machine-learning/how-to-train-distributed-gpu): with
``distribution: {type: PyTorch, process_count_per_instance: N}`` Azure ML starts N processes per node
itself and sets ``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``NODE_RANK``, ``RANK`` and
``LOCAL_RANK`` in each, with ``AZUREML_NODE_COUNT``, ``AZ_BATCHAI_TASK_INDEX`` (the node's index) and
``AZ_BATCHAI_GPU_COUNT``; MPI jobs get Open MPI's ``OMPI_COMM_WORLD_*`` plus ``AZ_BATCH_MASTER_NODE``
(``ip:port``, multi-node) or ``AZ_BATCHAI_MPI_MASTER_NODE`` (single node). Named inputs and outputs
are mounted and exposed as ``AZURE_ML_INPUT_<name>`` / ``AZURE_ML_OUTPUT_<name>``; anything written to
``./outputs`` is uploaded with the run and ``./logs`` is streamed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cloudbridge.runtime._env import Env, env_int, split_host_port
from cloudbridge.runtime.context import DEFAULT_MASTER_PORT, RuntimeContext

__all__ = ["detect"]


# Only variables the job runtime sets: the Azure ML SDK itself writes AZUREML_CURRENT_CLOUD on a laptop.
_MARKER_NAMES = {"AZUREML_RUN_ID", "AZUREML_NODE_COUNT", "AZUREML_EXPERIMENT_ID", "AZUREML_ARM_WORKSPACE_NAME"}
_MARKER_PREFIXES = ("AZ_BATCHAI_", "AZ_BATCH_MASTER_NODE", "AZURE_ML_INPUT_", "AZURE_ML_OUTPUT_")


def _is_azureml(env: Env) -> bool:
    return any(k in _MARKER_NAMES or k.startswith(_MARKER_PREFIXES) for k in env)


def detect(env: Env, probe_gpus: Callable[[], int]) -> RuntimeContext | None:
    """The context of an Azure ML job process, or ``None`` when not on Azure ML."""
    if not _is_azureml(env):
        return None
    rank = env_int(env, "RANK", env_int(env, "OMPI_COMM_WORLD_RANK"))
    world = env_int(env, "WORLD_SIZE", env_int(env, "OMPI_COMM_WORLD_SIZE"))
    local_rank = env_int(env, "LOCAL_RANK", env_int(env, "OMPI_COMM_WORLD_LOCAL_RANK"))
    local_size = env_int(env, "LOCAL_WORLD_SIZE", env_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE"))
    nodes = env_int(env, "AZUREML_NODE_COUNT")
    if local_size is None and world is not None:
        local_size = max(world // (nodes or 1), 1)
    if nodes is None:
        nodes = max((world or 1) // (local_size or 1), 1)
    node_rank = env_int(env, "NODE_RANK", env_int(env, "AZ_BATCHAI_TASK_INDEX"))
    if node_rank is None:
        node_rank = (rank or 0) // (local_size or 1)
    master, port = env.get("MASTER_ADDR"), env_int(env, "MASTER_PORT")
    if not master and env.get("AZ_BATCH_MASTER_NODE"):
        master, batch_port = split_host_port(env["AZ_BATCH_MASTER_NODE"], DEFAULT_MASTER_PORT)
        port = port or batch_port
    master = master or env.get("AZ_BATCHAI_MPI_MASTER_NODE") or "127.0.0.1"
    outputs = os.path.abspath("outputs")
    inputs, named_outputs = {}, {}
    for key, value in env.items():
        if key.startswith("AZURE_ML_INPUT_") and value:
            inputs[key[len("AZURE_ML_INPUT_") :].lower()] = value
        elif key.startswith("AZURE_ML_OUTPUT_") and value:
            named_outputs[key[len("AZURE_ML_OUTPUT_") :].lower()] = value
    gpus = env_int(env, "AZ_BATCHAI_GPU_COUNT")
    gpus = probe_gpus() if gpus is None else gpus
    launched = rank is not None and world is not None
    return RuntimeContext(
        platform="azureml",
        node_rank=node_rank,
        num_nodes=nodes,
        processes_per_node=local_size or max(gpus, 1),
        master_addr=master,
        master_port=port or DEFAULT_MASTER_PORT,
        input_dirs=inputs,
        output_dir=named_outputs.get("outputs", outputs),
        model_dir=named_outputs.get("model", os.path.join(outputs, "model")),
        checkpoint_dir=named_outputs.get("checkpoints", os.path.join(outputs, "checkpoints")),
        tensorboard_dir=os.path.abspath(os.path.join("logs", "tensorboard")),
        gpus_per_node=gpus,
        job_id=env.get("AZUREML_RUN_ID"),
        rank=rank if launched else None,
        local_rank=(local_rank or 0) if launched else None,
        world_size=world if launched else None,
    )
