"""Where can a job run, and what would it cost? Placement over the catalog and this machine.

:func:`plan_job` checks every catalog row (plus the local machine's rows) against a job's
resources, returns the feasible placements cheapest first and groups the rest by the first
requirement they fail, with examples. :func:`choose_instance` is what cloud plugins call to turn
``resources`` into an instance type; :func:`resolve_auto` turns ``provider: auto`` into the top
placement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import ResourceUnavailable
from cloudbridge.planner.catalog import Catalog, CatalogRow, load_catalog
from cloudbridge.planner.ranking import REASONS, Requirements, rank, row_runtimes

if TYPE_CHECKING:
    from cloudbridge.specs import JobSpec, Resources

__all__ = [
    "Exclusion",
    "Placement",
    "PlacementReport",
    "choose_instance",
    "plan_job",
    "plan_placements",
    "requirements_for",
    "resolve_auto",
]

EXAMPLES_PER_REASON = 2


@dataclass(frozen=True)
class Placement:
    """One feasible way to run a job: ``nodes`` x ``row``, at ``hourly`` USD for all nodes."""

    provider: str
    region: str
    instance_type: str
    accelerator: str | None
    gpus_per_node: int
    nodes: int
    spot: bool
    price_per_node: float
    hourly: float
    total_cost: float | None
    runtime_hours: float | None
    installed: bool
    row: CatalogRow = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the row's price source and date included)."""
        return {
            "provider": self.provider, "region": self.region, "instance_type": self.instance_type,
            "accelerator": self.accelerator, "gpus_per_node": self.gpus_per_node, "nodes": self.nodes,
            "spot": self.spot, "price_per_node": self.price_per_node, "hourly": round(self.hourly, 4),
            "total_cost": None if self.total_cost is None else round(self.total_cost, 2),
            "runtime_hours": self.runtime_hours, "installed": self.installed, "install": self.install_hint,
            "price_source": self.row.price_source, "price_date": self.row.price_date,
        }

    @property
    def install_hint(self) -> str | None:
        """What to install to run here (``pip install cloudbridge-gcp``); ``None`` once installed."""
        if self.installed:
            return None
        from cloudbridge.plugins import KNOWN_PROVIDERS

        return KNOWN_PROVIDERS.get(self.provider, f"install the plugin that provides {self.provider!r}")


@dataclass(frozen=True)
class Exclusion:
    """Offerings excluded for one reason: how many, and a few examples with numbers."""

    reason: str
    description: str
    count: int
    examples: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"reason": self.reason, "description": self.description, "count": self.count,
                "examples": list(self.examples)}


@dataclass
class PlacementReport:
    """The outcome of :func:`plan_job`: placements cheapest first and why the others were excluded."""

    job: str
    requirements: Requirements
    placements: list[Placement]
    excluded: list[Exclusion]
    considered: int

    def explain(self) -> list[str]:
        """One line per exclusion reason: ``12 wrong accelerator (e.g. aws/... has T4)``."""
        return [f"{e.count} {e.description} (e.g. {'; '.join(e.examples)})" for e in self.excluded]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"job": self.job, "considered": self.considered,
                "placements": [p.to_dict() for p in self.placements],
                "excluded": [e.to_dict() for e in self.excluded]}


def _spec_where(spec: JobSpec | None, loc: tuple[str, ...]) -> str:
    field_name = ".".join(loc)
    if spec is None or not spec.source:
        return f"{field_name}: "
    from cloudbridge.spec_loading import field_line

    line = field_line(spec._lines, loc)  # kept from loading: the file is not read again
    return f"{spec.source}:{line}: {field_name}: " if line else f"{spec.source}: {field_name}: "


def requirements_for(resources: Resources, catalog: Catalog, *, spec: JobSpec | None = None,
                     providers: Iterable[str] | None = None, max_price: float | None = None,
                     throughput: Mapping[str, float] | None = None, samples: float | None = None) -> Requirements:
    """Translate ``resources`` into :class:`Requirements`; an unknown accelerator is a one-line
    error naming the spec file, line and field, with the nearest known names. ``throughput``
    (samples/s per GPU by accelerator, :mod:`~cloudbridge.planner.throughput`) and ``samples``
    give each offering an estimated run time and total."""
    accelerator = None
    if resources.accelerator_name:
        where = _spec_where(spec, ("resources", "accelerators"))
        accelerator = catalog.normalize(resources.accelerator_name, where=where)
    limits = [v for v in (max_price, resources.max_hourly_cost) if v is not None]
    runtime = resources.max_runtime_seconds
    return Requirements(
        accelerator=accelerator,
        gpus=resources.accelerator_count,
        nodes=resources.nodes,
        min_cpus=resources.min_cpus,
        min_memory_gb=resources.min_memory_gb,
        min_gpu_memory_gb=resources.min_gpu_memory_gb,
        spot=resources.spot,
        instance_type=resources.instance_type,
        providers=frozenset(providers) if providers is not None else None,
        max_hourly=min(limits) if limits else None,
        max_cost=resources.max_cost,
        runtime_hours=runtime / 3600 if runtime else None,
        throughput=dict(throughput) if throughput else None,
        samples=samples,
    )


def installed_compute_providers() -> set[str]:
    """Registered providers that can run jobs (``local`` always)."""
    from cloudbridge.plugins import provider_infos

    names = {name for name, info in provider_infos().items() if "compute" in info.capabilities}
    return names | {"local"}


def _example(row: CatalogRow, code: int, req: Requirements, hourly: float) -> str:
    label = row.label
    if code == 2:
        from cloudbridge.plugins import KNOWN_PROVIDERS

        hint = KNOWN_PROVIDERS.get(row.provider)
        return f"{label} ({hint})" if hint else label
    if code == 4:
        return f"{label} has {row.accelerator or 'no GPU'}"
    if code == 5:
        return f"{label} has {row.accelerator_count} per node, needs {req.gpus}"
    if code == 6:
        return f"{label} has {row.vcpus:g} vCPUs, needs {req.min_cpus:g}"
    if code == 7:
        return f"{label} has {row.memory_gb:g} GB, needs {req.min_memory_gb:g}"
    if code == 8:
        return f"{label} has {row.gpu_memory_gb:g} GB per GPU, needs {req.min_gpu_memory_gb:g}"
    if code == 11:
        return f"{label} costs ${hourly:.2f}/h > ${req.max_hourly:.2f}/h"
    if code == 12 and req.runtime_hours is not None and req.max_cost is not None:
        return f"{label} would cost ${hourly * req.runtime_hours:.2f} > max_cost ${req.max_cost:.2f}"
    return label


def rank_rows(rows: list[CatalogRow], arrays: dict[str, Any], req: Requirements, *, job: str = "",
              installed: set[str] | None = None, only_installed: bool = False) -> PlacementReport:
    """Rank ``rows`` (with their :func:`~cloudbridge.planner.ranking.build_arrays` view) for ``req``."""
    import numpy as np

    order, reason, hourly = rank(arrays, req, installed if only_installed else None)
    runtimes = row_runtimes(arrays, req)
    placements = []
    for i in order:
        row = rows[int(i)]
        runtime = None if np.isnan(runtimes[i]) else float(runtimes[i])
        total = float(hourly[i]) * runtime if runtime is not None else None
        placements.append(Placement(
            row.provider, row.region, row.instance_type, row.accelerator, row.accelerator_count, req.nodes,
            req.spot and row.provider != "local", float(row.price(req.spot and row.provider != "local") or 0.0),
            float(hourly[i]), total, runtime, installed is None or row.provider in installed, row,
        ))
    excluded = []
    codes, counts = np.unique(reason[reason > 0], return_counts=True)
    for code, count in sorted(zip(codes.tolist(), counts.tolist(), strict=True), key=lambda cc: (-cc[1], cc[0])):
        if code == 1:
            continue  # rows of providers the user did not ask for are not worth explaining
        idx = np.flatnonzero(reason == code)
        # Examples: the cheapest excluded offerings, the ones a user would most expect to see.
        pick = idx[np.argsort(arrays["price"][idx], kind="stable")[:EXAMPLES_PER_REASON]]
        examples = tuple(_example(rows[int(j)], code, req, float(hourly[j])) for j in pick)
        key, description = REASONS[code]
        excluded.append(Exclusion(key, description, int(count), examples))
    return PlacementReport(job, req, placements, excluded, int(np.count_nonzero(reason != 1)))


def plan_job(spec: JobSpec, *, providers: Iterable[str] | None = None, max_price: float | None = None,
             catalog: Catalog | None = None, include_local: bool = True, only_installed: bool = False,
             throughput: Mapping[str, float] | None = None, samples: float | None = None) -> PlacementReport:
    """Every feasible placement of ``spec`` cheapest first, and why the others were excluded.

    ``providers`` restricts the search; ``max_price`` caps the hourly price of the whole job
    (all nodes); ``only_installed`` drops providers whose plugin is not installed (for ``auto``).
    ``throughput`` + ``samples`` estimate each placement's run time and total (then ranked by total).
    """
    catalog = catalog or load_catalog()
    providers = list(providers) if providers is not None else None
    rows = list(catalog.rows)
    if include_local and (providers is None or "local" in providers):
        from cloudbridge.planner.probe import local_rows

        rows = [r for r in rows if r.provider != "local" or r.origin != "probe"] + local_rows()
        merged = Catalog(rows, version=catalog.version, sources=catalog.sources)
    else:
        merged = catalog
    req = requirements_for(spec.resources, merged, spec=spec, providers=providers, max_price=max_price,
                           throughput=throughput, samples=samples)
    installed = installed_compute_providers()
    return rank_rows(list(merged.rows), merged.arrays(), req, job=spec.name, installed=installed,
                     only_installed=only_installed)


def plan_placements(spec: JobSpec, providers: Iterable[str] | None = None, max_price: float | None = None,
                    *, catalog: Catalog | None = None) -> list[Placement]:
    """The feasible placements of ``spec``, cheapest first (see :func:`plan_job` for the reasons)."""
    return plan_job(spec, providers=providers, max_price=max_price, catalog=catalog).placements


def choose_instance(provider: str, resources: Resources, region: str | None = None, *,
                    catalog: Catalog | None = None) -> CatalogRow:
    """The cheapest catalog row of ``provider`` that fits ``resources`` (per node), for a plugin
    building its request.

    A pinned ``resources.instance_type`` wins (it must be in the catalog, so its price is known).
    ``region`` prefers that region's rows; a region the catalog does not list falls back to the
    provider's other regions (instance type names are the same everywhere). Nothing fitting is
    :class:`~cloudbridge.errors.ResourceUnavailable` naming the first reason and an example.
    """
    catalog = catalog or load_catalog()
    req = requirements_for(resources, catalog, providers=[provider])
    rows = [r for r in catalog.rows if r.provider == provider]
    if not rows:
        raise ResourceUnavailable(f"the planner catalog has no instance types for provider {provider!r}",
                                  hint="add rows with CLOUDBRIDGE_CATALOG=file.csv or a plugin catalog hook")
    if region is not None and any(r.region == region for r in rows):
        rows = [r for r in rows if r.region == region]
    sub = Catalog(rows)
    # Budgets are enforced by cost.check_budget, not by the instance choice.
    req = replace(req, max_hourly=None, max_cost=None)
    report = rank_rows(list(sub.rows), sub.arrays(), req)
    if report.placements:
        return report.placements[0].row
    top = report.excluded[0] if report.excluded else None
    if resources.instance_type and all(r.instance_type != resources.instance_type for r in rows):
        raise ResourceUnavailable(
            f"instance type {resources.instance_type!r} is not in the planner catalog for {provider}",
            hint="check the name, or add a catalog row for it (CLOUDBRIDGE_CATALOG=file.csv)",
        )
    detail = f": {top.count} {top.description} (e.g. {top.examples[0]})" if top and top.examples else ""
    raise ResourceUnavailable(f"no {provider} instance type fits resources {resources.accelerators or 'CPU'}"
                              f"{detail}")


def resolve_auto(spec: JobSpec, *, catalog: Catalog | None = None) -> JobSpec:
    """``provider: auto`` -> the spec targeted at its top placement among installed providers.

    The cloud instance type is pinned into ``resources.instance_type`` (the region stays the
    provider's configured one). Specs naming a provider are returned unchanged. No feasible
    placement is :class:`~cloudbridge.errors.ResourceUnavailable` with the exclusion summary.
    """
    if spec.provider != "auto":
        return spec
    report = plan_job(spec, catalog=catalog, only_installed=True)
    if not report.placements:
        reasons = "; ".join(report.explain()[:3]) or "no offerings"
        raise ResourceUnavailable(f"provider: auto found no installed provider that can run job {spec.name!r}: "
                                  f"{reasons}", hint="see: cloudbridge plan JOB.yaml")
    top = report.placements[0]
    resolved = spec.with_provider(top.provider)
    if top.provider != "local" and not spec.resources.instance_type:
        resources = spec.resources.model_copy(update={"instance_type": top.instance_type})
        resolved = resolved.model_copy(update={"resources": resources})
    resolved.source = spec.source
    return resolved
