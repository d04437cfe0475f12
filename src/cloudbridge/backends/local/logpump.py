"""Copy a local job's output into ``job.log`` without terminal escape sequences.

The command's stdout and stderr go to a pipe; a thread of the supervisor reads it and appends to
``job.log`` what a file reader wants: CSI sequences (colours, cursor moves: ``ESC [ ... final``),
OSC sequences (titles, hyperlinks: ``ESC ] ... BEL`` or ``ESC ] ... ESC \\``) and the other
two-byte ``ESC x`` escapes are removed; ``\\r\\n`` becomes ``\\n`` and a lone carriage return a line
break, so a progress bar's redraws read as one line per update instead of overwriting each other.
A sequence cut in two by the pipe's chunking is held back until its end arrives.
"""

from __future__ import annotations

import os
import re
import threading

__all__ = ["EscapeStripper", "LogPump"]

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

    def __init__(self, fd: int, log_path: str) -> None:
        super().__init__(name="cloudbridge-log-pump", daemon=True)
        self._fd = fd
        self._log_path = log_path

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
                    if cleaned:
                        out.write(cleaned)
                out.write(stripper.flush())
            finally:
                os.close(self._fd)
