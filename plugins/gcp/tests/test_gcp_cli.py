"""The CLI on GCP as real processes against the GCS emulator and the Vertex AI fake: bad input is one
line with exit status 2 and nothing created; ``cloudbridge check gcp`` names each missing piece and its
fix; ``cloudbridge plan`` says the gcp rows are installed; settings come from the Google environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CLI = [sys.executable, "-m", "cloudbridge.cli"]


def _env(gcs: Any, vertex: Any, bucket: str, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDBRIDGE_GCP_", "GOOGLE_", "CLOUDSDK_"))}
    env.update(NO_COLOR="1", CLOUDBRIDGE_HOME=str(home), STORAGE_EMULATOR_HOST=gcs.endpoint,
               CLOUDBRIDGE_GCP_API_ENDPOINT=vertex.endpoint, CLOUDBRIDGE_GCP_PROJECT="cb-test-project",
               CLOUDBRIDGE_GCP_REGION="us-central1", CLOUDBRIDGE_GCP_STAGING_BUCKET=bucket,
               GOOGLE_APPLICATION_CREDENTIALS="/nonexistent/adc.json", CLOUDBRIDGE_GCP_POLL_INTERVAL="0.5")
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def _job(tmp_path: Path, resources: str = "{accelerators: 'T4:1'}") -> Path:
    work = tmp_path / "proj"
    work.mkdir(exist_ok=True)
    (work / "train.py").write_text("print('hi')\n")
    spec = tmp_path / "job.yaml"
    spec.write_text(f"name: cli-job\nprovider: gcp\nworkdir: proj\nrun: python train.py\nresources: {resources}\n")
    return spec


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180, env=env)


@pytest.mark.parametrize(("extra", "resources", "expected"), [
    ({"CLOUDBRIDGE_GCP_PROJECT": ""}, "{accelerators: 'T4:1'}", "settings.gcp.project: no GCP project is set"),
    ({"CLOUDBRIDGE_GCP_REGION": "us-centrall1"}, "{accelerators: 'T4:1'}",
     "settings.gcp.region: 'us-centrall1' is not a region where Vertex AI is offered (did you mean 'us-central1'?)"),
    ({"CLOUDBRIDGE_GCP_REGION": "us-west1"}, "{accelerators: 'A100:8'}",
     "job.yaml:5: resources.accelerators: A100 is not offered by Vertex AI in us-west1"),
    ({"CLOUDBRIDGE_GCP_RESERVATION": "my-a100s"}, "{accelerators: 'A100:8', spot: true}",
     "resources.spot: spot capacity cannot consume a reservation"),
    ({"CLOUDBRIDGE_GCP_STAGING_BUCKET": "cb-no-such-bucket"}, "{accelerators: 'T4:1'}",
     "bucket gs://cb-no-such-bucket does not exist"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_created(gcs_env: Any, vertex: Any, bucket: str, tmp_path: Path,
                                                          extra: dict[str, str], resources: str, expected: str) -> None:
    vertex.hold = True
    before = len(vertex.jobs)
    result = _run(_env(gcs_env, vertex, bucket, tmp_path / "home", **extra), "run", str(_job(tmp_path, resources)),
                  "--detach")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert len(vertex.jobs) == before, "nothing was created"


def test_run_detach_then_status_on_the_fake(gcs_env: Any, vertex: Any, bucket: str, tmp_path: Path) -> None:
    vertex.hold = False
    env = _env(gcs_env, vertex, bucket, tmp_path / "home")
    result = _run(env, "run", str(_job(tmp_path, "{cpus: 4}")), "--detach")
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert job_id.startswith("gcp-cli-job-")
    status = _run(env, "status", job_id, "--wait", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "SUCCEEDED"
    logs = _run(env, "logs", job_id)
    assert "hi" in logs.stdout.splitlines(), logs.stdout


def test_check_gcp_names_each_missing_piece_and_its_fix(gcs_env: Any, vertex: Any, bucket: str, tmp_path: Path) -> None:
    good = _run(_env(gcs_env, vertex, bucket, tmp_path / "home"), "check", "gcp", "--json")
    assert good.returncode == 0, good.stdout + good.stderr
    data = json.loads(good.stdout)
    report = data[0] if isinstance(data, list) else data
    items = {i["name"]: i for i in report["items"]}
    assert {"credentials", "project", "region", "Vertex AI API", "staging bucket"} <= set(items), items
    assert all(i["ok"] for i in items.values()), items
    vertex.inject("permission", r"GET .*/customJobs$")
    bad = _run(_env(gcs_env, vertex, bucket, tmp_path / "home", CLOUDBRIDGE_GCP_STAGING_BUCKET="cb-missing-bucket"),
               "check", "gcp")
    text = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "roles/aiplatform.user" in text and "gcloud projects add-iam-policy-binding" in text, text
    assert "gcloud storage buckets create gs://cb-missing-bucket" in text, text
    vertex.inject("api_disabled", r"GET .*/customJobs$")
    disabled = _run(_env(gcs_env, vertex, bucket, tmp_path / "home"), "check", "gcp")
    text = disabled.stdout + disabled.stderr
    assert "the Vertex AI API is not enabled" in text and "gcloud services enable aiplatform.googleapis.com" in text
    no_project = _run(_env(gcs_env, vertex, bucket, tmp_path / "home", CLOUDBRIDGE_GCP_PROJECT="",
                           CLOUDBRIDGE_GCP_API_ENDPOINT=""), "check", "gcp")
    text = no_project.stdout + no_project.stderr
    assert "gcloud auth application-default login" in text and "no GCP project is set" in text, text


def test_plan_rows_say_installed(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1", "CLOUDBRIDGE_HOME": str(tmp_path / "home")}
    spec = tmp_path / "job.yaml"
    spec.write_text("name: big\nprovider: auto\nrun: python train.py\nresources: {accelerators: 'A100:8'}\n")
    result = _run(env, "plan", str(spec), "--providers", "gcp", "--json")
    assert result.returncode == 0, result.stderr
    rows = [p for p in json.loads(result.stdout)["placements"] if p["provider"] == "gcp"]
    assert rows and all(p["installed"] for p in rows), rows


@pytest.fixture
def read_only_bucket(gcs_env: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A bucket the emulator refuses writes to, as GCS answers a caller without storage.objects.create (403)."""
    from gcp_storage_emulator.server import RequestHandler

    name = f"cb-read-only-{os.getpid()}"
    gcs_env.create_bucket(name)

    def guard(method: Any) -> Any:
        def handle(self: Any) -> None:
            if f"/b/{name}/o" in self.path:
                body = json.dumps({"error": {"code": 403, "message": "caller does not have storage.objects.create "
                                             f"access to the Google Cloud Storage object {name}"}}).encode()
                self.send_response(403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            method(self)
        return handle

    for verb in ("do_POST", "do_PUT"):
        monkeypatch.setattr(RequestHandler, verb, guard(getattr(RequestHandler, verb)))
    return name


def test_a_staging_bucket_the_credentials_cannot_write(gcs_env: Any, vertex: Any, bucket: str, tmp_path: Path,
                                                       read_only_bucket: str) -> None:
    """run: one line naming the missing role, exit 2, no job; check gcp: the bucket is not writable, with the fix."""
    vertex.hold = True
    before = len(vertex.jobs)
    env = _env(gcs_env, vertex, bucket, tmp_path / "home", CLOUDBRIDGE_GCP_STAGING_BUCKET=read_only_bucket)
    result = _run(env, "run", str(_job(tmp_path)), "--detach")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1 and "roles/storage.objectAdmin" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert len(vertex.jobs) == before, "nothing was created"
    check = _run(env, "check", "gcp")
    text = check.stdout + check.stderr
    assert check.returncode != 0
    assert "roles/storage.objectAdmin is lacking" in text and f"gs://{read_only_bucket}" in text, text
