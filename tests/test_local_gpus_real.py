"""On a machine with an NVIDIA GPU: the probe finds it and a job gets it (skipped elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_local import spec

from cloudbridge.records import JobState

pytestmark = pytest.mark.gpu


def test_probe_finds_real_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDBRIDGE_FAKE_GPUS", raising=False)
    from cloudbridge.backends.local.gpus import probe_gpus

    gpus, source = probe_gpus()
    assert source in ("nvml", "nvidia-smi") and gpus, (source, gpus)
    assert all(g.memory_mb > 1024 and g.name for g in gpus)


def test_job_gets_one_real_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CLOUDBRIDGE_FAKE_GPUS", raising=False)
    from cloudbridge.backends import clear_provider_cache, get_provider

    clear_provider_cache()
    compute = get_provider("local").compute
    job = compute.wait(compute.submit(spec(tmp_path, "nvidia-smi -L; echo gpus=$CUDA_VISIBLE_DEVICES",
                                           resources={"accelerators": "GPU:1"})).id, 120)
    lines = list(compute.logs(job.id))
    assert job.state == JobState.SUCCEEDED, lines
    assert "gpus=0" in lines and sum(line.startswith("GPU ") for line in lines) == 1
