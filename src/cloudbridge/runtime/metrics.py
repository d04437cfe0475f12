"""``log_metrics``: a job's metrics as a time series, from rank 0, on every platform.

One line in any training script records step, epoch, wall time and values::

    from cloudbridge.runtime import log_metrics
    log_metrics(step=step, epoch=epoch, loss=loss, lr=lr)

Each call appends one JSON line to ``<output dir>/metrics.jsonl`` and writes the same values as
TensorBoard scalars to ``<tensorboard dir>`` (``CB_TENSORBOARD_DIR``, else ``<output dir>/tb``).
The output dir is the platform's (:class:`~cloudbridge.runtime.RuntimeContext`: SageMaker's
``/opt/ml/output/data``, Vertex's ``AIP_MODEL_DIR`` parent, local's ``CB_OUTPUT_DIR``...), so the
series comes back with the job's outputs. Only the main process (global rank 0) writes; on every
other rank the call does nothing, so it can be called unconditionally. Lines are flushed as they
are written: ``cloudbridge metrics`` and the dashboard read a running local job's series as it grows.

A record is ``{"step": 10, "epoch": 1, "time": 1733580000.5, "values": {"loss": 0.41}}``;
:func:`log_table` adds ``{"table": "ner_per_tag", "rows": {...}}`` records for small tables.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["MetricsLogger", "configure", "log_metrics", "log_table", "metrics_logger"]

SERIES_FILE = "metrics.jsonl"


def _number(value: Any) -> Any:
    """A plain float/int for numbers (torch and numpy scalars included); other values unchanged."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            value = item()
        except (TypeError, ValueError):
            return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


class MetricsLogger:
    """Writes one job's series (JSON Lines) and its TensorBoard scalars; silent off the main process."""

    def __init__(self, output_dir: str, tensorboard_dir: str | None = None, *, enabled: bool = True) -> None:
        """``output_dir`` receives ``metrics.jsonl``; ``tensorboard_dir`` the event file (default ``output_dir/tb``)."""
        self.path = os.path.join(output_dir, SERIES_FILE)
        self.tensorboard_dir = tensorboard_dir or os.path.join(output_dir, "tb")
        self.enabled = enabled
        self._writer: Any = None
        self._lock = threading.Lock()

    def _append(self, record: dict[str, Any]) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        line = json.dumps(record, sort_keys=False, default=str) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:  # one write: readers never see half a line
            handle.write(line)

    def log(self, step: int | None = None, epoch: float | None = None, **values: Any) -> dict[str, Any] | None:
        """Record ``values`` at ``step``/``epoch``; returns the record written (``None`` when disabled)."""
        if not self.enabled:
            return None
        clean = {str(k): _number(v) for k, v in values.items()}
        record = {"step": None if step is None else int(step), "epoch": _number(epoch), "time": round(time.time(), 3),
                  "values": clean}
        with self._lock:
            self._append(record)
            if self._writer is None:
                from cloudbridge.runtime.tb_events import ScalarWriter

                self._writer = ScalarWriter(self.tensorboard_dir)
            self._writer.add_scalars(record["step"] if step is not None else 0, clean, record["time"])
        return record

    def table(self, name: str, rows: Mapping[str, Mapping[str, Any]], *, step: int | None = None,
              epoch: float | None = None) -> dict[str, Any] | None:
        """Record a small table (``row name -> {column: value}``), e.g. NER precision/recall/F1 per tag."""
        if not self.enabled:
            return None
        record = {"step": step, "epoch": _number(epoch), "time": round(time.time(), 3), "table": name,
                  "rows": {str(r): {str(c): _number(v) for c, v in cols.items()} for r, cols in rows.items()}}
        with self._lock:
            self._append(record)
        return record

    def close(self) -> None:
        """Close the TensorBoard event file."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


_default: MetricsLogger | None = None


def _is_main_process(environ: Mapping[str, str]) -> bool:
    rank = environ.get("RANK")
    if rank not in (None, ""):
        try:
            return int(rank) == 0
        except ValueError:
            return True
    from cloudbridge.runtime.context import RuntimeContext

    return RuntimeContext.detect(dict(environ), gpu_count=0).is_main_process


def configure(output_dir: str | None = None, tensorboard_dir: str | None = None, *,
              enabled: bool | None = None) -> MetricsLogger:
    """Set where :func:`log_metrics` writes (default: the platform's output and TensorBoard dirs).

    ``enabled`` defaults to "this is the main process" (global rank 0).
    """
    global _default
    if _default is not None:
        _default.close()
    environ = dict(os.environ)
    if output_dir is None or tensorboard_dir is None:
        from cloudbridge.runtime.context import RuntimeContext

        ctx = RuntimeContext.detect(environ, gpu_count=0)
        output_dir = output_dir or ctx.output_dir
        tensorboard_dir = tensorboard_dir or ctx.tensorboard_dir
    if enabled is None:
        enabled = _is_main_process(environ)
    _default = MetricsLogger(os.path.abspath(output_dir), tensorboard_dir and os.path.abspath(tensorboard_dir),
                             enabled=enabled)
    return _default


def metrics_logger() -> MetricsLogger:
    """The process-wide logger (configured from the platform on first use)."""
    return _default if _default is not None else configure()


def log_metrics(step: int | None = None, epoch: float | None = None, **values: Any) -> dict[str, Any] | None:
    """Record ``values`` (numbers) at ``step`` and ``epoch`` in the job's metric series; rank 0 only.

    Example: ``log_metrics(step=100, epoch=1, loss=0.42, accuracy=0.91)``. Returns the record
    written, or ``None`` on a process other than the main one.
    """
    return metrics_logger().log(step, epoch, **values)


def log_table(name: str, rows: Mapping[str, Mapping[str, Any]], *, step: int | None = None,
              epoch: float | None = None) -> dict[str, Any] | None:
    """Record a small table (``row -> {column: value}``) in the series; rank 0 only."""
    return metrics_logger().table(name, rows, step=step, epoch=epoch)
