"""Azure ML specifics on the fake: injected faults, bad input refused before anything is created,
``cloudbridge check azure``, and the loopback test token staying on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.errors import AuthenticationError, InvalidSpec, QuotaExceeded
from cloudbridge.interfaces import wait_for_state
from cloudbridge.records import JobState
from cloudbridge.specs import JobSpec


def _spec(tmp_path: Path, run: str = "echo hi", **fields: Any) -> JobSpec:
    fields.setdefault("distribution", "none")
    return JobSpec(name="faults", run=run, provider="azure", workdir=str(tmp_path), **fields)


def test_quota_fault_is_quota_exceeded_and_creates_nothing(fake_provider: Any, tmp_path: Path) -> None:
    jobs_before = len(_fake(fake_provider).jobs)
    _fake(fake_provider).inject("quota")
    with pytest.raises(QuotaExceeded) as info:
        fake_provider.compute.submit(_spec(tmp_path))
    assert "exceeding approved quota" in str(info.value) and "the code package stays at" in str(info.value)
    assert len(_fake(fake_provider).jobs) == jobs_before


def test_authorisation_fault_is_authentication_error(fake_provider: Any, tmp_path: Path) -> None:
    _fake(fake_provider).inject("auth")
    with pytest.raises(AuthenticationError, match="AuthorizationFailed") as info:
        fake_provider.compute.submit(_spec(tmp_path))
    assert "RBAC" in str(info.value)


def test_throttling_is_retried_by_azure_core(fake_provider: Any, tmp_path: Path) -> None:
    fake = _fake(fake_provider)
    fake.inject("throttle", 2)
    job = fake_provider.compute.submit(_spec(tmp_path))
    assert fake.faults["throttle"] == 0, "both 429 answers were consumed by retries"
    assert fake_provider.compute.wait(job.id, timeout=90).state == JobState.SUCCEEDED


def test_preempted_low_priority_node_fails_with_spot_reason(fake_provider: Any, tmp_path: Path) -> None:
    spec = _spec(tmp_path, run="echo started && sleep 120", resources={"spot": True})
    job = fake_provider.compute.submit(spec)
    assert fake_provider.compute.adapter.get_raw(job.native_id)["properties"]["queueSettings"] == {"jobTier": "Spot"}
    wait_for_state(fake_provider.compute, job.id, {JobState.RUNNING}, timeout=90)
    _fake(fake_provider).preempt(job.native_id)
    done = fake_provider.compute.wait(job.id, timeout=90)
    assert done.state == JobState.FAILED
    assert done.reason and "spot" in done.reason, (done.reason, done.detail)
    assert "preempted" in (done.detail or "")


def test_failure_detail_has_azure_error_and_log_tail(fake_provider: Any, tmp_path: Path) -> None:
    job = fake_provider.compute.submit(_spec(tmp_path, run="echo boom-line && exit 3"))
    done = fake_provider.compute.wait(job.id, timeout=90)
    assert done.state == JobState.FAILED and done.reason and "non-zero exit" in done.reason
    assert "UserError" in (done.detail or "") and "boom-line" in (done.detail or "")


def test_too_many_nodes_is_refused_before_upload(fake_provider: Any, tmp_path: Path) -> None:
    fake = _fake(fake_provider)
    codes, jobs = len(fake.codes), len(fake.jobs)
    with pytest.raises(InvalidSpec, match=r"resources\.nodes.*5 nodes is above the maximum.*\(3\)"):
        fake_provider.compute.validate(_spec(tmp_path, resources={"nodes": 5}))  # what run --dry-run calls
    with pytest.raises(InvalidSpec, match=r"resources\.nodes.*5 nodes is above the maximum.*\(3\)"):
        fake_provider.compute.submit(_spec(tmp_path, resources={"nodes": 5}))
    assert (len(fake.codes), len(fake.jobs)) == (codes, jobs), "nothing uploaded, nothing created"


def test_unknown_vm_size_names_the_nearest(fake_provider: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="did you mean 'Standard_NC6s_v3'"):
        fake_provider.compute.validate(_spec(tmp_path, resources={"instance_type": "Standard_NC6s_v4"}))


def test_check_reports_every_piece(fake_provider: Any, fake_settings: dict[str, Any]) -> None:
    from cloudbridge_azure.provider import AzureProvider
    from cloudbridge_azure.settings import AzureSettings

    report = fake_provider.check()
    assert report.ok, [(i.name, i.detail) for i in report.items if not i.ok]
    broken = AzureProvider(AzureSettings(**{**fake_settings, "compute": "no-such-cluster",
                                            "container": "no-such-container", "workspace": None}))
    failed = {i.name: i for i in broken.check().items if not i.ok}
    assert "workspace" in failed and "az ml workspace create" in (failed["workspace"].fix or "")
    assert "container writable" in failed and "az storage container create" in (failed["container writable"].fix or "")
    missing_cluster = AzureProvider(AzureSettings(**{**fake_settings, "compute": "no-such-cluster"}))
    compute = next(i for i in missing_cluster.check().items if i.name == "compute")
    assert not compute.ok and "az ml compute create" in (compute.fix or "")


def test_cli_nodes_above_cluster_maximum_is_one_line_exit_2(fake_settings: dict[str, Any], tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: big\nprovider: azure\nrun: echo hi\nresources:\n  nodes: 9\n")
    env = {**os.environ, **{f"CLOUDBRIDGE_AZURE_{k.upper()}": str(v) for k, v in fake_settings.items()}}
    result = subprocess.run([sys.executable, "-m", "cloudbridge.cli", "run", str(job), "--detach"],
                            capture_output=True, text=True, env=env, timeout=180, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "job.yaml:5: resources.nodes: 9 nodes is above the maximum" in errors[0], result.stderr
    assert result.stderr.rstrip().endswith(errors[0]), "the error is the last line; nothing follows it"


def test_test_token_is_refused_for_real_azure_scopes() -> None:
    from azure.core.exceptions import ClientAuthenticationError
    from cloudbridge_azure.auth import LoopbackTestCredential

    credential = LoopbackTestCredential()
    assert credential.get_token("https://127.0.0.1:8443/.default").token
    with pytest.raises(ClientAuthenticationError):
        credential.get_token("https://management.azure.com/.default")


def test_missing_token_is_refused_by_the_fake(fake_env: Any) -> None:
    import requests

    reply = requests.get(f"{fake_env.url}{fake_env.workspace_id}", verify=fake_env.cert, timeout=10)
    assert reply.status_code == 401 and reply.json()["error"]["code"] == "InvalidAuthenticationToken"


def _fake(provider: Any) -> Any:
    """The session's fake behind ``provider`` (found through the fixture's registry)."""
    return _FAKES[provider.settings.arm_endpoint]


_FAKES: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _register(fake_env: Any) -> None:
    _FAKES[fake_env.url] = fake_env


def test_hostile_input_key_fails_the_job_before_it_runs(fake_provider: Any, container: str, tmp_path: Path) -> None:
    """The fake stages inputs through the checked download helper: a key with a backslash is refused."""
    from cloudbridge.testing.azurite import ACCOUNT

    storage = fake_provider.storage
    service = storage.container_client(f"{ACCOUNT}/{container}")
    service.upload_blob("hostile/ok.txt", b"fine")
    service.upload_blob("hostile/evil\\..\\x.txt", b"nope")
    spec = _spec(tmp_path, run="echo should-not-run", inputs={"d": f"az://{ACCOUNT}/{container}/hostile"})
    done = fake_provider.compute.wait(fake_provider.compute.submit(spec).id, timeout=90)
    assert done.state == JobState.FAILED and "refused" in (done.detail or ""), done.detail
    assert "should-not-run" not in "\n".join(fake_provider.compute.logs(done.id))


def test_check_names_a_missing_login(fake_settings: dict[str, Any]) -> None:
    from azure.core.exceptions import ClientAuthenticationError
    from cloudbridge_azure.provider import AzureProvider
    from cloudbridge_azure.settings import AzureSettings

    class NoLogin:
        def get_token(self, *scopes: str, **_: Any) -> Any:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    provider = AzureProvider(AzureSettings(**fake_settings))
    provider.clients._credential = NoLogin()
    login = next(i for i in provider.check().items if i.name == "login")
    assert not login.ok and "not logged in" in login.detail and "az login" in (login.fix or "")
