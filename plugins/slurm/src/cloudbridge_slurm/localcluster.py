"""A throwaway Slurm cluster on 127.0.0.1: munged, slurmctld and N ``slurmd`` daemons in one folder.

Used by the plugin's tests (and handy for trying the plugin without a cluster). It needs Debian's
``slurmctld slurmd slurm-client munge`` packages (Slurm 22.05; ``scripts/ci/slurm.sh`` installs them)
and root, as Slurm runs every job as the submitting user through ``slurmd``::

    with LocalCluster(tmp_path, nodes=2) as cluster:
        subprocess.run(["sbatch", "--wrap", "hostname"], env=cluster.environ(), check=True)

Everything lives under ``root``: the munge key and socket, ``etc/slurm.conf`` (exported as
``SLURM_CONF``), state, spool, pid and log files. Every daemon gets its own free port on 127.0.0.1
and is stopped by its own PID (slurmd first, then slurmctld, then munged). Nodes are ``n1..nN`` in
partitions ``debug`` (default), ``short`` (a 1-minute time limit), and ``low``/``high`` (a ``high`` job
preempts running ``low`` jobs, which end ``PREEMPTED``), each with ``cpus`` CPUs,
``memory_mb`` of memory and ``gpus`` fake GPUs (``gres.conf`` entries backed by empty files, so
``sinfo`` and the scheduler see them; nothing can compute on them).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["REQUIRED_PROGRAMS", "LocalCluster", "memory_cgroups_usable", "missing_programs"]

REQUIRED_PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel",
                     "srun")


def missing_programs() -> list[str]:
    """The programs a :class:`LocalCluster` needs that are not on ``PATH`` (``/usr/sbin`` included)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])
    return [name for name in REQUIRED_PROGRAMS if shutil.which(name, path=path) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Where Slurm's cgroup/v1 plugin finds the hierarchies (``memory`` below it).
CGROUP_ROOT = "/sys/fs/cgroup"


def memory_cgroups_usable() -> bool:
    """True when a writable cgroup v1 ``memory`` hierarchy is mounted (Slurm 22.05's cgroup/v1 plugin
    can then enforce ``--mem`` with the kernel's OOM killer). Its ``slurm_<node>`` folders are shared by
    every cluster on the machine: give concurrent clusters distinct ``node_prefix`` values."""
    memory = Path(CGROUP_ROOT) / "memory"
    return (memory / "memory.oom_control").exists() and os.access(memory, os.W_OK)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _program(name: str) -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])
    found = shutil.which(name, path=path)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (apt-get install slurmctld slurmd slurm-client munge)")
    return found


class LocalCluster:
    """A Slurm controller and ``nodes`` compute daemons on this machine, all under ``root``."""

    def __init__(self, root: str | os.PathLike[str], *, nodes: int = 2, cpus: int = 2, memory_mb: int = 2000,
                 gpus: int = 0, gpu_type: str = "t4", short_limit_minutes: int = 1, slurmd_timeout: int = 60,
                 memory_cgroups: bool = False, accounting: bool = False, node_prefix: str = "n") -> None:
        self.root = Path(root).resolve()
        self.nodes = [f"{node_prefix}{i}" for i in range(1, nodes + 1)]
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.gpus = gpus
        self.gpu_type = gpu_type
        self.short_limit_minutes = short_limit_minutes
        self.slurmd_timeout = slurmd_timeout
        self.memory_cgroups = memory_cgroups
        self.accounting = accounting
        self.conf = self.root / "etc" / "slurm.conf"
        #: munged refuses a socket below a folder others cannot search, and pytest's temp folders are
        #: private: the socket lives in its own world-searchable folder under the system temp dir.
        self.munge_dir = Path(tempfile.mkdtemp(prefix="cb-munge-"))
        os.chmod(self.munge_dir, 0o755)
        self.munge_socket = self.munge_dir / "munge.socket"
        #: slurmstepd makes unix sockets in the spool folder, whose paths must stay under 108 bytes: a deep
        #: pytest temp folder (…/pytest-107/popen-gw0/test_…/cluster/spool/<node>/) is too long, so the
        #: spool lives in the same short folder
        self.spool = self.munge_dir / "spool"
        self._dbd_port = _free_port() if accounting else 0
        self._ctld_starts = 1
        self._canary: str | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[Any] = []

    # ---- configuration --------------------------------------------------------------------------
    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default ``os.environ``) with ``SLURM_CONF`` pointing at this cluster."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = os.pathsep.join([env.get("PATH", ""), "/usr/sbin"])
        return env

    def _write_config(self) -> None:
        r = self.root
        for sub in ("etc", "state", "spool", "log", "run"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        ctld_port = _free_port()
        gres = f" Gres=gpu:{self.gpu_type}:{self.gpus}" if self.gpus else ""
        lines = [
            "ClusterName=cbtest",
            "SlurmctldHost=localhost",
            f"SlurmctldPort={ctld_port}",
            "SlurmUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "ProctrackType=proctrack/linuxproc",
            "SwitchType=switch/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "PreemptType=preempt/partition_prio",
            "PreemptMode=CANCEL",
            "SlurmdParameters=config_overrides",
            *self._accounting_lines(),
            *self._memory_lines(),
            f"JobCompType=jobcomp/filetxt\nJobCompLoc={r / 'log' / 'jobcomp.txt'}",
            "MinJobAge=3600",
            "KillWait=2",
            "OverTimeLimit=0",
            "InactiveLimit=0",
            "MessageTimeout=10",
            "SlurmctldTimeout=30",
            f"SlurmdTimeout={self.slurmd_timeout}",
            "MailProg=/bin/true",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={self.spool / '%n'}",
            f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'run' / 'slurmd-%n.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd-%n.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
        ]
        if self.gpus:
            lines.append("GresTypes=gpu")
        for name in self.nodes:
            lines.append(
                f"NodeName={name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={_free_port()} "
                f"CPUs={self.cpus} RealMemory={self.memory_mb}{gres} State=UNKNOWN"
            )
        nodelist = ",".join(self.nodes)
        lines.append(f"PartitionName=debug Nodes={nodelist} Default=YES MaxTime=INFINITE State=UP")
        lines.append(f"PartitionName=short Nodes={nodelist} MaxTime={self.short_limit_minutes} State=UP")
        # preemptible capacity: a job in "high" takes the nodes of running "low" jobs, which end PREEMPTED
        lines.append(f"PartitionName=low Nodes={nodelist} PriorityTier=1 PreemptMode=CANCEL State=UP")
        lines.append(f"PartitionName=high Nodes={nodelist} PriorityTier=2 PreemptMode=OFF State=UP")
        self.conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        if self.gpus:
            devices = r / "dev"
            devices.mkdir(exist_ok=True)
            for index in range(self.gpus):
                (devices / f"nvidia{index}").touch()
            files = f"{devices}/nvidia[0-{self.gpus - 1}]" if self.gpus > 1 else f"{devices}/nvidia0"
            gres_conf = [f"NodeName={name} Name=gpu Type={self.gpu_type} File={files}" for name in self.nodes]
            (r / "etc" / "gres.conf").write_text("\n".join(gres_conf) + "\n", encoding="utf-8")

    def _memory_lines(self) -> list[str]:
        """How ``--mem`` is enforced: not at all (``task/none``), or with ``memory_cgroups`` (cgroup v1, see
        :func:`memory_cgroups_usable`) by the kernel, which OOM-kills a step over its memory; Slurm then
        records it (the step ``OUT_OF_MEMORY``, the job's derived exit code ``0:125``, or the job
        ``OUT_OF_MEMORY`` when the batch script itself was killed). ``JobAcctGatherParams=OverMemoryKill``
        without cgroups is no substitute: it cancels the step ("Exceeded job memory limit") and Slurm
        records no OOM at all (measured with 22.05: the job ends ``FAILED`` or ``COMPLETED``)."""
        if not self.memory_cgroups:
            return ["TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none"]
        (self.conf.parent / "cgroup.conf").write_text("\n".join([
            "CgroupPlugin=cgroup/v1", f"CgroupMountpoint={CGROUP_ROOT}", "ConstrainRAMSpace=yes",
            "ConstrainSwapSpace=yes", "AllowedSwapSpace=0", "ConstrainCores=no", "ConstrainDevices=no", "",
        ]), encoding="utf-8")
        return ["TaskPlugin=task/cgroup", "JobAcctGatherType=jobacct_gather/linux", "JobAcctGatherFrequency=task=1"]

    def _accounting_lines(self) -> list[str]:
        if not self.accounting:
            return ["AccountingStorageType=accounting_storage/none"]
        return ["AccountingStorageType=accounting_storage/slurmdbd", "AccountingStorageHost=localhost",
                f"AccountingStoragePort={self._dbd_port}", f"AccountingStoragePass={self.munge_socket}"]

    # ---- accounting: a private MariaDB and slurmdbd -----------------------------------------------
    def _start_accounting(self) -> None:
        """A MariaDB in ``root/db`` (TCP on 127.0.0.1, one user for slurmdbd), then ``slurmdbd``."""
        r, db, sock = self.root, self.root / "db", self.munge_dir / "mysql.sock"
        small = ["--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M", "--performance-schema=OFF",
                 "--skip-name-resolve"]
        # mariadb-install-db exited 1 once in ~10 concurrent starts here; a fresh folder then works
        for attempt in range(3 if not (db / "mysql").exists() else 0):
            shutil.rmtree(db, ignore_errors=True)
            proc = subprocess.run([_program("mariadb-install-db"), "--no-defaults", f"--datadir={db}", "--user=root",
                                   "--skip-test-db", "--auth-root-authentication-method=normal", *small],
                                  capture_output=True, text=True, check=False)
            if proc.returncode == 0:
                break
            (r / "log" / f"mariadb-install-db-{attempt}.log").write_text(proc.stdout + proc.stderr)
            if attempt == 2:
                raise RuntimeError(f"mariadb-install-db failed: {(proc.stdout + proc.stderr).strip()[-1500:]}")
        port, password = _free_port(), os.urandom(12).hex()
        self._spawn("mariadbd", [_program("mariadbd"), "--no-defaults", f"--datadir={db}", "--user=root",
                                 f"--socket={sock}", f"--port={port}", "--bind-address=127.0.0.1",
                                 f"--pid-file={r / 'run' / 'mariadbd.pid'}",
                                 f"--log-error={r / 'log' / 'mariadbd.log'}", *small])
        self._wait_for(sock.exists, "MariaDB socket", 30)
        grant = (f"CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}'; "
                 "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';")
        subprocess.run([_program("mariadb"), "--no-defaults", f"--socket={sock}", "-uroot", "-e", grant], check=True,
                       capture_output=True)
        dbd_conf = self.conf.parent / "slurmdbd.conf"  # slurmdbd reads it beside SLURM_CONF; 0600 (a password)
        dbd_conf.touch(mode=0o600)
        dbd_conf.write_text("\n".join([
            "AuthType=auth/munge", f"AuthInfo=socket={self.munge_socket}", "DbdHost=localhost",
            f"DbdPort={self._dbd_port}", "SlurmUser=root", "StorageType=accounting_storage/mysql",
            "StorageHost=127.0.0.1", f"StoragePort={port}", "StorageUser=slurm", f"StoragePass={password}",
            "StorageLoc=slurm_acct_db", f"PidFile={r / 'run' / 'slurmdbd.pid'}",
            f"LogFile={r / 'log' / 'slurmdbd.log'}", "DebugLevel=info", "",
        ]), encoding="utf-8")
        self._spawn("slurmdbd", [_program("slurmdbd"), "-D"])
        self._wait_for(lambda: _listening(self._dbd_port), "slurmdbd", 30)

    # ---- processes ------------------------------------------------------------------------------
    def _spawn(self, key: str, argv: list[str]) -> None:
        log = open(self.root / "log" / f"{key}.stdout", "ab")
        self._logs.append(log)
        self._procs[key] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.environ(),
                                            start_new_session=True)

    def _start_munge(self) -> None:
        folder = self.munge_dir
        keydir = self.root / "munge-key"
        keydir.mkdir(mode=0o700, exist_ok=True)
        key = keydir / "munge.key"
        if not key.exists():
            subprocess.run([_program("mungekey"), "--create", f"--keyfile={key}"], check=True,
                           capture_output=True)
        self._spawn("munged", [
            _program("munged"), "--foreground", "--force", f"--key-file={key}", f"--socket={self.munge_socket}",
            f"--pid-file={folder / 'munged.pid'}", f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--seed-file={folder / 'munged.seed'}",
        ])
        self._wait_for(lambda: self.munge_socket.exists(), "munged socket", 10)

    def start(self, timeout: float = 30.0) -> LocalCluster:
        """Write the configuration, start every daemon, and wait until all nodes are idle."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_config()
        try:
            self._start_munge()
            if self.accounting:
                self._start_accounting()
            self._spawn("slurmctld", [_program("slurmctld"), "-D", "-i", "-f", str(self.conf)])
            for name in self.nodes:
                (self.spool / name).mkdir(parents=True, exist_ok=True)
                self._spawn(f"slurmd-{name}", [_program("slurmd"), "-D", "-N", name, "-f", str(self.conf)])
            self._wait_for(self._all_idle, f"{len(self.nodes)} idle Slurm nodes", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _all_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-p", "debug", "-t", "idle", "-o", "%D"], capture_output=True,
                             text=True, env=self.environ(), check=False).stdout.split()
        return bool(out) and sum(int(x) for x in out if x.isdigit()) == len(self.nodes) and self._accounting_settled()

    def _accounting_settled(self) -> bool:
        """With accounting: the controller has sent slurmdbd what it sends on a clean start ("ending any jobs
        ... running when controller went down": every job without an end becomes CANCELLED), its queue to
        slurmdbd is empty and, after the first start, a canary job has ended COMPLETED in accounting. Jobs
        submitted before that could end ``CANCELLED by 0`` in accounting (seen under load)."""
        if not self.accounting:
            return True
        log = self.root / "log" / "slurmctld.log"
        if log.read_text(errors="replace").count("flush_jobs_on_cluster") < self._ctld_starts:
            return False
        out = subprocess.run(["sdiag"], capture_output=True, text=True, env=self.environ(), check=False).stdout
        match = re.search(r"DBD Agent queue size:\s*(\d+)", out)
        if match is None or match.group(1) != "0" or self._ctld_starts > 1:
            return match is not None and match.group(1) == "0"
        if self._canary is None:
            self._canary = subprocess.run(["sbatch", "--parsable", "-o", "/dev/null", "-J", "cb-canary", "--wrap",
                                           "true"], capture_output=True, text=True, env=self.environ(),
                                          check=True).stdout.strip().split(";")[0]
            return False
        state = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "State", "-j", self._canary], capture_output=True,
                               text=True, env=self.environ(), check=False).stdout.strip()
        if state.startswith("CANCELLED"):
            self._canary = None  # ended by a late flush: try another
        return state == "COMPLETED"

    def _wait_for(self, ready: Any, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for key, proc in self._procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{key} exited with status {proc.returncode}; see {self.root / 'log'}")
            if ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"no {what} after {timeout:g}s; see {self.root / 'log'}")

    def _terminate(self, key: str) -> None:
        proc = self._procs.pop(key, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def kill_node(self, name: str) -> None:
        """Kill node ``name``'s ``slurmd`` at once (SIGKILL): to the controller the node stops answering."""
        proc = self._procs.pop(f"slurmd-{name}")
        proc.kill()
        proc.wait(timeout=10)

    def start_node(self, name: str, timeout: float = 30.0) -> None:
        """Start node ``name``'s ``slurmd`` (again) and wait until the controller hears it (not ``down``, no
        ``*``: ``ReturnToService=2`` puts a node that failed back into service when it registers)."""
        self._spawn(f"slurmd-{name}", [_program("slurmd"), "-D", "-N", name, "-f", str(self.conf)])
        self._wait_for(lambda: self.node_state(name).rstrip("*") not in ("down", "unk", "")
                       and not self.node_state(name).endswith("*"), f"node {name} back in service", timeout)

    def node_state(self, name: str) -> str:
        """The node's state as ``sinfo`` prints it (``idle``, ``alloc``, ``down*``...)."""
        return subprocess.run(["sinfo", "-h", "-n", name, "-o", "%t"], capture_output=True, text=True,
                              env=self.environ(), check=False).stdout.strip().split("\n")[0]

    def restart_controller(self, *, forget_jobs: bool = False, timeout: float = 30.0) -> None:
        """Stop ``slurmctld`` and start it again; ``forget_jobs`` starts it clean (``-c``: no job is
        kept, as after ``MinJobAge``; only accounting still knows finished jobs)."""
        self._terminate("slurmctld")
        self._ctld_starts += forget_jobs  # a clean start flushes accounting again
        self._spawn("slurmctld", [_program("slurmctld"), "-D", "-i", *(["-c"] if forget_jobs else []),
                                  "-f", str(self.conf)])
        self._wait_for(self._all_idle, f"{len(self.nodes)} idle Slurm nodes", timeout)

    def stop(self) -> None:
        """Stop every daemon by its PID: slurmd first, then slurmctld (slurmdbd, MariaDB), then munged."""
        for key in [k for k in self._procs if k.startswith("slurmd-")] + ["slurmctld", "slurmdbd", "mariadbd",
                                                                          "munged"]:
            self._terminate(key)
        for log in self._logs:
            log.close()
        self._logs.clear()
        shutil.rmtree(self.munge_dir, ignore_errors=True)
        if self.memory_cgroups:  # the nodes' (empty) cgroup folders Slurm leaves behind
            for name in self.nodes:
                for folder in sorted((Path(CGROUP_ROOT) / "memory" / f"slurm_{name}").glob("**/"), reverse=True):
                    with contextlib.suppress(OSError):
                        folder.rmdir()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
