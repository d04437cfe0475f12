"""Retrying transient failures with exponential backoff and jitter."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from cloudbridge.errors import TransientError

__all__ = ["RetryPolicy", "retry_call"]

T = TypeVar("T")


class RetryPolicy:
    """``attempts`` tries in all; waits ``base * 2**n`` seconds (capped, with full jitter) between them."""

    def __init__(self, attempts: int = 6, base: float = 0.1, cap: float = 4.0) -> None:
        self.attempts = max(1, attempts)
        self.base = base
        self.cap = cap

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures."""
        return random.uniform(0, min(self.cap, self.base * (2 ** (failures - 1))))


def retry_call(
    fn: Callable[[], T],
    policy: RetryPolicy | None = None,
    *,
    retry_on: tuple[type[BaseException], ...] = (TransientError,),
    on_retry: Callable[[int, BaseException], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, retrying ``retry_on`` errors; the last error is re-raised."""
    policy = policy or RetryPolicy()
    failures = 0
    while True:
        try:
            return fn()
        except retry_on as exc:
            failures += 1
            if failures >= policy.attempts:
                raise
            if on_retry is not None:
                on_retry(failures, exc)
            sleep(policy.delay(failures))
