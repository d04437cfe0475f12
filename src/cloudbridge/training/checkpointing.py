"""Atomic checkpoints and automatic resume.

A checkpoint is ``<dir>/step-000040/``: ``accelerator.save_state`` output plus ``trainer_state.json``,
first written to ``<dir>/.tmp-step-000040`` by every process, then renamed into place by each node's
first process and sealed with a ``COMPLETE`` marker. Only sealed checkpoints are resume candidates;
when the newest one cannot be loaded (a corrupt file) the previous one is tried, with a warning.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from typing import Any

from cloudbridge.errors import UserError

__all__ = ["CheckpointManager", "check_writable"]

MARKER = "COMPLETE"
STATE_FILE = "trainer_state.json"
_PREFIX = "step-"


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
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp, exist_ok=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(tmp)
        if accelerator.is_main_process:
            with open(os.path.join(tmp, STATE_FILE), "w", encoding="utf-8") as handle:
                json.dump(state, handle, indent=2)
        accelerator.wait_for_everyone()
        if accelerator.is_local_main_process and os.path.isdir(tmp):
            shutil.rmtree(final, ignore_errors=True)
            try:
                os.replace(tmp, final)
            except FileNotFoundError:
                pass  # another node's process renamed it on a shared filesystem
            with open(os.path.join(final, MARKER), "w", encoding="utf-8") as handle:
                handle.write(f"{step}\n")
            self._prune()
        accelerator.wait_for_everyone()
        return final

    def _prune(self) -> None:
        for _, path in self.complete()[: -self.keep]:
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
