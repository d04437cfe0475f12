"""Nothing fills the disk: ``cloudbridge emulate`` deletes its temporary root unless ``--keep`` (issue 12, item 7).

The serving side (``cb-model-*``) is tested with a local endpoint in test_security_server.py.
"""

from __future__ import annotations

from pathlib import Path

from fixtures_cli import run_cli


def test_emulate_root_is_removed_unless_keep(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text("name: e\nworkdir: null\nrun: echo hello > $CB_OUTPUT_DIR/out.txt\n")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"TMPDIR": str(temp)}
    done = run_cli("emulate", str(tmp_path / "job.yaml"), "--as", "sagemaker", "--processes", "1", env=env)
    assert done.returncode == 0, done.stderr
    assert "deleted; --keep keeps it" in done.stdout
    assert not [p.name for p in temp.iterdir() if p.name.startswith("cb-emulate-")]
    kept = run_cli("emulate", str(tmp_path / "job.yaml"), "--as", "sagemaker", "--processes", "1", "--keep", env=env)
    assert kept.returncode == 0, kept.stderr
    roots = [p for p in temp.iterdir() if p.name.startswith("cb-emulate-")]
    assert len(roots) == 1 and str(roots[0]) in kept.stdout
