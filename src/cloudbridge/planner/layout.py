"""Lay an allocation plan out in time, without preemption: who runs when.

The allocation model (:mod:`~cloudbridge.planner.allocation`) counts unit-hours and GPU-hours, which
is exact for work that can be paused and resumed. Real jobs usually run start to finish, so every
plan is also given a timeline here: tasks are taken earliest deadline first (then higher priority,
then more units, then longer), and each starts at the earliest time at which, for its whole run,

* its resource has its ``u`` units free (a resource has ``units`` units at once), and
* its provider, when the pool sets a quota, has its ``u x gpus_per_unit`` GPUs free (a quota is a
  shared capacity of GPUs at once across all of that provider's resources).

Earlier gaps are filled when a task fits in them (backfilling), so a waiting multi-unit task does not
leave the units it waits for idle. Capacities are never exceeded at any instant; a task that does not
fit before its deadline or the horizon ends late, and the plan reports it.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloudbridge.planner.allocation_model import Problem

__all__ = ["Profile", "timeline"]

_EPS = 1e-9
#: Times are kept to this many decimals of an hour (3.6 microseconds), so that ends computed along
#: different paths (0.5 / 0.9 + ... ) meet exactly where they should instead of overlapping by 1e-15.
_DIGITS = 9


def _t(value: float) -> float:
    return round(value, _DIGITS)


class Profile:
    """How much of one capacity is in use over time: a step function with breakpoints ``times``;
    ``levels[i]`` is the use on ``[times[i], times[i+1])`` (the last one runs forever and is 0 once
    every interval has ended)."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.times: list[float] = [0.0]
        self.levels: list[float] = [0.0]

    def earliest(self, start: float, hours: float, need: float) -> float:
        """The earliest ``s >= start`` with ``need`` free during all of ``[s, s + hours)``."""
        s = _t(start)
        i = bisect_right(self.times, s) - 1
        while True:
            j, end = i, _t(s + hours)
            while j < len(self.times) and self.times[j] < end:
                if self.levels[j] + need > self.capacity + _EPS:
                    break
                j += 1
            else:
                return s
            if j + 1 >= len(self.times):
                raise ValueError(f"{need:g} is more than the whole capacity {self.capacity:g}")
            s, i = self.times[j + 1], j + 1  # busy segment j: try again once it ends

    def _split(self, at: float) -> int:
        i = bisect_right(self.times, at) - 1
        if self.times[i] == at:
            return i
        self.times.insert(i + 1, at)
        self.levels.insert(i + 1, self.levels[i])
        return i + 1

    def add(self, start: float, end: float, amount: float) -> None:
        """Use ``amount`` during ``[start, end)``."""
        first = self._split(_t(start))
        last = self._split(_t(end))
        for k in range(first, last):
            self.levels[k] += amount


def timeline(prob: Problem, chosen: list[tuple[int, bool]]) -> dict[int, tuple[float, float]]:
    """``pair -> (start, end)`` for the pair choices ``[(pair index, on_time)]`` (see the module docstring)."""
    resources = prob.pool.resources

    def key(item: tuple[int, bool]) -> tuple[float, int, int, float, int]:
        p, on_time = item
        task = prob.tasks[prob.pairs[p][0]]
        deadline = task.deadline_hours if on_time and task.deadline_hours is not None else math.inf
        return (deadline, -task.priority, -int(prob.units[p]), -float(prob.hours[p]), p)

    unit_use: dict[int, Profile] = {}
    quota_use: dict[str, Profile] = {}
    times: dict[int, tuple[float, float]] = {}
    for p, _ in sorted(chosen, key=key):
        r = prob.pairs[p][1]
        units, hours = int(prob.units[p]), float(prob.hours[p])
        gpus = units * resources[r].gpus_per_unit
        own = unit_use.setdefault(r, Profile(resources[r].units))
        provider = resources[r].provider
        shared = None
        if provider in prob.pool.quotas:
            shared = quota_use.setdefault(provider, Profile(prob.pool.quotas[provider]))
        start = 0.0
        while True:  # alternate until both capacities agree on a start (each step only moves it later)
            start = own.earliest(start, hours, units)
            if shared is None:
                break
            later = shared.earliest(start, hours, gpus)
            if later <= start:
                break
            start = later
        end = _t(start + hours)
        own.add(start, end, units)
        if shared is not None:
            shared.add(start, end, gpus)
        times[p] = (start, end)
    return times
