"""log_metrics: the series file, TensorBoard scalars, rank 0 only; reading it incrementally and from a job."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_storage import aws_env, moto, s3_bucket  # noqa: F401 - fixtures

from cloudbridge.metrics import MetricHistory, SeriesTail, history_of, main_metric, read_history
from cloudbridge.records import Job, JobState
from cloudbridge.runtime.metrics import MetricsLogger
from cloudbridge.runtime.tb_events import crc32c


def test_crc32c_known_vector() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(b"") == 0


def test_logger_writes_series_and_tensorboard_scalars(tmp_path: Path) -> None:
    logger = MetricsLogger(str(tmp_path / "out"))
    for step in range(1, 6):
        logger.log(step, 1, loss=1.0 / step, lr=1e-3)
    logger.log(5, 1, accuracy=0.75, eval_loss=0.5)
    logger.table("ner_per_tag", {"PER": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 3}}, epoch=1)
    logger.close()
    history = read_history(tmp_path / "out" / "metrics.jsonl")
    assert history.series("loss") == [(s, pytest.approx(1.0 / s)) for s in range(1, 6)]
    assert history.per_epoch("accuracy") == [(1.0, 0.75)]
    assert history.latest() == {"loss": pytest.approx(0.2), "lr": 1e-3, "accuracy": 0.75, "eval_loss": 0.5,
                                "step": 5, "epoch": 1}
    assert history.tables["ner_per_tag"]["rows"]["PER"]["support"] == 3
    assert all(isinstance(p["time"], float) for p in history)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "out" / "tb")).Reload()
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("loss")] == [(s, round(1 / s, 4)) for s in range(1, 6)]
    assert events.Scalars("accuracy")[0].value == pytest.approx(0.75)


SCRIPT = """
import sys
from cloudbridge.runtime import log_metrics
print(log_metrics(step=1, epoch=0, loss=float(sys.argv[1])))
"""


@pytest.mark.parametrize(("rank", "written"), [("0", True), ("1", False)])
def test_only_rank_zero_writes(tmp_path: Path, rank: str, written: bool) -> None:
    env = {"PATH": "/usr/bin:/bin", "RANK": rank, "WORLD_SIZE": "2", "CB_OUTPUT_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "0.5"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "metrics.jsonl").exists() is written
    if written:
        record = json.loads((tmp_path / "metrics.jsonl").read_text())
        assert record["values"] == {"loss": 0.5} and record["step"] == 1 and record["epoch"] == 0
        assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    else:
        assert proc.stdout.strip() == "None"


def test_tail_reads_only_whole_new_lines(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail = SeriesTail(path)
    assert tail.read() == []  # no file yet
    path.write_text('{"step": 1, "values": {"loss": 1}}\n{"step": 2, "val')
    assert [r["step"] for r in tail.read()] == [1]
    with path.open("a") as handle:
        handle.write('ues": {"loss": 0.5}}\nnot json\n')
    assert [r["step"] for r in tail.read()] == [2]
    assert tail.read() == []


def test_history_of_a_local_job_folder_and_main_metric(tmp_path: Path) -> None:
    (tmp_path / "output").mkdir()
    MetricsLogger(str(tmp_path / "output")).log(3, 1, loss=0.25)
    job = Job(id="local-00000001", provider="local", name="n", state=JobState.RUNNING,
              extra={"job_dir": str(tmp_path)})
    history = history_of(job)
    assert history.series("loss") == [(3, 0.25)] and history.job_id == "local-00000001"
    assert main_metric(history.latest()) == ("loss", 0.25)
    assert main_metric({"loss": 0.3, "accuracy": 0.9}) == ("accuracy", 0.9)
    empty = history_of(Job(id="local-2", provider="local", name="n", state=JobState.SUCCEEDED))
    assert isinstance(empty, MetricHistory) and not empty


def test_a_cloud_jobs_series_and_event_files_come_from_its_output_archive(s3_bucket: str, tmp_path: Path) -> None:  # noqa: F811
    """SageMaker packs the output dir as output.tar.gz: the series and the event files are found inside it."""
    import tarfile

    from cloudbridge.cli.tensorboard import event_dirs
    from cloudbridge.transfers import storage_for

    out = tmp_path / "data"
    logger = MetricsLogger(str(out))
    for step in (10, 20, 30):
        logger.log(step, 1, loss=1 / step)
    logger.close()
    archive = tmp_path / "output.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(out, arcname=".")
    prefix = f"s3://{s3_bucket}/runs/sst2-1/output/"
    storage = storage_for(prefix)
    storage.upload(archive, prefix + "output.tar.gz")
    storage.write_bytes(prefix + "model.tar.gz", b"not looked at")
    job = Job(id="aws-sst2-1", provider="aws", name="sst2", state=JobState.SUCCEEDED, outputs_uri=prefix)
    history = history_of(job)
    assert history.series("loss") == [(10, 0.1), (20, 0.05), (30, pytest.approx(1 / 30))]
    folder = event_dirs(job)
    assert folder is not None and list(folder.rglob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = next(folder.rglob("events.out.tfevents.*")).parent
    assert [e.step for e in EventAccumulator(str(tb)).Reload().Scalars("loss")] == [10, 20, 30]
