"""The root ``cloudbridge --help`` as plain text, from the command table, without typer.

Used both by the console script's shortcut (``cloudbridge --help`` when no plugin adds commands:
nothing but the standard library and the plugin manager is imported) and by
:class:`cloudbridge.cli._app.LazyGroup`, so the two agree. On a terminal the headings and names are
styled with plain ANSI codes (``NO_COLOR`` or ``TERM=dumb`` turns that off) instead of rich, which
costs about 0.3 s to import: the root help is the command a new user runs most. A subcommand's
``--help`` is still drawn by rich on a terminal. This module imports only the standard library.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterable

from cloudbridge.cli.registry import COMMANDS

__all__ = ["ROOT_HELP", "ROOT_OPTIONS", "USAGE", "color_allowed", "root_help"]

USAGE = "Usage: cloudbridge [OPTIONS] COMMAND [ARGS]..."
ROOT_HELP = "One SDK and CLI to store data, run fine-tuning jobs and deploy models on any cloud or your own GPUs."
#: The root options as ``--help`` shows them (``tests/test_cli_startup.py`` checks them against the parser).
ROOT_OPTIONS: tuple[tuple[str, str], ...] = (
    ("--version", "Show the version and exit."),
    ("--debug", "Show full tracebacks on errors (also after the command; env: CLOUDBRIDGE_DEBUG=1)."),
    ("--install-completion", "Install completion for the current shell."),
    ("--show-completion", "Show completion for the current shell, to copy it or customize the installation."),
    ("-h, --help", "Show this message and exit."),
)
PLUGIN_PANEL = "Plugin commands"


def _width() -> int:
    # as click's HelpFormatter: the terminal width, at most 80, minus 2
    try:
        columns = int(os.environ.get("COLUMNS", "0")) or os.get_terminal_size().columns
    except (OSError, ValueError):
        columns = 80
    return max(min(columns, 80) - 2, 50)


_BOLD, _NAME, _RESET = "\033[1m", "\033[1;36m", "\033[0m"


def color_allowed() -> bool:
    """Whether styled output is welcome: not with ``NO_COLOR`` set or on a ``dumb`` terminal."""
    return not os.environ.get("NO_COLOR") and os.environ.get("TERM", "") != "dumb"


def _definitions(rows: list[tuple[str, str]], width: int, styled: bool = False) -> list[str]:
    first = min(max(len(name) for name, _ in rows), 24) + 2
    lines = []
    for name, text in rows:
        indent = " " * (2 + first)
        wrapped = textwrap.wrap(text, width=max(width - len(indent), 20)) or [""]
        shown = f"{_NAME}{name}{_RESET}" if styled else name
        if len(name) + 2 > first:
            lines.append(f"  {shown}")
            lines.extend(indent + line for line in wrapped)
            continue
        lines.append(f"  {shown}{' ' * (first - len(name))}{wrapped[0]}")
        lines.extend(indent + line for line in wrapped[1:])
    return lines


def root_help(extra: Iterable[tuple[str, str, str | None]] = (), width: int | None = None,
              styled: bool = False) -> str:
    """The help text: usage, description, options, then each panel's commands.

    ``extra`` adds plugin commands as ``(name, one-line help, panel or None)``; ``styled`` makes
    headings bold and names cyan (for a terminal).
    """
    width = width or _width()

    def heading(text: str) -> str:
        return f"{_BOLD}{text}{_RESET}" if styled else text

    panels: dict[str, list[tuple[str, str]]] = {}
    for entry in COMMANDS:
        panels.setdefault(entry.panel, []).append((entry.name, entry.help))
    for name, text, panel in extra:
        panels.setdefault(panel or PLUGIN_PANEL, []).append((name, text))
    lines = [heading(USAGE), ""]
    lines += textwrap.wrap(ROOT_HELP, width=width - 2, initial_indent="  ", subsequent_indent="  ")
    lines += ["", heading("Options:"), *_definitions(list(ROOT_OPTIONS), width, styled)]
    for panel, rows in panels.items():
        lines += ["", heading(f"{panel}:"), *_definitions(rows, width, styled)]
    return "\n".join(lines) + "\n"
