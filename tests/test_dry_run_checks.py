"""``run --dry-run`` makes every check submit makes (so exit 0 predicts an accepted submit), and a
checkpoint location in use by an unfinished job of the same provider is refused unless --force."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli
from fixtures_local import local_compute, wait_state

import cloudbridge as cb
from cloudbridge.errors import ConflictError
from cloudbridge.records import JobState

ROLE = "arn:aws:iam::123456789012:role/cloudbridge-sagemaker"


def _spec(tmp_path: Path, body: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def _aws_env(monkeypatch: pytest.MonkeyPatch, role: bool) -> None:
    pytest.importorskip("cloudbridge_aws")
    for name, value in {"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    if role:
        monkeypatch.setenv("CLOUDBRIDGE_AWS_ROLE_ARN", ROLE)
    else:
        monkeypatch.delenv("CLOUDBRIDGE_AWS_ROLE_ARN", raising=False)


@pytest.mark.parametrize(("body", "needle", "aws"), [
    ("name: two\nworkdir: null\nrun: echo hi\nresources: {nodes: 2}\n", "resources.nodes: 2", None),
    ("name: gpu\nworkdir: null\nrun: echo hi\nresources: {accelerators: 'T4:1'}\n", "asks for 1 GPU(s)", None),
    ("name: a10\nprovider: aws\nworkdir: null\nrun: python t.py\nresources: {accelerators: 'A10:1'}\n",
     "job.yaml:5: resources.accelerators: unknown accelerator 'A10'", True),
    ("name: norole\nprovider: aws\nworkdir: null\nrun: python t.py\n", "role_arn", False),
], ids=["nodes-on-local", "gpu-without-gpu", "unknown-accelerator-on-aws", "missing-role-arn"])
def test_dry_run_refuses_what_submit_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
                                             needle: str, aws: bool | None) -> None:
    monkeypatch.setenv("CLOUDBRIDGE_FAKE_GPUS", "0")
    if aws is not None:
        _aws_env(monkeypatch, role=aws)
    spec = _spec(tmp_path, body)
    dry = run_cli("run", str(spec), "--dry-run")
    line = assert_one_error_line(dry, needle)
    assert "valid; resolved spec" not in dry.stdout, dry.stdout
    submit = run_cli("run", str(spec), "--detach")
    assert submit.returncode == 2, submit.stderr
    assert submit.stderr.strip() == line, "dry-run and submit refuse with the same line"
    assert cb.jobs() == [], "nothing was created"


def test_dry_run_passing_predicts_an_accepted_submit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDBRIDGE_FAKE_GPUS", "1")
    spec = _spec(tmp_path, "name: ok\nworkdir: null\nrun: echo hi\nresources: {accelerators: 'FAKE-GPU:1'}\n")
    dry = run_cli("run", str(spec), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert cb.jobs() == []
    job = run_cli("run", str(spec))
    assert job.returncode == 0, job.stderr


def _ckpt_job(tmp_path: Path, name: str, run: str) -> Path:
    return _spec(tmp_path, f"name: {name}\nworkdir: null\nrun: {run}\ncheckpoints: ./ckpt\n", f"{name}.yaml")


def test_checkpoint_location_in_use_is_refused_unless_forced(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    compute = local_compute(monkeypatch)
    first = cb.run(_ckpt_job(tmp_path, "first", "sleep 60"))
    try:
        wait_state(compute, first.id, JobState.RUNNING)
        second = _ckpt_job(tmp_path, "second", "echo resumed")
        with pytest.raises(ConflictError, match=f"in use by running job {first.id} \\(first\\)"):
            cb.run(second)
        dry = run_cli("run", str(second), "--dry-run")
        assert_one_error_line(dry, f"checkpoints ./ckpt is in use by running job {first.id}", "--force")
        forced = run_cli("run", str(second), "--dry-run", "--force")
        assert forced.returncode == 0, forced.stderr
        (tmp_path / "sub").mkdir()
        other = _ckpt_job(tmp_path / "sub", "other", "echo x")
        assert cb.validate(other).name == "other", "another folder's ./ckpt is another location"
    finally:
        first.cancel()
    wait_state(compute, first.id, JobState.CANCELLED)
    job = cb.run(second, wait=True, timeout=60)  # the first job ended: the location is free again
    assert job.state == JobState.SUCCEEDED
