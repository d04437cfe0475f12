"""Budgets before submit: the cost estimate users see, and the refusal when it is over budget.

Every number is an **estimate** (:data:`cloudbridge.planner.cost.ESTIMATE_LABEL`). Clouds are
priced from the planner catalog (:func:`cloudbridge.planner.cost.check_budget`); the local
machine by :func:`cloudbridge.planner.cost.local_price` (its ``price_per_hour`` setting, else a
catalog row for ``local``, else 0) -- the function the local backend enforces its budgets with. A budget
that cannot be checked (no price) is a warning, never a silent pass. While a job runs, budgets
are enforced by its provider: the local supervisor stops it, the AWS plugin caps SageMaker's
``MaxRuntimeInSeconds`` at what ``max_cost`` buys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudbridge.planner.cost import CostEstimate
    from cloudbridge.specs import JobSpec

__all__ = ["budget_estimate", "check_cloud_budget"]


def check_cloud_budget(spec: JobSpec) -> dict[str, Any]:
    """Refuse a cloud job whose catalog estimate exceeds its budget (the local backend checks its own).

    Returns what the user should see, kept on the job as ``extra["budget"]``: the estimate (a
    sentence), its numbers, the label saying it is an estimate, and ``warnings`` (e.g. a budget
    on a provider the catalog has no prices for: it cannot be checked before submit). The
    warnings are also logged at WARNING.
    """
    import logging

    from cloudbridge.errors import BudgetExceeded, CloudbridgeError
    from cloudbridge.planner.cost import ESTIMATE_LABEL

    log = logging.getLogger("cloudbridge.budget")
    try:
        estimate = budget_estimate(spec)
    except BudgetExceeded:
        raise
    except CloudbridgeError as exc:  # no instance fits, a bad catalog...: the provider decides at submit
        res = spec.resources
        budget = res.max_cost is not None or res.max_hourly_cost is not None
        warning = f"cost could not be estimated: {exc}" + ("; the budget cannot be checked before submit"
                                                           if budget else "")
        log.warning("%s", warning)
        return {"estimate": None, "warnings": [warning], "label": ESTIMATE_LABEL}
    log.info("cost estimate for %s on %s: %s", spec.name, spec.provider, estimate.describe())
    for warning in estimate.warnings:
        log.warning("%s", warning)
    return {"estimate": estimate.describe(), "hourly": estimate.hourly, "total": estimate.total,
            "instance_type": estimate.instance_type, "warnings": list(estimate.warnings), "label": ESTIMATE_LABEL}


def budget_estimate(spec: JobSpec, provider: str | None = None) -> CostEstimate:
    """The cost estimate shown before a job is submitted; :class:`~cloudbridge.errors.BudgetExceeded`
    (with the numbers) when it is over ``max_cost`` / ``max_hourly_cost``.

    Clouds: the planner catalog's list price x nodes x ``max_runtime``
    (:func:`cloudbridge.planner.cost.check_budget`). ``local``: :func:`cloudbridge.planner.cost.local_price`
    (the ``price_per_hour`` setting with the spec's ``overrides.local``, else a catalog row for
    ``local``, else 0) -- the same price the local backend enforces. A budget that cannot be
    checked (no price) gives a warning in ``estimate.warnings``, never a silent pass.
    """
    from cloudbridge.planner.cost import check_budget

    name = provider or spec.provider
    if name == "auto":
        from cloudbridge.planner.placement import resolve_auto

        spec = resolve_auto(spec)
        name = spec.provider
    return check_budget(spec, name)
