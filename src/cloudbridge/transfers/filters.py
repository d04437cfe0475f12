"""Include/exclude glob filters for sync and recursive copy.

A key (relative to the synced prefix, ``/``-separated) is selected when it matches at least one
``include`` pattern (or there are none) and no ``exclude`` pattern. A pattern matches when
``fnmatch`` matches the whole key (``*`` also crosses ``/``: ``logs/*`` is everything under
``logs/``), or, for a pattern without ``/``, when it matches any single path segment (``*.tmp``
matches ``a/b.tmp``; ``__pycache__`` matches ``pkg/__pycache__/m.pyc``).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

__all__ = ["KeyFilter"]


def _matches(key: str, pattern: str) -> bool:
    pattern = pattern.lstrip("/")
    if pattern.endswith("/"):
        pattern += "*"
    if fnmatchcase(key, pattern):
        return True
    if "/" not in pattern:
        return any(fnmatchcase(part, pattern) for part in key.split("/"))
    return False


class KeyFilter:
    """Selects keys by include/exclude glob patterns (see the module docstring)."""

    def __init__(self, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
        self.include = tuple(p for p in include if p)
        self.exclude = tuple(p for p in exclude if p)

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def __call__(self, key: str) -> bool:
        """True when ``key`` is selected."""
        if self.include and not any(_matches(key, p) for p in self.include):
            return False
        return not any(_matches(key, p) for p in self.exclude)
