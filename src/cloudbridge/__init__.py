"""cloudbridge: one SDK and CLI to store data, fine-tune and deploy models on any cloud.

Everything here is lazy: ``import cloudbridge`` loads no cloud SDK, torch, transformers or
accelerate, and not even pydantic until a spec is built::

    import cloudbridge as cb
    job = cb.run("job.yaml", provider="local")
    job.wait()
    for line in job.logs():
        print(line)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # plugin API (lazy too: ``cloudbridge --version`` should not pay for pluggy)
    "PLUGIN_API_VERSION": "cloudbridge.hookspecs:PLUGIN_API_VERSION",
    "ProviderInfo": "cloudbridge.hookspecs:ProviderInfo",
    "hookimpl": "cloudbridge.hookspecs:hookimpl",
    # SDK facade
    "run": "cloudbridge.sdk:run",
    "get_job": "cloudbridge.sdk:get_job",
    "jobs": "cloudbridge.sdk:jobs",
    "provider": "cloudbridge.sdk:provider",
    "providers": "cloudbridge.sdk:providers",
    "storage": "cloudbridge.sdk:storage",
    "deploy": "cloudbridge.sdk:deploy",
    "endpoints": "cloudbridge.sdk:endpoints",
    "validate": "cloudbridge.sdk:validate",
    "cancel": "cloudbridge.sdk:cancel",
    "logs": "cloudbridge.sdk:logs",
    "migrate": "cloudbridge.migrate:migrate",
    "sync": "cloudbridge.transfers.sync:sync",
    # specs and records
    "JobSpec": "cloudbridge.specs:JobSpec",
    "Resources": "cloudbridge.specs:Resources",
    "EndpointSpec": "cloudbridge.specs:EndpointSpec",
    "load_job_spec": "cloudbridge.specs:load_job_spec",
    "Job": "cloudbridge.records:Job",
    "JobState": "cloudbridge.records:JobState",
    "Endpoint": "cloudbridge.records:Endpoint",
    "errors": "cloudbridge.errors",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    # what _LAZY exports, for type checkers and IDEs ("X as X": an explicit re-export under mypy --strict)
    from cloudbridge import errors as errors
    from cloudbridge.hookspecs import PLUGIN_API_VERSION as PLUGIN_API_VERSION
    from cloudbridge.hookspecs import ProviderInfo as ProviderInfo
    from cloudbridge.hookspecs import hookimpl as hookimpl
    from cloudbridge.migrate import migrate as migrate
    from cloudbridge.records import Endpoint as Endpoint
    from cloudbridge.records import Job as Job
    from cloudbridge.records import JobState as JobState
    from cloudbridge.sdk import cancel as cancel
    from cloudbridge.sdk import deploy as deploy
    from cloudbridge.sdk import endpoints as endpoints
    from cloudbridge.sdk import get_job as get_job
    from cloudbridge.sdk import jobs as jobs
    from cloudbridge.sdk import logs as logs
    from cloudbridge.sdk import provider as provider
    from cloudbridge.sdk import providers as providers
    from cloudbridge.sdk import run as run
    from cloudbridge.sdk import storage as storage
    from cloudbridge.sdk import validate as validate
    from cloudbridge.specs import EndpointSpec as EndpointSpec
    from cloudbridge.specs import JobSpec as JobSpec
    from cloudbridge.specs import Resources as Resources
    from cloudbridge.specs import load_job_spec as load_job_spec
    from cloudbridge.transfers.sync import sync as sync


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'cloudbridge' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    value: Any = importlib.import_module(module_name)
    if attr:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
