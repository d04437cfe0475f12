"""Copy a local job's output into ``job.log`` without terminal escape sequences.

The command's stdout and stderr go to a pipe; a thread of the supervisor reads it and appends to
``job.log`` what a file reader wants: CSI sequences (colours, cursor moves: ``ESC [ ... final``),
OSC sequences (titles, hyperlinks: ``ESC ] ... BEL`` or ``ESC ] ... ESC \\``) and the other
two-byte ``ESC x`` escapes are removed; ``\\r\\n`` becomes ``\\n`` and a lone carriage return a line
break, so a progress bar's redraws read as one line per update instead of overwriting each other.
A sequence cut in two by the pipe's chunking is held back until its end arrives.

``job.log`` lines carry no timestamps, so every append also records when it arrived: a line
``END_OFFSET UNIX_TIME`` in ``job.log.times`` (the byte offset where that write ended). ``logs --since``
starts at the end of the last write older than the cutoff (:func:`since_offset`): exact to the
write, and one write of the pump is what the command printed since the previous one.

In a job whose lines carry rank tags, repeated library warnings of ranks above 0 are dropped on the
way (:mod:`cloudbridge.backends.local.logdedup`).
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from cloudbridge.backends.local.logdedup import WarningDedup

__all__ = ["EscapeStripper", "LogPump", "record_arrival", "since_offset", "times_path"]

# complete sequences: CSI, OSC (ended by BEL or ST), charset selection, other two-byte escapes
_COMPLETE = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    rb"|\x1b[()*+][ -~]"
    rb"|\x1b[ -~]"
)
# what may still become a sequence once more bytes arrive (anchored at the end of the text)
_PARTIAL = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[()*+])?\Z")
_MAX_HELD = 4096  # an unterminated OSC longer than this is not held back any longer
_CR = re.compile(rb"\r+\n?")  # CRLF, and a redraw's lone CR, become one LF


class EscapeStripper:
    """Incremental filter: ``feed`` bytes, get them back without escapes; ``flush`` at the end."""

    def __init__(self) -> None:
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        """The part of ``held + data`` that is complete, cleaned; a possible partial escape stays held."""
        text = self._held + data
        self._held = b""
        start = text.rfind(b"\x1b")
        if start >= 0 and len(text) - start <= _MAX_HELD:
            partial = _PARTIAL.search(text, start)
            if partial is not None:
                text, self._held = text[: partial.start()], text[partial.start() :]
        if text.endswith(b"\r"):  # may be the first half of "\r\n"
            text, self._held = text[:-1], b"\r" + self._held
        return _clean(text)

    def flush(self) -> bytes:
        """Whatever is held back, cleaned (an unfinished escape loses its ESC byte)."""
        text, self._held = self._held, b""
        return _clean(text)


def _clean(text: bytes) -> bytes:
    text = _COMPLETE.sub(b"", text).replace(b"\x1b", b"")
    return _CR.sub(b"\n", text)


class LogPump(threading.Thread):
    """Reads ``fd`` (the read end of the command's output pipe) until EOF, appending to ``log_path``."""

    def __init__(self, fd: int, log_path: str, *, dedup: bool = False) -> None:
        """Pump ``fd`` into ``log_path``; ``dedup`` drops repeated warnings of ranks above 0 (see logdedup)."""
        super().__init__(name="cloudbridge-log-pump", daemon=True)
        self._fd = fd
        self._log_path = log_path
        self._dedup = WarningDedup() if dedup else None

    def run(self) -> None:
        """Copy until every writer has closed the pipe; each chunk is written and flushed at once."""
        stripper = EscapeStripper()
        with open(self._log_path, "ab", buffering=0) as out:
            try:
                while True:
                    try:
                        chunk = os.read(self._fd, 65536)
                    except InterruptedError:
                        continue
                    if not chunk:
                        break
                    cleaned = stripper.feed(chunk)
                    if self._dedup is not None:
                        cleaned = self._dedup.feed(cleaned)
                    if cleaned:
                        out.write(cleaned)
                        record_arrival(self._log_path, out.tell())
                rest = stripper.flush()
                if self._dedup is not None:
                    rest = self._dedup.feed(rest) + self._dedup.flush()
                if rest:
                    out.write(rest)
                    record_arrival(self._log_path, out.tell())
            finally:
                os.close(self._fd)


def times_path(log_path: str | Path) -> Path:
    """The arrival-time sidecar of ``log_path`` (``job.log`` -> ``job.log.times``)."""
    return Path(f"{log_path}.times")


def record_arrival(log_path: str | Path, end_offset: int) -> None:
    """Note that ``log_path`` held ``end_offset`` bytes at this moment (one append of one line)."""
    fd = os.open(times_path(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # private, as job.log
    try:
        os.write(fd, f"{end_offset} {time.time():.3f}\n".encode("ascii"))
    finally:
        os.close(fd)


def since_offset(log_path: str | Path, cutoff: float) -> int | None:
    """Byte offset of ``log_path`` from which every byte arrived at or after ``cutoff`` (unix time).

    ``None`` when the log has no sidecar (a job started before arrival times were recorded).
    Bytes written before the first recorded write (none, for a job that recorded from its start)
    count as older than any write recorded later.
    """
    try:
        text = times_path(log_path).read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    start = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and float(parts[1]) < cutoff:
            start = max(start, int(parts[0]))
    if start:  # a write that ended mid-line: its line started before the cutoff, begin at the next one
        with open(log_path, "rb") as handle:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":
                rest = handle.readline()
                start += len(rest)
    return start
