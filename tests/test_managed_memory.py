"""The managed-jobs core against its in-memory reference adapter (``cloudbridge.managed.memory``).

The pretend service keeps jobs in a dict; :class:`MemoryDriver` moves them between states as a real
service would. A fresh :class:`MemoryAdapter` on the same :class:`MemoryService` is another process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.managed import ManagedCompute
from cloudbridge.managed.memory import MemoryAdapter, MemoryService
from cloudbridge.planner.catalog import Catalog, CatalogRow
from cloudbridge.specs import JobSpec
from cloudbridge.testing.managed import ManagedComputeConformance, ManagedDriver, check_snapshot
from cloudbridge.transfers import storage_for

CATALOG = Catalog([CatalogRow("memory", "local", "mem.gpu", None, 0, 0.0, 8, 32, 2.5, 0.9, "test", "2026-01-01")])


class MemoryDriver(ManagedDriver):
    """Moves :class:`MemoryService` jobs between states."""

    failure_messages = {
        "exit code 3": "non-zero exit (code 3)",
        "CUDA out of memory": "out of memory",
        "quota exceeded for gpus": "quota exceeded",
        "image not found: cb/train:1": "image pull failed",
        "the machine caught fire": "failed",
    }

    def __init__(self, service: MemoryService) -> None:
        self.service = service

    def provisioning(self, native_id: str) -> None:
        self.service.jobs[native_id].status = "PROVISIONING"

    def running(self, native_id: str) -> None:
        job = self.service.jobs[native_id]
        job.status, job.started = "RUNNING", time.time()

    def failed(self, native_id: str, message: str) -> None:
        job = self.service.jobs[native_id]
        job.status, job.message, job.ended = "FAILED", message, time.time()
        job.logs = [f"step {i}" for i in range(30)]

    def hit_runtime_cap(self, native_id: str, used: int) -> None:
        job = self.service.jobs[native_id]
        job.status, job.used, job.ended = "TIMED_OUT", used, time.time()

    def spot_gave_up(self, native_id: str, interruptions: int, used: int) -> None:
        job = self.service.jobs[native_id]
        job.status, job.preemptions, job.used, job.ended = "PREEMPTED", interruptions, used, time.time()

    def age(self, native_id: str, seconds: float) -> None:
        self.service.jobs[native_id].created -= seconds

    def runtime_cap(self, native_id: str) -> int:
        return int(self.service.jobs[native_id].request["timeout"])

    def was_stopped(self, native_id: str) -> bool:
        return self.service.jobs[native_id].status == "STOPPED"


class TestMemoryManagedCompute(ManagedComputeConformance):
    @pytest.fixture
    def service(self) -> MemoryService:
        return MemoryService()

    @pytest.fixture
    def other_process(self, service: MemoryService, tmp_path: Path) -> Callable[[], ManagedCompute]:
        store = tmp_path / "store"
        return lambda: ManagedCompute(MemoryAdapter(service, str(store / "code"), CATALOG), storage_for(str(store)))

    @pytest.fixture
    def managed_compute(self, other_process: Callable[[], ManagedCompute]) -> ManagedCompute:
        return other_process()

    @pytest.fixture
    def driver(self, service: MemoryService) -> ManagedDriver:
        return MemoryDriver(service)

    @pytest.fixture
    def checkpoints_uri(self, tmp_path: Path) -> str:
        return str(tmp_path / "checkpoints")

    @pytest.fixture
    def make_spec(self, tmp_path: Path) -> Callable[..., JobSpec]:
        workdir = tmp_path / "work"
        workdir.mkdir(exist_ok=True)
        (workdir / "train.py").write_text("print('training')\n")

        def make(name: str = "mem", **fields: Any) -> JobSpec:
            return JobSpec(name=name, provider="memory", run="python train.py", workdir=str(workdir), **fields)

        return make


def test_a_broken_adapter_is_named_with_its_method_and_field(tmp_path: Path) -> None:
    service = MemoryService()
    adapter = MemoryAdapter(service, str(tmp_path / "code"), CATALOG)
    from cloudbridge.managed.memory import MemoryJob

    service.jobs["j1"] = MemoryJob({"name": "j1", "timeout": 60, "machine": "m", "labels": {}})
    snap = adapter.describe("j1")
    snap.created_at = "yesterday"  # type: ignore[assignment]
    with pytest.raises(AssertionError, match=r"^MemoryAdapter.describe: Snapshot.created_at must be float or int "
                                             r"or None, got str"):
        check_snapshot(adapter, snap)
    snap.created_at, snap.limit_stop = None, "budget"  # type: ignore[assignment]
    with pytest.raises(AssertionError, match=r"MemoryAdapter.list_jobs: Snapshot.limit_stop must be 'runtime'"):
        check_snapshot(adapter, snap, "list_jobs")


def test_reference_adapter_stays_small() -> None:
    """The worked example in docs/plugins.md quotes this size: keep it honest."""
    import re

    import cloudbridge.managed.memory as memory

    source = Path(memory.__file__).read_text()
    lines = source.count("\n")
    adapter = source[source.index("class MemoryAdapter("):].count("\n")
    assert lines <= 150, f"memory.py grew to {lines} lines; update docs/plugins.md if that is intended"
    docs = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    quoted = re.search(r"\*\*(\d+) lines\*\* \((\d+) of them the adapter class\)", docs)
    assert quoted, "docs/plugins.md no longer quotes the reference adapter's size"
    assert (int(quoted[1]), int(quoted[2])) == (lines, adapter), "docs/plugins.md quotes another size"


def test_a_failed_jobs_detail_ends_with_its_last_log_lines_redacted(tmp_path: Path) -> None:
    """The core appends the failure tail (the last 20 log lines, through the adapter) with secrets redacted."""
    from cloudbridge.managed.compute import TAIL_LINES
    from cloudbridge.redaction import REDACTED

    service = MemoryService()
    store = tmp_path / "store"
    compute = ManagedCompute(MemoryAdapter(service, str(store / "code"), CATALOG), storage_for(str(store)))
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "train.py").write_text("print('training')\n")
    job = compute.submit(JobSpec(name="tail", provider="memory", run="python train.py", workdir=str(tmp_path / "work")))
    token = "hf_" + "aBcD1234" * 5
    remote = service.jobs[job.native_id]
    remote.logs = [f"step {i}" for i in range(40)] + [f"pushing with HF_TOKEN={token}"]
    remote.status, remote.message, remote.ended = "FAILED", "exit code 1", time.time()
    detail = compute.get(job.id).detail or ""
    head, _, tail = detail.partition(f"\nlast {TAIL_LINES} job log lines:\n")
    assert head.startswith("exit code 1") and TAIL_LINES == 20
    assert tail.splitlines()[:-1] == [f"step {i}" for i in range(21, 40)]
    assert token not in detail and REDACTED in tail.splitlines()[-1]
