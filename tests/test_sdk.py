"""The SDK facade: cb.run / get_job / jobs / cancel / logs / provider(s) / deploy.

Besides ``local``, a small real provider plugin (``inline``, installed as a dist-info on the path
and found through its entry point) shows that jobs of any provider are recorded in the job store
and that state changes reported by a provider fire the job event hook.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fixtures_cli import make_plugin
from fixtures_local import local_compute, wait_state

import cloudbridge as cb
from cloudbridge.errors import InvalidSpec, NotFound, ProviderNotFound
from cloudbridge.jobstore.store import JobStore
from cloudbridge.records import JobState
from cloudbridge.specs import EndpointSpec, JobSpec

INLINE_PROVIDER = '''
"""A provider whose jobs run synchronously the first time they are looked at."""
import subprocess
import uuid

from cloudbridge import ProviderInfo, hookimpl
from cloudbridge.errors import NotFound
from cloudbridge.interfaces import Compute, Deploy, Endpoint, Job, JobState, Provider


@hookimpl
def cloudbridge_register_providers(register):
    register(ProviderInfo(name="inline", factory="cb_inline.plugin:InlineProvider",
                          capabilities={"compute", "deploy"}))


class InlineCompute(Compute):
    poll_interval = 0.01

    def __init__(self):
        self.jobs, self.specs, self.output = {}, {}, {}

    def submit(self, spec):
        job = Job(id=f"inline-{uuid.uuid4().hex[:8]}", provider="inline", name=spec.name, state=JobState.PENDING)
        self.jobs[job.id], self.specs[job.id] = job, spec
        return job

    def get(self, job_id):
        if job_id not in self.jobs:
            raise NotFound(f"no inline job {job_id}")
        job = self.jobs[job_id]
        if job.state == JobState.PENDING:
            proc = subprocess.run(["bash", "-c", self.specs[job_id].run], capture_output=True, text=True)
            self.output[job_id] = proc.stdout.splitlines()
            job.exit_code = proc.returncode
            job.state = JobState.SUCCEEDED if proc.returncode == 0 else JobState.FAILED
            job.reason = None if proc.returncode == 0 else f"exit {proc.returncode}"
        return Job(**{k: getattr(job, k) for k in job.to_dict()})

    def list(self):
        return [self.get(j) for j in self.jobs]

    def cancel(self, job_id):
        return self.get(job_id)

    def logs(self, job_id, follow=False):
        self.get(job_id)
        return iter(self.output[job_id])


class InlineDeploy(Deploy):
    def __init__(self):
        self.endpoints = {}

    def deploy(self, spec):
        self.endpoints[spec.name] = Endpoint(spec.name, "inline", "InService", model=spec.model)
        return self.endpoints[spec.name]

    def get(self, name):
        return self.endpoints[name]

    def list(self):
        return list(self.endpoints.values())

    def invoke(self, name, payload):
        return payload

    def delete(self, name):
        self.endpoints.pop(name)


class InlineProvider(Provider):
    name = "inline"

    def __init__(self, settings=None):
        super().__init__(settings)
        self._compute, self._deploy = InlineCompute(), InlineDeploy()

    @property
    def compute(self):
        return self._compute

    @property
    def deploy(self):
        return self._deploy
'''


@pytest.fixture
def inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install the ``inline`` provider plugin for this test."""
    root = make_plugin(tmp_path / "site", dist="cb-inline", entry_name="inline",
                       modules={"cb_inline/plugin.py": INLINE_PROVIDER})
    monkeypatch.syspath_prepend(str(root))
    from cloudbridge.plugins import reset_plugins

    reset_plugins()
    yield
    reset_plugins()
    for name in [m for m in sys.modules if m.startswith("cb_inline")]:
        del sys.modules[name]


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> None:
    local_compute(monkeypatch)


def test_run_a_yaml_file_and_wait(local: None, tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text("name: sdk-yaml\nworkdir: .\nrun: echo from-yaml; pwd; ls\n")
    job = cb.run(tmp_path / "job.yaml", wait=True, timeout=60)
    assert job.state == JobState.SUCCEEDED and job.id.startswith("local-")
    lines = list(job.logs())
    # it runs in the job's own copy of the workdir, which never holds the spec file (it may carry secrets)
    printed = [line for line in lines if not line.startswith("[cloudbridge]")]
    assert printed == ["from-yaml", job.extra["code_dir"]]
    assert lines[-1] == "[cloudbridge] job SUCCEEDED"
    assert cb.get_job(job.id).state == JobState.SUCCEEDED
    assert JobStore.default().spec(job.id)["name"] == "sdk-yaml"


def test_run_a_dict_with_a_provider_override(local: None, tmp_path: Path) -> None:
    job = cb.run({"name": "d", "run": "echo hi", "provider": "aws", "workdir": str(tmp_path)}, provider="local")
    assert job.provider == "local"
    assert job.wait(60).state == JobState.SUCCEEDED


def test_bad_inputs_are_user_errors(local: None, tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="nodes"):
        cb.run({"name": "d", "run": "echo", "resources": {"nodes": -1}})
    with pytest.raises(InvalidSpec, match="file not found"):
        cb.run(tmp_path / "missing.yaml")
    with pytest.raises(InvalidSpec, match="not int"):
        cb.run(42)  # type: ignore[arg-type]
    for job_id in ("local-0000dead", "nodash", "nosuchprovider-1234"):
        with pytest.raises(NotFound):
            cb.get_job(job_id)
    with pytest.raises(ProviderNotFound, match="known providers"):
        cb.provider("nope")


def test_cancel_and_logs_through_the_facade(local: None, tmp_path: Path) -> None:
    job = cb.run(JobSpec(name="c", run="echo up; sleep 300", workdir=str(tmp_path)))
    wait_state(job._compute, job.id, JobState.RUNNING)
    assert cb.cancel(job.id).state == JobState.CANCELLED
    assert "up" in list(cb.logs(job.id))
    followed = list(cb.logs(job.id, follow=True))
    assert followed[-1].endswith("job CANCELLED: cancelled by user")


def test_other_providers_are_recorded_and_fire_events(inline: None, local: None, tmp_path: Path) -> None:
    job = cb.run({"name": "i", "run": "echo inline-out; exit 5", "provider": "inline",
                  "env": {"API_TOKEN": "tok-s3cr3t"}})
    store = JobStore.default()
    assert store.get(job.id).state == JobState.PENDING
    assert store.spec(job.id)["env"]["API_TOKEN"] != "tok-s3cr3t"
    fresh = cb.get_job(job.id)
    assert fresh.state == JobState.FAILED and fresh.reason == "exit 5"
    recorded = store.get(job.id)
    assert (recorded.state, recorded.reason, recorded.exit_code) == (JobState.FAILED, "exit 5", 5)
    assert [(e["previous"], e["state"]) for e in store.events(job.id)] == [(None, "PENDING"), ("PENDING", "FAILED")]
    assert list(fresh.logs()) == ["inline-out"]
    cb.get_job(job.id)
    assert len(store.events(job.id)) == 2, "an unchanged state fires no event"
    loc = cb.run(JobSpec(name="l", run="true", workdir=str(tmp_path)))
    assert {j.id for j in cb.jobs()} >= {job.id, loc.id}
    assert [j.id for j in cb.jobs("inline")] == [job.id]
    listed = cb.jobs("local")[0]
    assert listed.id == loc.id and listed.wait(60).state == JobState.SUCCEEDED  # handles are bound


def test_jobs_is_callable_even_after_importing_the_package(local: None) -> None:
    import importlib

    importlib.import_module("cloudbridge.jobstore.store")

    assert cb.jobs() == [] and cb.jobs("local") == []


def test_providers_and_deploy_delegation(inline: None, tmp_path: Path) -> None:
    import importlib

    importlib.import_module("cloudbridge.serving.registry")
    importlib.import_module("cloudbridge.backends.local.compute")
    assert callable(cb.deploy) and cb.deploy.__module__ == "cloudbridge.sdk", "a real function, not a module"
    assert {"local", "inline"} <= set(cb.providers())
    assert cb.provider("local").name == "local"
    endpoint = cb.deploy(str(tmp_path / "model"), name="ep", provider="inline")
    assert (endpoint.name, endpoint.provider, endpoint.model) == ("ep", "inline", str(tmp_path / "model"))
    spec = EndpointSpec(name="ep2", model="m", provider="inline")
    assert cb.deploy(spec).name == "ep2"
    assert [e.name for e in cb.provider("inline").deploy.list()] == ["ep", "ep2"]
    with pytest.raises(InvalidSpec, match="name"):
        cb.deploy(str(tmp_path / "model"))


def test_deploy_returns_an_endpoint_handle_and_endpoints_lists_them(inline: None, tmp_path: Path) -> None:
    endpoint = cb.deploy(str(tmp_path / "model"), name="ep", provider="inline")
    assert endpoint.invoke({"inputs": "great"}) == {"inputs": "great"}
    other = cb.deploy(EndpointSpec(name="ep2", model="m", provider="inline"))
    listed = cb.endpoints("inline")
    assert [e.name for e in listed] == ["ep", "ep2"]
    assert listed[1].invoke([1, 2]) == [1, 2], "listed endpoints are bound too"
    assert endpoint.refresh().state == "InService"
    other.delete()
    assert [e.name for e in cb.endpoints("inline")] == ["ep"]
    assert "_deploy" not in endpoint.to_dict() and "_deploy=" not in repr(endpoint)

