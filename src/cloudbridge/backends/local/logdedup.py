"""Drop repeated library warnings of ranks other than 0 from a multi-process job's ``job.log``.

In a job of several processes every rank imports the same libraries and prints the same warnings;
with ``[rankN] `` tags (see :mod:`cloudbridge.runtime.linebuffer`) the log holds each one once per
rank. :class:`WarningDedup` filters the pump's cleaned output line by line:

- a line of rank 0, an untagged line, and any line that is not a warning pass unchanged;
- a warning line of a rank above 0 whose text (without the tag) was already written, by any rank,
  is dropped, and so is its indented continuation line (the source line Python's ``warnings``
  prints under ``path:line: XWarning: message``);
- the first occurrence is kept, so a warning that only rank 1 prints still reaches the log;
- a multi-line warning (transformers' load report) is one block: after a dropped warning, the rank's
  next lines are dropped while they repeat, line for line, what followed the warning's first copy
  (at most :data:`MAX_BLOCK` lines); the first line that differs ends the block.

A warning is recognised by its shape: Python's ``path:line: SomethingWarning: message``, a
``logging`` line with a ``WARNING``/``WARN`` level name near its start (``WARNING:name:message``,
``... - WARNING - ...``, ``[WARNING]``), torch's C++ ``[W... file.cpp:N] message`` (its time and
pid are left out of the comparison), and the Hugging Face libraries' own handler, which prints
``[transformers] message`` (and ``[datasets]``, ``[accelerate]``, ...) only for warnings and worse
unless their verbosity is raised. A library that prints a warning without any level name cannot be
told from ordinary output and is kept.

Memory is bounded: at most :data:`MAX_KEYS` digests of seen warnings (the oldest are forgotten),
and a partial line is held back only while it may still become a warning of a rank above 0, up to
:data:`MAX_HELD` bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict

__all__ = ["DEDUP_VAR", "MAX_HELD", "MAX_KEYS", "WarningDedup", "warning_key"]

#: The job environment variable that turns the filter off (``"0"``); on by default with rank tags.
DEDUP_VAR = "CB_LOG_DEDUP_WARNINGS"
MAX_KEYS = 4096
MAX_HELD = 16384
MAX_BLOCK = 64  # continuation lines remembered per warning

_TAG = re.compile(rb"\[rank(\d+)\] ")
_TAG_START = re.compile(rb"\[(?:r(?:a(?:n(?:k\d*\]?)?)?)?)?")
_PY_WARNING = re.compile(rb"\S[^\n]*?:\d+: [A-Za-z_][\w.]*Warning: ")
_LOG_WARNING = re.compile(rb"(?:^|[\s\[|:(-])WARN(?:ING)?(?:[\s\]|:)-]|$)")
_TORCH_CPP = re.compile(rb"\[W[\d :.]*(?: +\d+)? *([^\]\s]+:\d+)\] ")
_HF_LIBRARY = re.compile(rb"\[(?:transformers|datasets|accelerate|huggingface_hub|diffusers|peft|evaluate)\] ")
_LOG_PREFIX = 120  # a logging level name counts only within this many bytes of the line's start


def warning_key(text: bytes) -> bytes | None:
    """A digest of the warning in ``text`` (one line without its rank tag), or ``None`` if it is none."""
    torch = _TORCH_CPP.match(text)
    if torch is not None:
        text = torch.group(1) + b" " + text[torch.end():]
    elif not (_PY_WARNING.match(text) or _HF_LIBRARY.match(text) or _LOG_WARNING.search(text[:_LOG_PREFIX])):
        return None
    return hashlib.blake2b(text.rstrip(), digest_size=16).digest()


class WarningDedup:
    """Incremental filter: ``feed`` cleaned bytes, get back what ``job.log`` should hold; ``flush`` at EOF."""

    def __init__(self) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._held = b""
        self._mid_line = False  # the last output ended inside a line that was passed on
        self._passed = b""  # that line's start (bounded), noted as seen once it ends
        self._skip_source: set[bytes] = set()  # ranks whose next indented line belongs to a dropped warning
        # a warning's continuation lines (transformers prints multi-line records): the lines the first
        # printer of a warning wrote right after it, and, per rank, a dropped warning's place in them
        self._blocks: OrderedDict[bytes, list[bytes]] = OrderedDict()
        self._capturing: dict[bytes, bytes] = {}  # rank -> key of the warning whose lines it is writing
        self._dropping: dict[bytes, tuple[bytes, int]] = {}  # rank -> (key, index of its next line)

    def feed(self, data: bytes) -> bytes:
        """Filter the complete lines of ``held + data``; hold a partial line only if it may be dropped."""
        text = self._held + data
        self._held = b""
        out = []
        start = 0
        if self._mid_line:  # the rest of a line already passed on
            end = text.find(b"\n")
            if end < 0:
                self._passed = (self._passed + text)[:MAX_HELD]
                return text
            out.append(text[: end + 1])
            self._keep((self._passed + text[:end])[:MAX_HELD])  # rank 0's warning counts as printed
            start, self._mid_line, self._passed = end + 1, False, b""
        while start < len(text):
            end = text.find(b"\n", start)
            if end < 0:
                rest = text[start:]
                if _may_be_dropped(rest):
                    self._held = rest
                else:
                    out.append(rest)
                    self._mid_line, self._passed = True, rest[:MAX_HELD]
                break
            if self._keep(text[start:end]):
                out.append(text[start : end + 1])
            start = end + 1
        return b"".join(out)

    def flush(self) -> bytes:
        """The held partial line, filtered as if it had ended."""
        text, self._held = self._held, b""
        self._mid_line, self._passed = False, b""
        return text if text and self._keep(text) else b""

    def _keep(self, line: bytes) -> bool:
        tag = _TAG.match(line)
        if tag is None:
            return True
        rank, body = tag.group(1), line[tag.end():]
        key = warning_key(body)
        if key is None and self._continues_dropped(rank, body):
            return False  # a line of a dropped warning's multi-line text, as its first printer wrote it
        self._dropping.pop(rank, None)
        if rank in self._skip_source:
            self._skip_source.discard(rank)
            if body[:1] in (b" ", b"\t"):
                return False  # the source line under a dropped warning
        if key is None:
            capturing = self._capturing.get(rank)
            if capturing is not None:
                block = self._blocks.get(capturing)
                if block is not None and len(block) < MAX_BLOCK:
                    block.append(body)
            return True
        self._capturing.pop(rank, None)
        if key in self._seen:
            self._seen.move_to_end(key)
            if rank != b"0":
                self._skip_source.add(rank)
                self._dropping[rank] = (key, 0)
                return False
            return True
        self._seen[key] = None
        self._blocks[key] = []
        self._capturing[rank] = key
        if len(self._seen) > MAX_KEYS:
            forgotten, _ = self._seen.popitem(last=False)
            self._blocks.pop(forgotten, None)
        return True

    def _continues_dropped(self, rank: bytes, body: bytes) -> bool:
        """Whether ``body`` is the next line of the block of the warning this rank just had dropped."""
        place = self._dropping.get(rank)
        if place is None:
            return False
        key, index = place
        block = self._blocks.get(key, [])
        if index < len(block) and block[index] == body:
            self._dropping[rank] = (key, index + 1)
            self._skip_source.discard(rank)
            return True
        return False


def _may_be_dropped(partial: bytes) -> bool:
    """Whether an unfinished line may still turn out to be a repeated warning of a rank above 0."""
    if len(partial) > MAX_HELD:
        return False
    tag = _TAG.match(partial)
    if tag is not None:
        return tag.group(1) != b"0"
    return _TAG_START.fullmatch(partial) is not None  # the tag itself is still cut
