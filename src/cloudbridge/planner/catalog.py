"""The planner's catalog of instance types and prices.

Rows come from, in this order (a later row with the same ``provider/region/instance_type`` key
replaces an earlier one):

1. the builtin ``catalog.csv`` shipped in this package (versioned by its ``# catalog-version:`` line);
2. plugins, through the ``cloudbridge_register_catalog(register)`` hook: ``register(path_to_csv)``
   or ``register(iterable_of_row_dicts)``;
3. CSV files named in ``CLOUDBRIDGE_CATALOG`` (``os.pathsep``-separated), e.g. to correct a price.

Every row is validated; a bad one is reported as one line naming its file and line (or plugin
and row number) and the field: ``catalog.csv:17: aws/us-east-1/ml.p5.48xlarge: price_hour is missing``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import functools
import io
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import UserError
from cloudbridge.planner.accelerators import (
    KNOWN_ACCELERATORS,
    canonical_spelling,
    normalize_accelerator,
    satisfies,
)

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "COLUMNS",
    "Catalog",
    "CatalogError",
    "CatalogRow",
    "builtin_catalog_path",
    "load_catalog",
    "parse_catalog_csv",
    "rows_from_dicts",
]

#: Columns of a catalog CSV, in order. ``spot_price_hour`` may be empty (no spot offering).
COLUMNS: tuple[str, ...] = (
    "provider",
    "region",
    "instance_type",
    "accelerator",
    "accelerator_count",
    "gpu_memory_gb",
    "vcpus",
    "memory_gb",
    "price_hour",
    "spot_price_hour",
    "price_source",
    "price_date",
)
_OPTIONAL = {"accelerator", "spot_price_hour", "gpu_memory_gb"}
_PROVIDER_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_VERSION_RE = re.compile(r"^#\s*catalog-version:\s*(\S+)\s*$")
ENV_VAR = "CLOUDBRIDGE_CATALOG"


class CatalogError(UserError):
    """A catalog row or file is malformed (missing price, bad number, unknown column)."""


@dataclass(frozen=True)
class CatalogRow:
    """One offering: an instance type in a region of a provider, with its hourly prices.

    ``accelerator`` is the canonical GPU name (``None`` for CPU-only types);
    ``gpu_memory_gb`` is per GPU; prices are USD per instance-hour; ``spot_price_hour`` is
    ``None`` where no spot/preemptible capacity is offered. ``origin`` says where the row came
    from (``catalog.csv:17``). ``extra`` carries probe details (utilisation, free memory).
    """

    provider: str
    region: str
    instance_type: str
    accelerator: str | None
    accelerator_count: int
    gpu_memory_gb: float
    vcpus: float
    memory_gb: float
    price_hour: float
    spot_price_hour: float | None
    price_source: str
    price_date: str
    origin: str = field(default="", compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> tuple[str, str, str]:
        """``(provider, region, instance_type)``: unique within a catalog."""
        return (self.provider, self.region, self.instance_type)

    @property
    def label(self) -> str:
        """``provider/region/instance_type``, as used in messages."""
        return "/".join(self.key)

    def price(self, spot: bool = False) -> float | None:
        """The hourly price for on-demand, or for spot (``None`` when no spot offering)."""
        return self.spot_price_hour if spot else self.price_hour

    def offers(self, accelerator: str | None) -> bool:
        """True when this row's GPU satisfies a request for ``accelerator`` (canonical)."""
        return satisfies(self.accelerator, accelerator)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every column (plus ``origin`` and ``extra``)."""
        data = asdict(self)
        data["extra"] = dict(self.extra)
        return data


def _fail(where: str, label: str, message: str) -> CatalogError:
    prefix = f"{where}: " if where else ""
    who = f"{label}: " if label else ""
    return CatalogError(f"{prefix}{who}{message}")


def _number(raw: Any, name: str, *, where: str, label: str, integer: bool = False, positive: bool = False) -> float:
    text = "" if raw is None else str(raw).strip()
    if not text:
        raise _fail(where, label, f"{name} is missing")
    try:
        value = float(text)
    except ValueError:
        raise _fail(where, label, f"{name} is not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        need = "a positive number" if positive else "a number >= 0"
        raise _fail(where, label, f"{name} must be {need}, got {text!r}")
    if integer and value != int(value):
        raise _fail(where, label, f"{name} must be a whole number, got {text!r}")
    return value


def make_row(data: Mapping[str, Any], *, where: str = "") -> CatalogRow:
    """Validate one row given as a mapping of column -> value (strings or numbers)."""
    unknown = sorted(set(data) - set(COLUMNS) - {"origin", "extra"})
    provider = str(data.get("provider") or "").strip()
    region = str(data.get("region") or "").strip()
    instance = str(data.get("instance_type") or "").strip()
    label = "/".join(p or "?" for p in (provider, region, instance))
    if unknown:
        raise _fail(where, label, f"unknown column(s) {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
    for name, value in (("provider", provider), ("region", region), ("instance_type", instance)):
        if not value:
            raise _fail(where, label, f"{name} is missing")
    if not _PROVIDER_RE.match(provider):
        raise _fail(where, label, f"provider {provider!r} must be lower-case letters, digits, '_' or '-'")
    accel_raw = str(data.get("accelerator") or "").strip()
    count_raw = data.get("accelerator_count")
    if not accel_raw and (count_raw is None or str(count_raw).strip() == ""):
        count_raw = 0
    count = int(_number(count_raw, "accelerator_count", where=where, label=label, integer=True))
    accelerator: str | None = None
    if accel_raw:
        # Plugins may bring accelerators we have never heard of (e.g. Trainium): accept them,
        # canonically spelled, but map every known alias to its canonical name.
        try:
            accelerator = normalize_accelerator(accel_raw)
        except UserError:
            accelerator = canonical_spelling(accel_raw)
        if count < 1:
            raise _fail(where, label, f"accelerator_count must be at least 1 for accelerator {accel_raw!r}")
    elif count:
        raise _fail(where, label, f"accelerator_count is {count} but no accelerator is named")
    mem_raw = data.get("gpu_memory_gb")
    if accelerator and (mem_raw is None or str(mem_raw).strip() == ""):
        if accelerator not in KNOWN_ACCELERATORS:
            raise _fail(where, label, f"gpu_memory_gb is missing (accelerator {accelerator!r} has no known size)")
        gpu_memory = KNOWN_ACCELERATORS[accelerator]
    else:
        gpu_memory = _number(mem_raw if mem_raw not in (None, "") else 0, "gpu_memory_gb", where=where, label=label)
    if accelerator and gpu_memory <= 0:
        raise _fail(where, label, "gpu_memory_gb must be positive for a GPU instance")
    vcpus = _number(data.get("vcpus"), "vcpus", where=where, label=label, positive=True)
    memory = _number(data.get("memory_gb"), "memory_gb", where=where, label=label, positive=True)
    price = _number(data.get("price_hour"), "price_hour", where=where, label=label)
    spot_raw = data.get("spot_price_hour")
    spot = None
    if spot_raw is not None and str(spot_raw).strip() != "":
        spot = _number(spot_raw, "spot_price_hour", where=where, label=label)
    source = str(data.get("price_source") or "").strip()
    if not source:
        raise _fail(where, label, "price_source is missing (say where the price comes from)")
    date = str(data.get("price_date") or "").strip()
    try:
        _dt.date.fromisoformat(date)
    except ValueError:
        raise _fail(where, label, f"price_date must be a date like 2024-12-01, got {date!r}") from None
    return CatalogRow(
        provider, region, instance, accelerator, count, gpu_memory, vcpus, memory, price, spot, source, date,
        origin=where, extra=dict(data.get("extra") or {}),
    )


def _check_duplicates(rows: list[CatalogRow]) -> None:
    seen: dict[tuple[str, str, str], CatalogRow] = {}
    for row in rows:
        if row.key in seen:
            raise CatalogError(f"{row.origin}: {row.label}: duplicate row (first at {seen[row.key].origin})")
        seen[row.key] = row


def parse_catalog_csv(text: str, *, source: str) -> tuple[str | None, list[CatalogRow]]:
    """Parse catalog CSV ``text``; returns ``(version, rows)``. ``source`` names the file in errors.

    Lines starting with ``#`` are comments; ``# catalog-version: X`` sets the version.
    """
    version = None
    lines = text.splitlines()
    data_lines: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            match = _VERSION_RE.match(stripped)
            if match:
                version = match.group(1)
            continue
        if stripped:
            data_lines.append((number, line))
    if not data_lines:
        raise CatalogError(f"{source}: no header line; expected columns {', '.join(COLUMNS)}")
    header_line, header_text = data_lines[0]
    header = [h.strip() for h in next(csv.reader([header_text]))]
    missing = [c for c in COLUMNS if c not in header and c not in _OPTIONAL]
    extra = [h for h in header if h not in COLUMNS]
    if missing or extra:
        what = f"missing column(s) {', '.join(missing)}" if missing else f"unknown column(s) {', '.join(extra)}"
        raise CatalogError(f"{source}:{header_line}: header: {what} (expected: {', '.join(COLUMNS)})")
    rows: list[CatalogRow] = []
    for number, line in data_lines[1:]:
        values = next(csv.reader(io.StringIO(line)))
        where = f"{source}:{number}"
        if len(values) != len(header):
            raise CatalogError(f"{where}: expected {len(header)} fields, found {len(values)}")
        rows.append(make_row(dict(zip(header, values, strict=True)), where=where))
    _check_duplicates(rows)
    return version, rows


def rows_from_dicts(items: Iterable[Mapping[str, Any]], *, source: str) -> list[CatalogRow]:
    """Validate row dicts handed over by a plugin; errors name ``source`` and the 1-based row."""
    rows = [make_row(item, where=f"{source}: row {i}") for i, item in enumerate(items, start=1)]
    _check_duplicates(rows)
    return rows


def builtin_catalog_path() -> Path:
    """The path of the builtin ``catalog.csv``."""
    return Path(str(resources.files("cloudbridge.planner").joinpath("catalog.csv")))


@functools.lru_cache(maxsize=8)
def _read_csv_file(path: str, mtime: float) -> tuple[str | None, tuple[CatalogRow, ...]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read catalog: {exc}") from exc
    version, rows = parse_catalog_csv(text, source=path)
    return version, tuple(rows)


def read_catalog_file(path: str | os.PathLike[str]) -> tuple[str | None, list[CatalogRow]]:
    """Parse a catalog CSV file (cached by path and modification time)."""
    text_path = str(path)
    try:
        mtime = os.stat(text_path).st_mtime
    except OSError as exc:
        raise CatalogError(f"{text_path}: cannot read catalog: {exc.strerror or exc}") from exc
    version, rows = _read_csv_file(text_path, mtime)
    return version, list(rows)


class Catalog:
    """A validated set of rows with lookups and a cached columnar (numpy) view for ranking."""

    def __init__(self, rows: Iterable[CatalogRow], *, version: str | None = None,
                 sources: list[tuple[str, str | None]] | None = None) -> None:
        merged: dict[tuple[str, str, str], CatalogRow] = {}
        for row in rows:
            merged[row.key] = row
        self.rows: tuple[CatalogRow, ...] = tuple(merged.values())
        self.version = version
        self.sources = list(sources or [])
        self._arrays: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[CatalogRow]:
        return iter(self.rows)

    @property
    def providers(self) -> list[str]:
        """Every provider with at least one row."""
        return sorted({r.provider for r in self.rows})

    def accelerators(self) -> set[str]:
        """Every accelerator named by some row."""
        return {r.accelerator for r in self.rows if r.accelerator}

    def normalize(self, name: str, *, where: str = "") -> str:
        """Canonical accelerator name, knowing this catalog's names too (see ``normalize_accelerator``)."""
        return normalize_accelerator(name, self.accelerators(), where=where)

    def filter(self, *, provider: str | Iterable[str] | None = None, accelerator: str | None = None,
               region: str | None = None) -> list[CatalogRow]:
        """Rows of ``provider`` (a name or several) whose GPU satisfies ``accelerator`` (a family
        or member name, normalised here), in ``region``; ``None`` means any."""
        wanted = {provider} if isinstance(provider, str) else set(provider) if provider is not None else None
        accel = self.normalize(accelerator) if accelerator else None
        return [
            r for r in self.rows
            if (wanted is None or r.provider in wanted)
            and (accel is None or r.offers(accel))
            and (region is None or r.region == region)
        ]

    def get(self, provider: str, region: str, instance_type: str) -> CatalogRow | None:
        """The row with that key, or ``None``."""
        for row in self.rows:
            if row.key == (provider, region, instance_type):
                return row
        return None

    def arrays(self) -> dict[str, np.ndarray]:
        """Columns as numpy arrays (built once): prices, counts, memory, and integer codes for
        provider/accelerator/family (``codes_*`` lists map a code back to its name)."""
        if self._arrays is None:
            from cloudbridge.planner.ranking import build_arrays

            self._arrays = build_arrays(self.rows)
        return self._arrays


def _plugin_rows() -> tuple[list[CatalogRow], list[tuple[str, str | None]]]:
    from cloudbridge.plugins import get_plugin_manager

    pm = get_plugin_manager()
    rows: list[CatalogRow] = []
    sources: list[tuple[str, str | None]] = []
    for impl in reversed(pm.hook.cloudbridge_register_catalog.get_hookimpls()):
        name = impl.plugin_name

        def register(item: Any, _name: str = name) -> None:
            if isinstance(item, (str, os.PathLike)):
                version, found = read_catalog_file(item)
                sources.append((str(item), version))
            else:
                found = rows_from_dicts(item, source=f"plugin {_name}")
                sources.append((f"plugin {_name}", None))
            rows.extend(found)

        impl.function(register=register)
    return rows, sources


def load_catalog(*, include_plugins: bool = True, include_env: bool = True,
                 extra_paths: Iterable[str | os.PathLike[str]] = ()) -> Catalog:
    """The builtin catalog, plus plugin rows, plus ``CLOUDBRIDGE_CATALOG`` files, plus ``extra_paths``."""
    builtin = builtin_catalog_path()
    version, rows = read_catalog_file(builtin)
    sources: list[tuple[str, str | None]] = [(str(builtin), version)]
    if include_plugins:
        more, more_sources = _plugin_rows()
        rows.extend(more)
        sources.extend(more_sources)
    paths = list(extra_paths)
    if include_env:
        paths = [p for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()] + paths
    for path in paths:
        file_version, file_rows = read_catalog_file(path)
        rows.extend(file_rows)
        sources.append((str(path), file_version))
    return Catalog(rows, version=version, sources=sources)
