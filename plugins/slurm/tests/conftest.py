"""A real 2-node Slurm cluster on 127.0.0.1 for the whole session (see cloudbridge_slurm.localcluster).

Debian's slurmctld/slurmd/munge must be installed (scripts/ci/slurm.sh does it) and the tests must run
as root (slurmd runs jobs as the submitting user). The cluster is stopped by PID at the end.
The staging folder lives outside /tmp, which the plugin refuses as node-local; the tests declare
/dev/shm the only node-local folder instead.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cloudbridge_slurm.localcluster import LocalCluster, missing_programs
from cloudbridge_slurm.provider import SlurmProvider
from cloudbridge_slurm.settings import SlurmSettings


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """munged + slurmctld + slurmd n1, n2 (4 CPUs, 2 fake T4 GPUs each); partitions debug and short (1 min)."""
    missing = missing_programs()
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing): run scripts/ci/slurm.sh")
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster runs as root")
    cluster = LocalCluster(tmp_path_factory.mktemp("slurm"), nodes=2, cpus=4, memory_mb=4000, gpus=2)
    cluster.start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", str(cluster.conf))
        try:
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture(scope="session")
def staging_root() -> Iterator[Path]:
    """A staging folder outside /tmp (the shared-filesystem stand-in), removed at the end."""
    base = Path(os.environ.get("CLOUDBRIDGE_SLURM_TEST_STAGING", Path.home() / ".cache" / "cloudbridge-slurm-tests"))
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="staging-", dir=base))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _make_settings(staging: Path, **values: object) -> SlurmSettings:
    """Test settings: fast polls, /dev/shm the only node-local folder, this venv on the job's PATH."""
    values.setdefault("staging_dir", str(staging))
    values.setdefault("poll_interval", 0.3)
    values.setdefault("node_local", ["/dev/shm"])
    # the job finds cloudbridge-launch in this interpreter's environment, as `setup` would on a cluster
    values.setdefault("setup", f'export PATH={shlex.quote(os.path.dirname(sys.executable))}:"$PATH"')
    return SlurmSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_settings(staging_root: Path) -> Callable[..., SlurmSettings]:
    """``make_settings(**values)``: test settings (see ``_make_settings``) with the session's staging folder."""
    return lambda **values: _make_settings(staging_root, **values)


@pytest.fixture
def slurm_provider(slurm_cluster: LocalCluster, staging_root: Path) -> SlurmProvider:
    """A provider running the Slurm commands on this machine."""
    return SlurmProvider(_make_settings(staging_root))


class LocalSshd:
    """An sshd on 127.0.0.1 (own host key, one authorized client key), started and stopped by PID."""

    def __init__(self, root: Path, slurm_conf: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.client_key = root / "client"
        self.log = root / "sshd.log"
        for key in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)], check=True)
        (root / "authorized_keys").write_text((root / "client.pub").read_text())
        os.chmod(root / "authorized_keys", 0o600)
        (root / "sshd_config").write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {root / 'host'}",
            f"AuthorizedKeysFile {root / 'authorized_keys'}", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no",
            f"PidFile {root / 'sshd.pid'}", f"SetEnv SLURM_CONF={slurm_conf}", "LogLevel INFO", "",
        ]))
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation folder
        self.proc = subprocess.Popen([shutil.which("sshd", path="/usr/sbin:/usr/bin") or "/usr/sbin/sshd", "-D", "-e",
                                      "-f", str(root / "sshd_config")], stdout=open(self.log, "wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()}")
            time.sleep(0.1)
        raise TimeoutError("sshd did not listen within 10 s")

    @property
    def login(self) -> str:
        """``root@127.0.0.1:PORT``."""
        return f"root@127.0.0.1:{self.port}"

    @property
    def ssh_options(self) -> list[str]:
        """The client key, and no host-key bookkeeping for this throwaway server."""
        return ["-i", str(self.client_key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR"]

    def logins(self) -> int:
        """How many ssh connections were accepted so far."""
        return self.log.read_text(errors="replace").count("Accepted publickey")

    def stop(self) -> None:
        """Stop sshd (its process group: the connections it forked too) by PID."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def local_sshd(slurm_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSshd]:
    """sshd on 127.0.0.1 whose sessions see this cluster's SLURM_CONF (skipped when sshd is not installed)."""
    if not (shutil.which("sshd", path="/usr/sbin:/usr/bin") and shutil.which("ssh-keygen")):
        pytest.skip("openssh-server is not installed: run scripts/ci/slurm.sh")
    server = LocalSshd(tmp_path_factory.mktemp("sshd"), slurm_cluster.conf)
    try:
        yield server
    finally:
        server.stop()
