"""Google Vertex AI custom training: ``CLUSTER_SPEC``/``TF_CONFIG`` and the ``AIP_*`` directories.

Contract (https://cloud.google.com/vertex-ai/docs/training/distributed-training and
https://cloud.google.com/vertex-ai/docs/training/code-requirements): ``CLUSTER_SPEC`` is JSON
``{"cluster": {"workerpool0": ["host:port"], "workerpool1": [...]}, "task": {"type": "workerpool0",
"index": 0}}``; pool 0 is the primary replica, pool 1 the workers (pools 2 and 3 are reduction
servers and evaluators, which do not train). ``AIP_MODEL_DIR``, ``AIP_CHECKPOINT_DIR`` and
``AIP_TENSORBOARD_LOG_DIR`` are ``gs://`` URIs under the job's base output directory; Cloud
Storage FUSE mounts ``gs://bucket/key`` at ``/gcs/bucket/key`` (remapped under
``CB_EMULATE_ROOT`` when emulating). Managed datasets arrive as ``AIP_TRAINING_DATA_URI`` etc.

Vertex AI also sets TensorFlow's ``TF_CONFIG`` on every replica of a distributed job, with the pools
renamed ``chief`` (pool 0), ``worker`` (pool 1) and ``ps`` (pool 2) and ``"environment": "cloud"``
(the marker that tells it from a ``TF_CONFIG`` another TensorFlow cluster manager wrote). A replica
whose only contract variable is such a ``TF_CONFIG`` is recognised as Vertex AI too.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable

from cloudbridge.runtime._env import Env, RuntimeContractError, env_int, env_json, gcs_to_fuse, split_host_port
from cloudbridge.runtime.context import DEFAULT_MASTER_PORT, RuntimeContext

__all__ = ["detect"]

_TRAINING_POOLS = ("workerpool0", "workerpool1")
_TF_POOLS = ("chief", "master", "worker")
_DATA_URIS = {"AIP_TRAINING_DATA_URI": "train", "AIP_VALIDATION_DATA_URI": "validation", "AIP_TEST_DATA_URI": "test"}


def _is_vertex_tf_config(env: Env) -> bool:
    """True when ``TF_CONFIG`` is the one Vertex AI writes (valid JSON with ``"environment": "cloud"``)."""
    raw = env.get("TF_CONFIG", "")
    if not raw.strip():
        return False
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError:
        return False  # not ours to judge: some other tool's variable
    return isinstance(spec, dict) and spec.get("environment") == "cloud"


def _cluster(env: Env) -> tuple[list[str], int]:
    """Training hosts in rank order and this replica's node rank."""
    name = "CLUSTER_SPEC" if env.get("CLUSTER_SPEC") else "TF_CONFIG"
    spec = env_json(env, name)
    if spec is None:
        return [], 0
    if not isinstance(spec, dict) or not isinstance(spec.get("cluster"), dict):
        raise RuntimeContractError(f"environment variable {name} has no 'cluster' mapping")
    cluster, task = spec["cluster"], spec.get("task") or {}
    pools = _TRAINING_POOLS if any(p in cluster for p in _TRAINING_POOLS) else _TF_POOLS
    hosts: list[str] = []
    rank = 0
    for pool in pools:
        members = cluster.get(pool) or []
        if pool == task.get("type"):
            index = task.get("index", 0)
            if not isinstance(index, int) or not 0 <= index < len(members):
                raise RuntimeContractError(f"{name}: task index {index!r} is outside pool {pool!r}")
            rank = len(hosts) + index
        hosts.extend(members)
    if task.get("type") and task.get("type") not in pools:
        raise RuntimeContractError(f"{name}: task type {task.get('type')!r} does not train (pools: {pools})")
    return hosts, rank


def detect(env: Env, probe_gpus: Callable[[], int]) -> RuntimeContext | None:
    """The context of a Vertex AI custom-training replica, or ``None`` when not on Vertex AI."""
    markers = env.get("CLUSTER_SPEC") or env.get("AIP_MODEL_DIR") or env.get("CLOUD_ML_JOB_ID")
    if not (markers or _is_vertex_tf_config(env)):
        return None
    hosts, rank = _cluster(env)
    master, port = split_host_port(hosts[0], DEFAULT_MASTER_PORT) if hosts else ("127.0.0.1", DEFAULT_MASTER_PORT)
    model_uri = env.get("AIP_MODEL_DIR") or ""
    model_dir = gcs_to_fuse(model_uri, env) if model_uri else os.path.abspath("model")
    base = posixpath.dirname(model_dir.rstrip("/"))
    inputs = {channel: gcs_to_fuse(env[var], env) for var, channel in _DATA_URIS.items() if env.get(var)}
    ckpt = env.get("AIP_CHECKPOINT_DIR")
    tb = env.get("AIP_TENSORBOARD_LOG_DIR")
    gpus = probe_gpus()
    return RuntimeContext(
        platform="vertex",
        node_rank=rank,
        num_nodes=max(len(hosts), 1),
        processes_per_node=max(gpus, 1),
        master_addr=env.get("MASTER_ADDR") or master,
        master_port=env_int(env, "MASTER_PORT", port) or port,
        input_dirs=inputs,
        output_dir=posixpath.join(base, "output"),
        model_dir=model_dir,
        checkpoint_dir=gcs_to_fuse(ckpt, env) if ckpt else posixpath.join(base, "checkpoints"),
        tensorboard_dir=gcs_to_fuse(tb, env) if tb else None,
        hosts=tuple(split_host_port(h, port)[0] for h in hosts),
        gpus_per_node=gpus,
        job_id=env.get("CLOUD_ML_JOB_ID"),
    )
