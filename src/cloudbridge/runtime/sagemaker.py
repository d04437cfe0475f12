"""Amazon SageMaker training: the SageMaker Training Toolkit variables and ``/opt/ml``.

Contract (https://github.com/aws/sagemaker-training-toolkit/blob/master/ENVIRONMENT_VARIABLES.md and
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html):
``SM_HOSTS`` (JSON list), ``SM_CURRENT_HOST``, ``SM_NUM_GPUS``, ``SM_CHANNELS`` and
``SM_CHANNEL_<NAME>`` (``/opt/ml/input/data/<name>``), ``SM_MODEL_DIR`` (``/opt/ml/model``),
``SM_OUTPUT_DATA_DIR`` (``/opt/ml/output/data``); containers without the toolkit read
``/opt/ml/input/config/resourceconfig.json`` (``current_host``, ``hosts``). Checkpoints are written to
``/opt/ml/checkpoints`` (the ``CheckpointConfig`` default local path), which SageMaker syncs to S3.
All fixed paths move under ``CB_EMULATE_ROOT`` when ``cloudbridge emulate`` runs the job.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from cloudbridge.runtime._env import Env, RuntimeContractError, env_int, env_json, remap
from cloudbridge.runtime.context import DEFAULT_MASTER_PORT, RuntimeContext

__all__ = ["RESOURCE_CONFIG", "detect"]

RESOURCE_CONFIG = "/opt/ml/input/config/resourceconfig.json"
_MARKERS = ("SM_CURRENT_HOST", "SM_HOSTS", "SM_TRAINING_ENV", "SM_MODEL_DIR")


def _resource_config(env: Env) -> dict | None:
    path = env.get("SM_INPUT_CONFIG_DIR")
    path = os.path.join(path, "resourceconfig.json") if path else remap(RESOURCE_CONFIG, env)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise RuntimeContractError(f"cannot read SageMaker resource config {path}: {exc}") from exc


def detect(env: Env, probe_gpus: Callable[[], int]) -> RuntimeContext | None:
    """The context of a SageMaker training container, or ``None`` when not on SageMaker."""
    has_env = any(env.get(name) for name in _MARKERS)
    config = _resource_config(env)
    if not has_env and config is None:
        return None
    config = config or {}
    hosts = env_json(env, "SM_HOSTS") or config.get("hosts") or []
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise RuntimeContractError("environment variable SM_HOSTS must be a JSON list of host names")
    current = env.get("SM_CURRENT_HOST") or config.get("current_host") or (hosts[0] if hosts else "algo-1")
    hosts = hosts or [current]
    if current not in hosts:
        raise RuntimeContractError(f"SM_CURRENT_HOST={current!r} is not one of SM_HOSTS {hosts}")
    gpus = env_int(env, "SM_NUM_GPUS")
    if gpus is None:
        gpus = probe_gpus()
    inputs: dict[str, str] = {}
    data_root = os.path.join(env.get("SM_INPUT_DIR") or remap("/opt/ml/input", env), "data")
    for name in env_json(env, "SM_CHANNELS") or []:
        inputs[str(name).lower()] = os.path.join(data_root, str(name))
    for key, value in env.items():
        if key.startswith("SM_CHANNEL_") and key != "SM_CHANNELS" and value:
            inputs[key[len("SM_CHANNEL_") :].lower()] = value
    if not inputs and os.path.isdir(data_root):
        inputs = {name.lower(): os.path.join(data_root, name) for name in sorted(os.listdir(data_root))}
    master_host = hosts[0]
    return RuntimeContext(
        platform="sagemaker",
        node_rank=hosts.index(current),
        num_nodes=len(hosts),
        processes_per_node=max(gpus, 1),
        master_addr=env.get("MASTER_ADDR") or master_host,
        master_port=env_int(env, "MASTER_PORT", DEFAULT_MASTER_PORT) or DEFAULT_MASTER_PORT,
        input_dirs=inputs,
        output_dir=env.get("SM_OUTPUT_DATA_DIR") or remap("/opt/ml/output/data", env),
        model_dir=env.get("SM_MODEL_DIR") or remap("/opt/ml/model", env),
        checkpoint_dir=remap("/opt/ml/checkpoints", env),
        tensorboard_dir=remap("/opt/ml/output/tensorboard", env),
        hosts=tuple(hosts),
        gpus_per_node=gpus,
        job_id=env.get("TRAINING_JOB_NAME"),
    )
