"""Symlinks that leave the workdir are not followed into a package (issue 12, item 3)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli

from cloudbridge.errors import UserError
from cloudbridge.packaging import package_workdir, scan_workdir


@pytest.fixture
def project(tmp_path: Path) -> Path:
    outside = tmp_path / "home" / ".aws"
    outside.mkdir(parents=True)
    (outside / "credentials").write_text("[default]\naws_secret_access_key = outside-secret\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text("print('hi')\n")
    os.symlink(work / "train.py", work / "inside-link.py")  # a link inside the workdir: fine
    os.symlink(outside / "credentials", work / "creds")
    (work / "job.yaml").write_text("name: j\nrun: python train.py\n")
    return work


def test_a_link_leaving_the_workdir_is_refused_with_its_path(project: Path) -> None:
    with pytest.raises(UserError, match=r"creds is a symlink to .*credentials, outside the workdir"):
        scan_workdir(project)


def test_cli_refuses_it_with_exit_2(project: Path) -> None:
    result = run_cli("run", str(project / "job.yaml"), "--dry-run")
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result)
    assert str(project / "creds") in result.stderr


def test_follow_symlinks_ships_the_content(project: Path, tmp_path: Path) -> None:
    manifest = scan_workdir(project, follow_symlinks=True)
    assert sorted(e.path for e in manifest.entries) == ["creds", "inside-link.py", "job.yaml", "train.py"]
    from cloudbridge.specs import load_job_spec

    (project / "job.yaml").write_text("name: j\nrun: python train.py\nfollow_symlinks: true\n")
    spec = load_job_spec(project / "job.yaml")
    assert "creds" in [e.path for e in scan_workdir(project, spec=spec).entries]
    (project / "job.yaml").write_text("name: j\nrun: python train.py\n")
    result = run_cli("run", str(project / "job.yaml"), "--dry-run", "--follow-symlinks")
    assert result.returncode == 0, result.stderr


def test_links_inside_the_workdir_are_packaged(project: Path, tmp_path: Path) -> None:
    os.unlink(project / "creds")
    manifest, archive = package_workdir(project, tmp_path / "out")
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["inside-link.py", "job.yaml", "train.py"]
