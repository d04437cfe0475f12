"""The AWS provider through the public SDK and CLI, as a user drives it (moto server)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cloudbridge as cb


def write_job(tmp_path: Path, bucket: str) -> Path:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "train.py").write_text("print('hi')\n")
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: sdk_job\nprovider: aws\nworkdir: proj\nrun: python train.py\n"
        "resources: {accelerators: 'T4:1', max_runtime: 1h}\n"
        f"overrides:\n  aws: {{bucket: {bucket}, role_arn: 'arn:aws:iam::123456789012:role/sm'}}\n"
    )
    return spec


def test_run_and_get_job_through_the_sdk(aws_env: Any, bucket: str, tmp_path: Path) -> None:
    job = cb.run(write_job(tmp_path, bucket), wait=True, timeout=30)
    assert job.id.startswith("aws-sdk-job-") and job.state.value == "SUCCEEDED"
    again = cb.get_job(job.id)
    assert again.name == "sdk_job" and again.outputs_uri and again.outputs_uri.startswith(f"s3://{bucket}/")
    assert job.id in [j.id for j in cb.jobs(provider="aws")]
    assert cb.storage(f"s3://{bucket}/x").inner.__class__.__name__ == "S3Storage"


def test_cli_run_status_and_bad_input(aws_env: Any, bucket: str, tmp_path: Path) -> None:
    spec = write_job(tmp_path, bucket)
    cli = [sys.executable, "-m", "cloudbridge.cli"]
    submitted = subprocess.run([*cli, "run", str(spec), "--detach"], capture_output=True, text=True, timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().splitlines()[0]
    status = subprocess.run([*cli, "status", job_id, "--json"], capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and json.loads(status.stdout)["state"] == "SUCCEEDED"

    spec.write_text(spec.read_text().replace("max_runtime: 1h", "max_runtime: 30d, spot: true"))
    refused = subprocess.run([*cli, "run", str(spec), "--detach"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"{spec}:5: resources.max_runtime: max_runtime 30d is longer than SageMaker managed spot" in lines[0]


def test_redacted_credentials_are_never_replayed(
    aws_env: Any, bucket: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """Keys given in ``overrides.aws`` are redacted in the store; later calls use the environment.

    With moto's IAM checks on, a redacted value replayed as an access key would be refused
    (InvalidClientTokenId), so ``get_job`` in a "new process" (empty provider cache) proves it.
    """
    from cloudbridge.backends import clear_provider_cache
    from cloudbridge.jobstore.store import JobStore

    iam = aws_env.client("iam")
    iam.create_user(UserName="trainer")
    iam.put_user_policy(
        UserName="trainer",
        PolicyName="all",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="trainer")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    spec = write_job(tmp_path, bucket)
    spec.write_text(
        spec.read_text().replace(
            "role_arn:", f"access_key_id: {key['AccessKeyId']}, secret_access_key: {key['SecretAccessKey']}, role_arn:"
        )
    )
    previous = aws_env.set_iam_auth(0)
    try:
        job = cb.run(spec)
        stored = json.dumps(JobStore.default().spec(job.id))
        assert key["SecretAccessKey"] not in stored
        clear_provider_cache()
        again = cb.get_job(job.id)
        assert again.id == job.id and again.state.value in ("RUNNING", "SUCCEEDED", "STARTING", "PENDING")
    finally:
        aws_env.set_iam_auth(previous)


def test_secret_looking_env_warns_once_at_submit(aws_env: Any, bucket: str, tmp_path: Path) -> None:
    """SageMaker keeps ``Environment`` in plain text: ``cloudbridge run`` says so in one warning line
    naming the variables (never their values); a Secrets Manager ARN is a reference, not a secret."""
    spec = write_job(tmp_path, bucket)
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cloudbridge/wandb-AbCdEf"
    spec.write_text(
        spec.read_text()
        + f"env: {{HF_TOKEN: hf_sEcReTvAlUe, DB_PASSWORD: pw-sEcReT, WANDB_API_KEY_ARN: '{arn}', LOG_LEVEL: info}}\n"
    )
    cli = [sys.executable, "-m", "cloudbridge.cli"]
    submitted = subprocess.run([*cli, "run", str(spec), "--detach"], capture_output=True, text=True, timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    warnings = [line for line in submitted.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: env DB_PASSWORD, HF_TOKEN look secret: SageMaker keeps the job's environment in plain text, "
        "readable by anyone allowed sagemaker:DescribeTrainingJob; pass a Secrets Manager ARN instead "
        "(docs/providers/aws.md#secrets)"
    ]
    assert "sEcReT" not in submitted.stdout + submitted.stderr

    # the SDK: the same single line on the job; what it warns about is the value sent to SageMaker
    from cloudbridge.backends import get_provider

    sent: list[dict[str, Any]] = []
    overrides = {"bucket": bucket, "role_arn": "arn:aws:iam::123456789012:role/sm"}
    get_provider("aws", overrides=overrides).session.client("sagemaker").meta.events.register(
        "before-send.sagemaker.CreateTrainingJob", lambda request, **_: sent.append(json.loads(request.body))
    )
    job = cb.run(spec)
    assert sent[0]["Environment"]["HF_TOKEN"] == "hf_sEcReTvAlUe"  # moto drops it from Describe; AWS does not
    assert [w for w in job.extra["warnings"] if w.startswith("env ")] == [warnings[0].removeprefix("warning: ")]
    spec.write_text(spec.read_text().replace("HF_TOKEN: hf_sEcReTvAlUe, DB_PASSWORD: pw-sEcReT, ", ""))
    assert not [w for w in cb.run(spec).extra.get("warnings", []) if w.startswith("env ")], "no secret, no warning"
