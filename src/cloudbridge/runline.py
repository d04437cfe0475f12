"""What a job's ``run:`` line means -- one definition for every platform.

* ``distribution: none``: ``run`` is a **bash command** (quoting, ``&&``, ``cd``, ``$VAR``, pipes)
  on local, SageMaker, Vertex AI and Azure ML alike.
* ``distribution: accelerate`` or ``torchrun``: ``run`` is either

  - **one command** that the launcher rewrites into ``accelerate launch`` / ``torchrun``:
    ``python SCRIPT …``, ``python -m MODULE …``, ``python -c CODE …``, ``SCRIPT.py …`` or a console
    script such as ``cloudbridge-finetune …`` -- no shell syntax (no ``&&``, ``;``, ``|``, ``>``,
    ``$VAR``, globs, ``VAR=value`` prefixes); or
  - **a bash line that calls** ``$CB_LAUNCH`` where the launcher goes, e.g.
    ``cd src && $CB_LAUNCH python train.py --out "$CB_OUTPUT_DIR"``: the line runs in bash once
    per node and ``$CB_LAUNCH python train.py`` starts that node's workers.

  Anything else is refused when the spec is validated, with one line saying how to write it.

This module is pure (no I/O) and imports only the standard library: the spec validator, the
launcher inside the job and the docs all use it.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

__all__ = ["LAUNCH_VAR", "RunLine", "classify_run", "shell_syntax"]

#: The variable a bash ``run`` line uses to start the distributed workers: ``$CB_LAUNCH python train.py``.
LAUNCH_VAR = "CB_LAUNCH"
PYTHONS = ("python", "python3")
_OPERATORS = set(";&|<>()`\n")
_GLOBS = set("*?[")


@dataclass(frozen=True)
class RunLine:
    """How a run line is executed: ``bash`` (``bash -c RUN``) or ``program`` (``words``, rewritten
    by the launcher; no shell in between)."""

    kind: str  # "bash" | "program"
    words: tuple[str, ...] = ()


def _uses_launch_var(run: str) -> bool:
    return f"${LAUNCH_VAR}" in run or f"${{{LAUNCH_VAR}}}" in run


def shell_syntax(run: str) -> str | None:
    """The first piece of shell syntax outside quotes (``"&&"``, ``"$"``, ``"*"``, ``"VAR=..."``), or ``None``.

    ``$`` counts inside double quotes too (bash expands it there); single quotes protect everything.
    """
    quote = ""
    escaped = False
    word_start = True
    for index, char in enumerate(run):
        if escaped:
            escaped = False
            word_start = False
            continue
        if quote == "'":
            if char == "'":
                quote = ""
            continue
        if char == "\\":
            escaped = True
            continue
        if quote == '"':
            if char == '"':
                quote = ""
            elif char in "$`":
                return char
            continue
        if char in "'\"":
            quote = char
            word_start = False
            continue
        if char in _OPERATORS:
            following = run[index + 1] if index + 1 < len(run) else ""
            return char + following if following == char else char
        if char == "$":
            return "$"
        if char in _GLOBS:
            return char
        if char == "~" and word_start:
            return "~"
        word_start = char.isspace()
    words = _split(run)
    if words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        return f"{words[0].split('=', 1)[0]}=..."
    return None


def _split(run: str) -> list[str]:
    try:
        return shlex.split(run)
    except ValueError:
        return []


def _how_to(distribution: str) -> str:
    return (f"with distribution: {distribution}, run is one command the launcher starts on every process "
            "(python SCRIPT|-m MODULE|-c CODE ..., or a console script), or a bash line that calls "
            f"${LAUNCH_VAR} where the launcher goes, e.g. 'cd src && ${LAUNCH_VAR} python train.py'")


def _check_python(words: list[str], distribution: str) -> None:
    rest = words[1:]
    while rest and rest[0].startswith("-") and rest[0] not in ("-m", "-c"):
        flag = rest.pop(0)
        if flag in ("-W", "-X") and rest:
            rest.pop(0)
    if not rest:
        raise ValueError(f"'{words[0]}' needs SCRIPT, -m MODULE or -c CODE to run; {_how_to(distribution)}")
    if rest[0] in ("-m", "-c") and len(rest) < 2:
        what = "a module name" if rest[0] == "-m" else "the code"
        raise ValueError(f"'{words[0]} {rest[0]}' needs {what}; {_how_to(distribution)}")


def classify_run(run: str, distribution: str) -> RunLine:
    """How ``run`` is executed under ``distribution``; :class:`ValueError` (saying how to write it) when
    it has no meaning there. See the module docstring for the rules."""
    if not run.strip():
        raise ValueError("the run command is empty")
    if distribution == "none" or _uses_launch_var(run):
        return RunLine("bash")
    found = shell_syntax(run)
    if found is not None:
        raise ValueError(f"shell syntax {found!r} in a run line that is not a bash line here; "
                         f"{_how_to(distribution)}")
    words = _split(run)
    if not words:
        raise ValueError(f"run is not a command (unbalanced quotes?); {_how_to(distribution)}")
    if os.path.basename(words[0]) in PYTHONS or os.path.basename(words[0]).startswith("python3."):
        _check_python(words, distribution)
    return RunLine("program", tuple(words))
