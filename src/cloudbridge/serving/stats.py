"""A serving process's own request counters: count, errors, recent rate, p50/p99 latency.

The inference server records every ``/invocations`` request here and answers ``GET /stats`` from it
(the dashboard's endpoints page reads it). Latencies are kept for the last :data:`WINDOW` requests.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

__all__ = ["WINDOW", "RequestStats"]

WINDOW = 2048
RATE_SECONDS = 60.0


class RequestStats:
    """Thread-safe counters of one server."""

    def __init__(self) -> None:
        """Start counting now."""
        self.started = time.time()
        self.requests = 0
        self.errors = 0
        self._recent: deque[tuple[float, float]] = deque(maxlen=WINDOW)  # (monotonic end, seconds)
        self._lock = threading.Lock()

    def record(self, seconds: float, ok: bool) -> None:
        """Count one request that took ``seconds``."""
        with self._lock:
            self.requests += 1
            self.errors += 0 if ok else 1
            self._recent.append((time.monotonic(), seconds))

    def snapshot(self) -> dict[str, Any]:
        """``requests``, ``errors``, ``rate`` (per second, last minute), ``p50_ms``, ``p99_ms``, ``uptime_s``."""
        with self._lock:
            recent = list(self._recent)
            requests, errors = self.requests, self.errors
        now = time.monotonic()
        window = [t for end, t in recent if now - end <= RATE_SECONDS]
        span = min(RATE_SECONDS, max(time.time() - self.started, 1e-9))
        latencies = sorted(t for _, t in recent)

        def quantile(q: float) -> float | None:
            if not latencies:
                return None
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 3)

        return {"requests": requests, "errors": errors, "rate": round(len(window) / span, 3),
                "p50_ms": quantile(0.50), "p99_ms": quantile(0.99), "uptime_s": round(time.time() - self.started, 1)}
