"""ManagedComputeConformance on the real 2-node cluster, with a back door for what no cluster can be told.

The jobs are really submitted (``sbatch --hold``: they wait in the real queue and use no CPU), really
cancelled (``scancel``; ``was_stopped`` asks the real ``squeue``), and their ``--time`` is read from the
script Slurm was given. What a driver must set and a cluster cannot -- "this job ran 1800 s and was
preempted twice", "it was submitted 15 minutes ago" -- comes from an overlay: a ``squeue`` wrapper first on
the adapter's ``PATH`` runs the real ``squeue --json`` and replaces the fields the driver wrote for a job
(``job_state``, ``exit_code``, times, ``restart_cnt``, ``nodes``), in Slurm 22.05's own format.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudbridge_slurm.adapter import SlurmAdapter
from cloudbridge_slurm.cluster import parse_time
from cloudbridge_slurm.compute import SlurmCompute
from cloudbridge_slurm.localcluster import LocalCluster
from cloudbridge_slurm.runner import Runner
from cloudbridge_slurm.settings import SlurmSettings
from cloudbridge_slurm.storage import SlurmStorage

from cloudbridge.managed.compute import ManagedCompute
from cloudbridge.specs import JobSpec
from cloudbridge.testing.managed import ManagedComputeConformance, ManagedDriver

SQUEUE_WRAPPER = '''#!{python}
import json, os, subprocess, sys
proc = subprocess.run([{real!r}, *sys.argv[1:]], capture_output=True, text=True)
if proc.returncode != 0 or "--json" not in sys.argv:
    sys.stdout.write(proc.stdout); sys.stderr.write(proc.stderr); sys.exit(proc.returncode)
try:
    with open(os.environ["CB_SLURM_OVERLAY"]) as handle:
        overlay = json.load(handle)
except FileNotFoundError:
    overlay = {{}}
data = json.loads(proc.stdout)
for job in data.get("jobs", []):
    job.update(overlay.get(str(job.get("job_id")), {{}}))
json.dump(data, sys.stdout)
'''


class SlurmDriver(ManagedDriver):
    """Moves held jobs between states through the squeue overlay (see the module docstring)."""

    failure_messages = {
        "exit code 3": "non-zero exit (code 3)",
        "OUT_OF_MEMORY: a process of the job was killed for using more memory than --mem allows": "out of memory",
        "NODE_FAIL: a node of the job failed (n2)": "node failure",
    }

    def __init__(self, overlay: Path, storage_root: Path, env: dict[str, str]) -> None:
        self.overlay, self.root, self.env = overlay, storage_root, env

    def _meta(self, native_id: str) -> dict[str, Any]:
        return json.loads((self.root / "jobs" / native_id / "job.json").read_text())

    def _real(self, native_id: str) -> dict[str, Any]:
        slurm_id = self._meta(native_id)["slurm_id"]
        out = subprocess.run(["/usr/bin/squeue", "--json", "-t", "all"], capture_output=True, text=True, check=True,
                             env=self.env).stdout
        return next(job for job in json.loads(out)["jobs"] if str(job["job_id"]) == str(slurm_id))  # 22.05 ignores -j

    def _set(self, native_id: str, **fields: Any) -> None:
        data = json.loads(self.overlay.read_text()) if self.overlay.exists() else {}
        slurm_id = str(self._meta(native_id)["slurm_id"])
        data.setdefault(slurm_id, {}).update(fields)
        self.overlay.write_text(json.dumps(data))

    def provisioning(self, native_id: str) -> None:
        self._set(native_id, job_state="PENDING", start_time=0, end_time=0)

    def running(self, native_id: str) -> None:
        self._set(native_id, job_state="RUNNING", start_time=int(time.time()), end_time=0)

    def failed(self, native_id: str, message: str) -> None:
        now = int(time.time())
        if message.startswith("exit code "):
            self._set(native_id, job_state="FAILED", exit_code=int(message.split()[2]) << 8, start_time=now - 60,
                      end_time=now)
        else:
            self._set(native_id, job_state=message.split(":")[0], exit_code=0, nodes="n2", start_time=now - 60,
                      end_time=now)

    def hit_runtime_cap(self, native_id: str, used: int) -> None:
        now = int(time.time())
        self._set(native_id, job_state="TIMEOUT", exit_code=15, start_time=now - used, end_time=now)

    def spot_gave_up(self, native_id: str, interruptions: int, used: int) -> None:
        now = int(time.time())
        state = "PREEMPTED" if interruptions else "DEADLINE"  # DEADLINE: never got capacity in time
        self._set(native_id, job_state=state, restart_cnt=max(0, interruptions - 1), start_time=now - used,
                  end_time=now)

    def age(self, native_id: str, seconds: float) -> None:
        current = json.loads(self.overlay.read_text()).get(str(self._meta(native_id)["slurm_id"]), {}) \
            if self.overlay.exists() else {}
        submitted = current.get("submit_time") or self._real(native_id)["submit_time"]
        self._set(native_id, submit_time=int(submitted - seconds))

    def runtime_cap(self, native_id: str) -> int:
        script = (self.root / "jobs" / native_id / "job.sbatch").read_text()
        line = next(ln for ln in script.splitlines() if ln.startswith("#SBATCH --time="))
        return int(parse_time(line.split("=", 1)[1]) or 0)

    def was_stopped(self, native_id: str) -> bool:
        return self._real(native_id)["job_state"] == "CANCELLED"


class TestSlurmManagedCompute(ManagedComputeConformance):
    @pytest.fixture
    def backdoor(self, slurm_cluster: LocalCluster, staging_root: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        wrapper = bin_dir / "squeue"
        wrapper.write_text(SQUEUE_WRAPPER.format(python=sys.executable, real=shutil.which("squeue")))
        wrapper.chmod(0o755)
        env = slurm_cluster.environ()
        env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", CB_SLURM_OVERLAY=str(tmp_path / "overlay.json"))
        root = staging_root / f"managed-{tmp_path.name}"
        settings = SlurmSettings(staging_dir=str(root), node_local=["/dev/shm"], poll_interval=0.2,
                                 sbatch_options=["--hold"], node_hour_price=2.5)
        yield {"env": env, "settings": settings, "root": root, "overlay": tmp_path / "overlay.json"}
        ids = [json.loads(p.read_text())["slurm_id"] for p in (root / "jobs").glob("*/job.json")] \
            if (root / "jobs").exists() else []
        ids = [str(i) for i in ids if i]
        if ids:
            subprocess.run(["scancel", *ids], env=slurm_cluster.environ(), check=False)

    def _compute(self, backdoor: dict[str, Any]) -> ManagedCompute:
        runner = Runner(backdoor["settings"], env=backdoor["env"])
        storage = SlurmStorage(runner)
        return SlurmCompute(SlurmAdapter(runner, storage), storage)

    @pytest.fixture
    def managed_compute(self, backdoor: dict[str, Any]) -> ManagedCompute:
        return self._compute(backdoor)

    @pytest.fixture
    def other_process(self, backdoor: dict[str, Any]) -> Callable[[], ManagedCompute]:
        return lambda: self._compute(backdoor)

    @pytest.fixture
    def driver(self, backdoor: dict[str, Any]) -> ManagedDriver:
        return SlurmDriver(backdoor["overlay"], backdoor["root"], backdoor["env"])

    @pytest.fixture
    def make_spec(self, tmp_path: Path) -> Callable[..., JobSpec]:
        (tmp_path / "code").mkdir(exist_ok=True)
        (tmp_path / "code" / "train.py").write_text("print('hi')\n")

        def make(name: str = "managed", **fields: Any) -> JobSpec:
            resources = {"max_runtime": "4h", **fields.pop("resources", {})}
            return JobSpec(name=name, provider="slurm", workdir=str(tmp_path / "code"), run="python train.py",
                           resources=resources, **fields)

        return make

    @pytest.fixture
    def os_process_reader(self, backdoor: dict[str, Any]) -> Callable[[str], list[str]]:
        """Another OS process: a fresh interpreter, its settings from CLOUDBRIDGE_SLURM_* only."""
        settings: SlurmSettings = backdoor["settings"]
        env = {"PATH": backdoor["env"]["PATH"], "SLURM_CONF": backdoor["env"]["SLURM_CONF"],
               "CB_SLURM_OVERLAY": backdoor["env"]["CB_SLURM_OVERLAY"],
               "CLOUDBRIDGE_SLURM_STAGING_DIR": str(settings.staging_dir),
               "CLOUDBRIDGE_SLURM_NODE_LOCAL": json.dumps(settings.node_local),
               "CLOUDBRIDGE_SLURM_SBATCH_OPTIONS": json.dumps(settings.sbatch_options),
               "CLOUDBRIDGE_SLURM_NODE_HOUR_PRICE": str(settings.node_hour_price)}
        code = ("import json, sys; from cloudbridge_slurm.provider import SlurmProvider; "
                "print(json.dumps(SlurmProvider().compute.get(sys.argv[1]).to_dict()))")
        return lambda job_id: ["env", *(f"{k}={v}" for k, v in env.items()), sys.executable, "-c", code, job_id]

    @pytest.fixture
    def checkpoints_uri(self) -> str:
        return "slurm://staging/checkpoints/managed"
