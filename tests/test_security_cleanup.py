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


def test_serve_removes_its_model_copy_unless_keep(tmp_path: Path, monkeypatch, caplog) -> None:
    """``cloudbridge-serve`` extracts an archive into a ``cb-model-*`` folder: removed on exit, kept and named
    with ``--keep`` (here the model is refused after the extraction, so the server exits at once)."""
    import logging
    import tarfile
    import tempfile

    from cloudbridge.serving.serve import main

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "README.txt").write_text("not a model\n")
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "m" / "README.txt", arcname="README.txt")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert main(["--model-dir", str(archive), "--port", "0"]) == 2
    assert not list(temp.iterdir()), "the extracted model copy was left behind"
    with caplog.at_level(logging.INFO, logger="cloudbridge.serving.serve"):
        assert main(["--model-dir", str(archive), "--port", "0", "--keep"]) == 2
    kept = [p for p in temp.iterdir() if p.name.startswith("cb-model-")]
    assert len(kept) == 1 and (kept[0] / "model" / "README.txt").is_file()
    assert f"kept the model copy in {kept[0]} (--keep)" in caplog.text
