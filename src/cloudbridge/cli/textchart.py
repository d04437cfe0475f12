"""A small line chart in plain text (no dependency), for ``cloudbridge metrics`` in a terminal or a pipe."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MARKERS", "render"]

MARKERS = "*o+x#@%&"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def render(title: str, series: Sequence[tuple[str, Sequence[tuple[float, float]]]], *, width: int = 56,
           height: int = 10, x_label: str = "step") -> str:
    """``series`` (label, points) drawn on one grid, one marker per series, with a legend.

    Returns the chart as lines of text; an empty string when no series has a point.
    """
    points = [(x, y) for _, pts in series for x, y in pts]
    if not points:
        return ""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + (abs(y0) or 1) * 0.1
    grid = [[" "] * width for _ in range(height)]
    for index, (_, pts) in enumerate(series):
        marker = MARKERS[index % len(MARKERS)]
        for x, y in pts:
            col = round((x - x0) / (x1 - x0) * (width - 1))
            row = height - 1 - round((y - y0) / (y1 - y0) * (height - 1))
            grid[row][col] = marker
    label_width = max(len(_fmt(y0)), len(_fmt(y1)))
    lines = [title]
    for row_index, row in enumerate(grid):
        label = _fmt(y1) if row_index == 0 else _fmt(y0) if row_index == height - 1 else ""
        lines.append(f"{label.rjust(label_width)} |{''.join(row).rstrip()}")
    lines.append(" " * label_width + " +" + "-" * width)
    left, right = _fmt(min(xs)), _fmt(max(xs))
    lines.append(" " * (label_width + 2) + left + right.rjust(width - len(left)) + f"  {x_label}")
    legend = "   ".join(f"{MARKERS[i % len(MARKERS)]} {label}" for i, (label, pts) in enumerate(series) if pts)
    lines.append(" " * (label_width + 2) + legend)
    return "\n".join(lines)
