"""Assign a batch of tasks to a pool at minimum cost: a MILP (``scipy.optimize.milp``, HiGHS, here)
and a greedy baseline (:mod:`~cloudbridge.planner.greedy`), both on the model and plan records of
:mod:`~cloudbridge.planner.allocation_model`, checked by one independent verifier
(:mod:`~cloudbridge.planner.verify`). The layout repair (:func:`allocate`) lives here too.

The model (``u`` = units of resource ``r`` a task uses: ``ceil(gpus / gpus_per_unit)``;
``h = duration / speed``; ``w = u*h`` unit-hours; ``c = u*h*price``):

* every task is placed exactly once: ``sum_r x[t,r] + y[t,r] = 1``, where ``x`` means "placed and
  meets its deadline" and ``y`` "placed, deadline given up" (only for tasks with deadlines);
* capacity over the horizon ``H``: ``sum_t w[t,r] (x+y) <= units_r * H - margin_r`` (``margin_r`` is
  0 at first; see the layout repair below);
* deadlines (EDF prefix form): for every deadline ``D`` < ``H``, the work of on-time tasks with
  deadlines ``<= D`` on ``r`` fits before ``D``: ``sum w[t,r] x[t,r] <= units_r * D - margin_r``; ``x[t,r]``
  exists only where ``h[t,r] <= deadline_t``;
* provider quotas (GPUs at once, shared by the provider's resources): GPU-hours over the horizon
  ``sum_{r of p} u*gpus_per_unit*h (x+y) <= quota_p * H``, and the same EDF prefix form for every
  deadline ``D``: on-time GPU-hours due by ``D`` ``<= quota_p * D``;
* objective: ``sum c (x+y) + M * sum (1+priority_t) y``, with ``M`` larger than any total cost,
  so a deadline is given up only when no assignment keeps it, and low priorities go first.

The capacity constraints treat unit-hours and GPU-hours as divisible (a fluid relaxation of the
timeline): a plan that satisfies them can be laid out earliest-deadline-first when tasks may be
paused and resumed (checkpoints). Without preemption, multi-GPU tasks can fragment the timeline, so
every plan is also laid out in time (list scheduling, EDF, no preemption, each resource's units
and each provider's quota GPUs held by one task at a time -- never exceeded at any instant): each
assignment gets ``start``/``end`` hours, and tasks that end after their deadline or the horizon in
that layout are listed in ``late`` -- reported, never hidden. On request (``repair_rounds``),
:func:`allocate` then cuts the capacity of the resources with late tasks and solves again.
"""

from __future__ import annotations

import math
import time

import numpy as np

from cloudbridge.errors import ResourceUnavailable
from cloudbridge.planner.allocation_model import (
    AllocationPlan,
    AllocationResult,
    Assignment,
    Problem,
    build_problem,
    make_result,
)
from cloudbridge.planner.batch import Pool, Task
from cloudbridge.planner.greedy import greedy
from cloudbridge.planner.verify import verify

__all__ = ["AllocationPlan", "AllocationResult", "Assignment", "allocate", "greedy", "solve_milp", "verify"]

#: The model builder under its former name (tests and ``benchmarks/planner.py`` use it).
_build = build_problem


def solve_milp(prob: Problem, *, time_limit: float = 10.0, mip_rel_gap: float = 1e-4,
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
        quota = np.array([prob.pool.quotas[p] for p in quota_providers], dtype=float)
        add(np.maximum(prov, 0), prov >= 0, gpu_hours[var_pair], q, np.zeros(q), quota * prob.pool.horizon_hours)
        for level in prob.levels:  # the quota is GPUs at once: on-time work due by D fits in quota x D
            mask = (prov >= 0) & var_on & (level_arr[var_pair] <= level)
            add(np.maximum(prov, 0), mask, gpu_hours[var_pair], q, np.zeros(q), quota * level)
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
    return make_result(prob, "milp", chosen, status, seconds, float(bound) if bound is not None else None)


def _solve_once(prob: Problem, time_limit: float) -> tuple[AllocationResult, AllocationResult, AllocationResult]:
    g = greedy(prob)
    # If greedy keeps every deadline, so does the optimum (a missed deadline outweighs any cost):
    # the MILP then needs no "given up" variables, which halves it on typical inputs.
    m = solve_milp(prob, time_limit=time_limit, allow_missed=not (g.feasible and not g.missed_deadlines))
    best = m if m.feasible and (not g.feasible or m.objective <= g.objective + 1e-9) else g
    return best, m, g


def _tightened(prob: Problem, late: list[Assignment]) -> Problem:
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
    return Problem(**{**prob.__dict__, "margin": margin})


def allocate(tasks: list[Task], pool: Pool, *, time_limit: float = 10.0, repair_rounds: int = 0) -> AllocationPlan:
    """Solve with the MILP and with greedy; keep the better (MILP unless a time limit left it worse).

    Every plan is laid out in time (no preemption, resource units and provider quotas never exceeded);
    tasks that end late in that layout are reported in ``best.late``. By default that is all: the
    model's cost is exact for checkpointed, preemptible work and a lower bound otherwise. With
    ``repair_rounds`` N > 0, while some task ends late the capacity of the resources concerned is cut
    by the smallest late task's work and the problem is solved again (at most N times): fewer late
    tasks, at a higher cost and N more solves.
    """
    prob = build_problem(tasks, pool)
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
