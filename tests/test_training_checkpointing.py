"""Checkpoints on a filesystem that several nodes share: racing finalizers, stale leftovers, pruning.

Two "nodes" are two threads running :meth:`CheckpointManager.save` for real on one directory. Each is
its node's local main process (as with one process per node, or the first process of each node);
``wait_for_everyone`` is a real barrier between them and ``save_state`` writes what accelerate writes
per process (the model and optimizer from the global main process, a ``random_states_<rank>.pkl`` from
every process). A node can be held back after any barrier, to force the interleavings that matter.
Then a real 2-node job (``cloudbridge emulate --as vertex``: one shared ``/gcs`` checkpoint folder)
checkpoints every two steps with both nodes finalizing the same directories.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from fixtures_training import TINY_CONFIG, clean_env, write_classification

from cloudbridge.training import checkpointing
from cloudbridge.training.checkpointing import MARKER, STATE_FILE, CheckpointManager


class Node:
    """What :class:`CheckpointManager` asks of accelerate, for one node of a 2-node job (one process each)."""

    def __init__(self, rank: int, barrier: threading.Barrier, hold: Callable[[int, int], None] | None = None):
        self.process_index = rank
        self.is_main_process = rank == 0
        self.is_local_main_process = True  # every node has its own local main process
        self.barrier = barrier
        self.hold = hold
        self.barriers_passed = 0

    def wait_for_everyone(self) -> None:
        """A real barrier; then, optionally, hold this node back (a slow node)."""
        self.barrier.wait(timeout=30)
        self.barriers_passed += 1
        if self.hold:
            self.hold(self.process_index, self.barriers_passed)

    def save_state(self, directory: str) -> None:
        """Write this process's share of an accelerate checkpoint into ``directory``."""
        if self.is_main_process:
            Path(directory, "model.safetensors").write_bytes(b"weights" * 100)
            Path(directory, "optimizer.bin").write_bytes(b"adamw" * 100)
        Path(directory, f"random_states_{self.process_index}.pkl").write_bytes(b"rng %d" % self.process_index)


def _race(directory: Path, step: int, hold: Callable[[int, int], None] | None = None, keep: int = 2) -> list[str]:
    """Both nodes save ``step``; returns the paths they report (re-raising a node's exception)."""
    barrier = threading.Barrier(2)
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def node(rank: int) -> None:
        try:
            manager = CheckpointManager(str(directory), keep=keep)
            results[rank] = manager.save(Node(rank, barrier, hold), step, {"global_step": step})
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=node, args=(rank,), name=f"node-{rank}") for rank in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return [results[0], results[1]]


def _assert_sealed(path: Path, step: int) -> None:
    assert (path / MARKER).read_text() == f"{step}\n"
    assert json.loads((path / STATE_FILE).read_text()) == {"global_step": step}
    names = sorted(p.name for p in path.iterdir())
    assert names == [MARKER, "model.safetensors", "optimizer.bin", "random_states_0.pkl", "random_states_1.pkl",
                     STATE_FILE]


def test_node_clearing_leftovers_never_deletes_what_another_node_sealed(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The race of a shared filesystem: node 1 clears ``step-000040`` while node 0 renames and seals it.

    Node 0 is held 50 ms after the save barrier so node 1 reaches finalizing first, and node 1's
    deletes of the checkpoint directory made after that barrier complete only once node 0 has sealed
    it (a slow network filesystem). Removing leftovers after the save barrier would therefore delete
    node 0's sealed checkpoint; they must be removed before anyone writes.
    """
    final = tmp_path / "step-000040"
    passed: dict[int, int] = {}

    def hold(rank: int, count: int) -> None:
        passed[rank] = count
        if rank == 0 and count == 2:
            time.sleep(0.05)

    def slow_rmtree(path: str, *args: object, **kwargs: object) -> None:
        if threading.current_thread().name == "node-1" and passed.get(1, 0) >= 2 and Path(path) == final:
            deadline = time.monotonic() + 10
            while not (final / MARKER).exists() and time.monotonic() < deadline:
                time.sleep(0.005)
        shutil.rmtree(path, *args, **kwargs)

    monkeypatch.setattr(checkpointing, "shutil", SimpleNamespace(rmtree=slow_rmtree))
    paths = _race(tmp_path, 40, hold)
    assert paths == [str(final)] * 2
    _assert_sealed(final, 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000040"]  # no temp directory left
    assert CheckpointManager(str(tmp_path)).complete() == [(40, str(final))]


def test_losing_the_rename_race_is_not_an_error(tmp_path: Path) -> None:
    """Node 1 finalizes only after node 0 renamed and sealed: it finds the checkpoint in place."""
    def hold(rank: int, count: int) -> None:
        if rank == 1 and count == 2:
            deadline = time.monotonic() + 10
            while not (tmp_path / "step-000040" / MARKER).exists():
                assert time.monotonic() < deadline, "node 0 never sealed the checkpoint"
                time.sleep(0.005)

    assert _race(tmp_path, 40, hold) == [str(tmp_path / "step-000040")] * 2
    _assert_sealed(tmp_path / "step-000040", 40)


def test_stale_checkpoint_of_the_same_step_is_replaced(tmp_path: Path) -> None:
    """A sealed but corrupt step-40 (the one a resumed run fell back from) is rewritten, not trusted."""
    stale = tmp_path / "step-000040"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"truncated")
    (stale / "random_states_7.pkl").write_bytes(b"from an older, larger job")
    (stale / MARKER).write_text("40\n")
    (tmp_path / ".tmp-step-000040").mkdir()  # and a half-written one of a killed run
    (tmp_path / ".tmp-step-000040" / "random_states_0.pkl").write_bytes(b"half")
    _race(tmp_path, 40)
    _assert_sealed(stale, 40)
    assert (stale / "model.safetensors").read_bytes() == b"weights" * 100


def test_random_interleavings_and_pruning(tmp_path: Path) -> None:
    rng = random.Random(7)

    def jitter(rank: int, passed: int) -> None:
        time.sleep(rng.random() * 0.004)

    for step in (10, 20, 30, 40, 50, 60):
        _race(tmp_path, step, jitter, keep=2)
        assert [s for s, _ in CheckpointManager(str(tmp_path)).complete()][-1] == step
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000050", "step-000060"]
    for step in (50, 60):
        _assert_sealed(tmp_path / f"step-{step:06d}", step)


def test_prune_never_deletes_the_checkpoint_just_written(tmp_path: Path) -> None:
    """--no-resume in a folder with newer checkpoints of an older run: the new one survives pruning."""
    old = tmp_path / "step-000100"
    old.mkdir()
    (old / MARKER).write_text("100\n")
    _race(tmp_path, 5, keep=1)
    _assert_sealed(tmp_path / "step-000005", 5)


@pytest.mark.slow
def test_two_emulated_vertex_nodes_share_one_checkpoint_folder(tmp_path: Path) -> None:
    """Real 2-node job (one process per node): both nodes' local main processes finalize every checkpoint."""
    write_classification(tmp_path / "job" / "data")
    (tmp_path / "job" / ".cloudbridgeignore").write_text("data/\n")
    spec = tmp_path / "job" / "job.yaml"
    spec.write_text(
        "name: two-nodes\n"
        "workdir: .\n"
        "run: >-\n"
        f"  cloudbridge-finetune --task text-classification --model-config '{TINY_CONFIG}' --epochs 1\n"
        "  --batch-size 8 --learning-rate 3e-3 --log-steps 5 --checkpoint-steps 1 --keep-checkpoints 3\n"
        "distribution: accelerate\n"
        "resources: {nodes: 2, processes: 1}\n"
        "inputs: {train: ./data}\n"
        "env: {HF_HUB_OFFLINE: '1'}\n"
    )
    root = tmp_path / "root"
    cmd = [sys.executable, "-m", "cloudbridge.cli", "emulate", str(spec), "--as", "vertex", "--root", str(root),
           "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout[proc.stdout.index("{\n"):])
    metrics = json.loads((Path(result["output_dir"]) / "metrics.json").read_text())
    assert metrics["num_processes"] == 2 and metrics["global_step"] == 10  # 160 examples / (2 x 8)
    ckpt = Path(result["checkpoint_dir"])
    assert sorted(os.listdir(ckpt)) == ["step-000007", "step-000008", "step-000009"]  # 9 saves, 3 kept, no temps
    for name in os.listdir(ckpt):
        files = set(os.listdir(ckpt / name))
        assert {MARKER, STATE_FILE, "random_states_0.pkl", "random_states_1.pkl"} <= files, files
