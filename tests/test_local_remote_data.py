"""Local jobs reading and writing URIs of another provider's storage.

The example plugin ``cloudbridge-dirstore`` (``dir://bucket/key``, found by entry point, also by
the supervisor process) stands in for a cloud bucket: inputs given as URIs are downloaded before the
command starts, outputs and checkpoints are uploaded when it ends -- also after a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_dirstore import install_dirstore
from fixtures_local import local_compute, spec

import cloudbridge as cb
from cloudbridge.errors import InvalidURI
from cloudbridge.records import JobState


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    install_dirstore(monkeypatch, tmp_path)
    monkeypatch.setenv("CLOUDBRIDGE_DIRSTORE_ROOT", str(tmp_path / "dirstore"))
    monkeypatch.setenv("CLOUDBRIDGE_DIRSTORE_CREATE_BUCKETS", "true")
    store = cb.storage("dir://data")
    store.write_bytes("dir://data/train/part-0.csv", b"a,b\n1,2\n")
    store.write_bytes("dir://data/train/sub/part-1.csv", b"3,4\n")
    store.write_bytes("dir://data/labels.txt", b"pos\nneg\n")
    store.write_bytes("dir://data/ckpt/step-1/state.bin", b"resume-me")
    return "dir://data"


def test_uri_inputs_outputs_and_checkpoints(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bucket: str) -> None:
    compute = local_compute(monkeypatch)
    run = (
        "set -e; cat $CB_INPUT_TRAIN/part-0.csv $CB_INPUT_TRAIN/sub/part-1.csv; cat $CB_INPUT_LABELS/labels.txt; "
        "cat $CB_CHECKPOINT_DIR/step-1/state.bin; echo; echo step-2 > $CB_CHECKPOINT_DIR/step-2.txt; "
        "mkdir -p $CB_MODEL_DIR/tok; echo weights > $CB_MODEL_DIR/model.bin; echo v > $CB_MODEL_DIR/tok/vocab.txt; "
        "exit 7"
    )
    job = compute.submit(spec(tmp_path, run, inputs={"train": f"{bucket}/train", "labels": f"{bucket}/labels.txt"},
                              outputs={"model": f"{bucket}/runs/model"}, checkpoints=f"{bucket}/ckpt"))
    job = compute.wait(job.id, 60)
    lines = list(compute.logs(job.id))
    assert job.state == JobState.FAILED and job.reason == "non-zero exit (code 7)", (job.detail, lines)
    assert {"a,b", "1,2", "3,4", "pos", "neg", "resume-me"} <= set(lines)
    store = cb.storage(bucket)
    assert store.read_bytes(f"{bucket}/runs/model/model.bin") == b"weights\n"
    assert store.read_bytes(f"{bucket}/runs/model/tok/vocab.txt") == b"v\n"
    assert store.read_bytes(f"{bucket}/ckpt/step-2.txt") == b"step-2\n"
    assert job.outputs_uri == f"{bucket}/runs/model"


def test_missing_uri_input_fails_the_job_with_the_cause(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bucket: str
) -> None:
    compute = local_compute(monkeypatch)
    job = compute.wait(compute.submit(spec(tmp_path, "echo never", inputs={"x": "dir://nobucket/none"})).id, 60)
    assert job.state == JobState.FAILED and job.reason == "input download failed", job.detail
    assert "dir://nobucket/none" in job.detail
    assert "never" not in list(compute.logs(job.id))


def test_unserved_scheme_is_refused_at_submit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLOUDBRIDGE_DISABLE_PLUGINS", "gcp")  # gs:// unserved even where cloudbridge-gcp is installed
    compute = local_compute(monkeypatch)
    with pytest.raises(InvalidURI, match="gs://"):
        compute.submit(spec(tmp_path, "echo", inputs={"x": "gs://bucket/data"}))
