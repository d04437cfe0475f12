"""``run --dry-run`` makes every check submit makes (so exit 0 predicts an accepted submit), and a
checkpoint location in use by an unfinished job of the same provider is refused unless --force."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli
from fixtures_local import local_compute, wait_state

import cloudbridge as cb
from cloudbridge import ProviderInfo, hookimpl
from cloudbridge.errors import ConflictError
from cloudbridge.interfaces import Compute, Job, Provider
from cloudbridge.plugins import register_plugin, unregister_plugin
from cloudbridge.records import JobState
from cloudbridge.specs import JobSpec

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


class HoldCompute(Compute):
    """A cloud-like compute whose jobs run until cancelled (URIs are compared, not paths)."""

    jobs: dict[str, Job] = {}

    def submit(self, spec: JobSpec) -> Job:
        job = Job(id=f"hold-{len(self.jobs) + 1}", provider="hold", name=spec.name, state=JobState.RUNNING)
        self.jobs[job.id] = job
        return self.get(job.id)

    def get(self, job_id: str) -> Job:
        return Job(**{k: getattr(self.jobs[job_id], k) for k in self.jobs[job_id].to_dict()})

    def list(self) -> list[Job]:
        return [self.get(i) for i in self.jobs]

    def cancel(self, job_id: str) -> Job:
        self.jobs[job_id].state = JobState.CANCELLED
        return self.get(job_id)

    def logs(self, job_id: str, follow: bool = False) -> Iterator[str]:
        return iter(())


class HoldProvider(Provider):
    name = "hold"
    _compute = HoldCompute()

    @property
    def compute(self) -> Compute:
        return self._compute


class HoldPlugin:
    @hookimpl
    def cloudbridge_register_providers(self, register):  # type: ignore[no-untyped-def]
        register(ProviderInfo(name="hold", factory=f"{__name__}:HoldProvider", capabilities={"compute"}))


def test_cloud_checkpoint_uris_in_use_are_refused(tmp_path: Path) -> None:
    plugin = HoldPlugin()
    register_plugin(plugin)
    try:
        def spec(name: str, ckpt: str) -> dict[str, object]:
            return {"name": name, "provider": "hold", "workdir": None, "run": "python t.py", "checkpoints": ckpt}

        first = cb.run(spec("first", "s3://bucket/ckpt/run"))
        with pytest.raises(ConflictError, match=f"in use by running job {first.id}"):
            cb.run(spec("second", "s3://bucket/ckpt/run/"))  # the same prefix, trailing slash or not
        assert cb.run(spec("other", "s3://bucket/ckpt/other")).state == JobState.RUNNING
        assert cb.run(spec("forced", "s3://bucket/ckpt/run"), force=True).state == JobState.RUNNING
        HoldProvider._compute.cancel(first.id)  # ended on the cloud, unseen by the store: refreshed first
        HoldProvider._compute.cancel("hold-3")
        assert cb.run(spec("third", "s3://bucket/ckpt/run")).state == JobState.RUNNING
    finally:
        unregister_plugin(plugin)
