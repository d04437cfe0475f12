"""Output helpers shared by the command modules: JSON, tables, durations.

Tables are plain aligned text in pipes (so scripts can ``grep``/``awk`` them). On a terminal the
header is bold and state cells are coloured with ANSI codes (``NO_COLOR`` turns that off); rich
(about 0.3 s to import) is used only when a table is wider than the terminal, to fold its cells.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = [
    "echo_json", "format_age", "format_duration", "iso_time", "job_json", "parse_duration", "print_table",
    "stdout_is_tty", "with_iso_times",
]


def stdout_is_tty() -> bool:
    """True when stdout is an interactive terminal."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (non-JSON values become strings)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    styles: dict[str, str] | None = None,
) -> None:
    """Print ``rows`` under ``columns``: a rich table on a terminal, aligned text otherwise.

    ``styles`` maps a cell value (e.g. ``"FAILED"``) to a rich style used on terminals.
    """
    cells = [["" if value is None else str(value) for value in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    tty = stdout_is_tty()
    if tty and sum(widths) + 2 * (len(widths) - 1) > _terminal_columns():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, header_style="bold", box=None, pad_edge=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in cells:
            table.add_row(*(Text(v, style=(styles or {}).get(v, "")) for v in row))
        Console().print(table)
        return
    from cloudbridge.cli._help import color_allowed

    color = tty and color_allowed()
    lines = []
    if title:
        lines.append(title)
    for index, row in enumerate([list(columns), *cells]):
        shown = []
        for value, width in zip(row, widths, strict=True):
            padded = value.ljust(width)
            style = "bold" if index == 0 else (styles or {}).get(value, "")
            shown.append(_ansi(padded, style) if color and style else padded)
        lines.append("  ".join(shown).rstrip())
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35",
        "cyan": "36"}


def _ansi(text: str, style: str) -> str:
    """``text`` in a rich-like ``style`` (``"bold red"``) as ANSI SGR codes; unknown words are ignored."""
    codes = [_SGR[word] for word in style.split() if word in _SGR]
    return f"\033[{';'.join(codes)}m{text}\033[0m" if codes else text


def _terminal_columns() -> int:
    import shutil

    return shutil.get_terminal_size((80, 24)).columns


def format_duration(seconds: float | None) -> str:
    """``3725`` -> ``"1h02m"``; ``42`` -> ``"42s"``; ``None`` -> ``""``."""
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def format_age(timestamp: float | None, now: float | None = None) -> str:
    """How long ago ``timestamp`` was: ``"5m10s ago"``; ``""`` when unknown."""
    if timestamp is None:
        return ""
    return f"{format_duration((now or time.time()) - timestamp)} ago"


_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: str | None, option: str) -> float | None:
    """``"90"``, ``"30s"``, ``"10m"``, ``"1h30m"``, ``"2d"``, ``"1w"`` -> seconds; bad text is one line, exit 2.

    The one duration grammar of every CLI option that takes a duration (``--timeout``,
    ``--since``, ``--older-than``): a bare number is seconds.
    """
    if value is None:
        return None
    import re

    text = value.strip().lower()
    total = 0.0
    if re.fullmatch(r"\d+(\.\d+)?", text):
        total = float(text)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([wdhms])", text)
        if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
            from cloudbridge.errors import UserError

            raise UserError(f"{option}: {value!r} is not a duration; use e.g. 90, 30s, 10m, 1h30m, 2d or 1w")
        total = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if total <= 0:
        from cloudbridge.errors import UserError

        raise UserError(f"{option}: a duration must be positive, got {value!r}")
    return total


def iso_time(timestamp: float | None) -> str | None:
    """A Unix timestamp as ISO 8601 in UTC (``2026-12-07T18:03:18Z``); ``None`` stays ``None``."""
    if timestamp is None:
        return None
    import datetime as dt

    moment = dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


#: Record fields that hold Unix timestamps; ``--json`` prints them as ISO 8601.
TIME_FIELDS = ("created_at", "started_at", "ended_at", "updated_at", "time", "enqueued_at")


def with_iso_times(data: Any) -> Any:
    """``data`` with every timestamp field (:data:`TIME_FIELDS`, at any depth) as ISO 8601 text."""
    if isinstance(data, dict):
        return {
            key: iso_time(value) if key in TIME_FIELDS and isinstance(value, (int, float)) and not isinstance(
                value, bool) else with_iso_times(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [with_iso_times(item) for item in data]
    return data


def job_json(job: Any, **extra: Any) -> dict[str, Any]:
    """A job record for ``--json``: times as ISO 8601 (``created_at``, events' ``time``...)."""
    return with_iso_times({**job.to_dict(), **extra})
