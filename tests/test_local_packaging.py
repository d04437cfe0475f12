"""The local backend ships the workdir package like a cloud: a private copy, never the workdir itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli
from fixtures_local import local_compute, spec

from cloudbridge.errors import InvalidSpec, UserError
from cloudbridge.records import JobState


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _job_dirs() -> list[str]:
    jobs = Path(os.environ["CLOUDBRIDGE_HOME"]) / "jobs"
    return sorted(p.name for p in jobs.iterdir()) if jobs.exists() else []


def test_ignored_files_venvs_and_vcs_are_not_visible_to_the_job(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    _tree(tmp_path, {
        "train.py": "print('hi')\n", "pkg/util.py": "x = 1\n", "run.sh": "#!/bin/sh\necho from-run-sh\n",
        ".cloudbridgeignore": "secret.txt\ndata/\n", ".gitignore": "*.log\n",
        "secret.txt": "s3cr3t\n", "data/big.bin": "d\n", "debug.log": "l\n",
        ".venv/pyvenv.cfg": "home = /usr\n", ".venv/lib/site.py": "v\n",
        "myenv/pyvenv.cfg": "home = /usr\n", "myenv/bin/python": "p\n",
        ".git/HEAD": "ref: refs/heads/main\n", "pkg/__pycache__/util.cpython-311.pyc": "c\n",
    })
    (tmp_path / "run.sh").chmod(0o755)
    find = "find . -path ./__pycache__ -prune -o -type f -print | sort"
    job = compute.wait(compute.submit(spec(tmp_path, f"{find}; ./run.sh; cat secret.txt")).id, 30)
    printed = [line for line in compute.logs(job.id) if not line.startswith("[cloudbridge]")]
    # exactly the packaged files, the executable bit kept; the ignored file is not there to read
    assert printed[:5] == ["./.cloudbridgeignore", "./.gitignore", "./pkg/util.py", "./run.sh", "./train.py"]
    assert printed[5] == "from-run-sh"
    assert "No such file or directory" in printed[6] and "s3cr3t" not in "\n".join(printed)
    assert job.state == JobState.FAILED and job.exit_code == 1
    package = job.extra["package"]
    assert package["files"] == 5 and len(package["digest"]) == 64
    assert Path(job.extra["code_dir"]) == Path(job.extra["job_dir"]) / "code"


def test_job_writes_stay_in_its_own_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    _tree(tmp_path, {"keep.py": "original\n", "other.py": "o\n"})
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    run = "echo new > new.txt; echo changed > keep.py; rm other.py; mkdir -p results; echo r > results/r.txt"
    first = compute.wait(compute.submit(spec(tmp_path, run)).id, 30)
    assert first.state == JobState.SUCCEEDED, first.detail
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before  # the user's workdir is untouched
    code = Path(first.extra["code_dir"])
    assert (code / "new.txt").read_text() == "new\n" and (code / "results" / "r.txt").read_text() == "r\n"
    assert (code / "keep.py").read_text() == "changed\n" and not (code / "other.py").exists()
    # the next job gets a fresh copy: nothing the first one did reaches it
    second = compute.wait(compute.submit(spec(tmp_path, "cat keep.py other.py; ls")).id, 30)
    printed = [line for line in compute.logs(second.id) if not line.startswith("[cloudbridge]")]
    assert printed == ["original", "o", "keep.py", "other.py"]
    assert second.extra["package"]["digest"] == first.extra["package"]["digest"]


def test_workdir_changes_after_submit_do_not_reach_the_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch, fake_gpus="1")
    _tree(tmp_path, {"train.py": "v1\n"})
    holder = compute.submit(spec(tmp_path, "sleep 30", resources={"accelerators": "GPU:1"}))
    queued = compute.submit(spec(tmp_path, "cat train.py", resources={"accelerators": "GPU:1"}))
    assert queued.state == JobState.PENDING  # waits for the GPU the first job holds
    (tmp_path / "train.py").write_text("v2 edited after submit\n")
    compute.cancel(holder.id)
    job = compute.wait(queued.id, 30)
    assert [line for line in compute.logs(job.id) if not line.startswith("[cloudbridge]")] == ["v1"]


def test_bad_ignore_pattern_and_oversized_workdir_refused_by_submit(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    _tree(tmp_path, {"a.py": "a\n", "sub/.cloudbridgeignore": "*.log\n!\n"})
    with pytest.raises(InvalidSpec) as info:
        compute.submit(spec(tmp_path, "true"))
    assert str(info.value).startswith(f"{tmp_path / 'sub' / '.cloudbridgeignore'}:2: ")
    (tmp_path / "sub" / ".cloudbridgeignore").unlink()
    (tmp_path / "weights.bin").write_bytes(b"\0" * (2 * 1024 * 1024))
    monkeypatch.setenv("CLOUDBRIDGE_MAX_WORKDIR_MB", "1")
    with pytest.raises(UserError, match="over the .* limit") as info:
        compute.submit(spec(tmp_path, "true"))
    assert "weights.bin" in str(info.value)
    assert compute.list() == [] and _job_dirs() == []


def test_cloudbridge_home_inside_the_workdir_is_refused_unless_ignored(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    monkeypatch.setenv("CLOUDBRIDGE_HOME", str(tmp_path / ".cbhome"))
    compute = local_compute(monkeypatch)
    _tree(tmp_path, {"a.py": "a\n", ".cbhome/config.toml": ""})
    with pytest.raises(UserError, match="contains cloudbridge's own folder") as info:
        compute.submit(spec(tmp_path, "true"))
    assert ".cloudbridgeignore" in (info.value.hint or "")
    (tmp_path / ".cloudbridgeignore").write_text(".cbhome/\n")
    job = compute.wait(compute.submit(spec(tmp_path, "ls -A")).id, 30)
    assert [line for line in compute.logs(job.id) if not line.startswith("[cloudbridge]")] == [
        ".cloudbridgeignore", "a.py"]


# ---- the real CLI: run and run --dry-run agree ----------------------------------------------------
def _cli_env() -> dict[str, str]:
    return {"CLOUDBRIDGE_FAKE_GPUS": "0", "CLOUDBRIDGE_LOCAL_POLL_INTERVAL": "0.05"}


def test_cli_run_refuses_a_bad_ignore_pattern_like_dry_run(tmp_path: Path) -> None:
    _tree(tmp_path, {"job.yaml": "name: ign\nrun: echo hi\n", "train.py": "x\n", ".gitignore": "ok/\n\n!\n"})
    for args in (["run"], ["run", "--dry-run"]):
        result = run_cli(*args, str(tmp_path / "job.yaml"), env=_cli_env())
        assert_one_error_line(result, f"{tmp_path / '.gitignore'}:3: ", "invalid ignore pattern")
    assert run_cli("jobs", "--json").stdout.strip() == "[]" and _job_dirs() == []


def test_cli_run_refuses_an_oversized_workdir_like_dry_run(tmp_path: Path) -> None:
    _tree(tmp_path, {"job.yaml": "name: big\nrun: echo hi\n"})
    (tmp_path / "data.bin").write_bytes(b"\0" * (2 * 1024 * 1024))
    env = {**_cli_env(), "CLOUDBRIDGE_MAX_WORKDIR_MB": "1"}
    for args in (["run"], ["run", "--dry-run"]):
        result = run_cli(*args, str(tmp_path / "job.yaml"), env=env)
        assert_one_error_line(result, "over the", "data.bin", "limit")
    assert run_cli("jobs", "--json").stdout.strip() == "[]" and _job_dirs() == []
    # ignoring it is the way out
    (tmp_path / ".cloudbridgeignore").write_text("data.bin\n")
    result = run_cli("run", str(tmp_path / "job.yaml"), env=env)
    assert result.returncode == 0, result.stderr
    assert "hi" in result.stdout.splitlines()


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_cli_workdir_and_input_errors_name_file_line_and_field(tmp_path: Path, dry_run: bool) -> None:
    args = ["run", "--dry-run"] if dry_run else ["run"]
    job = tmp_path / "job.yaml"
    job.write_text("name: w\nrun: echo\n\nworkdir: nope\n")
    assert_one_error_line(run_cli(*args, str(job)), f"{job}:4: workdir: workdir {tmp_path / 'nope'} does not exist")
    (tmp_path / "afile").write_text("x")
    job.write_text("name: w\nworkdir: afile\nrun: echo\n")
    assert_one_error_line(run_cli(*args, str(job)), f"{job}:2: workdir: ", "is a file, not a directory")
    job.write_text("name: w\nrun: echo\ninputs:\n  train: s3://b/k\n  labels: ./labels.txt\n")
    assert_one_error_line(run_cli(*args, str(job)), f"{job}:5: inputs.labels: {tmp_path / 'labels.txt'} does not exist")
    assert _job_dirs() == []


def test_sdk_submit_errors_carry_the_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import cloudbridge as cb

    local_compute(monkeypatch)
    job = tmp_path / "job.yaml"
    job.write_text("name: w\nrun: echo\ninputs:\n  data: ./missing\n")
    with pytest.raises(InvalidSpec) as info:
        cb.run(job)
    assert str(info.value) == f"{job}:4: inputs.data: {tmp_path / 'missing'} does not exist"
    job.write_text("name: w\nrun: echo\nworkdir: gone\n")
    with pytest.raises(InvalidSpec) as info:
        cb.run(job, provider="local")
    assert str(info.value) == f"{job}:3: workdir: workdir {tmp_path / 'gone'} does not exist"


def test_size_warning_is_a_job_warning_said_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    compute = local_compute(monkeypatch)
    monkeypatch.setattr("cloudbridge.packaging.WARN_BYTES", 1024)
    (tmp_path / "weights.bin").write_bytes(b"w" * 4096)
    with caplog.at_level("WARNING"):
        job = compute.wait(compute.submit(spec(tmp_path, "true")).id, 30)
    assert job.state == JobState.SUCCEEDED
    warned = [w for w in job.extra["warnings"] if "weights.bin" in w]
    assert len(warned) == 1 and "use inputs: or .cloudbridgeignore" in warned[0]
    assert f"[cloudbridge] warning: {warned[0]}" in list(compute.logs(job.id))
    assert not [r for r in caplog.records if r.name == "cloudbridge.packaging"]  # not repeated through logging
