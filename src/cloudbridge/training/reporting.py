"""What a run reports: log lines and a rich progress bar on the main process, ``metrics.json``."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

__all__ = ["Reporter", "write_json_atomic"]


def write_json_atomic(path: str, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so readers never see a half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".metrics-", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


class Reporter:
    """Prints on the main process only; everything else is silent."""

    def __init__(self, is_main: bool, total_steps: int, initial_step: int = 0) -> None:
        """Start a progress bar of ``total_steps`` at ``initial_step`` when this is the main process on a TTY."""
        self.is_main = is_main
        self._progress = None
        self._task = None
        if is_main and sys.stdout.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
            )
            self._task = self._progress.add_task("train", total=total_steps, completed=initial_step, info="")
            self._progress.start()

    def line(self, text: str) -> None:
        """One log line (main process only)."""
        if not self.is_main:
            return
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, markup=False)
        else:
            print(text, flush=True)

    def advance(self, step: int, info: str) -> None:
        """Move the progress bar to ``step``."""
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=info)

    def close(self) -> None:
        """Stop the progress bar."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
