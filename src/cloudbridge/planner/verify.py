"""An independent check of allocation plans: every constraint a plan breaks, as sentences.

It recomputes units, hours and costs from the tasks and the pool and checks the model's constraints
(each task once, fits, capacity over the horizon, provider quotas, deadline prefixes for on-time
tasks) without using anything the solvers built, so tests can hold MILP and greedy to it. It also
checks the plan's timeline (each assignment's ``start``/``end``): at no instant may a resource run
more units, or a provider more GPUs than its quota, than it has; and every task that ends after its
deadline or the horizon must be listed in ``late`` (reported, never hidden).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cloudbridge.planner.batch import Pool, Task, fits

if TYPE_CHECKING:
    from cloudbridge.planner.allocation import AllocationResult

__all__ = ["peak_usage", "verify"]


def verify(tasks: list[Task], pool: Pool, result: AllocationResult) -> list[str]:
    """Every constraint the plan breaks, as sentences (empty = valid). Independent of the solvers."""
    problems: list[str] = []
    by_name = {r.name: r for r in pool.resources}
    task_by_name = {t.name: t for t in tasks}
    counts: dict[str, int] = {}
    used: dict[str, float] = {}
    quota_used: dict[str, float] = {}
    for a in result.assignments:
        counts[a.task] = counts.get(a.task, 0) + 1
        task, res = task_by_name[a.task], by_name[a.resource]
        if not fits(task, res):
            problems.append(f"{a.task} does not fit {a.resource}")
        units = math.ceil(task.gpus / res.gpus_per_unit)
        hours = task.duration_hours / res.speed
        if a.units != units or abs(a.hours - hours) > 1e-9:
            problems.append(f"{a.task} on {a.resource}: wrong units/hours")
        if abs(a.cost - units * hours * res.price_per_unit_hour) > 1e-6:
            problems.append(f"{a.task} on {a.resource}: wrong cost")
        used[a.resource] = used.get(a.resource, 0.0) + units * hours
        quota_used[res.provider] = quota_used.get(res.provider, 0.0) + units * hours * res.gpus_per_unit
        if a.on_time and task.deadline_hours is not None and hours > task.deadline_hours + 1e-9:
            problems.append(f"{a.task} is marked on time but runs {hours:g}h > deadline {task.deadline_hours:g}h")
        if not a.on_time and task.deadline_hours is None:
            problems.append(f"{a.task} has no deadline to miss")
    for task in tasks:
        if counts.get(task.name, 0) != 1:
            problems.append(f"{task.name} is placed {counts.get(task.name, 0)} times")
    for name, hours in used.items():
        if hours > by_name[name].units * pool.horizon_hours + 1e-6:
            problems.append(f"{name} is over capacity: {hours:g} unit-hours")
    for provider, gh in quota_used.items():
        if provider in pool.quotas and gh > pool.quotas[provider] * pool.horizon_hours + 1e-6:
            problems.append(f"provider {provider} is over its quota")
    problems += _timeline_problems(tasks, pool, result)
    deadlines = sorted({t.deadline_hours for t in tasks if t.deadline_hours is not None})
    for d in deadlines:
        if d >= pool.horizon_hours:
            continue
        load: dict[str, float] = {}
        for a in result.assignments:
            task = task_by_name[a.task]
            if a.on_time and task.deadline_hours is not None and task.deadline_hours <= d:
                load[a.resource] = load.get(a.resource, 0.0) + a.units * a.hours
        for name, hours in load.items():
            if hours > by_name[name].units * d + 1e-6:
                problems.append(f"{name} cannot finish {hours:g} unit-hours of on-time work by {d:g}h")
        gpu_load: dict[str, float] = {}
        for a in result.assignments:
            task, res = task_by_name[a.task], by_name[a.resource]
            if a.on_time and task.deadline_hours is not None and task.deadline_hours <= d:
                gpu_load[res.provider] = gpu_load.get(res.provider, 0.0) + a.units * a.hours * res.gpus_per_unit
        for provider, gh in gpu_load.items():
            if provider in pool.quotas and gh > pool.quotas[provider] * d + 1e-6:
                problems.append(f"provider {provider} cannot finish {gh:g} GPU-hours of on-time work by {d:g}h")
    return problems


def peak_usage(intervals: list[tuple[float, float, float]]) -> float:
    """The most of something in use at once, given ``(start, end, amount)`` half-open intervals.

    Times are compared to 1e-9 h (3.6 microseconds): float noise is not an overlap."""
    spans = [(round(s, 9), round(e, 9), a) for s, e, a in intervals]
    events = sorted([(s, a) for s, e, a in spans if e > s] + [(e, -a) for s, e, a in spans if e > s],
                    key=lambda ev: (ev[0], ev[1]))  # at equal times, releases come before new uses
    peak = level = 0.0
    for _, amount in events:
        level += amount
        peak = max(peak, level)
    return peak


def _timeline_problems(tasks: list[Task], pool: Pool, result: AllocationResult) -> list[str]:
    """Peak concurrent units per resource and GPUs per provider from ``start``/``end``; hidden lateness."""
    problems = []
    by_name = {r.name: r for r in pool.resources}
    task_by_name = {t.name: t for t in tasks}
    per_res: dict[str, list[tuple[float, float, float]]] = {}
    per_provider: dict[str, list[tuple[float, float, float]]] = {}
    for a in result.assignments:
        res = by_name[a.resource]
        if a.end > a.start and abs((a.end - a.start) - a.hours) > 1e-6:
            problems.append(f"{a.task} runs {a.start:g}h-{a.end:g}h, not its {a.hours:g}h")
        per_res.setdefault(a.resource, []).append((a.start, a.end, a.units))
        per_provider.setdefault(res.provider, []).append((a.start, a.end, a.units * res.gpus_per_unit))
        task = task_by_name[a.task]
        limit = pool.horizon_hours
        if a.on_time and task.deadline_hours is not None:
            limit = min(limit, task.deadline_hours)
        if a.end > limit + 1e-9 and a.task not in result.late:
            problems.append(f"{a.task} ends at {a.end:g}h, after {limit:g}h, but is not reported late")
    for name, intervals in per_res.items():
        peak = peak_usage(intervals)
        if peak > by_name[name].units + 1e-9:
            problems.append(f"{name} runs {peak:g} units at once; it has {by_name[name].units}")
    for provider, intervals in per_provider.items():
        peak = peak_usage(intervals)
        if provider in pool.quotas and peak > pool.quotas[provider] + 1e-9:
            problems.append(f"provider {provider} runs {peak:g} GPUs at once; its quota is {pool.quotas[provider]}")
    return problems
