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
    # names exported through _LAZY (and so __all__), which ruff cannot see
    from cloudbridge import errors  # noqa: F401
    from cloudbridge.hookspecs import PLUGIN_API_VERSION, ProviderInfo, hookimpl  # noqa: F401
    from cloudbridge.records import Endpoint, Job, JobState  # noqa: F401
    from cloudbridge.sdk import cancel, deploy, get_job, jobs, logs, provider, providers, run, storage  # noqa: F401
    from cloudbridge.specs import EndpointSpec, JobSpec, Resources, load_job_spec  # noqa: F401


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
