"""An independent check of allocation plans: every constraint a plan breaks, as sentences.

It recomputes units, hours and costs from the tasks and the pool and checks the model's constraints
(each task once, fits, capacity over the horizon, provider quotas, deadline prefixes for on-time
tasks) without using anything the solvers built, so tests can hold MILP and greedy to it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cloudbridge.planner.batch import Pool, Task, fits

if TYPE_CHECKING:
    from cloudbridge.planner.allocation import AllocationResult

__all__ = ["verify"]


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
    return problems
