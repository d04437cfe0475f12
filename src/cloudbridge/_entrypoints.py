"""Entry points of one group, found without importing :mod:`importlib.metadata`.

Every CLI start loads plugins, and ``importlib.metadata`` (with the ``email`` package it parses
metadata with) costs more to import than the whole scan: this reads each ``*.dist-info`` (or
``*.egg-info``) ``entry_points.txt`` on ``sys.path`` directly, first distribution of a name wins
(as ``importlib.metadata.entry_points`` does). When ``sys.path`` holds something this scanner does
not read (a zip file), it falls back to ``importlib.metadata``.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["Distribution", "EntryPoint", "entry_points"]

_NAME_RE = re.compile(r"[-_.]+")


@dataclass(frozen=True)
class Distribution:
    """The installed distribution an entry point comes from."""

    name: str
    version: str | None


@dataclass(frozen=True)
class EntryPoint:
    """``name = module:attr`` in ``group``, as :class:`importlib.metadata.EntryPoint` shows it."""

    name: str
    value: str
    group: str
    dist: Distribution | None = None

    def load(self) -> Any:
        """Import the module and return the object the entry point names."""
        module_name, _, attr = self.value.split("[", 1)[0].partition(":")  # "mod:obj [extra]"
        obj: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def _parse(text: str, group: str) -> list[tuple[str, str]]:
    entries, current = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            continue
        if current == group and "=" in line:
            name, _, value = line.partition("=")
            entries.append((name.strip(), value.strip()))
    return entries


def _distribution(info_dir: str) -> Distribution:
    name = version = None
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(info_dir, filename), encoding="utf-8") as stream:
                for line in stream:
                    if not line.strip():
                        break
                    if line.startswith("Name:"):
                        name = line[5:].strip()
                    elif line.startswith("Version:"):
                        version = line[8:].strip()
            break
        except OSError:
            continue
    if name is None:
        name = os.path.basename(info_dir).rsplit(".", 1)[0].split("-")[0]
    return Distribution(name, version)


def _from_importlib(group: str) -> list[EntryPoint]:
    from importlib import metadata

    return [
        EntryPoint(ep.name, ep.value, group, Distribution(ep.dist.name, ep.dist.version) if ep.dist else None)
        for ep in metadata.entry_points(group=group)
    ]


def entry_points(group: str) -> list[EntryPoint]:
    """Every entry point of ``group`` on ``sys.path``, in path order."""
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for entry in sys.path:
        folder = entry or "."
        try:
            names = os.listdir(folder)
        except NotADirectoryError:
            return _from_importlib(group)  # a zip file on the path: let importlib.metadata read it
        except OSError:
            continue
        for name in sorted(names):
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            key = _NAME_RE.sub("_", name.rsplit(".", 1)[0].split("-")[0]).lower()
            if key in seen:
                continue
            seen.add(key)
            info_dir = os.path.join(folder, name)
            try:
                with open(os.path.join(info_dir, "entry_points.txt"), encoding="utf-8") as stream:
                    text = stream.read()
            except OSError:
                continue
            if f"[{group}]" not in text:
                continue
            dist = _distribution(info_dir)
            found += [EntryPoint(ep_name, value, group, dist) for ep_name, value in _parse(text, group)]
    return found
