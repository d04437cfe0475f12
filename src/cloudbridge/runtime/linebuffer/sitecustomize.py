"""Whole-line output for every Python process of a local job.

The local backend puts this folder first on ``PYTHONPATH``. Python imports ``sitecustomize`` at
start-up, so each process of the job -- the launcher, torchrun's workers, the user's script --
switches its stdout and stderr to line buffering, also under ``PYTHONUNBUFFERED``. A line then
reaches the shared log in one ``write()``, so two ranks printing at once can no longer splice
their lines together (unbuffered ``print`` writes the text and its newline separately), and
logs still stream live.

With ``CB_LOG_RANK_TAGS=1`` in the job's environment, every line a launched worker writes (one
with ``RANK`` set) starts with ``[rankN] ``, so the logs can be filtered by rank (the dashboard's
rank selector does). The local backend sets it for jobs of more than one process (a job's
``env: {CB_LOG_RANK_TAGS: "0"}`` turns it off); a one-process job's lines stay exactly as printed.

Any other ``sitecustomize`` further down ``sys.path`` is still run, after this one.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys


def _line_buffer() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(line_buffering=True, write_through=False)
            except (ValueError, OSError):  # a closed or non-text stream: leave it alone
                pass


class _RankTagged:
    """A text stream that starts each line with ``[rankN] `` (everything else is the wrapped stream's)."""

    def __init__(self, stream, tag: str) -> None:  # type: ignore[no-untyped-def]
        self._stream = stream
        self._tag = tag
        self._at_line_start = True

    def write(self, text: str) -> int:
        if not text:
            return 0
        lines = text.split("\n")
        out = []
        for index, piece in enumerate(lines):
            if index:
                out.append("\n")
                self._at_line_start = True
            if piece:
                if self._at_line_start:
                    out.append(self._tag)
                out.append(piece)
                self._at_line_start = False
        self._stream.write("".join(out))
        return len(text)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._stream, name)


def _tag_ranks() -> None:
    rank = os.environ.get("RANK")
    if os.environ.get("CB_LOG_RANK_TAGS") != "1" or not rank or not rank.isdigit():
        return
    sys.stdout = _RankTagged(sys.stdout, f"[rank{rank}] ")
    sys.stderr = _RankTagged(sys.stderr, f"[rank{rank}] ")


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_line_buffer()
_tag_ranks()
_chain()
