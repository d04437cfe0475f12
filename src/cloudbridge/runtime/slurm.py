"""Slurm jobs: the ``SLURM_*`` variables ``sbatch``/``srun`` set in every task.

Contract (https://slurm.schedmd.com/sbatch.html#SECTION_OUTPUT-ENVIRONMENT-VARIABLES): a task
started by ``srun`` sees ``SLURM_JOB_ID``, ``SLURM_JOB_NODELIST`` (compressed: ``gpu[01-04],login2``),
``SLURM_NNODES``, ``SLURM_NODEID`` (this node's index in the allocation), ``SLURM_PROCID``,
``SLURM_NTASKS``, ``SLURM_LOCALID``, ``SLURM_TASKS_PER_NODE`` and, with ``--gpus-per-node``,
``SLURM_GPUS_ON_NODE`` / ``CUDA_VISIBLE_DEVICES``. cloudbridge's sbatch script runs one task per
node (``--ntasks-per-node=1``) and that task runs ``cloudbridge-launch``, which starts one worker
per GPU: so the node rank is ``SLURM_NODEID``, the master address the first host of the node list,
and the master port a function of the job id, the same on every node without any exchange.

Slurm has no directory conventions; the sbatch script exports ``CB_*_DIR`` variables that point
into the job's staging folder, and :func:`~cloudbridge.runtime.context.apply_overrides` applies them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from cloudbridge.runtime._env import Env, RuntimeContractError, env_int
from cloudbridge.runtime.context import RuntimeContext

__all__ = ["detect", "expand_nodelist", "master_port_for"]

#: Master ports are taken from ``[PORT_BASE, PORT_BASE + PORT_SPAN)``: above the usual services and
#: below Linux's ephemeral range (32768+), so a port never collides with an outgoing connection.
PORT_BASE = 20000
PORT_SPAN = 10000

_RANGE_RE = re.compile(r"^(\d+)(?:-(\d+))?$")


def master_port_for(job_id: str | int) -> int:
    """The rendezvous port of Slurm job ``job_id``: ``PORT_BASE + job_id mod PORT_SPAN``.

    Every node computes the same port; concurrent jobs on one node get different ports unless their
    ids differ by a multiple of :data:`PORT_SPAN`.
    """
    digits = re.sub(r"\D", "", str(job_id)) or "0"
    return PORT_BASE + int(digits) % PORT_SPAN


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside brackets: ``a[1-2],b`` -> ``["a[1-2]", "b"]``."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _expand_one(item: str) -> list[str]:
    start = item.find("[")
    if start < 0:
        return [item]
    end = item.find("]", start)
    if end < 0:
        raise RuntimeContractError(f"SLURM_JOB_NODELIST has an unclosed '[' in {item!r}")
    prefix, body, rest = item[:start], item[start + 1 : end], item[end + 1 :]
    tails = _expand_one(rest) if rest else [""]
    hosts: list[str] = []
    for part in body.split(","):
        match = _RANGE_RE.match(part.strip())
        if not match:
            raise RuntimeContractError(f"SLURM_JOB_NODELIST has a malformed range {part!r} in {item!r}")
        first, last = match.group(1), match.group(2) or match.group(1)
        width = len(first)  # gpu[01-10] keeps the zero padding
        for number in range(int(first), int(last) + 1):
            hosts.extend(f"{prefix}{number:0{width}d}{tail}" for tail in tails)
    return hosts


def expand_nodelist(nodelist: str) -> list[str]:
    """``"gpu[01-03,07],login1"`` -> ``["gpu01", "gpu02", "gpu03", "gpu07", "login1"]`` (Slurm's order)."""
    hosts: list[str] = []
    for item in _split_top(nodelist):
        hosts.extend(_expand_one(item))
    return hosts


def _gpus_on_node(env: Env, probe_gpus: Callable[[], int]) -> int:
    count = env_int(env, "SLURM_GPUS_ON_NODE")
    if count is not None:
        return count
    if "CUDA_VISIBLE_DEVICES" in env:
        return len([d for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip() and d.strip() != "-1"])
    return probe_gpus()


def detect(env: Env, probe_gpus: Callable[[], int]) -> RuntimeContext | None:
    """The context of a task of a Slurm job, or ``None`` outside one.

    A process that another cloudbridge platform started (``CB_PLATFORM`` set to something other
    than ``slurm``, e.g. the local backend on a login node inside an allocation) is not a Slurm task.
    """
    if not env.get("SLURM_JOB_ID") or not env.get("SLURM_JOB_NODELIST"):
        return None
    if env.get("CB_PLATFORM") not in (None, "", "slurm"):
        return None
    hosts = expand_nodelist(env["SLURM_JOB_NODELIST"])
    nodes = env_int(env, "SLURM_NNODES", env_int(env, "SLURM_JOB_NUM_NODES", len(hosts))) or len(hosts) or 1
    gpus = _gpus_on_node(env, probe_gpus)
    output = env.get("CB_OUTPUT_DIR") or os.path.abspath("outputs")
    port = env_int(env, "MASTER_PORT") if env.get("CB_PLATFORM") == "slurm" else None
    return RuntimeContext(
        platform="slurm",
        node_rank=env_int(env, "SLURM_NODEID", 0) or 0,
        num_nodes=nodes,
        processes_per_node=max(gpus, 1),
        master_addr=(env.get("MASTER_ADDR") if env.get("CB_PLATFORM") == "slurm" else None)
        or (hosts[0] if hosts else "127.0.0.1"),
        master_port=port or master_port_for(env["SLURM_JOB_ID"]),
        output_dir=output,
        model_dir=os.path.join(output, "model"),
        checkpoint_dir=os.path.join(output, "checkpoints"),
        hosts=tuple(hosts),
        gpus_per_node=gpus,
        job_id=env.get("CB_JOB_ID") or env["SLURM_JOB_ID"],
    )
