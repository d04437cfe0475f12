"""cloudbridge-finetune reading its data from a storage URI (``s3://`` on the moto server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_storage import aws_env, moto, s3_bucket  # noqa: F401 - pytest fixtures
from fixtures_training import clean_env, finetune_args, write_classification

from cloudbridge.training.cli import main, prepare


@pytest.fixture(autouse=True)
def _no_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("CB_", "SM_", "AIP_", "AZUREML_", "RANK", "WORLD_SIZE", "LOCAL_RANK")):
            monkeypatch.delenv(key)


def _upload(client, bucket: str, prefix: str, directory: Path) -> None:
    for path in sorted(directory.iterdir()):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())


def test_train_prefix_uri_is_downloaded_with_its_eval_file(aws_env, s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    data = write_classification(tmp_path / "d", n_train=30, n_test=10)
    _upload(aws_env.client("s3"), s3_bucket, "corpora/reviews", data)
    out = tmp_path / "o"
    for uri in (f"s3://{s3_bucket}/corpora/reviews/", f"s3://{s3_bucket}/corpora/reviews"):
        cfg = prepare(finetune_args(uri, out))  # type: ignore[arg-type]
        cache = out / ".cache" / "inputs" / "s3" / s3_bucket / "corpora" / "reviews"
        assert cfg.train.source == str(cache / "train.csv")
        assert cfg.evaluation.source == str(cache / "test.csv")  # found next to train.csv, not a split
        assert (cache / "train.csv").read_bytes() == (data / "train.csv").read_bytes()
        assert (len(cfg.train.examples), len(cfg.evaluation.examples), cfg.labels) == (30, 10, ["neg", "pos"])


def test_train_and_eval_object_uris(aws_env, s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    data = write_classification(tmp_path / "d", n_train=30, n_test=10)
    _upload(aws_env.client("s3"), s3_bucket, "r", data)
    args = finetune_args(f"s3://{s3_bucket}/r/train.csv", tmp_path / "o")  # type: ignore[arg-type]
    cfg = prepare([*args, "--eval", f"s3://{s3_bucket}/r/test.csv"])
    assert cfg.train.examples[0].text == (data / "train.csv").read_text().splitlines()[1].rsplit(",", 1)[0]
    assert len(cfg.evaluation.examples) == 10 and cfg.evaluation.source.endswith(f"{s3_bucket}/r/test.csv")


def test_missing_prefix_is_one_line_and_exit_2(aws_env, s3_bucket: str, tmp_path: Path,  # noqa: F811
                                               capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"s3://{s3_bucket}/nothing/here/"
    assert main(finetune_args(uri, tmp_path / "o")) == 2  # type: ignore[arg-type]
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {uri}: no such object or prefix"]


def test_fine_tune_on_s3_data_end_to_end(aws_env, s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    """A real run (tiny model, one process) whose only copy of the data is in the bucket."""
    data = write_classification(tmp_path / "d")
    _upload(aws_env.client("s3"), s3_bucket, "reviews", data)
    out = tmp_path / "o"
    args = finetune_args(f"s3://{s3_bucket}/reviews/", out, "--epochs", "3")  # type: ignore[arg-type]
    proc = subprocess.run([sys.executable, "-m", "cloudbridge.training.cli", *args], capture_output=True, text=True,
                          env=clean_env(), timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "train=160 eval=40" in proc.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final"]["accuracy"] >= 0.9 and metrics["global_step"] == 3 * 20
