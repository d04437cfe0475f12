"""``SlurmAdapter``: the managed-jobs core's adapter for Slurm (see :mod:`cloudbridge.managed.adapter`).

A job's native id is its name (``<spec-name>-YYYYmmdd-HHMMSS-xxxx``); its folder
``<staging_dir>/jobs/<name>/`` holds ``job.json`` (the Slurm job id, the core's tags and the
request), ``job.sbatch``, the output file ``slurm-<id>.out``, the unpacked code, staged inputs and
outputs. Everything any process needs to read the job is there and in Slurm, so ``get``/``logs``
work from any machine that reaches the cluster.

Failures: ``TIMEOUT`` is the run-time cap (``--time``: ``max_runtime`` or the budget), ``PREEMPTED``
is a reclaimed preemptible ("spot") job (restarted by the core within ``max_restarts`` when the job
has checkpoints), ``OUT_OF_MEMORY``, ``NODE_FAIL`` and a non-zero exit are named with the log tail.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import shlex
import time
from collections.abc import Callable, Iterator
from typing import Any

from cloudbridge.errors import ConflictError, InvalidSpec, NotFound, StageTimeout, TransientError
from cloudbridge.managed.adapter import CHECK_CODE_URI, ManagedAdapter, Placement, Snapshot
from cloudbridge.managed.limits import ATTEMPT_TAG, LIMITS_TAG, RESTART_OF_TAG, Limits
from cloudbridge.reasons import NON_ZERO_EXIT, OUT_OF_MEMORY
from cloudbridge.specs import JobSpec
from cloudbridge_slurm import states as slurm_states
from cloudbridge_slurm.cluster import ClusterInfo, format_time, read_cluster
from cloudbridge_slurm.runner import CommandFailed, Runner, SshFailed
from cloudbridge_slurm.script import JobLayout, build_script, input_paths, output_paths, secret_env_warning
from cloudbridge_slurm.states import SACCT_FIELDS, STATES, SlurmRecord, parse_sacct, parse_scontrol, parse_squeue
from cloudbridge_slurm.storage import SlurmStorage

__all__ = ["NODE_FAILURE", "SlurmAdapter"]

#: The neutral reason of a job whose node failed (``NODE_FAIL``, ``BOOT_FAIL``).
NODE_FAILURE = "node failure"


class SlurmAdapter(ManagedAdapter):
    """Slurm, translated for :class:`~cloudbridge.managed.compute.ManagedCompute`."""

    provider = "slurm"
    service = "Slurm"
    states = STATES
    reasons = tuple((re.compile(p), r) for p, r in (
        (r"OUT_OF_MEMORY", OUT_OF_MEMORY), (r"NODE_FAIL|BOOT_FAIL", NODE_FAILURE), (r"exit code", NON_ZERO_EXIT)))
    spot_name = "preemptible"

    def __init__(self, runner: Runner, storage: SlurmStorage) -> None:
        self.runner = runner
        self.storage = storage
        self.settings = runner.settings
        self.poll_interval = self.settings.poll_interval
        self.node_local = tuple(self.settings.node_local)
        self._cluster: ClusterInfo | None = None
        self._staging_ok = False
        self._meta: dict[str, dict[str, Any]] = {}
        self._accounting: bool | None = None
        self._sacct_error: str | None = None

    # ---- the cluster -------------------------------------------------------------------------------
    def cluster(self, refresh: bool = False) -> ClusterInfo:
        """Partitions and nodes (read once per adapter); an unreachable login host is bad input."""
        if self._cluster is None or refresh:
            try:
                self._cluster = read_cluster(self.runner)
            except SshFailed as exc:
                raise InvalidSpec(f"cannot reach the login host: {exc.message}", field="settings.slurm.login",
                                  hint=exc.hint) from exc
        return self._cluster

    def check_staging(self) -> str:
        """``staging_dir`` is set, not node-local and writable; returns it. Bad input otherwise."""
        root = self.storage.root
        if self._staging_ok:
            return root
        for local in self.node_local:
            if root == local or root.startswith(local.rstrip("/") + "/"):
                raise InvalidSpec(f"staging folder {root} is under {local}, which is local to each node: "
                                  "the compute nodes would not see the staged code", field="settings.slurm.staging_dir",
                                  hint="use a folder on the cluster's shared filesystem (home, /shared, /scratch)")
        probe = posixpath.join(root, f".cb-write-test-{time.time_ns()}")
        try:
            proc = self.runner.shell(f"mkdir -p {shlex.quote(root)} && touch {shlex.quote(probe)} && "
                                     f"rm -f {shlex.quote(probe)}", what="check the staging folder", check=False)
        except SshFailed as exc:
            raise InvalidSpec(f"cannot reach the login host: {exc.message}", field="settings.slurm.login",
                              hint=exc.hint) from exc
        if proc.returncode != 0:
            why = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["not writable"]
            raise InvalidSpec(f"staging folder {root} is not writable: {why[0]}", field="settings.slurm.staging_dir")
        self._staging_ok = True
        return root

    # ---- pure (the cluster is read once) -------------------------------------------------------------
    def place(self, spec: JobSpec) -> Placement:
        """The partition, checked against what the cluster has (see :func:`~cloudbridge_slurm.placing.place`)."""
        from cloudbridge_slurm.placing import place

        return place(self, spec)

    def code_uri_prefix(self) -> str:
        """``slurm://staging/code``: code packages are content-addressed there."""
        return str(SlurmStorage.uri("code"))

    def layout(self, name: str, first: str | None = None) -> JobLayout:
        """The folders of attempt ``name`` (restarts share ``first``'s checkpoints)."""
        return JobLayout(self.storage.root, name, first or name)

    def build_request(self, spec: JobSpec, placement: Placement, limits: Limits, *, code_uri: str, name: str,
                      tags: dict[str, str]) -> dict[str, Any]:
        """Everything :meth:`create` needs: the script, what to stage and fetch, the tags. Pure."""
        return self._request(spec, placement, limits, code_uri=code_uri, name=name, first=name, tags=tags,
                             run_cap=self._run_cap(spec, placement, limits, limits.run_cap()))

    def _run_cap(self, spec: JobSpec, placement: Placement, limits: Limits, cap: int) -> int:
        """The ``--time``: the core's cap, within the partition's limit when no ``max_runtime`` was asked."""
        part = self.cluster().partitions.get(placement.instance_type)
        if part is not None and part.max_time is not None and not spec.resources.max_runtime_seconds:
            return min(cap, part.max_time)
        return cap

    def _request(self, spec: JobSpec, placement: Placement, limits: Limits, *, code_uri: str, name: str, first: str,
                 tags: dict[str, str], run_cap: int) -> dict[str, Any]:
        layout = self.layout(name, first)
        code_path = None if code_uri == CHECK_CODE_URI else self.storage.path(code_uri)
        script = build_script(spec, placement, limits, settings=self.settings, layout=layout, code_path=code_path,
                              tags=tags, run_cap=run_cap)
        base = spec.base_dir
        stage = {ch: str((base / spec.inputs[ch]).resolve()) for ch, (how, _) in input_paths(spec, layout).items()
                 if how == "staged"}
        fetch = {ch: (folder, str((base / spec.outputs[ch]).resolve()))
                 for ch, (how, folder) in output_paths(spec, layout).items() if how == "fetch"}
        return {"name": name, "first": first, "script": script, "job_dir": layout.job_dir, "stage": stage,
                "fetch": fetch, "tags": dict(tags), "run_cap": run_cap, "code_uri": code_uri,
                "spec": spec.model_dump(mode="json", exclude={"source"}),
                "placement": {"partition": placement.instance_type, "nodes": placement.nodes, "spot": placement.spot}}

    def restart_request(self, base: dict[str, Any], number: int, limits: Limits, used: float) -> dict[str, Any]:
        """``<first>-r<number>``: same spec, code and checkpoints; the run time that is left."""
        spec = JobSpec.model_validate(base["spec"])
        placement = Placement(base["placement"]["partition"], None, base["placement"]["nodes"],
                              base["placement"]["spot"])
        attempt = limits.for_attempt(used)
        tags = {**base["tags"], LIMITS_TAG: attempt.to_tag(), ATTEMPT_TAG: str(number + 1),
                RESTART_OF_TAG: base["first"]}
        request = self._request(spec, placement, attempt, code_uri=base["code_uri"], name=f"{base['first']}-r{number}",
                                first=base["first"], tags=tags, run_cap=max(1, attempt.run_cap(used)))
        request["stage"] = copy.deepcopy(base["stage"])
        return request

    def warnings(self, spec: JobSpec) -> list[str]:
        """One line when ``spec.env`` holds values that look secret (see :func:`secret_env_warning`)."""
        warning = secret_env_warning(spec)
        return [warning] if warning else []

    # ---- job.json ------------------------------------------------------------------------------------
    def _meta_uri(self, name: str) -> Any:
        return SlurmStorage.uri(f"jobs/{name}/job.json")

    def meta(self, name: str, fresh: bool = False) -> dict[str, Any]:
        """The job's ``job.json``; :class:`NotFound` when there is no such job."""
        if name in self._meta and not fresh:
            return self._meta[name]
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise NotFound(f"no Slurm job {name!r}")
        try:
            data = json.loads(self.storage.read_bytes(self._meta_uri(name)))
        except NotFound:
            raise NotFound(f"no Slurm job {name!r} in {self.storage.root}/jobs") from None
        self._meta[name] = data
        return data

    def _write_meta(self, name: str, data: dict[str, Any]) -> None:
        self.storage.write_bytes(self._meta_uri(name), json.dumps(data, indent=1, sort_keys=True).encode())
        self._meta[name] = data

    # ---- calls ----------------------------------------------------------------------------------------
    def create(self, request: dict[str, Any]) -> str:
        """Stage inputs, write the script and ``job.json``, ``sbatch`` it; returns the job's name."""
        name = request["name"]
        jobs = posixpath.join(self.storage.root, "jobs")
        # 0700: the script holds the spec's env: values, the folder the job's inputs and outputs
        claim = self.runner.shell(f"mkdir -p {shlex.quote(jobs)} && mkdir -m 700 {shlex.quote(request['job_dir'])}",
                                  what=f"create the folder of {name}", check=False)
        if claim.returncode != 0:  # mkdir is atomic: two processes restarting one job submit it once
            deadline = time.monotonic() + 10
            while not self.storage.exists(self._meta_uri(name)) and time.monotonic() < deadline:
                time.sleep(0.1)  # the winner writes job.json next: let the loser find the job it made
            raise ConflictError(f"Slurm job {name} exists")
        for channel, local in request["stage"].items():
            self.storage.put_tree(local, SlurmStorage.uri(f"jobs/{name}/inputs/{channel}"))
        script_uri = SlurmStorage.uri(f"jobs/{name}/job.sbatch")
        self.storage.write_bytes(script_uri, request["script"].encode())
        meta = {"name": name, "slurm_id": None, "tags": request["tags"], "request": request, "created": time.time()}
        self._write_meta(name, meta)
        try:
            out = self.runner.text(["sbatch", "--parsable", f"--chdir={request['job_dir']}",
                                    self.storage.path(script_uri)], what=f"submit {name} (sbatch)")
        except CommandFailed as exc:
            # nothing was queued: leave no folder that would read as a job
            self.runner.run(["rm", "-rf", "--", request["job_dir"]], what=f"clean up {name}", check=False)
            from cloudbridge_slurm.placing import refused

            raise refused(exc) from exc
        meta["slurm_id"] = out.strip().split(";")[0]
        self._write_meta(name, meta)
        return name

    def _accounting_on(self) -> bool:
        if self._accounting is None:
            proc = self.runner.run(["scontrol", "show", "config"], what="read the Slurm configuration", check=False)
            text = proc.stdout.decode("utf-8", "replace")
            self._accounting = "accounting_storage/none" not in text and "AccountingStorageType" in text
        return self._accounting

    def record(self, slurm_id: str, tries: int = 2) -> SlurmRecord | None:
        """The Slurm job's state: squeue, then scontrol, then sacct (when the cluster keeps accounting).

        Accounting is asked only when the controller answered that it does not know the job: a controller
        that does not answer (busy, restarting) is asked once more, then :class:`TransientError`.
        """
        for attempt in range(tries):
            proc = self.runner.run(["squeue", "--json", "-t", "all", "-j", slurm_id],
                                   what="read the job (squeue)", check=False)
            if proc.returncode == 0:
                found = [r for r in parse_squeue(proc.stdout.decode()) if r.job_id == slurm_id]
                if found:
                    return found[0]
            proc = self.runner.run(["scontrol", "show", "job", "-d", "-o", slurm_id],
                                   what="read the job (scontrol)", check=False)
            if proc.returncode == 0:
                rec = parse_scontrol(proc.stdout.decode())
                if rec is not None:
                    return rec
            said = proc.stderr.decode("utf-8", "replace").strip()
            if "Invalid job id" in said:
                break
            if attempt + 1 == tries:
                raise TransientError(f"cannot read Slurm job {slurm_id}: the controller did not answer "
                                     f"({(said.splitlines() or ['no message'])[-1]})", provider="slurm")
            time.sleep(min(2.0, self.poll_interval))
        if self._accounting_on():
            proc = self.runner.run(["sacct", "-j", slurm_id, "-X", "-n", "-P", "-o", SACCT_FIELDS],
                                   what="read the job (sacct)", check=False)
            if proc.returncode == 0:
                return parse_sacct(proc.stdout.decode("utf-8", "replace"))
            # accounting is configured but does not answer (slurmdbd down): read the job's own files
            self._sacct_error = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["no answer"])[-1]
        return None

    def describe(self, native_id: str) -> Snapshot:
        """The job's :class:`Snapshot` from ``job.json`` and Slurm."""
        meta = self.meta(native_id)
        if not meta.get("slurm_id"):
            meta = self.meta(native_id, fresh=True)
        slurm_id = meta.get("slurm_id")
        rec = self.record(slurm_id) if slurm_id else None
        return self.snapshot(meta, rec)

    def snapshot(self, meta: dict[str, Any], rec: SlurmRecord | None) -> Snapshot:
        """``job.json`` plus a :class:`SlurmRecord` as a neutral :class:`Snapshot`."""
        name, request = meta["name"], meta["request"]
        tags = dict(meta.get("tags") or {})
        forgotten = None
        if rec is None:
            rec = (SlurmRecord("None", "PENDING", source="staging") if not meta.get("slurm_id")
                   else self._record_from_files(meta))
            if rec.state == "UNKNOWN":
                forgotten = self._forgotten(meta)
        state = "OUT_OF_MEMORY" if rec.state == "FAILED" and rec.step_out_of_memory else rec.state
        message = None
        if forgotten:
            state, message = "FAILED", forgotten
        elif state == "OUT_OF_MEMORY" and rec.state == "FAILED":
            message = ("OUT_OF_MEMORY: a step of the job was killed for using more memory than --mem allows "
                       "(Slurm's derived exit code 0:125)")
        elif state == "FAILED":
            message = (f"exit code {rec.exit_code}" if rec.exit_code else
                       f"killed by signal {rec.signal}" if rec.signal else "failed") + \
                      (f" ({rec.reason})" if rec.reason and rec.reason not in ("None", "NonZeroExitCode") else "")
        elif state == "OUT_OF_MEMORY":
            message = "OUT_OF_MEMORY: a process of the job was killed for using more memory than --mem allows"
        elif state in ("NODE_FAIL", "BOOT_FAIL"):
            message = f"{state}: a node of the job failed ({rec.nodes or 'unknown nodes'})"
        elif state == "TIMEOUT":
            message = f"Slurm ended the job at its time limit (--time={format_time(request['run_cap'])})"
        elif state == "PREEMPTED":
            message = "PREEMPTED: a higher-priority job took the job's nodes"
        elif state == "DEADLINE":
            message = "DEADLINE: the job could not run before its deadline"
        spot = bool((request.get("placement") or {}).get("spot"))
        limit_stop = ("runtime" if state == "TIMEOUT" else
                      "spot_wait" if state == "PREEMPTED" or (state == "DEADLINE" and spot) else None)
        started = rec.start_time if state not in ("PENDING", "CONFIGURING", "REQUEUED") else None
        used = (rec.end_time or time.time()) - rec.start_time if started and rec.start_time else 0.0
        return Snapshot(
            native_id=name, status=state, message=message, created_at=rec.submit_time or meta.get("created"),
            started_at=started, ended_at=rec.end_time if state in STATES and STATES[state].is_terminal else None,
            modified_at=time.time(), tags=tags,
            # a job Slurm requeued itself (preempted with --requeue) has run: start_timeout no longer applies
            provisioning=state in ("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD") and not rec.restarts,
            stopped=state == "CANCELLED",
            limit_stop=limit_stop,  # type: ignore[arg-type]
            runtime_cap=request.get("run_cap"), used_seconds=max(0.0, used),
            interruptions=(1 if state == "PREEMPTED" else 0) + rec.restarts,
            name=(request.get("spec") or {}).get("name"),
            extra={"slurm_job_id": rec.job_id, "slurm_state": rec.state, "partition": rec.partition,
                   "nodes": rec.nodes, "exit_code": rec.exit_code, "job_dir": request.get("job_dir"),
                   "state_source": rec.source},
            ref=meta,
        )

    def _record_from_files(self, meta: dict[str, Any]) -> SlurmRecord:
        """A job Slurm no longer knows (past ``MinJobAge``, no accounting): see :func:`record_from_exit_status`."""
        try:
            text = self.storage.read_bytes(SlurmStorage.uri(f"jobs/{meta['name']}/exit-status")).decode()
        except NotFound:
            text = None
        return slurm_states.record_from_exit_status(str(meta["slurm_id"]), text)

    def _forgotten(self, meta: dict[str, Any]) -> str:
        why = (f"sacct failed: {self._sacct_error}" if self._sacct_error else
               "the cluster keeps no accounting (sacct)" if self._accounting is False else "sacct does not know it")
        log = f"{meta['request']['job_dir']}/slurm-{meta['slurm_id']}.out"
        return slurm_states.forgotten_message(str(meta["slurm_id"]), why, log)

    def stop(self, native_id: str) -> None:
        """``scancel`` the job."""
        slurm_id = self.meta(native_id).get("slurm_id")
        if slurm_id:
            self.runner.run(["scancel", str(slurm_id)], what=f"cancel {native_id} (scancel)")

    def _log_path(self, native_id: str) -> str | None:
        meta = self.meta(native_id)
        if not meta.get("slurm_id"):
            meta = self.meta(native_id, fresh=True)
        if not meta.get("slurm_id"):
            return None
        return posixpath.join(meta["request"]["job_dir"], f"slurm-{meta['slurm_id']}.out")

    def read_logs(self, native_id: str, *, follow: bool = False, is_done: Callable[[], bool] | None = None,
                  poll_interval: float = 5.0, deadline: float | None = None) -> Iterator[str]:
        """Lines of the job's output file; ``follow`` reads what was added until ``is_done()``."""
        offset, partial = 0, b""
        while True:
            done = not follow or (is_done is not None and is_done())
            path = self._log_path(native_id)
            if path is not None:
                proc = self.runner.run(["tail", "-c", f"+{offset + 1}", "--", path],
                                       what=f"read the log of {native_id}", check=False)
                if proc.returncode == 0 and proc.stdout:
                    offset += len(proc.stdout)
                    lines = (partial + proc.stdout).split(b"\n")
                    partial = lines.pop()
                    for line in lines:
                        yield line.decode("utf-8", "replace").rstrip("\r")
            if done:
                if partial:
                    yield partial.decode("utf-8", "replace")
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise StageTimeout(f"log follow of Slurm job {native_id} timed out", stage="log follow")
            time.sleep(poll_interval)

    def list_jobs(self) -> list[Snapshot]:
        """Every first attempt under ``<staging_dir>/jobs`` (one read of the folders, one squeue)."""
        jobs = posixpath.join(self.storage.root, "jobs")
        script = (f"cd {shlex.quote(jobs)} 2>/dev/null || exit 0; for f in */job.json; do "
                  "[ -f \"$f\" ] && { tr -d '\\n' < \"$f\"; echo; }; done")
        out = self.runner.shell(script, what="list the jobs").stdout.decode()
        metas = [json.loads(line) for line in out.splitlines() if line.strip()]
        proc = self.runner.run(["squeue", "--json", "-t", "all"], what="list the jobs (squeue)", check=False)
        records = {r.job_id: r for r in parse_squeue(proc.stdout.decode())} if proc.returncode == 0 else {}
        found = []
        for meta in metas:
            if RESTART_OF_TAG in (meta.get("tags") or {}):
                continue
            self._meta.setdefault(meta["name"], meta)
            rec = records.get(str(meta.get("slurm_id")))
            found.append(self.snapshot(meta, rec) if rec is not None else self.describe(meta["name"]))
        return found

    def add_tags(self, snapshot: Snapshot, tags: dict[str, str]) -> None:
        """Add tags to ``job.json`` (the core marks jobs it stopped after ``start_timeout``)."""
        meta = self.meta(snapshot.native_id, fresh=True)
        meta["tags"] = {**(meta.get("tags") or {}), **tags}
        self._write_meta(snapshot.native_id, meta)

    def read_tags(self, snapshot: Snapshot) -> dict[str, str]:
        """The tags in ``job.json`` (read again: another process may have added some)."""
        return dict(self.meta(snapshot.native_id, fresh=True).get("tags") or {})

    def find_restarts(self, original: str) -> list[str]:
        """``<original>-r<N>`` folders under ``jobs/``, oldest first."""
        jobs = posixpath.join(self.storage.root, "jobs")
        out = self.runner.shell(f"cd {shlex.quote(jobs)} 2>/dev/null && ls -d {shlex.quote(original)}-r*/job.json "
                                "2>/dev/null; exit 0", what="find the job's restarts").stdout.decode()
        found = {}
        for entry in out.split():
            match = re.fullmatch(re.escape(original) + r"-r(\d+)/job\.json", entry)
            if match:
                found[int(match.group(1))] = entry.split("/", 1)[0]
        return [found[n] for n in sorted(found)]

    def request_of(self, first: Snapshot, tags: dict[str, str]) -> dict[str, Any]:
        """The request in ``job.json``."""
        return copy.deepcopy(self.meta(first.native_id)["request"])

    def explain(self, snapshot: Snapshot, cause: Any, limits: Limits) -> str:
        """Slurm's own words for limit stops; the core's otherwise."""
        if cause == "max_runtime" and snapshot.message:
            return f"{snapshot.message}; Slurm job {snapshot.extra.get('slurm_job_id')}"
        if cause == "failed" and snapshot.message:
            return f"{snapshot.message} (Slurm job {snapshot.extra.get('slurm_job_id')}, {snapshot.status})"
        return super().explain(snapshot, cause, limits)


