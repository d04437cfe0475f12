"""Measured throughput: samples per second per GPU, by accelerator type, and what it implies.

A throughput table maps a canonical accelerator name to the samples/s **one GPU** of that type
processed in a previous run. With the number of samples a job will process (``--samples``: dataset
size x epochs), it turns into a run time -- and, with a price, into a total cost -- for any offering:

    hours = samples / (rate[accelerator] x GPUs per node x nodes) / 3600

That assumes data-parallel scaling is linear in the number of GPUs (an optimistic estimate across
nodes; communication is not modelled). A rate given for a family (``A100``) applies to its members
(``A100-80GB``) unless the member has its own.

Sources, in ``--throughput`` (``NAME=VALUE`` pairs separated by commas):

* a number: ``A100=1200`` (samples/s per GPU);
* a ``metrics.json`` written by ``cloudbridge-finetune``: ``T4=outputs/metrics.json`` --
  ``train_samples_per_second / num_processes``;
* a job id from the job store: ``A100=local-1a2b3c4d`` -- its recorded
  ``metrics.train_samples_per_second`` divided by the GPUs its spec asked for (count x nodes).

A rate measured on CPU (``device: cpu`` in the metrics, or a job whose spec asked for no GPU) is
refused: it says nothing about a GPU.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from cloudbridge.errors import UserError
from cloudbridge.planner.accelerators import UnknownAccelerator, accelerator_family, normalize_accelerator

__all__ = ["parse_throughput", "rate_for", "run_hours"]


def _positive(value: object, where: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"{where}: throughput must be a positive number of samples/s, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise UserError(f"{where}: throughput must be a positive number of samples/s, got {value!r}")
    return number


def _from_metrics_file(path: Path, where: str) -> float:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{where}: cannot read {path} as metrics.json ({exc})") from None
    rate = data.get("train_samples_per_second") if isinstance(data, dict) else None
    if rate is None:
        raise UserError(f"{where}: {path} has no train_samples_per_second (is it a cloudbridge-finetune metrics.json?)")
    _refuse_cpu(data.get("device"), where, str(path))
    processes = data.get("num_processes") or 1
    return _positive(rate, where) / max(1, int(processes))


def _refuse_cpu(device: object, where: str, what: str, *, asked_gpus: int | None = None) -> None:
    """A rate measured on CPU is not a GPU's rate: refuse it (``device`` from the metrics, or a job
    whose spec asked for no GPU)."""
    if device == "cpu" or (device is None and asked_gpus == 0):
        raise UserError(f"{where}: {what} was measured on CPU, not on a GPU; a CPU rate would make every "
                        "GPU estimate wrong",
                        hint="measure a run on that GPU type (or give its samples/s as a number)")


def _from_job(job_id: str, where: str) -> float:
    from cloudbridge.jobstore.store import JobStore
    from cloudbridge.specs import Resources

    store = JobStore.default()
    job = store.find(job_id)
    if job is None:
        raise UserError(f"{where}: {job_id!r} is not a number, a metrics.json file or a known job id",
                        hint="e.g. A100=1200, A100=outputs/metrics.json or A100=local-1a2b3c4d")
    rate = (job.metrics or {}).get("train_samples_per_second")
    if rate is None:
        raise UserError(f"{where}: job {job_id} recorded no train_samples_per_second metric")
    resources = Resources.model_validate((store.spec(job_id) or {}).get("resources") or {})
    _refuse_cpu((job.metrics or {}).get("device"), where, f"job {job_id}", asked_gpus=resources.accelerator_count)
    gpus = max(1, resources.accelerator_count) * resources.nodes
    return _positive(rate, where) / gpus


def parse_throughput(text: str | Mapping[str, object], *, vocabulary: set[str] | None = None) -> dict[str, float]:
    """``"A100=1200,T4=outputs/metrics.json"`` (or a mapping) -> ``{"A100": 1200.0, "T4": ...}``.

    Names are normalised (unknown ones are refused with the nearest known); each value is a number,
    a metrics.json path or a job id (see the module docstring). Errors name the entry.
    """
    if isinstance(text, Mapping):
        items = [(str(k), v) for k, v in text.items()]
    else:
        items = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, sep, value = part.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise UserError(f"--throughput: {part!r} is not NAME=SAMPLES_PER_SECOND (e.g. A100=1200,T4=300)")
            items.append((name.strip(), value.strip()))
    if not items:
        raise UserError("--throughput: no entries (e.g. A100=1200,T4=300)")
    rates: dict[str, float] = {}
    for name, value in items:
        where = f"--throughput {name}"
        try:
            canonical = normalize_accelerator(name, vocabulary)
        except UnknownAccelerator as exc:
            raise UserError(f"{where}: {exc.message}", hint=exc.hint) from None
        if isinstance(value, str) and not _is_number(value):
            path = Path(value).expanduser()
            rates[canonical] = _from_metrics_file(path, where) if path.is_file() else _from_job(value, where)
        else:
            rates[canonical] = _positive(value, where)
    return rates


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def rate_for(accelerator: str | None, rates: Mapping[str, float]) -> float | None:
    """Samples/s of one ``accelerator`` GPU: its own rate, else its family's, else ``None``."""
    if not accelerator:
        return None
    if accelerator in rates:
        return rates[accelerator]
    return rates.get(accelerator_family(accelerator))


def run_hours(samples: float, accelerator: str | None, gpus: int, rates: Mapping[str, float]) -> float | None:
    """Hours to process ``samples`` on ``gpus`` GPUs of ``accelerator`` (linear scaling), or ``None``
    when no rate is known for that accelerator."""
    rate = rate_for(accelerator, rates)
    if rate is None or gpus < 1:
        return None
    return samples / (rate * gpus) / 3600
