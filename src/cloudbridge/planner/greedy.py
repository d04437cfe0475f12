"""The greedy baseline of batch allocation: simple, fast, and what the MILP must never lose to."""

from __future__ import annotations

import math
import time

import numpy as np

from cloudbridge.planner.allocation_model import AllocationResult, Problem, make_result

__all__ = ["greedy"]


def greedy(prob: Problem) -> AllocationResult:
    """Baseline: tasks by priority, deadline, size; each to the cheapest resource with room
    (on time if possible, else deadline given up); ``infeasible`` if some task finds no room."""
    start = time.perf_counter()
    res = prob.pool.resources
    horizon_left = np.array([prob.capacity(r, prob.pool.horizon_hours) for r in range(len(res))])
    level_left = {lv: np.array([prob.capacity(r, lv) for r in range(len(res))]) for lv in prob.levels}
    quota_left = {p: q * prob.pool.horizon_hours for p, q in prob.pool.quotas.items()}
    quota_level_left = {lv: {p: q * lv for p, q in prob.pool.quotas.items()} for lv in prob.levels}
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
                    if level is not None and any(level_left[lv][r] < w - 1e-9
                                                 or quota_level_left[lv].get(res[r].provider, math.inf) < gh - 1e-9
                                                 for lv in prob.levels if lv >= level):
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
                    if res[r].provider in quota_level_left[lv]:
                        quota_level_left[lv][res[r].provider] -= w * res[r].gpus_per_unit
        chosen.append(placed)
    return make_result(prob, "greedy", chosen, "feasible", time.perf_counter() - start)
