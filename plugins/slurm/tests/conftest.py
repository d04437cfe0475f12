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
import sys
import tempfile
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
