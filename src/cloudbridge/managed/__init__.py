"""Managed cloud jobs (SageMaker, Vertex AI, Azure ML...): one lifecycle every cloud plugin reuses.

* :mod:`cloudbridge.managed.adapter` -- the contract a plugin implements: :class:`ManagedAdapter`,
  :class:`Snapshot`, :class:`Placement`.
* :mod:`cloudbridge.managed.compute` -- :class:`ManagedCompute`, the :class:`~cloudbridge.interfaces.Compute`
  a plugin instantiates with its adapter and storage.
* :mod:`cloudbridge.managed.limits` -- :class:`Limits` (run-time cap, budget cap, start timeout,
  restarts) and the ``cloudbridge:*`` tags the core stores on every job.
* :mod:`cloudbridge.managed.lifecycle`, :mod:`~cloudbridge.managed.reading`,
  :mod:`~cloudbridge.managed.logs` -- reads: state table, ``start_timeout``, restarts, reasons, logs.
* :mod:`cloudbridge.managed.memory` -- the in-memory reference adapter (the worked example).

Nothing here imports a cloud SDK.
"""

from __future__ import annotations

from cloudbridge.managed.adapter import CHECK_CODE_URI, ManagedAdapter, Placement, Snapshot
from cloudbridge.managed.compute import ManagedCompute
from cloudbridge.managed.limits import Limits

__all__ = ["CHECK_CODE_URI", "Limits", "ManagedAdapter", "ManagedCompute", "Placement", "Snapshot"]
