"""Atomic checkpoints and automatic resume.

A checkpoint is ``<dir>/step-000040/``: ``accelerator.save_state`` output plus ``trainer_state.json``,
first written to ``<dir>/.tmp-step-000040`` by every process, then renamed into place by each node's
first process and sealed with a ``COMPLETE`` marker. Only sealed checkpoints are resume candidates;
when the newest one cannot be loaded (a corrupt file) the previous one is tried, with a warning.

Every node finalizes (on SageMaker each host has its own ``/opt/ml/checkpoints``), and the same steps
are safe when the nodes share one directory (Vertex AI's ``/gcs`` mount, NFS): leftovers of the step
(a half-written temp directory, a stale checkpoint of the same step) are removed *before* the first
barrier, so after the save barrier nothing is ever deleted again; the rename is atomic and the
loser of a rename race finds the directory already in place; sealing writes the same marker
atomically, so doing it twice is harmless.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from typing import Any

from cloudbridge.errors import CloudbridgeError, UserError

__all__ = ["CheckpointError", "CheckpointManager", "check_writable"]

MARKER = "COMPLETE"
STATE_FILE = "trainer_state.json"
_PREFIX = "step-"


class CheckpointError(CloudbridgeError):
    """A checkpoint could not be finalized (its files disappeared while it was being saved)."""


def check_writable(path: str, option: str) -> None:
    """Create ``path`` if needed and prove a file can be written there; :class:`UserError` if not."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".cb-write-probe-{os.getpid()}")
        with open(probe, "w", encoding="utf-8") as handle:
            handle.write("ok")
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{option} {path} is not writable: {exc.strerror or exc}") from exc


class CheckpointManager:
    """Writes, lists, prunes and loads the checkpoints in ``directory``."""

    def __init__(self, directory: str, keep: int = 2) -> None:
        """Manage ``directory``, keeping the newest ``keep`` sealed checkpoints (at least one)."""
        self.directory = directory
        self.keep = max(keep, 1)

    def complete(self) -> list[tuple[int, str]]:
        """``(step, path)`` of every sealed checkpoint, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        found = []
        for name in os.listdir(self.directory):
            path = os.path.join(self.directory, name)
            digits = name[len(_PREFIX) :]
            if name.startswith(_PREFIX) and digits.isdigit() and os.path.isfile(os.path.join(path, MARKER)):
                found.append((int(digits), path))
        return sorted(found)

    def save(self, accelerator: Any, step: int, state: dict[str, Any]) -> str:
        """Save a checkpoint at ``step`` (call on every process); returns its final path."""
        name = f"{_PREFIX}{step:06d}"
        tmp = os.path.join(self.directory, f".tmp-{name}")
        final = os.path.join(self.directory, name)
        if accelerator.is_local_main_process:
            # Before anyone writes: on a shared directory no node may delete after another renamed.
            shutil.rmtree(final, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp, exist_ok=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(tmp)
        if accelerator.is_main_process:
            with open(os.path.join(tmp, STATE_FILE), "w", encoding="utf-8") as handle:
                json.dump(state, handle, indent=2)
        accelerator.wait_for_everyone()
        if accelerator.is_local_main_process:
            self._finalize(tmp, final, step)
            self._prune(keep_path=final)
        accelerator.wait_for_everyone()
        return final

    @staticmethod
    def _finalize(tmp: str, final: str, step: int) -> None:
        """Rename ``tmp`` to ``final`` and seal it; idempotent across nodes sharing the directory."""
        try:
            os.replace(tmp, final)
        except FileNotFoundError:
            if not os.path.isdir(final):  # neither here nor renamed by another node: the save was lost
                raise CheckpointError(f"checkpoint {final}: {tmp} vanished before it could be renamed") from None
        marker = os.path.join(final, f".{MARKER}.{uuid.uuid4().hex}")  # unique across hosts sharing the dir
        with open(marker, "w", encoding="utf-8") as handle:
            handle.write(f"{step}\n")
        os.replace(marker, os.path.join(final, MARKER))

    def _prune(self, keep_path: str) -> None:
        for _, path in self.complete()[: -self.keep]:
            if path != keep_path:  # e.g. --no-resume beside newer checkpoints of an older run
                shutil.rmtree(path, ignore_errors=True)

    def load_latest(self, accelerator: Any) -> dict[str, Any] | None:
        """Load the newest loadable checkpoint into ``accelerator``; its trainer state, or ``None``."""
        for step, path in reversed(self.complete()):
            try:
                with open(os.path.join(path, STATE_FILE), encoding="utf-8") as handle:
                    state = json.load(handle)
                accelerator.load_state(path)
            except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint means "try the previous one"
                message = f"checkpoint {path} is corrupt ({type(exc).__name__}: {exc}); trying the previous one"
                if accelerator.is_main_process:
                    warnings.warn(message, RuntimeWarning, stacklevel=2)
                    print(f"warning: {message}", flush=True)
                continue
            state["checkpoint_step"] = step
            return state
        return None
