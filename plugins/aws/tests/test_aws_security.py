"""Security fixes in the AWS plugin (issue 12): the failure tail reads only the end of CloudWatch
logs, the SageMaker entry script's fallback extractor refuses links, endpoints warn on secret env,
and model archives are streamed and refuse links out of the model directory."""

from __future__ import annotations

import importlib.util
import io
import os
import tarfile
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from cloudbridge_aws.deploy import pack_model_dir
from cloudbridge_aws.training_request import secret_env_warning
from test_aws_compute import backend_job, job_spec, seed_logs, workdir  # noqa: F401 - fixtures

from cloudbridge.errors import InvalidSpec
from cloudbridge.specs import EndpointSpec, JobSpec

ENTRY = Path(__file__).resolve().parents[1] / "src" / "cloudbridge_aws" / "launcher" / "cloudbridge_entry.py"


def test_status_of_a_failed_job_reads_only_the_end_of_its_log(provider: Any, job_spec: JobSpec,  # noqa: F811
                                                             aws_env: Any) -> None:
    job = provider.compute.submit(job_spec)
    seed_logs(aws_env, job.native_id, {"algo-1": [f"line {i}" for i in range(2000)]})
    record = backend_job(job.native_id)
    record.training_job_status, record.secondary_status = "Failed", "Failed"
    record.failure_reason = "AlgorithmError: ExecuteUserScriptError: exit code 1"
    fetched: list[int] = []
    logs = provider.session.client("logs")

    def count(parsed: dict[str, Any], **_: Any) -> None:
        fetched.append(len(parsed.get("events", [])))

    logs.meta.events.register("after-call.cloudwatch-logs.GetLogEvents", count)
    try:
        failed = provider.compute.get(job.id)
    finally:
        logs.meta.events.unregister("after-call.cloudwatch-logs.GetLogEvents", count)
    assert failed.detail.splitlines()[-1] == "line 1999"
    assert sum(fetched) <= 20, f"read {sum(fetched)} events for a 20-line tail"


def _entry() -> Any:
    spec = importlib.util.spec_from_file_location("cloudbridge_entry_under_test", ENTRY)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_entry_fallback_extractor_refuses_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    package = tmp_path / "workdir-x.tar.gz"
    with tarfile.open(package, "w:gz") as tar:
        member = tarfile.TarInfo("escape")
        member.type = tarfile.SYMTYPE if link == "symlink" else tarfile.LNKTYPE
        member.linkname = str(outside)
        tar.addfile(member)
        data = b"pwned"
        payload = tarfile.TarInfo("escape/pwned")
        payload.size = len(data)
        tar.addfile(payload, io.BytesIO(data))
    monkeypatch.delattr(tarfile, "data_filter", raising=False)  # the fallback: Python without filters
    target = tmp_path / "workdir"
    target.mkdir()
    with pytest.raises(SystemExit, match="link in code package refused: escape"):
        _entry()._unpack(str(package), str(target))
    assert not (outside / "pwned").exists()


def test_endpoint_env_secrets_warn(tmp_path: Path) -> None:
    spec = EndpointSpec(name="e", model=str(tmp_path), env={"HF_TOKEN": "x" * 10, "PLAIN": "1"})
    warning = secret_env_warning(spec, what="endpoint")
    assert warning and "HF_TOKEN" in warning and "DescribeModel" in warning and "PLAIN" not in warning
    shaped = EndpointSpec(name="e", model=str(tmp_path), env={"MODEL_REVISION": "AKIAABCDEFGHIJKLMNOP"})
    assert "MODEL_REVISION" in (secret_env_warning(shaped, what="endpoint") or "")
    assert secret_env_warning(EndpointSpec(name="e", model=str(tmp_path), env={"A": "1"}), what="endpoint") is None


def test_deploy_attaches_the_warning(provider: Any, tmp_path: Path, aws_env: Any) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    endpoint = provider.deploy.deploy(EndpointSpec(name="sec-env", model=str(model), env={"API_KEY": "k" * 12}))
    try:
        assert any("API_KEY" in w for w in endpoint.extra.get("warnings", []))
    finally:
        provider.deploy.delete("sec-env")


def test_pack_model_dir_refuses_links_out_and_streams(tmp_path: Path) -> None:
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = x")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(1024) * 24 * 1024)  # 24 MiB
    os.symlink(secret, model / "creds")
    with pytest.raises(InvalidSpec, match="creds is a symlink to .*outside the model directory"):
        pack_model_dir(model, str(tmp_path / "m.tar.gz"))
    os.unlink(model / "creds")
    tracemalloc.start()
    try:
        pack_model_dir(model, str(tmp_path / "m.tar.gz"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes: the 24 MiB file was read whole"
