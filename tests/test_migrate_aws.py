"""``cb.migrate`` to AWS against the moto server (S3 + SageMaker), and the migrate-to-cloud example."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_storage import aws_env, moto, s3_bucket  # noqa: F401 - pytest fixtures

from cloudbridge.migrate import migrate, project_key
from cloudbridge.specs import load_job_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "finetune-sentiment"
SCRIPT = ROOT / "examples" / "migrate-to-cloud" / "migrate.py"
ROLE = "arn:aws:iam::123456789012:role/cloudbridge-sagemaker"


@pytest.fixture
def sentiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not (EXAMPLE / "job.yaml").exists():
        pytest.skip("examples/finetune-sentiment is not in this checkout")
    work = tmp_path / "sentiment"
    shutil.copytree(EXAMPLE, work)
    (work / ".cloudbridgeignore").write_text("data/\n")
    monkeypatch.setenv("CLOUDBRIDGE_AWS_ROLE_ARN", ROLE)
    return work


def _keys(client, bucket: str, prefix: str) -> dict[str, int]:
    response = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {o["Key"][len(prefix) :]: o["Size"] for o in response.get("Contents", [])}


def test_migrate_to_aws_uploads_rewrites_and_reruns_cheaply(aws_env, s3_bucket, sentiment) -> None:  # noqa: F811
    bucket = f"s3://{s3_bucket}"
    dry = migrate(sentiment / "job.yaml", "aws", bucket=bucket, dry_run=True)
    data_bytes = sum(p.stat().st_size for p in (sentiment / "data").iterdir())
    assert dry.upload_bytes == data_bytes
    assert dry.instance_type and dry.instance_type.startswith("ml."), dry.estimate
    assert dry.hourly and dry.hourly > 0
    assert _keys(aws_env.client("s3"), s3_bucket, "") == {}, "a dry run uploads nothing"

    plan = migrate(sentiment / "job.yaml", "aws", bucket=bucket)
    assert plan.prefix == f"{bucket}/cloudbridge/{project_key(load_job_spec(sentiment / 'job.yaml'))}"
    prefix = plan.prefix.removeprefix(f"{bucket}/") + "/inputs/train/"
    uploaded = _keys(aws_env.client("s3"), s3_bucket, prefix)
    assert uploaded == {p.name: p.stat().st_size for p in (sentiment / "data").iterdir()}
    spec = load_job_spec(sentiment / "job.aws.yaml")
    assert spec.provider == "aws"
    assert spec.inputs == {"train": f"{bucket}/{prefix.rstrip('/')}"}
    assert spec.overrides["aws"]["role_arn"] == ROLE
    assert spec.run == load_job_spec(sentiment / "job.yaml").run
    assert plan.upload_bytes == data_bytes

    again = migrate(sentiment / "job.yaml", "aws", bucket=bucket)
    assert again.upload_bytes == 0, "an unchanged re-run uploads nothing"
    with open(sentiment / "data" / "train.csv", "a") as handle:
        handle.write("one more review,1\n")
    third = migrate(sentiment / "job.yaml", "aws", bucket=bucket)
    assert [(i.field, i.copied) for i in third.items if i.action == "upload"] == [("inputs.train", 1)]


def test_migrate_submit_creates_sagemaker_job(aws_env, s3_bucket, sentiment) -> None:  # noqa: F811
    plan = migrate(sentiment / "job.yaml", "aws", bucket=f"s3://{s3_bucket}", submit=True)
    job = plan.job
    assert job is not None and job.id.startswith("aws-")
    described = aws_env.client("sagemaker").describe_training_job(TrainingJobName=job.native_id)
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in described["InputDataConfig"]}
    assert channels["train"] == f"{plan.prefix}/inputs/train"
    assert plan.prefix.startswith(f"s3://{s3_bucket}/cloudbridge/finetune-sentiment-")


def test_missing_bucket_is_clear(aws_env, sentiment) -> None:  # noqa: F811
    from cloudbridge.errors import NotFound

    with pytest.raises(NotFound, match="aws s3 mb s3://cb-no-such-bucket"):
        migrate(sentiment / "job.yaml", "aws", bucket="s3://cb-no-such-bucket")
    assert not (sentiment / "job.aws.yaml").exists()


def test_example_script_against_moto(aws_env, s3_bucket, tmp_path) -> None:  # noqa: F811
    if not SCRIPT.exists() or not (EXAMPLE / "job.yaml").exists():
        pytest.skip("examples are not in this checkout")
    env = {**os.environ, "CLOUDBRIDGE_AWS_ROLE_ARN": ROLE}
    work = tmp_path / "work"
    args = [sys.executable, str(SCRIPT), "--bucket", f"s3://{s3_bucket}", "--workdir", str(work)]
    dry = subprocess.run([*args, "--dry-run"], capture_output=True, text=True, env=env, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "would upload" in dry.stdout and "ml." in dry.stdout
    real = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert real.returncode == 0, real.stderr
    assert "inputs:" in real.stdout and f"s3://{s3_bucket}/cloudbridge/finetune-sentiment-" in real.stdout
    assert (work / "job.aws.yaml").exists()
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert "uploaded 0 of" in again.stdout


def _drop_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS credentials anywhere in the chain (env, shared files, instance metadata)."""
    from cloudbridge.backends import clear_provider_cache

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clear_provider_cache()


def test_missing_credentials_one_line_nothing_uploaded(aws_env, s3_bucket, sentiment, monkeypatch, tmp_path) -> None:  # noqa: F811
    from fixtures_cli import assert_one_error_line, run_cli

    from cloudbridge.errors import AuthenticationError

    _drop_credentials(monkeypatch, tmp_path)
    with pytest.raises(AuthenticationError, match="credentials"):
        migrate(sentiment / "job.yaml", "aws", bucket=f"s3://{s3_bucket}")
    assert_one_error_line(
        run_cli("migrate", str(sentiment / "job.yaml"), "--to", "aws", "--bucket", f"s3://{s3_bucket}"), "credentials"
    )
    assert _keys(aws_env.client("s3"), s3_bucket, "") == {}, "nothing uploaded"
    assert not (sentiment / "job.aws.yaml").exists(), "no migrated spec written"
    assert not list(sentiment.glob(".job.aws.yaml*")), "no temp spec left behind"


def test_cli_migrate_submit_streams_cloudwatch_logs(aws_env, s3_bucket, sentiment, monkeypatch) -> None:  # noqa: F811
    """``cloudbridge migrate --submit --to aws`` (the CLI in a subprocess): upload, write the spec,
    create the SageMaker job, print the log lines CloudWatch holds for it, then its final state."""
    from fixtures_cli import run_cli
    from moto.logs.models import logs_backends
    from moto.sagemaker.models import FakeTrainingJob

    created: list[str] = []
    original = FakeTrainingJob.__init__

    def init_and_log(self, account_id: str, region_name: str, training_job_name: str, *args, **kwargs) -> None:
        # moto runs no containers: write the job's CloudWatch stream as SageMaker would
        # (group /aws/sagemaker/TrainingJobs, stream <job>/algo-1-<epoch>) when it is created.
        original(self, account_id, region_name, training_job_name, *args, **kwargs)
        created.append(training_job_name)
        logs = logs_backends[account_id][region_name]
        if "/aws/sagemaker/TrainingJobs" not in logs.groups:
            logs.create_log_group("/aws/sagemaker/TrainingJobs", {})
        stream = f"{training_job_name}/algo-1-1700000000"
        logs.create_log_stream("/aws/sagemaker/TrainingJobs", stream)
        now = int(time.time() * 1000)
        lines = ["epoch 1 loss 0.69", "epoch 1 accuracy 0.81"]
        logs.put_log_events(
            "/aws/sagemaker/TrainingJobs", stream, [{"timestamp": now + i, "message": m} for i, m in enumerate(lines)]
        )

    monkeypatch.setattr(FakeTrainingJob, "__init__", init_and_log)
    result = run_cli(
        "migrate", str(sentiment / "job.yaml"), "--to", "aws", "--bucket", f"s3://{s3_bucket}", "--submit", timeout=180
    )
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout.splitlines()
    assert any(line.strip().startswith("inputs.train") and "uploaded" in line for line in out), result.stdout
    submitted = [line for line in out if line.startswith("submitted aws-")]
    assert len(submitted) == 1 and len(created) == 1
    after = out[out.index(submitted[0]) + 1 :]
    assert after[:2] == ["epoch 1 loss 0.69", "epoch 1 accuracy 0.81"], "the job's log lines are streamed"
    assert after[-1].split() == [submitted[0].split()[1], "SUCCEEDED"]
    assert load_job_spec(sentiment / "job.aws.yaml").provider == "aws"
    described = aws_env.client("sagemaker").describe_training_job(TrainingJobName=created[0])
    assert described["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"].startswith(f"s3://{s3_bucket}/")


def test_one_prefix_however_the_bucket_is_given_and_no_test_settings_in_the_spec(
    aws_env, s3_bucket, sentiment, monkeypatch  # noqa: F811
) -> None:
    by_flag = migrate(sentiment / "job.yaml", "aws", bucket=f"s3://{s3_bucket}", dry_run=True)
    monkeypatch.setenv("CLOUDBRIDGE_AWS_BUCKET", s3_bucket)
    from cloudbridge.backends import clear_provider_cache

    clear_provider_cache()  # settings are read when the provider is built
    by_setting = migrate(sentiment / "job.yaml", "aws", dry_run=True)
    assert by_setting.prefix == by_flag.prefix, "no doubled cloudbridge/ prefix"
    assert "/cloudbridge/cloudbridge/" not in by_setting.prefix
    migrate(sentiment / "job.yaml", "aws")
    text = (sentiment / "job.aws.yaml").read_text()
    assert os.environ.get("AWS_ENDPOINT_URL", "").startswith("http"), "the moto server is configured by env"
    assert "endpoint_url" not in text and "127.0.0.1" not in text, text
