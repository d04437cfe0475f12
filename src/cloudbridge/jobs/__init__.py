"""Job records shared by every provider.

* :mod:`cloudbridge.jobs.store` -- :class:`~cloudbridge.jobs.store.JobStore`, the SQLite file
  (``CLOUDBRIDGE_HOME/cloudbridge.db``) that keeps every job of every provider, its events and the
  local backend's GPU allocations and queue.
* :mod:`cloudbridge.jobs.events` -- :func:`~cloudbridge.jobs.events.emit` fires the
  ``cloudbridge_job_event`` hook; the builtin observer in that module appends each event to the
  job's record.
* :mod:`cloudbridge.jobs.redact` -- secret-looking values never reach a stored record.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    """``cloudbridge.jobs`` is both this package and the SDK call ``cb.jobs()``.

    Importing ``cloudbridge.jobs.store`` binds this package to the attribute ``cloudbridge.jobs``,
    shadowing the lazy SDK function of the same name; calling the package forwards to
    :func:`cloudbridge.sdk.jobs`, so ``cb.jobs()`` works either way.
    """

    def __call__(self, provider: str | None = None) -> Any:
        """``cb.jobs(provider=None)``: recorded jobs, newest first (see :func:`cloudbridge.sdk.jobs`)."""
        from cloudbridge.sdk import jobs

        return jobs(provider)


sys.modules[__name__].__class__ = _CallableModule
