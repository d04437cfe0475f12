"""Vectorised feasibility and ranking of catalog offerings (numpy).

:func:`rank` evaluates every row at once: each row gets the code of the *first* requirement it
fails (0 when feasible), feasible rows are sorted cheapest first. The codes are explained by
:data:`REASONS`. ``cloudbridge.planner.placement`` turns the result into ``Placement`` records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cloudbridge.planner.accelerators import satisfies

if TYPE_CHECKING:
    from cloudbridge.planner.catalog import CatalogRow

__all__ = ["REASONS", "Requirements", "build_arrays", "rank", "row_runtimes"]

#: Exclusion code -> (short key, description). Codes are checked in this order.
REASONS: dict[int, tuple[str, str]] = {
    1: ("provider", "provider not selected"),
    2: ("not-installed", "provider plugin not installed"),
    3: ("instance-type", "not the instance type the spec pins"),
    4: ("accelerator", "wrong accelerator"),
    5: ("gpu-count", "too few GPUs per node"),
    6: ("cpus", "too few vCPUs"),
    7: ("memory", "too little memory"),
    8: ("gpu-memory", "too little GPU memory"),
    9: ("multi-node", "the local machine is a single node"),
    10: ("no-spot", "no spot offering"),
    11: ("max-price", "over the hourly price limit"),
    12: ("max-cost", "estimated total over max_cost"),
}


@dataclass(frozen=True)
class Requirements:
    """What a placement must provide (per node unless said otherwise)."""

    accelerator: str | None = None
    gpus: int = 0
    nodes: int = 1
    min_cpus: float | None = None
    min_memory_gb: float | None = None
    min_gpu_memory_gb: float | None = None
    spot: bool = False
    instance_type: str | None = None
    providers: frozenset[str] | None = None
    excluded_providers: frozenset[str] = field(default_factory=frozenset)
    max_hourly: float | None = None
    max_cost: float | None = None
    runtime_hours: float | None = None
    #: Measured throughput (samples/s per GPU by accelerator) and the samples the job processes: with
    #: both, each offering gets its own run time (see :func:`row_runtimes`).
    throughput: Mapping[str, float] | None = None
    samples: float | None = None


def build_arrays(rows: Sequence[CatalogRow]) -> dict[str, np.ndarray]:
    """Columnar view of ``rows``: numeric columns plus integer codes for names."""
    providers = sorted({r.provider for r in rows})
    accels = sorted({r.accelerator for r in rows if r.accelerator})
    instances = sorted({r.instance_type for r in rows})
    p_index = {p: i for i, p in enumerate(providers)}
    a_index = {a: i for i, a in enumerate(accels)}
    i_index = {n: i for i, n in enumerate(instances)}
    n = len(rows)
    spot = np.full(n, np.nan)
    for i, r in enumerate(rows):
        if r.spot_price_hour is not None:
            spot[i] = r.spot_price_hour
    return {
        "provider": np.fromiter((p_index[r.provider] for r in rows), dtype=np.int32, count=n),
        "accelerator": np.fromiter((a_index[r.accelerator] if r.accelerator else -1 for r in rows),
                                   dtype=np.int32, count=n),
        "instance": np.fromiter((i_index[r.instance_type] for r in rows), dtype=np.int32, count=n),
        "count": np.fromiter((r.accelerator_count for r in rows), dtype=np.int64, count=n),
        "gpu_memory": np.fromiter((r.gpu_memory_gb for r in rows), dtype=np.float64, count=n),
        "vcpus": np.fromiter((r.vcpus for r in rows), dtype=np.float64, count=n),
        "memory": np.fromiter((r.memory_gb for r in rows), dtype=np.float64, count=n),
        "price": np.fromiter((r.price_hour for r in rows), dtype=np.float64, count=n),
        "spot": spot,
        "codes_provider": np.array(providers, dtype=object),
        "codes_accelerator": np.array(accels, dtype=object),
        "codes_instance": np.array(instances, dtype=object),
    }


def _codes(names: np.ndarray, wanted: set[str] | frozenset[str]) -> np.ndarray:
    return np.array([i for i, name in enumerate(names) if name in wanted], dtype=np.int32)


def row_runtimes(arrays: dict[str, np.ndarray], req: Requirements) -> np.ndarray:
    """Estimated run time of the job on each row, in hours (NaN: unknown).

    With ``req.throughput`` and ``req.samples``: ``samples / (rate x GPUs x nodes)`` for rows whose
    accelerator has a measured rate (GPUs = what the job asks per node), capped at ``max_runtime``
    (the job is stopped then); every other row: ``req.runtime_hours`` (``max_runtime``) or NaN.
    """
    from cloudbridge.planner.throughput import rate_for

    n = arrays["provider"].shape[0]
    base = np.full(n, np.nan if req.runtime_hours is None else float(req.runtime_hours))
    if not req.throughput or not req.samples:
        return base
    names = arrays["codes_accelerator"]
    rate_of_code = np.array([rate_for(str(name), req.throughput) or np.nan for name in names] + [np.nan])
    rate = rate_of_code[arrays["accelerator"]]  # code -1 (no GPU) picks the trailing NaN
    gpus = req.gpus if req.gpus else arrays["count"]
    with np.errstate(divide="ignore", invalid="ignore"):
        measured = req.samples / (rate * gpus * req.nodes) / 3600
    if req.runtime_hours is not None:
        measured = np.minimum(measured, req.runtime_hours)
    return np.where(np.isnan(measured), base, measured)


def rank(arrays: dict[str, np.ndarray], req: Requirements,
         installed: set[str] | frozenset[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate every row against ``req``.

    Returns ``(order, reason, hourly)``: ``order`` the indices of feasible rows, cheapest first
    (ties: fewer surplus GPUs, then catalog order) -- by estimated total when a measured throughput
    and a sample count are given (rows without a rate for their accelerator last); ``reason`` the
    exclusion code of each row (0 = feasible); ``hourly`` the price of each row for the whole job
    (price x nodes, spot when asked).
    ``installed`` (when given) names the providers that can run jobs here; others get code 2.
    """
    provider = arrays["provider"]
    n = provider.shape[0]
    names = arrays["codes_provider"]
    local_code = _codes(names, {"local"})
    is_local = np.isin(provider, local_code)
    # The local machine has no spot market: a spot request runs there at its (zero) price.
    price = np.where(is_local, arrays["price"], arrays["spot"]) if req.spot else arrays["price"]
    hourly = price * req.nodes
    checks: list[tuple[int, np.ndarray]] = []
    if req.providers is not None or req.excluded_providers:
        allowed = set(req.providers if req.providers is not None else names) - set(req.excluded_providers)
        checks.append((1, ~np.isin(provider, _codes(names, allowed))))
    if installed is not None:
        checks.append((2, ~np.isin(provider, _codes(names, installed))))
    if req.instance_type is not None:
        # Local rows describe this machine; a pinned cloud instance type does not apply to them.
        checks.append((3, ~np.isin(arrays["instance"], _codes(arrays["codes_instance"], {req.instance_type}))
                       & ~is_local))
    accel = arrays["accelerator"]
    if req.accelerator is None:
        wrong = accel >= 0
    else:
        ok = [i for i, name in enumerate(arrays["codes_accelerator"]) if satisfies(name, req.accelerator)]
        wrong = ~np.isin(accel, np.array(ok, dtype=np.int32))
    checks.append((4, wrong))
    if req.gpus:
        checks.append((5, arrays["count"] < req.gpus))
    if req.min_cpus is not None:
        checks.append((6, arrays["vcpus"] < req.min_cpus))
    if req.min_memory_gb is not None:
        checks.append((7, arrays["memory"] < req.min_memory_gb))
    if req.min_gpu_memory_gb is not None:
        checks.append((8, arrays["gpu_memory"] < req.min_gpu_memory_gb))
    if req.nodes > 1:
        checks.append((9, is_local))
    if req.spot:
        checks.append((10, np.isnan(price)))
    if req.max_hourly is not None:
        checks.append((11, hourly > req.max_hourly + 1e-9))
    runtime = row_runtimes(arrays, req)
    total = hourly * runtime
    if req.max_cost is not None:
        checks.append((12, total > req.max_cost + 1e-9))  # NaN (unknown run time) compares False
    reason = np.zeros(n, dtype=np.int8)
    for code, mask in reversed(checks):
        reason[mask] = code
    feasible = np.flatnonzero(reason == 0)
    surplus = arrays["count"][feasible] - req.gpus
    keys = [feasible, surplus, hourly[feasible]]
    if req.throughput and req.samples:
        # Measured throughput: cheapest estimated total first; rows without one after, by price.
        keys.append(np.nan_to_num(total[feasible], nan=np.inf))
    order = feasible[np.lexsort(tuple(keys))]
    return order, reason, hourly
