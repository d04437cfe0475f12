"""The planner: where jobs run, what they cost, and how a batch of jobs shares GPUs.

Modules (each imported on first use; ``import cloudbridge.planner`` is cheap):

* :mod:`~cloudbridge.planner.catalog` -- instance types and prices (CSV + plugin hook);
* :mod:`~cloudbridge.planner.accelerators` -- accelerator names, aliases, suggestions;
* :mod:`~cloudbridge.planner.probe` -- this machine as catalog rows;
* :mod:`~cloudbridge.planner.placement` -- ``plan_placements``, ``choose_instance``, ``resolve_auto``;
* :mod:`~cloudbridge.planner.cost` -- ``estimate_cost``, ``check_budget``, spend reports;
* :mod:`~cloudbridge.planner.allocation` -- many tasks on a pool: MILP (HiGHS) and greedy;
  the model and plan records in :mod:`~cloudbridge.planner.allocation_model`, the greedy baseline
  in :mod:`~cloudbridge.planner.greedy`;
* :mod:`~cloudbridge.planner.partition` -- split a global batch across unequal GPUs;
* :mod:`~cloudbridge.planner.scheduler` -- ``pick_next`` for the local GPU queue.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "load_catalog": "cloudbridge.planner.catalog",
    "CatalogRow": "cloudbridge.planner.catalog",
    "plan_placements": "cloudbridge.planner.placement",
    "plan_job": "cloudbridge.planner.placement",
    "choose_instance": "cloudbridge.planner.placement",
    "resolve_auto": "cloudbridge.planner.placement",
    "estimate_cost": "cloudbridge.planner.cost",
    "check_budget": "cloudbridge.planner.cost",
    "allocate": "cloudbridge.planner.allocation",
    "partition_batch": "cloudbridge.planner.partition",
    "pick_next": "cloudbridge.planner.scheduler",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cloudbridge.planner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
