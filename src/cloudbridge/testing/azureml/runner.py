"""How the Azure ML fake really runs a command job: ``instance_count`` nodes as local processes.

The job's code snapshot (the code asset uploaded through the ``startPendingUpload`` handshake) and
its ``uri_folder``/``uri_file`` inputs are downloaded from Azurite; :func:`cloudbridge.emulate.plan_emulation`
lays them out under Azure ML's paths and gives every process Azure ML's environment (``RANK``,
``WORLD_SIZE``, ``AZUREML_*``, ``AZ_BATCHAI_*``, ``AZURE_ML_INPUT_<name>``); the fake adds
``AZURE_ML_OUTPUT_<name>`` folders and runs the job's ``command`` (``${{inputs.x}}`` and
``${{outputs.x}}`` substituted) with bash in every process, ``process_count_per_instance`` per node.
Each process writes ``user_logs/std_log_process_<rank>.txt``; the logs are copied to the workspace
artifact store (``azureml/ExperimentRun/dcid.<job>/user_logs/``) every half second, and outputs are
uploaded to their URIs when the job ends, even after a failure, as Azure ML does.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudbridge.testing.azureml.blobs import Blobs

__all__ = ["JobRun"]

_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")


class JobRun:
    """One running job: its processes, its Azure ML status and its error."""

    def __init__(self, name: str, props: dict[str, Any], code_prefix: str | None, blobs: Blobs, root: str,
                 *, queue_seconds: float = 0.3) -> None:
        self.name, self.props, self.code_prefix, self.blobs = name, props, code_prefix, blobs
        self.root = os.path.join(root, name)
        self.status = "Queued"
        self.error: dict[str, Any] | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.queue_seconds = queue_seconds
        self.children: list[subprocess.Popen] = []
        self.log_files: list[str] = []
        self._cancel = threading.Event()
        self._preempt = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"azureml-job-{name}", daemon=True)

    def start(self, *, hold: bool = False) -> None:
        """Start the job in the background (Queued, then Running, then a final status).

        ``hold`` keeps it Queued without running anything: a test driver then sets its status.
        """
        self.held = hold
        if not hold:
            self.thread.start()

    def cancel(self) -> None:
        """Stop the processes; the job ends ``Canceled``."""
        if self.status not in ("Completed", "Failed", "Canceled"):
            self.status = "Canceled" if getattr(self, "held", False) else "CancelRequested"
            self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        """True once a cancel request reached the job."""
        return self._cancel.is_set()

    def preempt(self) -> None:
        """Kill the processes as a low-priority node preemption does; the job ends ``Failed``."""
        self._preempt.set()

    # ---- the run ---------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self._cancel.wait(self.queue_seconds):
                self._finish("Canceled")
                return
            self.status = "Starting"
            layout, command = self._prepare()
            if self._cancel.is_set():
                self._finish("Canceled")
                return
            self.status = "Running"
            self.started_at = time.time()
            self._start_processes(layout, command)
            code = self._watch()
            self._upload_outputs(layout)
            if self._cancel.is_set():
                self._finish("Canceled")
            elif self._preempt.is_set():
                self._finish("Failed", {"code": "JobPreempted", "message": "The low priority node running the "
                                        "job was preempted by Azure; the job was stopped."})
            elif code == 0:
                self._finish("Completed")
            else:
                self._finish("Failed", {"code": "UserError", "message": f"Execution failed. User process exited "
                                        f"with status code {code}. Please check log file 'user_logs/"
                                        f"std_log_process_0.txt' for more information."})
        except Exception as exc:  # noqa: BLE001 - any staging failure is the job's failure
            self._finish("Failed", {"code": "ServiceError", "message": f"Preparing the job failed: {exc}"})

    def _finish(self, status: str, error: dict[str, Any] | None = None) -> None:
        self.error = error
        self.ended_at = time.time()
        self._push_logs()
        self.status = status

    def _prepare(self) -> tuple[Any, str]:
        from cloudbridge.emulate import plan_emulation

        code_dir = os.path.join(self.root, "snapshot")
        os.makedirs(code_dir, exist_ok=True)
        if self.code_prefix:
            self.blobs.download_prefix(self.code_prefix, code_dir)
        inputs: dict[str, str] = {}
        for name, spec in (self.props.get("inputs") or {}).items():
            if spec.get("jobInputType") in ("uri_folder", "uri_file"):
                target = os.path.join(self.root, "inputs", name)
                self.blobs.download_prefix(spec["uri"], target, single=spec["jobInputType"] == "uri_file")
                inputs[name] = target
        env = dict(self.props.get("environmentVariables") or {})
        distribution = self.props.get("distribution") or {}
        resources = self.props.get("resources") or {}
        shim = SimpleNamespace(
            name=self.props.get("displayName") or self.name, run=env.get("CB_RUN", self.props.get("command", "")),
            env=env, inputs=inputs, base_dir=self.root, distribution=env.get("CB_DISTRIBUTION", "none"),
            resources=SimpleNamespace(nodes=int(resources.get("instanceCount") or 1), processes=None),
            resolved_workdir=lambda: code_dir,
        )
        procs = int(distribution.get("processCountPerInstance") or 1)
        layout = plan_emulation(shim, "azureml", os.path.join(self.root, "fs"), processes=procs)
        outputs = {}
        for name in self.props.get("outputs") or {}:
            outputs[name] = os.path.join(self.root, "outputs", name)
            os.makedirs(outputs[name], exist_ok=True)
        for node in layout.nodes:
            node.env["AZUREML_RUN_ID"] = self.name
            node.env.update({f"AZURE_ML_OUTPUT_{k}": v for k, v in outputs.items()})
        layout.outputs = outputs

        def substitute(match: re.Match[str]) -> str:
            kind, key = match.groups()
            if kind == "outputs":
                return outputs.get(key, "")
            return os.path.join(layout.nodes[0].env.get(f"AZURE_ML_INPUT_{key}", ""))

        return layout, _PLACEHOLDER.sub(substitute, self.props.get("command") or "")

    def _start_processes(self, layout: Any, command: str) -> None:
        from cloudbridge.emulate import _base_env

        base = _base_env()
        for index, node in enumerate(layout.nodes):
            logs = os.path.join(self.root, "user_logs")
            os.makedirs(logs, exist_ok=True)
            path = os.path.join(logs, f"std_log_process_{index}.txt")
            self.log_files.append(path)
            with open(path, "wb") as handle:
                child = subprocess.Popen(["bash", "-c", command], cwd=node.cwd, env={**base, **node.env},
                                         stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
            self.children.append(child)

    def _watch(self) -> int:
        last_push = 0.0
        while True:
            codes = [c.poll() for c in self.children]
            failed = [c for c in codes if c not in (None, 0)]
            if self._cancel.is_set() or self._preempt.is_set() or failed:
                self._stop()
                return failed[0] if failed else 1
            if all(c == 0 for c in codes):
                return 0
            if time.monotonic() - last_push > 0.5:
                self._push_logs()
                last_push = time.monotonic()
            time.sleep(0.1)

    def _stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                try:
                    os.killpg(child.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for child in self.children:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()

    def stop_now(self) -> None:
        """Kill the processes at once (the fake is shutting down)."""
        self._cancel.set()
        self._stop()

    def _push_logs(self) -> None:
        with self._lock:
            for index, path in enumerate(self.log_files):
                if os.path.exists(path):
                    try:
                        self.blobs.put_artifact(self.name, f"user_logs/std_log_process_{index}.txt", path)
                    except Exception as exc:  # noqa: BLE001 - logs are best effort while running
                        print(f"azureml fake: could not copy logs of {self.name}: {exc}", file=sys.stderr)

    def _upload_outputs(self, layout: Any) -> None:
        for name, spec in (self.props.get("outputs") or {}).items():
            uri = (spec or {}).get("uri")
            local = layout.outputs.get(name)
            if uri and local and os.path.isdir(local):
                self.blobs.upload_dir(local, uri)
        shutil.rmtree(os.path.join(self.root, "fs"), ignore_errors=True)
