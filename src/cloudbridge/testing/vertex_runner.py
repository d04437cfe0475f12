"""How the Vertex AI fake runs a CustomJob: every worker pool replica as a local process.

For one job (:class:`JobRun`), on a thread of the fake:

1. **Cloud Storage FUSE.** Vertex mounts Cloud Storage at ``/gcs/BUCKET/KEY``. Here ``/gcs`` lives under
   a temporary root (``CB_EMULATE_ROOT``, as :mod:`cloudbridge.emulate` lays it out): every ``gs://``
   value of the container's environment (code package, ``CB_INPUT_*``, ``CB_CHECKPOINT_DIR``) is staged
   there from the GCS emulator first, and when the job ends --
   succeeded, failed, cancelled or preempted -- the base output directory and the checkpoint folder are
   uploaded back to the emulator.
2. **Replicas.** Each replica of each pool runs the container's ``command + args`` with Vertex's
   environment: ``CLUSTER_SPEC`` (``workerpool0`` chief, ``workerpool1`` workers, ``task``),
   ``AIP_MODEL_DIR``, ``AIP_CHECKPOINT_DIR``, ``AIP_TENSORBOARD_LOG_DIR`` (``gs://`` under
   ``baseOutputDirectory``), ``CLOUD_ML_JOB_ID``, plus the container's ``env``. The image itself is
   not run: the command runs with this machine's Python first on ``PATH``. As in
   :mod:`cloudbridge.emulate`, ``MASTER_ADDR`` is pinned to ``127.0.0.1`` (the pools' host names do not
   resolve here). Every line a replica prints becomes a Cloud Logging entry of the job.
3. **End.** All replicas exit 0: ``SUCCEEDED``. One fails: the others are stopped and the job is
   ``FAILED`` with Vertex's error (``code`` 3, "The replica workerpool0-0 exited with a non-zero status
   of N..."). ``scheduling.timeout`` passed: ``FAILED`` (code 4). A cancel: ``CANCELLED`` (code 1).
   A preempted spot worker (an injected fault): ``FAILED`` with code 14 and a preemption message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JobRun", "LogEntry"]


@dataclass
class LogEntry:
    """One Cloud Logging entry a replica wrote (``resource.type = ml_job``)."""

    job_id: str
    task: str
    text: str
    timestamp: float = field(default_factory=time.time)
    severity: str = "INFO"


def _duration(value: Any) -> float | None:
    if isinstance(value, str) and value.endswith("s"):
        return float(value[:-1])
    return None


class JobRun:
    """One CustomJob's run: stage, start the replicas, watch them, upload, set the final state."""

    def __init__(self, job: dict[str, Any], job_id: str, logs: list[LogEntry], lock: threading.Lock, *,
                 start_delay: float = 0.2, preempt_after: float | None = None) -> None:
        self.job, self.job_id, self.logs, self.lock = job, job_id, logs, lock
        self.start_delay = start_delay
        self.preempt_after = preempt_after
        self.cancelled = threading.Event()
        self.children: list[subprocess.Popen[str]] = []
        self.root = ""  # made when the job starts: a held job never leaves a folder behind
        self.thread = threading.Thread(target=self._main, daemon=True, name=f"vertex-job-{job_id}")

    # ---- state ---------------------------------------------------------------------------------
    def _set(self, state: str, error: dict[str, Any] | None = None) -> None:
        from cloudbridge.testing.vertex_fake import rfc3339

        with self.lock:
            if self.job["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
                return
            now = rfc3339(time.time())
            self.job["state"] = state
            self.job["updateTime"] = now
            if state == "JOB_STATE_RUNNING":
                self.job["startTime"] = now
            if state in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
                self.job["endTime"] = now
            if error:
                self.job["error"] = error

    def start(self) -> None:
        """Run the job on its own thread."""
        self.thread.start()

    def cancel(self) -> None:
        """Stop every replica; the job ends ``CANCELLED``."""
        self._set("JOB_STATE_CANCELLING")
        self.cancelled.set()

    # ---- the run -------------------------------------------------------------------------------
    def _main(self) -> None:
        self.root = tempfile.mkdtemp(prefix="cb-vertex-fake-")
        try:
            self._set("JOB_STATE_PENDING")
            if self.cancelled.wait(self.start_delay):
                self._set("JOB_STATE_CANCELLED", {"code": 1, "message": "CANCELED"})
                return
            self._run()
        except Exception as exc:  # noqa: BLE001 - the fake reports any of its own failures as the job's
            self._log("service", f"vertex fake: {type(exc).__name__}: {exc}", "ERROR")
            self._set("JOB_STATE_FAILED", {"code": 13, "message": f"Internal error: {exc}"})
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _env_of(self, container: dict[str, Any]) -> dict[str, str]:
        return {item["name"]: item.get("value", "") for item in container.get("env", [])}

    def _stage(self, env: dict[str, str]) -> None:
        """Copy every ``gs://`` object or prefix the container's env names to its ``/gcs`` path."""
        from cloudbridge.transfers import storage_for
        from cloudbridge.transfers.download import download, download_prefix

        for value in sorted(set(env.values())):
            if not value.startswith("gs://") or len(value.rstrip("/").split("/")) < 4:
                continue
            store, local = storage_for(value), self._fuse(value)
            if not value.endswith("/") and store.exists(value):
                download(value, os.path.dirname(local), storage=store)
            else:
                download_prefix(value.rstrip("/") + "/", local, storage=store)

    def _fuse(self, uri: str) -> str:
        return os.path.join(self.root, "gcs", uri[len("gs://"):].rstrip("/"))

    def _run(self) -> None:
        from cloudbridge.emulate import _base_env
        from cloudbridge.runtime.launch import free_port

        spec = self.job["jobSpec"]
        pools = spec["workerPoolSpecs"]
        container = pools[0]["containerSpec"]
        env = self._env_of(container)
        base = spec.get("baseOutputDirectory", {}).get("outputUriPrefix", "").rstrip("/")
        self._stage(env)
        names = {f"workerpool{i}": [f"workerpool{i}-{self.job_id}-{r}:2222" for r in range(int(p.get("replicaCount")
                 or 1))] for i, p in enumerate(pools) if p}
        port = free_port()
        self._set("JOB_STATE_RUNNING")
        started = time.monotonic()
        readers = []
        for index, pool in enumerate(pools):
            if not pool:
                continue
            pool_container = pool["containerSpec"]
            argv = [*pool_container.get("command", []), *pool_container.get("args", [])]
            for replica in range(int(pool.get("replicaCount") or 1)):
                task = {"type": f"workerpool{index}", "index": replica}
                cluster = {"cluster": names, "environment": "cloud", "task": task,
                           "job": json.dumps({"display_name": self.job.get("displayName")})}
                replica_env = {**_base_env(), **self._env_of(pool_container), "CB_EMULATE_ROOT": self.root,
                               "CLOUD_ML_JOB_ID": self.job_id, "CLUSTER_SPEC": json.dumps(cluster),
                               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "PYTHONUNBUFFERED": "1"}
                if base:
                    replica_env.update(AIP_MODEL_DIR=f"{base}/model/", AIP_CHECKPOINT_DIR=f"{base}/checkpoints/",
                                       AIP_TENSORBOARD_LOG_DIR=f"{base}/logs/")
                cwd = tempfile.mkdtemp(prefix=f"{task['type']}-{replica}-", dir=self.root)
                child = subprocess.Popen(argv, cwd=cwd, env=replica_env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True, errors="replace",
                                         start_new_session=True)
                self.children.append(child)
                label = f"{task['type']}-{replica}"
                reader = threading.Thread(target=self._pump, args=(child, label), daemon=True)
                reader.start()
                readers.append((label, reader))
        outcome = self._watch(started, _duration(spec.get("scheduling", {}).get("timeout")), [r[0] for r in readers])
        for _, reader in readers:
            reader.join(10)
        self._upload(base, env.get("CB_CHECKPOINT_DIR"))
        state, error = outcome
        self._set(state, error)

    def _pump(self, child: subprocess.Popen[str], label: str) -> None:
        assert child.stdout is not None
        for line in child.stdout:
            self._log(label, line.rstrip("\n"))

    def _log(self, task: str, text: str, severity: str = "INFO") -> None:
        with self.lock:
            self.logs.append(LogEntry(self.job_id, task, text, severity=severity))

    def _watch(self, started: float, timeout: float | None, labels: list[str]) -> tuple[str, dict[str, Any] | None]:
        from cloudbridge.emulate import _stop

        while True:
            codes = [child.poll() for child in self.children]
            if self.cancelled.is_set():
                _stop(self.children)
                return "JOB_STATE_CANCELLED", {"code": 1, "message": "CANCELED"}
            if self.preempt_after is not None and time.monotonic() - started >= self.preempt_after:
                victim = labels[-1]
                _stop(self.children)
                return "JOB_STATE_FAILED", {"code": 14, "message": f"The replica {victim} was preempted: its Spot "
                                            "VM was reclaimed by Compute Engine (spot preemption)."}
            for label, code in zip(labels, codes, strict=True):
                if code not in (None, 0):
                    _stop(self.children)
                    return "JOB_STATE_FAILED", {"code": 3, "message": (
                        f"The replica {label} exited with a non-zero status of {code}. To find out more about why "
                        f"your job exited please check the logs: resource.type=\"ml_job\" "
                        f"resource.labels.job_id=\"{self.job_id}\"")}
            if all(code == 0 for code in codes):
                return "JOB_STATE_SUCCEEDED", None
            if timeout is not None and time.monotonic() - started > timeout:
                _stop(self.children)
                return "JOB_STATE_FAILED", {"code": 4, "message": f"Job exceeded the maximum running duration of "
                                            f"{timeout:g}s (scheduling.timeout)."}
            time.sleep(0.1)

    def _upload(self, base: str, checkpoints: str | None) -> None:
        from cloudbridge.transfers import storage_for

        for uri in (base, checkpoints):
            if not uri:
                continue
            local = self._fuse(uri)
            if not os.path.isdir(local):
                continue
            store = storage_for(uri)
            for folder, _, files in os.walk(local):
                for name in files:
                    path = os.path.join(folder, name)
                    key = os.path.relpath(path, local).replace(os.sep, "/")
                    store.upload(path, f"{uri.rstrip('/')}/{key}")
