"""Jobs as local processes, each under a detached runner (:mod:`cloudbridge_dirstore.runner`).

The job's "native" state lives in its folder, as a cloud's would live in the cloud: ``get`` reads
it, and reports a job whose runner vanished as ``FAILED`` instead of running forever.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cloudbridge.errors import NotFound, ResourceUnavailable
from cloudbridge.interfaces import Compute
from cloudbridge.records import Job
from cloudbridge_dirstore.jobstate import TERMINAL, job_dir, pid_alive, read_state, to_job, update_state, write_json

if TYPE_CHECKING:
    from cloudbridge.specs import JobSpec


class DirCompute(Compute):
    """Runs each job as ``bash -c <run>`` in a copy of its workdir, one process, CPU only."""

    poll_interval = 0.1

    def __init__(self, root: Path, *, kill_grace: float = 5.0) -> None:
        self.root = Path(root)
        self.kill_grace = kill_grace
        (self.root / "jobs").mkdir(parents=True, exist_ok=True)

    def _check_fits(self, spec: JobSpec) -> None:
        res = spec.resources
        if res.accelerator_count:
            raise ResourceUnavailable(
                f"dirstore runs jobs on CPU only; the job asks for {res.accelerators}",
                hint="remove resources.accelerators or use another provider",
            )
        if res.nodes > 1 or (res.processes or 1) > 1:
            raise ResourceUnavailable(
                f"dirstore runs one process on one node; the job asks for {res.nodes} nodes "
                f"x {res.processes or 1} processes"
            )

    def submit(self, spec: JobSpec) -> Job:
        """Validate, write the job folder, start the detached runner; returns the PENDING job."""
        from cloudbridge.uri import parse_uri

        self._check_fits(spec)
        workdir = spec.resolved_workdir()
        if workdir is not None and not workdir.is_dir():
            raise NotFound(f"workdir {workdir} does not exist or is not a directory")
        base = str(spec.base_dir)
        inputs = {}
        for channel, value in spec.inputs.items():
            uri = parse_uri(value, base_dir=base)
            if uri.is_local and not Path(uri.path).exists():
                raise NotFound(f"input {channel!r}: {uri.path} does not exist")
            inputs[channel] = str(uri)
        outputs = {channel: str(parse_uri(value, base_dir=base)) for channel, value in spec.outputs.items()}
        job_id = f"dirstore-{secrets.token_hex(4)}"
        folder = self.root / "jobs" / job_id
        folder.mkdir(parents=True)
        state = {
            "id": job_id,
            "name": spec.name,
            "state": "PENDING",
            "created_at": time.time(),
            "root": str(self.root),
            "folder": str(folder),
            "workdir": str(workdir) if workdir else None,
            "max_runtime": spec.resources.max_runtime_seconds,
            "outputs_uri": next(iter(outputs.values()), None),
            "spec": {"run": spec.run, "env": spec.env, "inputs": inputs, "outputs": outputs},
        }
        write_json(folder / "state.json", state)
        with open(folder / "runner.err", "ab") as err:
            runner = subprocess.Popen(
                [sys.executable, "-m", "cloudbridge_dirstore.runner", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        update_state(folder, runner_pid=runner.pid)
        return to_job(read_state(folder)).bind(self)

    def get(self, job_id: str) -> Job:
        """The job as its folder says; a vanished runner turns a live state into FAILED."""
        folder = job_dir(self.root, job_id)
        state = read_state(folder)
        if state["state"] not in TERMINAL and state.get("runner_pid") and not pid_alive(state["runner_pid"]):
            state = read_state(folder)  # it may have finished between the two reads
            if state["state"] not in TERMINAL:
                errors = (folder / "runner.err").read_text(errors="replace")[-2000:]
                state = update_state(folder, state="FAILED", reason="the job runner died", detail=errors or None)
        return to_job(state).bind(self)

    def list(self) -> list[Job]:
        """Every dirstore job, newest first."""
        jobs = []
        for folder in (self.root / "jobs").iterdir():
            if (folder / "state.json").exists():
                jobs.append(self.get(folder.name))
        return sorted(jobs, key=lambda job: job.created_at or 0, reverse=True)

    def cancel(self, job_id: str) -> Job:
        """Stop the job's process group (SIGTERM, then SIGKILL after ``kill_grace``)."""
        from cloudbridge_dirstore.runner import _stop

        folder = job_dir(self.root, job_id)
        state = read_state(folder)
        if state["state"] in TERMINAL:
            return to_job(state).bind(self)
        (folder / "cancel").touch()
        deadline = time.monotonic() + 2.0
        while not read_state(folder).get("pgid") and pid_alive(state.get("runner_pid")):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        pgid = read_state(folder).get("pgid")
        if pgid:
            _stop(pgid, self.kill_grace)
        deadline = time.monotonic() + self.kill_grace + 5
        while read_state(folder)["state"] not in TERMINAL and time.monotonic() < deadline:
            if not pid_alive(read_state(folder).get("runner_pid")):
                break
            time.sleep(0.05)
        update_state(folder, state="CANCELLED", reason="cancelled by the user")
        return self.get(job_id)

    def logs(self, job_id: str, follow: bool = False) -> Iterator[str]:
        """Lines of the job's log; ``follow`` keeps reading until the job has ended."""
        folder = job_dir(self.root, job_id)
        return self._read_log(job_id, folder / "log.txt", follow)

    def _read_log(self, job_id: str, log: Path, follow: bool) -> Iterator[str]:
        position, pending = 0, b""
        while True:
            ended = self.get(job_id).state.value in TERMINAL  # checked before reading: no lost tail
            if log.exists():
                with open(log, "rb") as handle:
                    handle.seek(position)
                    data = handle.read()
                position += len(data)
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="replace")
            if not follow or ended:
                if pending:
                    yield pending.decode("utf-8", errors="replace")
                return
            time.sleep(0.1)
