"""Assign a batch of tasks to a pool at minimum cost: a MILP (``scipy.optimize.milp``, HiGHS) and
a greedy baseline, checked by one independent verifier.

The model (``u`` = units of resource ``r`` a task uses: ``ceil(gpus / gpus_per_unit)``;
``h = duration / speed``; ``w = u*h`` unit-hours; ``c = u*h*price``):

* every task is placed exactly once: ``sum_r x[t,r] + y[t,r] = 1``, where ``x`` means "placed and
  meets its deadline" and ``y`` "placed, deadline given up" (only for tasks with deadlines);
* capacity over the horizon ``H``: ``sum_t w[t,r] (x+y) <= units_r * H - margin_r`` (``margin_r`` is
  0 at first; see the layout repair below);
* deadlines (EDF prefix form): for every deadline ``D`` < ``H``, the work of on-time tasks with
  deadlines ``<= D`` on ``r`` fits before ``D``: ``sum w[t,r] x[t,r] <= units_r * D - margin_r``; ``x[t,r]``
  exists only where ``h[t,r] <= deadline_t``;
* provider quotas (GPUs at once): ``sum_{r of p} u*gpus_per_unit*h (x+y) <= quota_p * H``;
* objective: ``sum c (x+y) + M * sum (1+priority_t) y``, with ``M`` larger than any total cost,
  so a deadline is given up only when no assignment keeps it, and low priorities go first.

The capacity constraints treat a resource's unit-hours as divisible (a fluid relaxation of the
timeline): a plan that satisfies them can be laid out earliest-deadline-first when tasks may be
paused and resumed (checkpoints). Without preemption, multi-GPU tasks can fragment the timeline, so
every plan is also laid out in time (list scheduling, EDF per resource, no preemption): each
assignment gets ``start``/``end`` hours. When a task ends after its deadline or the horizon in that
layout, :func:`allocate` cuts the capacity of that resource by the smallest late task's work and
solves again (a few rounds); tasks still late are listed in ``late`` -- reported, never hidden.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cloudbridge.errors import ResourceUnavailable
from cloudbridge.planner.batch import Pool, Task, fits
from cloudbridge.planner.verify import verify

__all__ = ["AllocationPlan", "AllocationResult", "Assignment", "allocate", "greedy", "solve_milp", "verify"]

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
class _Problem:
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


def _build(tasks: list[Task], pool: Pool) -> _Problem:
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
    return _Problem(tasks, pool, pairs, np.array(units), np.array(hours, dtype=float), cost_arr,
                    np.array(ok, dtype=bool), levels, level_of, penalty, notes, np.zeros(len(res)))


def _objective(prob: _Problem, chosen: list[tuple[int, bool]]) -> tuple[float, float, list[str]]:
    """(objective, dollar cost, missed task names) for pair choices ``[(pair index, on_time)]``."""
    cost = sum(prob.cost[p] for p, _ in chosen)
    missed = [prob.tasks[prob.pairs[p][0]].name for p, on in chosen if not on]
    weights = sum(1 + prob.tasks[prob.pairs[p][0]].priority for p, on in chosen if not on)
    return float(cost + prob.penalty * weights), float(cost), missed


def _result(prob: _Problem, method: str, chosen: list[tuple[int, bool]], status: str, seconds: float,
            bound: float | None = None) -> AllocationResult:
    objective, cost, missed = _objective(prob, chosen)
    times = _timeline(prob, chosen)
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
    return AllocationResult(method, assignments, cost, objective, missed, status, seconds, bound, late)


def _timeline(prob: _Problem, chosen: list[tuple[int, bool]]) -> dict[int, tuple[float, float]]:
    """Lay the plan out in time without preemption: per resource, earliest deadline first, each task
    starting when enough units are free at once (list scheduling). Returns pair -> (start, end)."""
    per_res: dict[int, list[tuple[int, bool]]] = {}
    for p, on in chosen:
        per_res.setdefault(prob.pairs[p][1], []).append((p, on))
    times: dict[int, tuple[float, float]] = {}
    for r, items in per_res.items():
        free = [0.0] * prob.pool.resources[r].units
        def key(item: tuple[int, bool]) -> tuple[float, int, float]:
            task = prob.tasks[prob.pairs[item[0]][0]]
            deadline = task.deadline_hours if item[1] and task.deadline_hours is not None else math.inf
            return (deadline, -task.priority, -prob.hours[item[0]])
        for p, _ in sorted(items, key=key):
            u = int(prob.units[p])
            free.sort()
            start = free[u - 1]
            end = start + float(prob.hours[p])
            for i in range(u):
                free[i] = end
            times[p] = (start, end)
    return times


def solve_milp(prob: _Problem, *, time_limit: float = 10.0, mip_rel_gap: float = 1e-4,
               allow_missed: bool = True) -> AllocationResult:
    """Solve the model with HiGHS; status ``optimal``, ``time limit`` (best found) or ``infeasible``.

    ``allow_missed=False`` leaves out the "deadline given up" variables: exact whenever some plan
    meets every deadline (e.g. greedy's), since one missed deadline costs more than any plan.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    start = time.perf_counter()
    with_deadline = np.array([prob.tasks[t].deadline_hours is not None for t, _ in prob.pairs])
    # Variables: x for pairs that can be on time, y for pairs of tasks that have deadlines.
    x_idx = np.flatnonzero(prob.on_time_ok)
    y_idx = np.flatnonzero(with_deadline) if allow_missed else np.array([], dtype=np.int64)
    n_var = len(x_idx) + len(y_idx)
    var_pair = np.concatenate([x_idx, y_idx])
    var_on = np.concatenate([np.ones(len(x_idx), bool), np.zeros(len(y_idx), bool)])
    weight = np.array([1 + prob.tasks[prob.pairs[p][0]].priority for p in var_pair], dtype=float)
    c = prob.cost[var_pair] + np.where(var_on, 0.0, prob.penalty * weight)
    pair_task = np.array([t for t, _ in prob.pairs])
    pair_res = np.array([r for _, r in prob.pairs])
    work = prob.units * prob.hours
    rows, cols, vals, lo, hi = [], [], [], [], []
    n_rows = 0

    def add(row_of_var: np.ndarray, mask: np.ndarray, coef: np.ndarray, n_new: int,
            lower: np.ndarray, upper: np.ndarray) -> None:
        nonlocal n_rows
        sel = np.flatnonzero(mask)
        rows.append(row_of_var[sel] + n_rows)
        cols.append(sel)
        vals.append(coef[sel])
        lo.append(lower)
        hi.append(upper)
        n_rows += n_new

    n_tasks, n_res = len(prob.tasks), len(prob.pool.resources)
    ones = np.ones(n_var)
    add(pair_task[var_pair], np.ones(n_var, bool), ones, n_tasks, np.ones(n_tasks), np.ones(n_tasks))
    cap = np.array([prob.capacity(r, prob.pool.horizon_hours) for r in range(n_res)])
    add(pair_res[var_pair], np.ones(n_var, bool), work[var_pair], n_res, np.zeros(n_res), cap)
    level_arr = np.array([prob.level_of[t] if prob.level_of[t] is not None else np.inf for t in pair_task])
    for level in prob.levels:
        mask = var_on & (level_arr[var_pair] <= level)
        cap_l = np.array([prob.capacity(r, level) for r in range(n_res)])
        add(pair_res[var_pair], mask, work[var_pair], n_res, np.zeros(n_res), cap_l)
    quota_providers = sorted(prob.pool.quotas)
    if quota_providers:
        prov_of_res = np.array([quota_providers.index(r.provider) if r.provider in prob.pool.quotas else -1
                                for r in prob.pool.resources])
        prov = prov_of_res[pair_res[var_pair]]
        gpu_hours = (prob.units * prob.hours * np.array([prob.pool.resources[r].gpus_per_unit for r in pair_res]))
        q = len(quota_providers)
        cap_q = np.array([prob.pool.quotas[p] * prob.pool.horizon_hours for p in quota_providers], dtype=float)
        add(np.maximum(prov, 0), prov >= 0, gpu_hours[var_pair], q, np.zeros(q), cap_q)
    matrix = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(n_rows, n_var)).tocsr()
    constraint = LinearConstraint(matrix, np.concatenate(lo), np.concatenate(hi))
    res = milp(c, integrality=np.ones(n_var), bounds=Bounds(0, 1), constraints=[constraint],
               options={"time_limit": time_limit, "mip_rel_gap": mip_rel_gap, "disp": False})
    seconds = time.perf_counter() - start
    bound = getattr(res, "mip_dual_bound", None)
    if res.x is None:
        status = "infeasible" if res.status == 2 else f"no solution ({res.message})"
        return AllocationResult("milp", [], math.inf, math.inf, [], "infeasible" if res.status == 2 else status,
                                seconds, bound)
    chosen = [(int(var_pair[v]), bool(var_on[v])) for v in np.flatnonzero(res.x > 0.5)]
    status = "optimal" if res.status == 0 else "time limit"
    return _result(prob, "milp", chosen, status, seconds, float(bound) if bound is not None else None)


def greedy(prob: _Problem) -> AllocationResult:
    """Baseline: tasks by priority, deadline, size; each to the cheapest resource with room
    (on time if possible, else deadline given up); ``infeasible`` if some task finds no room."""
    start = time.perf_counter()
    res = prob.pool.resources
    horizon_left = np.array([prob.capacity(r, prob.pool.horizon_hours) for r in range(len(res))])
    level_left = {lv: np.array([prob.capacity(r, lv) for r in range(len(res))]) for lv in prob.levels}
    quota_left = {p: q * prob.pool.horizon_hours for p, q in prob.pool.quotas.items()}
    by_task: dict[int, list[int]] = {}
    for p, (t, _) in enumerate(prob.pairs):
        by_task.setdefault(t, []).append(p)
    order = sorted(range(len(prob.tasks)), key=lambda t: (
        -prob.tasks[t].priority, prob.tasks[t].deadline_hours if prob.tasks[t].deadline_hours is not None else math.inf,
        -prob.tasks[t].gpus * prob.tasks[t].duration_hours))
    chosen: list[tuple[int, bool]] = []
    for t in order:
        options = sorted(by_task[t], key=lambda p: (prob.cost[p], p))
        level = prob.level_of[t]
        placed = None
        for want_on_time in (True, False):
            for p in options:
                r = prob.pairs[p][1]
                w = prob.units[p] * prob.hours[p]
                gh = w * res[r].gpus_per_unit
                if w > horizon_left[r] + 1e-9:
                    continue
                if quota_left.get(res[r].provider, math.inf) < gh - 1e-9:
                    continue
                if want_on_time:
                    if not prob.on_time_ok[p]:
                        continue
                    if level is not None and any(level_left[lv][r] < w - 1e-9 for lv in prob.levels if lv >= level):
                        continue
                placed = (p, want_on_time)
                break
            if placed or prob.tasks[t].deadline_hours is None:
                break
        if placed is None:
            return AllocationResult("greedy", [], math.inf, math.inf, [], "infeasible", time.perf_counter() - start)
        p, on = placed
        r = prob.pairs[p][1]
        w = prob.units[p] * prob.hours[p]
        horizon_left[r] -= w
        if res[r].provider in quota_left:
            quota_left[res[r].provider] -= w * res[r].gpus_per_unit
        if on and level is not None:
            for lv in prob.levels:
                if lv >= level:
                    level_left[lv][r] -= w
        chosen.append(placed)
    return _result(prob, "greedy", chosen, "feasible", time.perf_counter() - start)


def _solve_once(prob: _Problem, time_limit: float) -> tuple[AllocationResult, AllocationResult, AllocationResult]:
    g = greedy(prob)
    # If greedy keeps every deadline, so does the optimum (a missed deadline outweighs any cost):
    # the MILP then needs no "given up" variables, which halves it on typical inputs.
    m = solve_milp(prob, time_limit=time_limit, allow_missed=not (g.feasible and not g.missed_deadlines))
    best = m if m.feasible and (not g.feasible or m.objective <= g.objective + 1e-9) else g
    return best, m, g


def _tightened(prob: _Problem, late: list[Assignment]) -> _Problem:
    """A copy of ``prob`` that keeps free, on each resource with late tasks, the unit-hours those
    tasks ran past their limit (at least the smallest late task's work)."""
    margin = prob.margin.copy()
    index = {r.name: i for i, r in enumerate(prob.pool.resources)}
    tasks = {t.name: t for t in prob.tasks}
    overrun: dict[int, float] = {}
    smallest: dict[int, float] = {}
    for a in late:
        r = index[a.resource]
        task = tasks[a.task]
        limit = prob.pool.horizon_hours
        if a.on_time and task.deadline_hours is not None:
            limit = min(limit, task.deadline_hours)
        overrun[r] = overrun.get(r, 0.0) + max(0.0, a.end - limit) * a.units
        smallest[r] = min(smallest.get(r, math.inf), a.units * a.hours)
    for r in overrun:
        margin[r] += max(overrun[r], smallest[r])
    return _Problem(**{**prob.__dict__, "margin": margin})


def allocate(tasks: list[Task], pool: Pool, *, time_limit: float = 10.0, repair_rounds: int = 3) -> AllocationPlan:
    """Solve with the MILP and with greedy; keep the better (MILP unless a time limit left it worse).

    Then lay the plan out in time (no preemption). While some task ends late in that layout, the
    capacity of the resources concerned is cut by the smallest late task's work and the problem is
    solved again (at most ``repair_rounds`` times; 0 keeps the pure fluid model, which is exact for
    checkpointed, preemptible work). Tasks still late are reported in ``best.late``.
    """
    prob = _build(tasks, pool)
    best, m, g = _solve_once(prob, time_limit)
    notes = list(prob.notes)
    if not best.feasible:
        need = sum(t.gpus * t.duration_hours for t in tasks)
        have = sum(r.gpus * pool.horizon_hours for r in pool.resources)
        raise ResourceUnavailable(f"the pool cannot hold all {len(tasks)} tasks within {pool.horizon_hours:g}h: "
                                  f"they need {need:g} GPU-hours (at speed 1), the pool has {have:g}",
                                  hint="lengthen the pool horizon, raise quotas or add resources")
    for round_ in range(1, repair_rounds + 1):
        if not best.late:
            break
        late = [a for a in best.assignments if a.task in best.late]
        prob = _tightened(prob, late)
        again = _solve_once(prob, time_limit)
        if not again[0].feasible:
            notes.append(f"layout repair stopped after {round_ - 1} round(s): tighter capacity leaves no plan")
            break
        notes.append(f"layout repair round {round_}: {len(late)} late task(s); capacity cut on "
                     f"{len({a.resource for a in late})} resource(s)")
        best, m, g = again
    if best is g and m.feasible:
        notes.append("the MILP stopped at its time limit with a worse plan than greedy; the greedy plan is used")
    return AllocationPlan(best, m, g, notes)
