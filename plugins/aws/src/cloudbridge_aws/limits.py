"""A SageMaker job's limits: the core's :class:`~cloudbridge.managed.limits.Limits` as a ``StoppingCondition``.

SageMaker itself enforces only ``StoppingCondition``: the run-time cap (``max_runtime`` or what
``max_cost`` buys, see :mod:`cloudbridge.managed.limits`) becomes ``MaxRuntimeInSeconds``, and
``spot`` adds ``MaxWaitTimeInSeconds`` (waiting for capacity plus the run itself).
"""

from __future__ import annotations

from cloudbridge.managed.limits import (
    DEFAULT_MAX_RUNTIME,
    LIMITS_TAG,
    MIN_BUDGET_SECONDS,
    STOPPED_BY_TAG,
    Limits,
    fmt_duration,
    limits_for,
)

__all__ = ["DEFAULT_MAX_RUNTIME", "LIMITS_TAG", "MIN_BUDGET_SECONDS", "SAGEMAKER_MAX_RUNTIME", "STOPPED_BY_TAG",
           "Limits", "fmt_duration", "limits_for", "stopping_condition"]

#: SageMaker's hard limit on ``MaxRuntimeInSeconds`` and ``MaxWaitTimeInSeconds`` (28 days).
SAGEMAKER_MAX_RUNTIME = 28 * 24 * 3600


def stopping_condition(limits: Limits, spot: bool, used: float = 0.0) -> dict[str, int]:
    """``StoppingCondition`` for an attempt that starts after ``used`` seconds of earlier ones."""
    stopping = {"MaxRuntimeInSeconds": limits.run_cap(used)}
    if spot:
        stopping["MaxWaitTimeInSeconds"] = limits.spot_wait(used, longest=SAGEMAKER_MAX_RUNTIME)
    return stopping
