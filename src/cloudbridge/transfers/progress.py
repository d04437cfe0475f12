"""Progress reporting for transfers: a rich bar on a terminal, nothing in a pipe, or a callback.

``make_progress(progress)`` turns the ``progress=`` argument of :func:`cloudbridge.transfers.sync.sync`
into a reporter: ``None`` means a rich bar when stderr is a terminal and silence otherwise,
``True``/``False`` force it on or off, and a callable receives one dict per event
(``{"event": "start"|"bytes"|"done"|"error", ...}``).

Sizes use one convention everywhere -- the bar, its rate, the summaries, ``ls``/``du`` and the
workdir manifest: binary units with their IEC names (1 KiB = 1024 B), from :func:`human_bytes`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["BINARY_UNITS", "Reporter", "human_bytes", "make_progress"]

#: Unit names of :func:`human_bytes`, in steps of 1024.
BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(n: float) -> str:
    """``n`` bytes for people, in binary units: ``"512 B"``, ``"1.5 KiB"``, ``"64.0 MiB"``."""
    for unit in BINARY_UNITS:
        if abs(n) < 1024 or unit == BINARY_UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} {BINARY_UNITS[-1]}"  # pragma: no cover - the loop always returns


class Reporter:
    """Silent reporter; the base of the others. All methods are thread-safe."""

    def start(self, files: int, total_bytes: int, label: str = "") -> None:
        """A transfer of ``files`` objects, ``total_bytes`` bytes, begins."""

    def bytes(self, n: int) -> None:
        """``n`` more bytes were moved."""

    def done(self, key: str, size: int) -> None:
        """One object finished."""

    def error(self, key: str, message: str) -> None:
        """One object failed for good."""

    def close(self) -> None:
        """The transfer ended."""


class CallbackReporter(Reporter):
    """Sends each event as a dict to a user callable."""

    def __init__(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self.callback = callback
        self.lock = threading.Lock()

    def _emit(self, **event: Any) -> None:
        with self.lock:
            self.callback(event)

    def start(self, files: int, total_bytes: int, label: str = "") -> None:
        self._emit(event="start", files=files, bytes=total_bytes, label=label)

    def bytes(self, n: int) -> None:
        self._emit(event="bytes", bytes=n)

    def done(self, key: str, size: int) -> None:
        self._emit(event="done", key=key, size=size)

    def error(self, key: str, message: str) -> None:
        self._emit(event="error", key=key, message=message)


class RichReporter(Reporter):
    """A rich progress bar on stderr: files done, bytes, bytes/s and ETA (binary units)."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class RateColumn(ProgressColumn):
            """Bytes per second in the same binary units as the byte counts."""

            def render(self, task: Any) -> Text:
                speed = task.finished_speed or task.speed
                return Text("?" if speed is None else f"{human_bytes(speed)}/s", style="progress.data.speed")

        self.lock = threading.Lock()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[files]}"),
            DownloadColumn(binary_units=True),
            RateColumn(),
            TimeRemainingColumn(),
            console=console if console is not None else Console(stderr=True),
        )
        self.task: Any = None
        self.files_total = 0
        self.files_done = 0
        self.files_failed = 0

    def _files(self) -> str:
        failed = f", {self.files_failed} failed" if self.files_failed else ""
        return f"{self.files_done}/{self.files_total} files{failed}"

    def start(self, files: int, total_bytes: int, label: str = "") -> None:
        with self.lock:
            self.files_total = files
            self.progress.start()
            self.task = self.progress.add_task(label or "sync", total=max(total_bytes, 1), files=self._files())

    def bytes(self, n: int) -> None:
        with self.lock:
            if self.task is not None:
                self.progress.advance(self.task, n)

    def done(self, key: str, size: int) -> None:
        with self.lock:
            self.files_done += 1
            if self.task is not None:
                self.progress.update(self.task, files=self._files())

    def error(self, key: str, message: str) -> None:
        with self.lock:
            self.files_done += 1  # finished, though not copied: the count still reaches the total
            self.files_failed += 1
            if self.task is not None:
                self.progress.update(self.task, files=self._files())
            self.progress.console.print(f"[red]failed[/red] {key}: {message}", markup=True, highlight=False)

    def close(self) -> None:
        with self.lock:
            self.progress.stop()


def make_progress(progress: bool | Callable[[dict[str, Any]], None] | Reporter | None) -> Reporter:
    """The reporter for a ``progress=`` argument (see the module docstring)."""
    if isinstance(progress, Reporter):
        return progress
    if callable(progress):
        return CallbackReporter(progress)
    if progress is None:
        progress = sys.stderr.isatty()
    return RichReporter() if progress else Reporter()
