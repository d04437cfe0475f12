"""Data-parallel partitioning: split one global batch across unequal GPUs.

Each worker gets a share proportional to its measured throughput (samples/s), as whole numbers
that add up to exactly the global batch (largest-remainder method: each share is within one sample
of its exact proportion). Every worker gets at least one sample, so no rank sits in a collective
with an empty batch; if the exact proportion would give a slow worker nothing, everyone gets one
sample first and the rest is shared by throughput.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from cloudbridge.errors import UserError

__all__ = ["partition_batch"]


def partition_batch(global_batch: int,
                    throughputs: Sequence[float] | Mapping[str, float]) -> list[int] | dict[str, int]:
    """Per-worker batch sizes for ``global_batch`` in proportion to ``throughputs``.

    Takes a list (returns a list) or a mapping ``name -> samples/s`` (returns ``name -> size``, same
    order). Sizes are integers >= 1 summing exactly to ``global_batch``; ties in the remainders go
    to the faster worker, then to the earlier one. Bad input is a :class:`UserError` naming the worker.
    """
    names = list(throughputs) if isinstance(throughputs, Mapping) else None
    values = [float(throughputs[n]) for n in names] if names is not None else [float(v) for v in throughputs]
    labels = names if names is not None else [f"worker {i}" for i in range(len(values))]
    if isinstance(global_batch, bool) or not isinstance(global_batch, int) or global_batch < 1:
        raise UserError(f"global batch must be a whole number >= 1, got {global_batch!r}")
    if not values:
        raise UserError("no workers to split the batch across")
    for label, value in zip(labels, values, strict=True):
        if not math.isfinite(value) or value <= 0:
            raise UserError(f"{label}: throughput must be a positive number, got {value!r}")
    n = len(values)
    if global_batch < n:
        raise UserError(f"global batch {global_batch} is smaller than the {n} workers: each needs at least 1 sample")
    sizes = _largest_remainder(global_batch, values, floor=0)
    if min(sizes) == 0:
        # A very slow worker would get nothing: give everyone 1 first, share the rest by throughput.
        sizes = _largest_remainder(global_batch, values, floor=1)
    if names is not None:
        return dict(zip(names, sizes, strict=True))
    return sizes


def _largest_remainder(total_items: int, values: list[float], *, floor: int) -> list[int]:
    n = len(values)
    rest = total_items - floor * n
    weight = sum(values)
    quotas = [rest * v / weight for v in values]
    sizes = [floor + math.floor(q) for q in quotas]
    left = total_items - sum(sizes)
    order = sorted(range(n), key=lambda i: (-(quotas[i] - math.floor(quotas[i])), -values[i], i))
    for i in order[:left]:
        sizes[i] += 1
    return sizes
