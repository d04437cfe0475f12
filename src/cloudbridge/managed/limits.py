"""A managed job's limits: run time, budget cap, start timeout and restarts. Pure: no cloud call.

Managed training services enforce one thing themselves: a run-time cap (SageMaker's
``MaxRuntimeInSeconds``, Vertex's ``scheduling.timeout``, Azure ML's ``limits.timeout``).
cloudbridge turns the spec's limits into it:

* ``max_runtime`` (default 1 day) -> the cap;
* ``max_cost`` -> a lower cap of ``max_cost / estimated hourly cost`` (the planner catalog's price x
  nodes, spot price when ``spot``), so the service stops a job whose elapsed cost reaches its budget
  even when no cloudbridge process is watching;
* ``spot`` -> a wait for capacity (:meth:`Limits.spot_wait`).

What the service cannot enforce (``start_timeout``, ``max_restarts``) and which limit binds the cap
travel with the job in one tag, :data:`LIMITS_TAG`, so any later read -- from any process -- can
name the stage that timed out and restart spot jobs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from cloudbridge.errors import BudgetExceeded
from cloudbridge.reasons import fmt_duration

__all__ = [
    "ATTEMPT_TAG",
    "DEFAULT_MAX_RUNTIME",
    "JOB_ID_TAG",
    "LIMITS_TAG",
    "MIN_BUDGET_SECONDS",
    "NAME_TAG",
    "RESTART_OF_TAG",
    "STOPPED_BY_TAG",
    "Limits",
    "fmt_duration",
    "limits_for",
]

#: The run time of a job that gives no ``max_runtime`` (1 day).
DEFAULT_MAX_RUNTIME = 24 * 3600
#: The tag that carries a job's limits (``key=value`` pairs separated by spaces).
LIMITS_TAG = "cloudbridge:limits"
#: The tag set on a job that cloudbridge stopped itself, naming why (``start_timeout``).
STOPPED_BY_TAG = "cloudbridge:stopped-by"
#: The tag holding the cloudbridge job id (``<provider>-<native id>``): a create retried after a lost
#: reply finds the job it made by this tag.
JOB_ID_TAG = "cloudbridge:job-id"
#: The tag holding the spec's ``name``.
NAME_TAG = "cloudbridge:name"
#: Tags of a restart: its attempt number (2, 3...) and the native id of the first attempt.
ATTEMPT_TAG = "cloudbridge:attempt"
RESTART_OF_TAG = "cloudbridge:restart-of"
#: A budget that buys less run time than this is refused at submit (the job could not even start).
MIN_BUDGET_SECONDS = 60
_PAIR = re.compile(r"^([a-z_]+)=([0-9.]+|budget|max_runtime)$")


@dataclass(frozen=True)
class Limits:
    """The limits of one cloudbridge job (all attempts together), and what binds this attempt.

    ``max_runtime`` is the whole job's run time in seconds; ``budget_cap`` the run time that
    ``max_cost`` buys at ``hourly`` USD (``None`` without a price or a budget); ``binding`` says
    which of the two set this attempt's run-time cap (``"budget"`` or ``"max_runtime"``).
    """

    max_runtime: int = DEFAULT_MAX_RUNTIME
    budget_cap: int | None = None
    max_cost: float | None = None
    hourly: float | None = None
    binding: str = "max_runtime"
    start_timeout: int | None = None
    max_restarts: int = 0

    @property
    def tagged(self) -> bool:
        """True when the job needs :data:`LIMITS_TAG` (anything the run-time cap alone cannot say)."""
        return bool(self.budget_cap is not None or self.start_timeout or self.max_restarts)

    def to_tag(self) -> str:
        """``max_runtime=7200 budget_cap=3600 max_cost=1 hourly=1 binding=budget ...`` (tag-value safe)."""
        pairs: dict[str, Any] = {"max_runtime": self.max_runtime, "binding": self.binding}
        if self.budget_cap is not None:
            pairs.update(budget_cap=self.budget_cap, max_cost=f"{self.max_cost:g}", hourly=f"{self.hourly:.4f}")
        if self.start_timeout:
            pairs["start_timeout"] = self.start_timeout
        if self.max_restarts:
            pairs["max_restarts"] = self.max_restarts
        return " ".join(f"{k}={v}" for k, v in pairs.items())

    @classmethod
    def from_tag(cls, value: str | None, *, max_runtime: int | None = None) -> Limits:
        """Parse :meth:`to_tag`'s text; unknown or malformed pairs are ignored (an older or newer plugin).

        ``max_runtime`` (the cap the service reports) is used when the tag does not give one.
        """
        found: dict[str, Any] = {}
        for item in (value or "").split():
            match = _PAIR.match(item)
            if not match:
                continue
            key, raw = match.groups()
            if key in ("max_runtime", "budget_cap", "start_timeout", "max_restarts"):
                found[key] = int(float(raw))
            elif key in ("max_cost", "hourly"):
                found[key] = float(raw)
            elif key == "binding":
                found[key] = raw
        if "max_runtime" not in found and max_runtime:
            found["max_runtime"] = max_runtime
        return cls(**found)

    def runtime_left(self, used: float = 0.0) -> tuple[int, str]:
        """``(seconds, binding)`` this job may still run after ``used`` seconds of earlier attempts."""
        runtime = max(0, int(self.max_runtime - used))
        if self.budget_cap is not None:
            budget = max(0, int(self.budget_cap - used))
            if budget < runtime:
                return budget, "budget"
        return runtime, "max_runtime"

    def run_cap(self, used: float = 0.0) -> int:
        """The run-time cap (seconds, at least 1) for an attempt that starts after ``used`` seconds."""
        return max(1, self.runtime_left(used)[0])

    def spot_wait(self, used: float = 0.0, longest: int | None = None) -> int:
        """Seconds a spot attempt may wait for capacity plus run: ``max(2 x cap, cap + 1h)``, at most ``longest``."""
        runtime = self.run_cap(used)
        wait = max(2 * runtime, runtime + 3600)
        return min(wait, longest) if longest else wait

    def for_attempt(self, used: float) -> Limits:
        """These limits with ``binding`` recomputed for an attempt after ``used`` seconds."""
        return replace(self, binding=self.runtime_left(used)[1])

    def describe_budget(self) -> str:
        """``max_cost $25.00 at an estimated $3.83/h buys 6h31m`` (empty without a budget cap)."""
        if self.budget_cap is None or self.hourly is None or self.max_cost is None:
            return ""
        return (f"max_cost ${self.max_cost:.2f} at an estimated ${self.hourly:.2f}/h buys "
                f"{fmt_duration(self.budget_cap)} (estimate: catalog list price x nodes)")


def limits_for(spec: Any, hourly: float | None, *, restartable: bool) -> Limits:
    """The :class:`Limits` of ``spec`` given its estimated ``hourly`` cost (``None`` when unpriced).

    A ``max_cost`` that buys less than :data:`MIN_BUDGET_SECONDS` is refused with the numbers
    (:class:`~cloudbridge.errors.BudgetExceeded`). ``restartable`` (spot with checkpoints) keeps
    ``max_restarts``; otherwise it is dropped, since nothing could resume.
    """
    res = spec.resources
    runtime = res.max_runtime_seconds or DEFAULT_MAX_RUNTIME
    cap = None
    if res.max_cost is not None and hourly:
        cap = int(math.floor(res.max_cost / hourly * 3600))
        if cap < MIN_BUDGET_SECONDS:
            raise BudgetExceeded(
                f"job {spec.name!r}: max_cost ${res.max_cost:.2f} buys only {cap}s at an estimated "
                f"${hourly:.2f}/h (estimate: catalog list price x nodes)",
                hint="raise max_cost, use spot: true, or fewer/smaller nodes",
            )
    limits = Limits(
        max_runtime=runtime,
        budget_cap=cap,
        max_cost=res.max_cost if cap is not None else None,
        hourly=hourly if cap is not None else None,
        start_timeout=res.start_timeout_seconds,
        max_restarts=res.max_restarts if restartable else 0,
    )
    return limits.for_attempt(0.0)
