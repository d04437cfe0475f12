"""The provider-neutral vocabulary of ``Job.reason``: fixed sentences every provider uses.

A job's ``reason`` is a short sentence that scripts can match, whichever provider ran the job
(``Job.detail`` carries the provider's own specifics). Providers -- builtin or plugins -- build
their reasons from these constants and functions so the same failure reads the same everywhere.
Pure and stdlib-only: cheap to import.
"""

from __future__ import annotations

__all__ = [
    "BAD_CONFIGURATION",
    "BUDGET_EXCEEDED",
    "CANCELLED_BY_USER",
    "FAILED",
    "IMAGE_PULL_FAILED",
    "NON_ZERO_EXIT",
    "NO_CAPACITY",
    "NO_SPOT_CAPACITY",
    "OUT_OF_MEMORY",
    "QUOTA_EXCEEDED",
    "SPOT_REASONS",
    "SPOT_RECLAIMED",
    "fmt_duration",
    "queued_timeout_reason",
    "runtime_timeout_reason",
    "start_timeout_reason",
]

OUT_OF_MEMORY = "out of memory"
BUDGET_EXCEEDED = "budget exceeded"
CANCELLED_BY_USER = "cancelled by user"
#: Managed cloud jobs (every managed-training plugin maps its service's failures onto these).
SPOT_RECLAIMED = "spot reclaimed"
NO_SPOT_CAPACITY = "no spot capacity"
QUOTA_EXCEEDED = "quota exceeded"
NO_CAPACITY = "no capacity"
IMAGE_PULL_FAILED = "image pull failed"
NON_ZERO_EXIT = "non-zero exit"
BAD_CONFIGURATION = "bad configuration"
FAILED = "failed"
#: Reasons after which a spot job with checkpoints and ``max_restarts`` is resubmitted.
SPOT_REASONS = frozenset({SPOT_RECLAIMED, NO_SPOT_CAPACITY})


def fmt_duration(seconds: float) -> str:
    """``30`` -> ``30s``, ``90`` -> ``1m30s``, ``5400`` -> ``1h30m``, ``86400`` -> ``1d``."""
    total = int(round(seconds))
    if total <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts)


def runtime_timeout_reason(max_runtime: float) -> str:
    """The reason of a job stopped by ``resources.max_runtime``."""
    return f"timed out: running stage exceeded max_runtime {fmt_duration(max_runtime)}"


def queued_timeout_reason(start_timeout: float) -> str:
    """The reason of a job that waited in a local queue longer than ``resources.start_timeout``."""
    return f"timed out: queued for more than start_timeout {fmt_duration(start_timeout)}"


def start_timeout_reason(start_timeout: float) -> str:
    """The reason of a cloud job still provisioning after ``resources.start_timeout``."""
    return f"timed out: provisioning exceeded start_timeout {fmt_duration(start_timeout)}"
