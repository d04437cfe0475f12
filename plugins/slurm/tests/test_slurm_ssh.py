"""login = user@host: every Slurm command and file transfer goes through one shared ssh connection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cloudbridge_slurm.provider import SlurmProvider

from cloudbridge.records import JobState
from cloudbridge.specs import JobSpec


def test_a_job_over_ssh_stages_runs_logs_and_comes_back(local_sshd: object, make_settings: Callable[..., object],
                                                        tmp_path: Path) -> None:
    settings = make_settings(login=local_sshd.login, ssh_options=local_sshd.ssh_options)  # type: ignore[attr-defined]
    provider = SlurmProvider(settings)  # type: ignore[arg-type]
    before = local_sshd.logins()  # type: ignore[attr-defined]
    try:
        report = provider.check()
        assert report.ok, report.to_dict()
        assert [i.name for i in report.items] == ["ssh", "slurm commands", "controller", "partition", "staging folder"]
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "in.txt").write_text("hello over ssh\n")
        spec = JobSpec(name="over-ssh", provider="slurm", workdir=str(tmp_path), inputs={"data": "./data"},
                       outputs={"model": "./back"}, source=str(tmp_path / "job.yaml"),
                       run='cat "$CB_INPUT_DATA/in.txt" && cp "$CB_INPUT_DATA/in.txt" "$CB_MODEL_DIR/out.txt"')
        compute = provider.compute
        job = compute.wait(compute.submit(spec).id, timeout=90)
        assert job.state is JobState.SUCCEEDED, (job.reason, job.detail)
        assert "hello over ssh" in list(compute.logs(job.id))
        assert (tmp_path / "back" / "out.txt").read_text() == "hello over ssh\n"
    finally:
        provider.runner.close()
    assert local_sshd.logins() - before == 1, "every command reused one ssh connection (ControlMaster)"  # type: ignore[attr-defined]
