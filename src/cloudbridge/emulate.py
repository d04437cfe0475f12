"""``cloudbridge emulate JOB.yaml --as sagemaker|vertex|azureml``: a cloud's contract, on this machine.

The job runs locally with ``resources.processes`` (default 2) processes per node on ``resources.nodes``
nodes, under exactly the environment variables and directory layout the platform gives a container,
with every fixed path moved under a temporary root (``CB_EMULATE_ROOT``) keeping its relative
structure. Code and inputs are placed where the cloud plugin puts them; each node then runs
``cloudbridge-launch -- <run>``, as the real container's entry point does. A job that reads the
right places here reads the right places there, before any money is spent.

==============  ==============================================================================
platform        what a node sees
==============  ==============================================================================
``sagemaker``   ``/opt/ml/{code/workdir,input/data/<channel>,input/config/resourceconfig.json,
                model,output/data,checkpoints}``; ``SM_HOSTS``, ``SM_CURRENT_HOST``, ``SM_NUM_GPUS``,
                ``SM_CHANNEL_<NAME>``, ``SM_MODEL_DIR`` ...; one "container" per host ``algo-N``,
                each with its own ``/opt/ml``
``vertex``      ``CLUSTER_SPEC`` (``workerpool0`` primary, ``workerpool1`` workers), ``AIP_MODEL_DIR``,
                ``AIP_CHECKPOINT_DIR``, ``AIP_TENSORBOARD_LOG_DIR`` as ``gs://`` URIs read through the
                Cloud Storage FUSE mount ``/gcs/<bucket>/...``; inputs as ``CB_INPUT_<NAME>=gs://...``
``azureml``     PyTorch per-process launch: every process is started by the platform with ``RANK``,
                ``LOCAL_RANK``, ``WORLD_SIZE``, ``NODE_RANK``, ``MASTER_ADDR/PORT``, ``AZUREML_*``,
                ``AZ_BATCHAI_*``; code in ``/mnt/azureml/cr/j/<id>/exe/wd`` (the working directory, so
                ``./outputs`` is uploaded), inputs ``AZURE_ML_INPUT_<name>``
==============  ==============================================================================

One deliberate difference: the platforms' host names (``algo-1``, ``cmle-training-workerpool0-...``)
do not resolve here, so ``MASTER_ADDR`` is pinned to ``127.0.0.1``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import UserError

if TYPE_CHECKING:
    from cloudbridge.packaging import PackageManifest

__all__ = ["PLATFORMS", "EmulatedNode", "EmulationResult", "emulate", "plan_emulation"]

PLATFORMS = ("sagemaker", "vertex", "azureml")
DEFAULT_PROCESSES = 2
BUCKET = "cb-emulate"


@dataclass
class EmulatedNode:
    """One process the emulator starts: a node's container (or, on Azure ML, one worker process)."""

    name: str
    cwd: str
    env: dict[str, str]


@dataclass
class EmulationResult:
    """Where an emulated run put things, and how it ended."""

    platform: str
    root: str
    exit_code: int
    duration_s: float
    model_dir: str
    output_dir: str
    checkpoint_dir: str
    nodes: list[str] = field(default_factory=list)
    #: True when the temporary root was deleted after the run (``keep=False``).
    removed: bool = False
    #: the node (Azure ML: the process) that failed first, and its last output lines
    failed_first: str | None = None
    failed_tail: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


@dataclass
class _Layout:
    nodes: list[EmulatedNode]
    model_dir: str
    output_dir: str
    checkpoint_dir: str


def _stage(source: str, target: str, base_dir: Path) -> None:
    """Copy a local file/directory or download a storage URI into the directory ``target``."""
    from cloudbridge.uri import is_remote

    os.makedirs(target, exist_ok=True)
    if is_remote(source):
        from cloudbridge.errors import NotFound
        from cloudbridge.transfers.download import download

        try:
            download(source, target)
        except NotFound:
            raise UserError(f"input {source}: no such object or prefix") from None
        return
    path = Path(source).expanduser()
    path = path if path.is_absolute() else (base_dir / path)
    if path.is_dir():
        shutil.copytree(path, target, dirs_exist_ok=True)
    elif path.is_file():
        shutil.copy2(path, os.path.join(target, path.name))
    else:
        raise UserError(f"input {source}: no such file or directory ({path})")


def _scan_workdir(spec: Any) -> PackageManifest | None:
    """The spec's workdir package (``None`` without a workdir), scanned once per emulation."""
    from cloudbridge.packaging import scan_workdir

    workdir = spec.resolved_workdir()
    return None if workdir is None else scan_workdir(workdir, hash_files=False, spec=spec)


def _copy_workdir(manifest: PackageManifest | None, target: str) -> None:
    os.makedirs(target, exist_ok=True)
    if manifest is None:
        return
    for entry in manifest.entries:
        dest = os.path.join(target, entry.path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(os.path.join(manifest.root, entry.path), dest)


def _common_env(spec: Any, job_id: str, processes: int) -> dict[str, str]:
    """What every cloud plugin passes to its container: the spec's env plus the ``CB_*`` job fields."""
    return {**spec.env, "CB_RUN": spec.run, "CB_DISTRIBUTION": spec.distribution, "CB_JOB_ID": job_id,
            "CB_NUM_PROCESSES": str(processes)}


def _sagemaker(spec: Any, root: str, job_id: str, nodes: int, procs: int, port: int) -> _Layout:
    hosts = [f"algo-{i + 1}" for i in range(nodes)]
    package = _scan_workdir(spec)
    layout_nodes = []
    for host in hosts:
        node_root = os.path.join(root, host)
        ml = os.path.join(node_root, "opt/ml")
        config = os.path.join(ml, "input/config")
        os.makedirs(config, exist_ok=True)
        resource = {"current_host": host, "current_instance_type": "ml.m5.xlarge",
                    "current_group_name": "homogeneousCluster", "hosts": hosts, "network_interface_name": "eth0"}
        Path(config, "resourceconfig.json").write_text(json.dumps(resource))
        Path(config, "inputdataconfig.json").write_text(json.dumps(
            {name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"} for name in spec.inputs}))
        channels = {}
        for name, source in spec.inputs.items():
            channels[name] = os.path.join(ml, "input/data", name)
            _stage(source, channels[name], spec.base_dir)
        workdir = os.path.join(ml, "code/workdir")
        _copy_workdir(package, workdir)
        for sub in ("model", "output/data", "checkpoints", "output/tensorboard"):
            os.makedirs(os.path.join(ml, sub), exist_ok=True)
        env = {
            **_common_env(spec, job_id, procs),
            "CB_EMULATE_ROOT": node_root,
            "TRAINING_JOB_NAME": job_id,
            "SM_HOSTS": json.dumps(hosts),
            "SM_CURRENT_HOST": host,
            "SM_NUM_GPUS": "0",
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_NETWORK_INTERFACE_NAME": "eth0",
            "SM_RESOURCE_CONFIG": json.dumps(resource),
            "SM_CHANNELS": json.dumps(sorted(spec.inputs)),
            "SM_INPUT_DIR": os.path.join(ml, "input"),
            "SM_INPUT_CONFIG_DIR": config,
            "SM_MODEL_DIR": os.path.join(ml, "model"),
            "SM_OUTPUT_DIR": os.path.join(ml, "output"),
            "SM_OUTPUT_DATA_DIR": os.path.join(ml, "output/data"),
            "SM_MODULE_DIR": os.path.join(ml, "code"),
            "SM_LOG_LEVEL": "20",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            **{f"SM_CHANNEL_{name.upper()}": path for name, path in channels.items()},
        }
        layout_nodes.append(EmulatedNode(host, workdir, env))
    ml0 = os.path.join(root, hosts[0], "opt/ml")
    return _Layout(layout_nodes, os.path.join(ml0, "model"), os.path.join(ml0, "output/data"),
                   os.path.join(ml0, "checkpoints"))


def _vertex(spec: Any, root: str, job_id: str, nodes: int, procs: int, port: int) -> _Layout:
    base_uri = f"gs://{BUCKET}/{job_id}"
    base = os.path.join(root, "gcs", BUCKET, job_id)
    workdir = os.path.join(root, "workdir")
    _copy_workdir(_scan_workdir(spec), workdir)
    inputs = {}
    for name, source in spec.inputs.items():
        _stage(source, os.path.join(base, "inputs", name), spec.base_dir)
        inputs[f"CB_INPUT_{name.upper().replace('-', '_')}"] = f"{base_uri}/inputs/{name}"
    suffix = uuid.uuid4().hex[:10]
    pools = {"workerpool0": [f"cmle-training-workerpool0-{suffix}-0:2222"]}
    if nodes > 1:
        pools["workerpool1"] = [f"cmle-training-workerpool1-{suffix}-{i}:2222" for i in range(nodes - 1)]
    layout_nodes = []
    for rank in range(nodes):
        task = {"type": "workerpool0", "index": 0} if rank == 0 else {"type": "workerpool1", "index": rank - 1}
        cluster_spec = {"cluster": pools, "environment": "cloud", "task": task,
                        "job": json.dumps({"display_name": spec.name})}
        env = {
            **_common_env(spec, job_id, procs),
            **inputs,
            "CB_EMULATE_ROOT": root,
            "CLOUD_ML_JOB_ID": job_id,
            "CLUSTER_SPEC": json.dumps(cluster_spec),
            "AIP_MODEL_DIR": f"{base_uri}/model/",
            "AIP_CHECKPOINT_DIR": f"{base_uri}/checkpoints/",
            "AIP_TENSORBOARD_LOG_DIR": f"{base_uri}/logs/",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        layout_nodes.append(EmulatedNode(f"{task['type']}-{task['index']}", workdir, env))
    for sub in ("model", "checkpoints", "logs", "output"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    return _Layout(layout_nodes, os.path.join(base, "model"), os.path.join(base, "output"),
                   os.path.join(base, "checkpoints"))


def _azureml(spec: Any, root: str, job_id: str, nodes: int, procs: int, port: int) -> _Layout:
    job_root = os.path.join(root, "mnt/azureml/cr/j", job_id.replace("-", ""))
    workdir = os.path.join(job_root, "exe/wd")
    _copy_workdir(_scan_workdir(spec), workdir)
    inputs = {}
    for name, source in spec.inputs.items():
        target = os.path.join(job_root, "cap/data-capability/wd", f"INPUT_{name}")
        _stage(source, target, spec.base_dir)
        inputs[f"AZURE_ML_INPUT_{name}"] = target
    layout_nodes = []
    world = nodes * procs
    for node in range(nodes):
        for local in range(procs):
            rank = node * procs + local
            env = {
                **_common_env(spec, job_id, procs),
                **inputs,
                "AZUREML_RUN_ID": job_id,
                "AZUREML_EXPERIMENT_ID": str(uuid.uuid5(uuid.NAMESPACE_URL, spec.name)),
                "AZUREML_NODE_COUNT": str(nodes),
                "AZ_BATCHAI_TASK_INDEX": str(node),
                "AZ_BATCHAI_GPU_COUNT": "0",
                "AZ_BATCH_MASTER_NODE": f"127.0.0.1:{port}",
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                "WORLD_SIZE": str(world),
                "NODE_RANK": str(node),
                "RANK": str(rank),
                "LOCAL_RANK": str(local),
                "LOCAL_WORLD_SIZE": str(procs),
            }
            layout_nodes.append(EmulatedNode(f"node{node}-rank{rank}", workdir, env))
    outputs = os.path.join(workdir, "outputs")
    return _Layout(layout_nodes, os.path.join(outputs, "model"), outputs, os.path.join(outputs, "checkpoints"))


_BUILDERS = {"sagemaker": _sagemaker, "vertex": _vertex, "azureml": _azureml}


def plan_emulation(spec: Any, platform: str, root: str, *, processes: int | None = None,
                   port: int | None = None) -> _Layout:
    """Lay out ``root`` for ``platform`` (code, inputs, config files) and return what to start."""
    if platform not in _BUILDERS:
        raise UserError(f"--as {platform!r}: choose one of {', '.join(PLATFORMS)}")
    procs = processes or spec.resources.processes or DEFAULT_PROCESSES
    if procs < 1:
        raise UserError("--processes must be at least 1")
    if port is None:
        from cloudbridge.runtime.launch import free_port

        port = free_port()
    job_id = f"{spec.name[:40]}-{time.strftime('%Y%m%d-%H%M%S')}"
    return _BUILDERS[platform](spec, root, job_id, spec.resources.nodes, procs, port)


def _base_env() -> dict[str, str]:
    """This machine's environment minus anything that would tell the job it runs somewhere else."""
    drop = ("SM_", "AIP_", "AZUREML_", "AZ_BATCH", "AZURE_ML_", "CB_", "CLUSTER_SPEC", "TF_CONFIG",
            "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK", "MASTER_",
            "TORCHELASTIC_", "TRAINING_JOB_NAME", "CLOUD_ML_JOB_ID")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    bindir = os.path.dirname(sys.executable)  # so `cloudbridge-finetune` etc. resolve as in the image
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def emulate(spec: Any, platform: str, *, processes: int | None = None, root: str | None = None,
            timeout: float | None = None, keep: bool = True) -> EmulationResult:
    """Run ``spec`` under ``platform``'s contract on this machine; returns where everything landed.

    The nodes' output goes to this process's stdout. When one node fails the others are stopped, as a
    platform would, and the node that failed first is named on stderr with its last lines
    (:mod:`cloudbridge.emulate_nodes`); ``EmulationResult.failed_first`` names it too. Without ``root`` a
    ``cb-emulate-<platform>-*`` folder in the temp directory stands in for the container's ``/``; with
    ``keep=False`` it is deleted when the run ends (however it ends; ``cloudbridge emulate`` does this
    unless ``--keep``). A given ``root`` is never deleted.
    """
    from cloudbridge.emulate_nodes import report_failure, start_node, wait_all
    from cloudbridge.runtime.launch import lease_port

    lease = lease_port()  # held for the whole run: a concurrent emulation never picks the same port
    temporary = not root
    root = os.path.abspath(root) if root else tempfile.mkdtemp(prefix=f"cb-emulate-{platform}-")
    try:
        os.makedirs(root, exist_ok=True)
        layout = plan_emulation(spec, platform, root, processes=processes, port=lease.port)
        base = _base_env()
        started = time.monotonic()
        argv = [sys.executable, "-m", "cloudbridge.runtime.launch", "--", spec.run]
        nodes = []
        try:
            for index, node in enumerate(layout.nodes):
                nodes.append(start_node(node.name, index, argv, cwd=node.cwd, env={**base, **node.env}))
        except BaseException:
            _stop([n.process for n in nodes])
            raise
        exit_code, first = wait_all(nodes, timeout)
    except BaseException:
        if temporary and not keep:
            shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        lease.release()
    if first is not None:
        report_failure(first, len(nodes), "process" if platform == "azureml" else "node")
    removed = temporary and not keep
    if removed:
        shutil.rmtree(root, ignore_errors=True)
    return EmulationResult(
        platform=platform, root=root, exit_code=exit_code, duration_s=round(time.monotonic() - started, 2),
        model_dir=layout.model_dir, output_dir=layout.output_dir, checkpoint_dir=layout.checkpoint_dir,
        nodes=[n.name for n in layout.nodes], removed=removed,
        failed_first=first.name if first is not None else None,
        failed_tail=list(first.tail) if first is not None else [],
    )


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """Stop every process group (SIGTERM, then SIGKILL after 10 s); used by the cloud fakes too."""
    from cloudbridge.emulate_nodes import stop_all

    stop_all(children)
