"""The allocation model shared by the MILP and the greedy baseline: the plan records
(:class:`Assignment`, :class:`AllocationResult`, :class:`AllocationPlan`), the :class:`Problem` built
from tasks and a pool, and the objective. Every plan is laid out in time without preemption by
:func:`cloudbridge.planner.layout.timeline` (re-exported here).

See :mod:`cloudbridge.planner.allocation` for the model's constraints and how plans are chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cloudbridge.errors import ResourceUnavailable
from cloudbridge.planner.batch import Pool, Task, fits
from cloudbridge.planner.layout import timeline

__all__ = [
    "MAX_DEADLINE_LEVELS",
    "AllocationPlan",
    "AllocationResult",
    "Assignment",
    "Problem",
    "build_problem",
    "make_result",
    "objective",
    "timeline",
]

MAX_DEADLINE_LEVELS = 32


@dataclass(frozen=True)
class Assignment:
    """Task ``task`` on resource ``resource`` using ``units`` units for ``hours`` at ``cost`` USD."""

    task: str
    resource: str
    units: int
    hours: float
    cost: float
    on_time: bool
    start: float = 0.0
    end: float = 0.0


@dataclass
class AllocationResult:
    """One method's plan: assignments, dollar cost, deadlines given up, objective and status."""

    method: str
    assignments: list[Assignment]
    cost: float
    objective: float
    missed_deadlines: list[str]
    status: str
    seconds: float
    bound: float | None = None
    late: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        """True when every task was placed."""
        return self.status != "infeasible"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"method": self.method, "status": self.status, "cost": round(self.cost, 4),
                "objective": round(self.objective, 4), "bound": self.bound, "seconds": round(self.seconds, 4),
                "missed_deadlines": self.missed_deadlines, "late_in_timeline": self.late,
                "assignments": [a.__dict__ for a in self.assignments]}


@dataclass
class AllocationPlan:
    """The MILP and greedy results, the chosen plan (the better one) and the optimality gap."""

    best: AllocationResult
    milp: AllocationResult
    greedy: AllocationResult
    notes: list[str] = field(default_factory=list)

    @property
    def gap(self) -> float | None:
        """Relative gap of the chosen plan to the MILP's proven lower bound (0 = proven optimal)."""
        bound = self.milp.bound
        if bound is None or not self.best.feasible:
            return None
        return 0.0 if self.best.objective <= 1e-9 else max(0.0, (self.best.objective - bound) / self.best.objective)

    @property
    def greedy_ratio(self) -> float | None:
        """Greedy objective / chosen objective (USD plus deadline penalties; >= 1; ``None`` when either
        is infeasible or costs 0). Equal to the USD ratio when neither gives up a deadline."""
        if not (self.best.feasible and self.greedy.feasible) or self.best.objective <= 1e-9:
            return None
        return self.greedy.objective / self.best.objective

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        def summary(result: AllocationResult) -> dict[str, Any]:
            return {k: v for k, v in result.to_dict().items() if k != "assignments"}

        return {"best": self.best.to_dict(), "milp": summary(self.milp), "greedy": summary(self.greedy),
                "gap": self.gap, "greedy_ratio": self.greedy_ratio, "notes": self.notes}


@dataclass
class Problem:
    """The model of one allocation: every (task, resource) pair that can work, with its units, hours,
    cost and on-time flag, the deadline levels, the penalty of a missed deadline and per-resource
    margins (unit-hours kept free by the layout repair)."""

    tasks: list[Task]
    pool: Pool
    pairs: list[tuple[int, int]]          # (task, resource) that can ever work
    units: np.ndarray                     # per pair
    hours: np.ndarray
    cost: np.ndarray
    on_time_ok: np.ndarray                # per pair: h <= deadline (or no deadline)
    levels: list[float]                   # deadline levels (< horizon), increasing
    level_of: list[float | None]          # per task: its (possibly rounded-down) deadline level
    penalty: float
    notes: list[str]
    margin: np.ndarray                    # per resource: unit-hours kept free for packing

    def capacity(self, r: int, until: float) -> float:
        """Unit-hours of resource ``r`` the model may fill before ``until`` (hours)."""
        units = self.pool.resources[r].units
        return max(0.0, units * until - float(self.margin[r]))


def build_problem(tasks: list[Task], pool: Pool) -> Problem:
    """The model of placing ``tasks`` on ``pool``; a task that fits no resource is ``ResourceUnavailable``."""
    res = pool.resources
    pairs, units, hours, cost, ok = [], [], [], [], []
    for t, task in enumerate(tasks):
        found = False
        for r, resource in enumerate(res):
            if not fits(task, resource):
                continue
            u = math.ceil(task.gpus / resource.gpus_per_unit)
            h = task.duration_hours / resource.speed
            quota = pool.quotas.get(resource.provider)
            if h > pool.horizon_hours + 1e-9 or (quota is not None and u * resource.gpus_per_unit > quota):
                continue
            found = True
            pairs.append((t, r))
            units.append(u)
            hours.append(h)
            cost.append(u * h * resource.price_per_unit_hour)
            ok.append(task.deadline_hours is None or h <= task.deadline_hours + 1e-9)
        if not found:
            raise ResourceUnavailable(f"task {task.name!r} fits no resource of the pool within its horizon "
                                      f"({pool.horizon_hours:g}h) and quotas")
    notes: list[str] = []
    deadlines = sorted({t.deadline_hours for t in tasks if t.deadline_hours is not None
                        and t.deadline_hours < pool.horizon_hours})
    levels = deadlines
    if len(deadlines) > MAX_DEADLINE_LEVELS:
        idx = np.linspace(0, len(deadlines) - 1, MAX_DEADLINE_LEVELS).round().astype(int)
        levels = sorted({deadlines[i] for i in idx})
        notes.append(f"{len(deadlines)} distinct deadlines were rounded down to {len(levels)} levels "
                     "(safe: stricter, may cost a little more)")
    level_of: list[float | None] = []
    for task in tasks:
        if task.deadline_hours is None or task.deadline_hours >= pool.horizon_hours:
            level_of.append(None)
        else:
            below = [lv for lv in levels if lv <= task.deadline_hours + 1e-12]
            level_of.append(below[-1] if below else 0.0)
    cost_arr = np.array(cost, dtype=float)
    worst = np.zeros(len(tasks))
    for (t, _), c in zip(pairs, cost_arr, strict=True):
        worst[t] = max(worst[t], c)
    penalty = float(worst.sum()) + 1.0
    return Problem(tasks, pool, pairs, np.array(units), np.array(hours, dtype=float), cost_arr,
                    np.array(ok, dtype=bool), levels, level_of, penalty, notes, np.zeros(len(res)))


def objective(prob: Problem, chosen: list[tuple[int, bool]]) -> tuple[float, float, list[str]]:
    """(objective, dollar cost, missed task names) for pair choices ``[(pair index, on_time)]``."""
    cost = sum(prob.cost[p] for p, _ in chosen)
    missed = [prob.tasks[prob.pairs[p][0]].name for p, on in chosen if not on]
    weights = sum(1 + prob.tasks[prob.pairs[p][0]].priority for p, on in chosen if not on)
    return float(cost + prob.penalty * weights), float(cost), missed


def make_result(prob: Problem, method: str, chosen: list[tuple[int, bool]], status: str, seconds: float,
            bound: float | None = None) -> AllocationResult:
    """The :class:`AllocationResult` of pair choices ``[(pair index, on_time)]``, laid out in time;
    tasks that end past their limit in that layout are listed in ``late``."""
    value, cost, missed = objective(prob, chosen)
    times = timeline(prob, chosen)
    assignments = []
    late = []
    for p, on in sorted(chosen, key=lambda c: prob.pairs[c[0]][0]):
        t, r = prob.pairs[p]
        task = prob.tasks[t]
        start, end = times[p]
        assignments.append(Assignment(task.name, prob.pool.resources[r].name, int(prob.units[p]),
                                      float(prob.hours[p]), float(prob.cost[p]), on, start, end))
        limit = task.deadline_hours if on and task.deadline_hours is not None else prob.pool.horizon_hours
        if end > min(limit, prob.pool.horizon_hours) + 1e-9:
            late.append(task.name)
    return AllocationResult(method, assignments, cost, value, missed, status, seconds, bound, late)
