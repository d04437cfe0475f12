"""Whole-line output for every Python process of a local job.

The local backend puts this folder first on ``PYTHONPATH``. Python imports ``sitecustomize`` at
start-up, so each process of the job -- the launcher, torchrun's workers, the user's script --
switches its stdout and stderr to line buffering, also under ``PYTHONUNBUFFERED``. A line then
reaches the shared log in one ``write()``, so two ranks printing at once can no longer splice
their lines together (unbuffered ``print`` writes the text and its newline separately), and
logs still stream live.

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


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_line_buffer()
_chain()
