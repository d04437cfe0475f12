"""Reading a job's metric series: ``Job.metric_history()``, ``cloudbridge metrics`` and the dashboard.

A job records its series with :func:`cloudbridge.runtime.log_metrics` as ``metrics.jsonl`` in its
output dir (see :mod:`cloudbridge.runtime.metrics` for the record format). Here:

* :class:`SeriesTail` reads such a file incrementally (byte offset, whole lines only), so a
  running local job's series is followed without re-reading it;
* :class:`MetricHistory` holds the points and tables, and answers per-step and per-epoch series,
  the latest values and the job's main metric;
* :func:`series_location` finds a job's file: the local job folder, or the job's outputs in
  storage, also inside their ``*.tar.gz`` archives (downloaded into
  ``CLOUDBRIDGE_HOME/metrics/<job id>/`` when remote).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudbridge.records import Job

__all__ = ["HOW_TO_RECORD", "MAIN_METRICS", "SERIES_FILE", "MetricHistory", "SeriesTail", "history_of",
           "fetch_remote_files", "main_metric", "read_history", "series_location"]

SERIES_FILE = "metrics.jsonl"
#: Preferred metrics for a one-number summary (``jobs``' METRIC column), best first.
MAIN_METRICS = ("accuracy", "f1", "f1_macro", "eval_loss", "loss")
#: What to tell someone whose job recorded no series.
HOW_TO_RECORD = ("no metrics recorded; record them from the job with "
                 "`from cloudbridge.runtime import log_metrics; log_metrics(step=step, epoch=epoch, loss=loss)` "
                 "(cloudbridge-finetune does this itself)")


class SeriesTail:
    """Reads new whole lines of a ``metrics.jsonl`` file on each :meth:`read` (bad lines skipped)."""

    def __init__(self, path: str | os.PathLike[str], offset: int = 0) -> None:
        """Follow ``path`` from byte ``offset``."""
        self.path = Path(path)
        self.offset = offset

    def read(self) -> list[dict[str, Any]]:
        """The records appended since the last call (a line still being written waits for the next)."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        records = []
        for line in chunk[: end + 1].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


@dataclass
class MetricHistory:
    """A job's metric series: ``points`` (``step``, ``epoch``, ``time``, ``values``) and the latest tables."""

    job_id: str | None = None
    points: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str | None = None

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        """Add records read from a series file (value points and tables)."""
        for record in records:
            if "table" in record:
                self.tables[str(record["table"])] = record
            elif isinstance(record.get("values"), dict):
                self.points.append(record)

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.points)

    def __bool__(self) -> bool:
        return bool(self.points or self.tables)

    def names(self) -> list[str]:
        """Every metric name, in the order first recorded."""
        seen: dict[str, None] = {}
        for point in self.points:
            for name in point["values"]:
                seen.setdefault(name, None)
        return list(seen)

    def series(self, name: str) -> list[tuple[int, float]]:
        """``(step, value)`` for each step that recorded ``name``, by step (points without a step use
        their index; a step recorded twice, as after a resume, keeps its last value)."""
        by_step: dict[int, float] = {}
        for index, point in enumerate(self.points):
            value = point["values"].get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                step = point.get("step")
                by_step[int(step) if step is not None else index] = float(value)
        return sorted(by_step.items())

    def per_epoch(self, name: str) -> list[tuple[float, float]]:
        """``(epoch, value)``: the last value of ``name`` recorded in each epoch."""
        last: dict[float, float] = {}
        for point in self.points:
            value, epoch = point["values"].get(name), point.get("epoch")
            if epoch is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
                last[float(epoch)] = float(value)
        return sorted(last.items())

    def latest(self) -> dict[str, Any]:
        """The last value of every metric, plus the last ``step`` and ``epoch``."""
        values: dict[str, Any] = {}
        for point in self.points:
            values.update({k: v for k, v in point["values"].items() if v is not None})
            if point.get("step") is not None:
                values["step"] = point["step"]
            if point.get("epoch") is not None:
                values["epoch"] = point["epoch"]
        return values

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the job id, the source file, the latest values, every point and table."""
        return {"job_id": self.job_id, "source": self.source, "latest": self.latest(), "points": self.points,
                "tables": self.tables}


def main_metric(values: dict[str, Any]) -> tuple[str, float] | None:
    """The one number that sums a job up (accuracy, F1, eval loss, loss: the first present)."""
    for name in MAIN_METRICS:
        value = values.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return name, float(value)
    return None


def read_history(path: str | os.PathLike[str], job_id: str | None = None) -> MetricHistory:
    """Every record of the series file at ``path`` (an empty history when there is none)."""
    history = MetricHistory(job_id=job_id, source=str(path))
    history.extend(SeriesTail(path).read())
    return history


def _local_candidates(job: Job) -> list[Path]:
    job_dir = job.extra.get("job_dir")
    candidates = []
    if job_dir:
        candidates.append(Path(job_dir) / "output" / SERIES_FILE)
    if job.outputs_uri:
        from cloudbridge.uri import is_remote, parse_uri

        if not is_remote(job.outputs_uri):
            base = Path(parse_uri(job.outputs_uri).path)
            candidates += [base / SERIES_FILE, base.parent / SERIES_FILE]
    return candidates


def fetch_remote_files(job: Job, wanted: Any, folder: str) -> Path | None:
    """Download the files of ``job``'s remote outputs whose name ``wanted(name)`` accepts.

    Files are looked for as objects under ``outputs_uri`` and inside its ``*.tar.gz`` archives
    (SageMaker packs the output dir as ``output.tar.gz``). They land under
    ``CLOUDBRIDGE_HOME/<folder>/<job id>/`` with their relative paths; a finished job is fetched
    once. Returns that folder, or ``None`` when nothing matched (or the outputs are local).
    """
    import tarfile
    import tempfile

    from cloudbridge.errors import CloudbridgeError, UnsafeKey
    from cloudbridge.settings import cloudbridge_home
    from cloudbridge.transfers import storage_for
    from cloudbridge.transfers.download import checked_join
    from cloudbridge.uri import is_remote

    if not job.outputs_uri or not is_remote(job.outputs_uri):
        return None
    target = cloudbridge_home() / folder / job.id
    if not target.exists():  # state is private: the folder, its sub-folders and files (0700/0600)
        from cloudbridge.settings import private_dir

        private_dir(cloudbridge_home() / folder)
        private_dir(target)
    if job.state.is_terminal and (target / ".complete").exists():
        return target
    found = False
    try:
        storage = storage_for(job.outputs_uri)
        for info in storage.list(job.outputs_uri, recursive=True):
            name = info.key.rsplit("/", 1)[-1]
            if wanted(name):
                try:
                    local = checked_join(target, info.key)  # a hostile key must not land outside target
                except UnsafeKey:
                    continue
                local.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                storage.download(info.uri, local)
                found = True
            elif name.endswith(".tar.gz") and name != "model.tar.gz":
                with tempfile.TemporaryDirectory() as tmp:
                    archive = Path(tmp) / name
                    storage.download(info.uri, archive)
                    with tarfile.open(archive) as tar:
                        for member in tar.getmembers():
                            parts = Path(member.name).parts
                            if not member.isfile() or not wanted(parts[-1]) or ".." in parts or \
                                    Path(member.name).is_absolute():
                                continue
                            local = target.joinpath(*parts)
                            local.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                            source = tar.extractfile(member)
                            if source is not None:
                                fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                                with os.fdopen(fd, "wb") as out:
                                    out.write(source.read())
                                found = True
    except (CloudbridgeError, OSError, tarfile.TarError):
        return target if target.exists() else None
    if found and job.state.is_terminal:
        (target / ".complete").touch(mode=0o600)
    return target if found else None


def _fetch_remote(job: Job) -> Path | None:
    folder = fetch_remote_files(job, lambda name: name == SERIES_FILE, "metrics")
    if folder is None:
        return None
    return next(iter(sorted(folder.rglob(SERIES_FILE))), None)


def series_location(job: Job, *, fetch: bool = True) -> Path | None:
    """The local path of ``job``'s ``metrics.jsonl``, downloading it from remote outputs if ``fetch``."""
    for path in _local_candidates(job):
        if path.is_file():
            return path
    return _fetch_remote(job) if fetch else None


def history_of(job: Job, *, fetch: bool = True) -> MetricHistory:
    """``job``'s metric series (empty when it recorded none); see :meth:`cloudbridge.records.Job.metric_history`."""
    path = series_location(job, fetch=fetch)
    if path is None:
        return MetricHistory(job_id=job.id)
    return read_history(path, job.id)
