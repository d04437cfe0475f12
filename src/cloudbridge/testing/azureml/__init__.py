"""A faithful Azure ML fake for tests: HTTPS on 127.0.0.1, the SDK's REST paths, jobs that really run.

See :mod:`cloudbridge.testing.azureml.server` for what it speaks and
:mod:`cloudbridge.testing.azureml.runner` for how a job runs. Needs ``azure-storage-blob`` (its
storage is an Azurite server, :mod:`cloudbridge.testing.azurite`); imported only when used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AzureMLFake"]


def __getattr__(name: str) -> Any:
    if name == "AzureMLFake":
        from cloudbridge.testing.azureml.server import AzureMLFake

        return AzureMLFake
    raise AttributeError(f"module 'cloudbridge.testing.azureml' has no attribute {name!r}")
