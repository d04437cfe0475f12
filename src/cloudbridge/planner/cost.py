"""Cost estimates from the catalog: before submit (budgets) and after the fact (``cloudbridge cost``).

Every number here is an **estimate**: catalog list price x nodes x hours. It ignores storage,
data transfer, discounts and the real spot price of the moment.

* :func:`estimate_cost` -- what a job would cost: hourly x nodes x run time (spot price when
  ``spot: true``); the run time is ``max_runtime``, or -- given a measured throughput and a sample
  count (:mod:`~cloudbridge.planner.throughput`) -- samples / throughput, capped at ``max_runtime``.
* :func:`check_budget` -- refuse a job whose estimate exceeds ``max_cost`` / ``max_hourly_cost``
  (:class:`~cloudbridge.errors.BudgetExceeded` with the numbers); a budget on a provider the
  catalog has no prices for is a warning, never a silent pass.
* :func:`elapsed_cost` -- the cost of a running job so far (for budget stops).
* :func:`spend_report` -- spend per job and provider from the job store.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import BudgetExceeded, ResourceUnavailable
from cloudbridge.planner.catalog import Catalog, CatalogRow, load_catalog

if TYPE_CHECKING:
    from cloudbridge.jobstore.store import JobStore
    from cloudbridge.specs import JobSpec, Resources

__all__ = ["LOCAL_NO_PRICE", "CostEstimate", "JobSpend", "SpendReport", "check_budget", "elapsed_cost",
           "estimate_cost", "estimate_resources", "local_price", "local_settings", "spend_report"]

ESTIMATE_LABEL = "estimate: catalog list price x nodes x hours; excludes storage, transfer and discounts"


@dataclass(frozen=True)
class CostEstimate:
    """The estimated cost of a job on one provider.

    ``priced`` is False when the catalog has no price for the provider: then ``hourly`` and
    ``total`` are ``None`` and ``warnings`` says so. ``total`` is ``None`` without ``max_runtime``.
    """

    provider: str
    instance_type: str | None
    region: str | None
    nodes: int
    spot: bool
    price_per_node: float | None
    hourly: float | None
    runtime_hours: float | None
    total: float | None
    priced: bool
    price_source: str | None = None
    price_date: str | None = None
    warnings: tuple[str, ...] = field(default=())
    #: Where ``runtime_hours`` comes from: ``max_runtime``, ``throughput`` or ``None`` (unknown).
    runtime_source: str | None = None

    def describe(self) -> str:
        """``$37.69/h x 2 nodes x 4h = $301.50 (aws us-east-1 ml.p4d.24xlarge, spot, estimate)``."""
        if not self.priced or self.hourly is None:
            return f"no price known for provider {self.provider!r} (estimate unavailable)"
        where = " ".join(p for p in (self.provider, self.region, self.instance_type) if p)
        kind = "spot, " if self.spot else ""
        per = f"${self.price_per_node:.2f}/h x {self.nodes} node{'s' if self.nodes != 1 else ''}"
        if self.total is None:
            return f"{per} = ${self.hourly:.2f}/h ({where}, {kind}estimate)"
        hours = duration_text(self.runtime_hours * 3600)
        if self.runtime_source == "throughput":
            hours += " (from measured throughput)"
        return f"{per} x {hours} = ${self.total:.2f} ({where}, {kind}estimate)"

    def cost_for(self, seconds: float) -> float | None:
        """The estimated cost of running ``seconds`` (``None`` when unpriced)."""
        return None if self.hourly is None else self.hourly * max(0.0, seconds) / 3600

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with the estimate label)."""
        return {**asdict(self), "warnings": list(self.warnings), "label": ESTIMATE_LABEL}


def _local_row(resources: Resources, catalog: Catalog) -> CatalogRow | None:
    from cloudbridge.planner.placement import choose_instance

    rows = [r for r in catalog.rows if r.provider == "local"]
    if not rows:
        return None
    try:
        return choose_instance("local", resources, catalog=catalog)
    except ResourceUnavailable:
        # A price injected for this machine applies whatever the job asks of it.
        return max(rows, key=lambda r: r.price_hour)


#: The warning of a budget on a local machine that has no price.
LOCAL_NO_PRICE = ("the local machine has no price (0 USD/h), so max_cost/max_hourly_cost can never be reached; "
                  "set CLOUDBRIDGE_LOCAL_PRICE_PER_HOUR to enforce them")


def local_settings(overrides: Mapping[str, Any] | None = None) -> Any:
    """The local backend's settings (config, environment, a job's ``overrides.local``)."""
    from cloudbridge.backends import get_provider

    return get_provider("local", overrides=dict(overrides) if overrides else None).settings


def local_price(resources: Resources | None = None, *, settings: Any = None,
                catalog: Catalog | None = None) -> tuple[float, str, CatalogRow | None]:
    """What an hour of the local machine costs: ``(USD per hour, where it comes from, catalog row)``.

    The one source of truth for the local price -- the estimate before submit, the local
    backend's budget refusal, its budget stop (the supervisor gets the price recorded at submit)
    and ``cloudbridge cost`` all use it:

    1. the local backend's ``price_per_hour`` setting when it is set (``CLOUDBRIDGE_LOCAL_PRICE_PER_HOUR``,
       ``[local]`` in ``config.toml`` or the job's ``overrides.local``); the row is ``None``;
    2. else a planner catalog row for provider ``local`` (e.g. injected with ``CLOUDBRIDGE_CATALOG``):
       the row that fits ``resources``, else the dearest one;
    3. else 0 (this machine, no charge).

    ``settings`` defaults to :func:`local_settings` with no overrides.
    """
    from cloudbridge.specs import Resources as _Resources

    if settings is None:
        settings = local_settings()
    configured = float(getattr(settings, "price_per_hour", 0.0) or 0.0)
    if configured > 0 or "price_per_hour" in getattr(settings, "model_fields_set", ()):
        return configured, "price_per_hour setting", None
    row = _local_row(resources or _Resources(), catalog or load_catalog())
    if row is not None:
        return row.price_hour, row.price_source or "planner catalog", row
    return 0.0, "this machine (no charge)", None


def estimate_resources(resources: Resources, provider: str, *, catalog: Catalog | None = None,
                       region: str | None = None, instance_type: str | None = None,
                       throughput: Mapping[str, float] | None = None, samples: float | None = None,
                       local: Any = None) -> CostEstimate:
    """Estimate for ``resources`` on ``provider`` (see :func:`estimate_cost`).

    ``local``: the local backend's settings, for provider ``local`` (default: :func:`local_settings`).
    """
    from cloudbridge.planner.placement import choose_instance

    catalog = catalog or load_catalog()
    warnings: list[str] = []
    budget = resources.max_cost is not None or resources.max_hourly_cost is not None
    runtime = resources.max_runtime_seconds
    runtime_hours = runtime / 3600 if runtime else None
    measured = bool(throughput and samples)
    if resources.max_cost is not None and runtime is None and not measured:
        warnings.append("max_cost is set but max_runtime is not: the total cannot be estimated before submit; "
                        "the budget is enforced on the elapsed cost while the job runs")
    if instance_type and instance_type != resources.instance_type:
        resources = resources.model_copy(update={"instance_type": instance_type})
    row: CatalogRow | None
    if provider == "local":
        price, source, local_row = local_price(resources, settings=local, catalog=catalog)
        if local_row is None:
            if budget and price == 0:
                warnings = [LOCAL_NO_PRICE]  # the budget can never be reached: the one thing to say
            return CostEstimate("local", None, None, 1, False, price, price, runtime_hours,
                                price * runtime_hours if runtime_hours is not None else None, True,
                                source, None, tuple(warnings), "max_runtime" if runtime_hours is not None else None)
        row = local_row
    elif not any(r.provider == provider for r in catalog.rows):
        warnings.append(f"the planner catalog has no prices for provider {provider!r}: cost cannot be estimated"
                        + (" and the budget cannot be checked before submit" if budget else ""))
        return CostEstimate(provider, resources.instance_type, region, resources.nodes, resources.spot, None,
                            None, runtime_hours, None, False, None, None, tuple(warnings))
    else:
        row = choose_instance(provider, resources, region, catalog=catalog)
    spot = resources.spot and provider != "local"
    price = row.price(spot)
    if price is None:
        warnings.append(f"{row.label} has no spot price in the catalog; using the on-demand price")
        price = row.price_hour
    nodes = resources.nodes if provider != "local" else 1
    hourly = price * nodes
    source = "max_runtime" if runtime_hours is not None else None
    if measured:
        from cloudbridge.planner.throughput import run_hours

        gpus = (resources.accelerator_count or row.accelerator_count) * nodes
        hours = run_hours(float(samples or 0), row.accelerator, gpus, throughput or {})
        if hours is None:
            warnings.append(f"no measured throughput for {row.accelerator or 'CPU'} ({row.label}): "
                            + ("using max_runtime" if runtime_hours is not None else "the total cannot be estimated"))
        elif runtime_hours is None or hours < runtime_hours:
            runtime_hours, source = hours, "throughput"
    total = hourly * runtime_hours if runtime_hours is not None else None
    return CostEstimate(provider, row.instance_type, row.region, nodes, spot and row.spot_price_hour is not None,
                        price, hourly, runtime_hours, total, True, row.price_source, row.price_date, tuple(warnings),
                        source)


def estimate_cost(spec: JobSpec, provider: str | None = None, *, catalog: Catalog | None = None,
                  region: str | None = None, throughput: Mapping[str, float] | None = None,
                  samples: float | None = None, local: Any = None) -> CostEstimate:
    """Estimated cost of ``spec`` on ``provider`` (default: the spec's): catalog hourly price
    (spot price when ``spot``) x nodes x ``max_runtime``. ``provider: auto`` is resolved first.

    The instance is ``resources.instance_type`` when pinned, else the planner's choice
    (:func:`~cloudbridge.planner.placement.choose_instance`). The local machine's price is
    :func:`local_price` (its ``price_per_hour`` setting with the spec's ``overrides.local``, else a
    catalog row for provider ``local``, else 0); ``local`` passes its settings explicitly.
    ``throughput`` (samples/s per GPU by accelerator) and ``samples`` estimate the run time when
    ``max_runtime`` is unknown (or shorter).
    """
    name = provider or spec.provider
    if name == "auto":
        from cloudbridge.planner.placement import resolve_auto

        spec = resolve_auto(spec, catalog=catalog)
        name = spec.provider
    if name == "local" and local is None:
        local = local_settings(spec.overrides.get("local"))
    return estimate_resources(spec.resources, name, catalog=catalog, region=region, throughput=throughput,
                              samples=samples, local=local)


def check_budget(spec: JobSpec, provider: str | None = None, *, catalog: Catalog | None = None,
                 region: str | None = None, estimate: CostEstimate | None = None,
                 throughput: Mapping[str, float] | None = None, samples: float | None = None,
                 local: Any = None) -> CostEstimate:
    """The estimate of ``spec``; :class:`~cloudbridge.errors.BudgetExceeded` (with the numbers)
    when it exceeds ``max_hourly_cost`` or ``max_cost``. Show ``estimate.warnings`` to the user:
    they say when a budget could not be checked. ``throughput``/``samples``/``local``: see
    :func:`estimate_cost`."""
    est = estimate or estimate_cost(spec, provider, catalog=catalog, region=region, throughput=throughput,
                                    samples=samples, local=local)
    res = spec.resources
    on_local = est.provider == "local"
    if est.hourly is not None and res.max_hourly_cost is not None and est.hourly > res.max_hourly_cost + 1e-9:
        raise BudgetExceeded(f"job {spec.name!r}: estimated ${est.hourly:.2f}/h ({est.describe()}) exceeds "
                             f"max_hourly_cost ${res.max_hourly_cost:.2f}/h",
                             hint="raise max_hourly_cost or lower CLOUDBRIDGE_LOCAL_PRICE_PER_HOUR" if on_local
                             else "raise the budget, use spot: true, or fewer/smaller nodes")
    if est.total is not None and res.max_cost is not None and est.total > res.max_cost + 1e-9:
        raise BudgetExceeded(f"job {spec.name!r}: estimated cost ${est.total:.2f} ({est.describe()}) exceeds "
                             f"max_cost ${res.max_cost:.2f}",
                             hint="raise max_cost or shorten max_runtime" if on_local
                             else "raise max_cost, shorten max_runtime, or use spot: true")
    return est


def elapsed_cost(estimate: CostEstimate, started_at: float, now: float | None = None) -> float | None:
    """Estimated cost of a job that started at ``started_at`` (epoch seconds) until ``now``."""
    return estimate.cost_for((now if now is not None else time.time()) - started_at)


@dataclass(frozen=True)
class JobSpend:
    """Estimated spend of one job within the report window."""

    job_id: str
    name: str
    provider: str
    state: str
    hours: float
    instance_type: str | None
    nodes: int
    spot: bool
    hourly: float | None
    cost: float | None
    note: str = ""


@dataclass
class SpendReport:
    """Spend per job and per provider since ``since`` (epoch seconds). Unpriced jobs have ``cost None``."""

    since: float | None
    until: float
    jobs: list[JobSpend]

    @property
    def by_provider(self) -> dict[str, float]:
        """Provider -> estimated USD (priced jobs only)."""
        totals: dict[str, float] = defaultdict(float)
        for job in self.jobs:
            if job.cost is not None:
                totals[job.provider] += job.cost
        return dict(sorted(totals.items()))

    @property
    def total(self) -> float:
        """Estimated USD over every priced job."""
        return sum(self.by_provider.values())

    @property
    def unpriced(self) -> list[str]:
        """Ids of jobs whose cost could not be estimated."""
        return [j.job_id for j in self.jobs if j.cost is None]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, labelled as an estimate."""
        return {"label": ESTIMATE_LABEL, "since": self.since, "until": self.until,
                "total": round(self.total, 2), "by_provider": {k: round(v, 2) for k, v in self.by_provider.items()},
                "unpriced": self.unpriced, "jobs": [asdict(j) for j in self.jobs]}


def _recorded_hourly(job: Any, instance: str | None) -> tuple[float, str] | None:
    """The hourly price recorded on the job at submit (what its budget was enforced with), if any.

    ``local`` jobs keep ``extra["price_per_hour"]`` (see :func:`local_price`); jobs submitted
    through the SDK keep their pre-submit estimate in ``extra["budget"]`` -- used when it was made
    for the instance the provider then recorded.
    """
    extra = job.extra if isinstance(job.extra, dict) else {}
    price = extra.get("price_per_hour")
    if job.provider == "local" and isinstance(price, (int, float)) and not isinstance(price, bool):
        return float(price), "price recorded at submit"
    budget = extra.get("budget")
    if isinstance(budget, dict) and isinstance(budget.get("hourly"), (int, float)):
        if instance is None or budget.get("instance_type") in (None, instance):
            return float(budget["hourly"]), "estimate recorded at submit"
    return None


def spend_report(*, since: float | None = None, now: float | None = None, store: JobStore | None = None,
                 catalog: Catalog | None = None) -> SpendReport:
    """Spend of every job that ran after ``since``: run time inside the window x estimated hourly price.

    Run time is ``started_at`` .. ``ended_at`` (now for running jobs). The hourly price is the one
    recorded on the job at submit when there is one (so reported spend matches what budgets
    enforced: a local job's ``price_per_hour``, a cloud job's pre-submit estimate); otherwise the
    catalog's, for the instance the provider recorded (``extra["instance_type"]``), else the stored
    spec's ``instance_type``, else the planner's choice for the stored spec's resources.
    """
    from pydantic import ValidationError

    from cloudbridge.specs import Resources

    if store is None:
        from cloudbridge.jobstore.store import JobStore

        store = JobStore.default()
    catalog = catalog or load_catalog()
    until = now if now is not None else time.time()
    spends: list[JobSpend] = []
    for job in store.list():
        if job.started_at is None:
            continue
        start = max(job.started_at, since) if since is not None else job.started_at
        end = min(job.ended_at if job.ended_at is not None else until, until)
        if end <= start:
            continue
        hours = (end - start) / 3600
        spec = store.spec(job.id) or {}
        try:
            resources = Resources.model_validate(spec.get("resources") or {})
        except ValidationError:
            resources = Resources()
        instance = job.extra.get("instance_type") if isinstance(job.extra, dict) else None
        note = "" if job.ended_at is not None else "still running"
        recorded = _recorded_hourly(job, instance)
        if recorded is not None:
            hourly, where = recorded
            nodes = 1 if job.provider == "local" else resources.nodes
            spends.append(JobSpend(job.id, job.name, job.provider, job.state.value, round(hours, 4), instance, nodes,
                                   resources.spot and job.provider != "local", hourly, hourly * hours,
                                   "; ".join(filter(None, [note, where]))))
            continue
        try:
            est = estimate_resources(resources, job.provider, catalog=catalog, instance_type=instance)
        except ResourceUnavailable as exc:
            spends.append(JobSpend(job.id, job.name, job.provider, job.state.value, hours, instance,
                                   resources.nodes, resources.spot, None, None, f"no price: {exc}"))
            continue
        if not est.priced:
            note = "; ".join(filter(None, [note, "no catalog prices for this provider"]))
        cost = est.hourly * hours if est.hourly is not None else None
        spends.append(JobSpend(job.id, job.name, job.provider, job.state.value, round(hours, 4), est.instance_type,
                               est.nodes, est.spot, est.hourly, cost, note))
    return SpendReport(since, until, spends)


def duration_text(seconds: float) -> str:
    """``300`` -> ``"5m"``, ``5400`` -> ``"1h30m"``, ``7200`` -> ``"2h"``, ``90061`` -> ``"1d1h1m1s"``."""
    left = max(0, int(round(seconds)))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
