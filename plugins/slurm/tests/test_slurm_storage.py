"""slurm://staging storage through the command runner (here: this machine), and `cloudbridge check slurm`
when the Slurm commands are missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cloudbridge_slurm.runner import Runner
from cloudbridge_slurm.settings import SlurmSettings
from cloudbridge_slurm.storage import SlurmStorage

from cloudbridge.errors import InvalidURI, NotFound, UnsafeKey


@pytest.fixture
def storage(tmp_path: Path) -> SlurmStorage:
    return SlurmStorage(Runner(SlurmSettings(staging_dir=str(tmp_path / "staging"))))


def test_write_stat_list_read_delete(storage: SlurmStorage, tmp_path: Path) -> None:
    uri = SlurmStorage.uri("a/b/c.txt")
    info = storage.write_bytes(uri, b"hello")
    assert (info.size, str(uri)) == (5, "slurm://staging/a/b/c.txt")
    assert (tmp_path / "staging" / "a" / "b" / "c.txt").read_bytes() == b"hello"
    storage.write_bytes(SlurmStorage.uri("a/d.txt"), b"x")
    assert [i.key for i in storage.list(SlurmStorage.uri("a"))] == ["b/c.txt", "d.txt"]
    assert [i.key for i in storage.list(SlurmStorage.uri("a"), recursive=False)] == ["d.txt"]
    assert storage.read_bytes(uri) == b"hello"
    storage.delete(uri)
    with pytest.raises(NotFound):
        storage.stat(uri)
    assert list(storage.list(SlurmStorage.uri("nothing-here"))) == []


def test_keys_outside_the_staging_folder_are_refused(storage: SlurmStorage) -> None:
    with pytest.raises(UnsafeKey):
        storage.path("slurm://staging/../etc/passwd")
    with pytest.raises(InvalidURI):
        storage.path("slurm://elsewhere/x")


def test_trees_move_as_one_stream_and_hostile_names_are_refused(storage: SlurmStorage, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "w.bin").write_bytes(b"\0" * 10)
    (src / "top.txt").write_text("t")
    assert storage.put_tree(src, SlurmStorage.uri("jobs/j/inputs/data")) == 2
    back = tmp_path / "back"
    assert storage.get_tree(SlurmStorage.uri("jobs/j/inputs/data"), back) == 2
    assert (back / "sub" / "w.bin").read_bytes() == b"\0" * 10
    (tmp_path / "staging" / "jobs" / "j" / "model").mkdir(parents=True)
    (tmp_path / "staging" / "jobs" / "j" / "model" / "bad\x1bname").write_text("x")  # a job wrote this
    with pytest.raises(UnsafeKey):
        storage.get_tree(SlurmStorage.uri("jobs/j/model"), tmp_path / "fetched")
    assert not (tmp_path / "fetched").exists(), "nothing is written when one name is unsafe"


def test_check_names_the_missing_slurm_commands(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1", "PATH": os.path.dirname(sys.executable) + ":/nonexistent",
           "CLOUDBRIDGE_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-m", "cloudbridge.cli", "check", "slurm"], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not found on this machine: sbatch, squeue, scontrol, scancel, sinfo, srun" in result.stdout
    assert "apt-get install slurm-client" in result.stdout
