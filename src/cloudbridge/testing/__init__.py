"""``cloudbridge.testing``: the conformance suites every provider runs, builtin and plugin alike.

Each suite is a pytest base class. A provider subclasses it in its own tests, overrides a few
fixtures that hand over the object under test, and states what it can do with class attributes;
every test of the base class then runs against it (the model is fsspec's abstract test classes)::

    from cloudbridge.testing import ComputeConformance, StorageConformance

    class TestMyCompute(ComputeConformance):
        provider_name = "mycloud"

        @pytest.fixture
        def compute(self):
            return get_provider("mycloud").compute

Suites (imported lazily, so ``import cloudbridge.testing`` needs nothing but pytest when used):

* :class:`~cloudbridge.testing.storage.StorageConformance` -- the five primitives and derived calls;
* :class:`~cloudbridge.testing.sync.SyncConformance` -- ``sync`` between two storages;
* :class:`~cloudbridge.testing.compute.ComputeConformance` -- submit, wait, failure reasons, logs,
  follow, cancel, not-found, list;
* :class:`~cloudbridge.testing.deploy.DeployConformance` -- deploy, invoke, list, delete;
* :class:`~cloudbridge.testing.managed.ManagedComputeConformance` -- a managed-training plugin's
  adapter under the core's lifecycle: budget cap, ``start_timeout``, restarts, reasons, events.

``cloudbridge.testing.emulators`` starts local cloud emulators (moto server) for such tests.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ComputeConformance", "DeployConformance", "ManagedComputeConformance", "StorageConformance",
           "SyncConformance"]

_LAZY = {
    "ComputeConformance": "cloudbridge.testing.compute",
    "DeployConformance": "cloudbridge.testing.deploy",
    "ManagedComputeConformance": "cloudbridge.testing.managed",
    "StorageConformance": "cloudbridge.testing.storage",
    "SyncConformance": "cloudbridge.testing.sync",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cloudbridge.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
