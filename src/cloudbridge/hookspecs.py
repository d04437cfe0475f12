"""The plugin hooks. These specs are the documentation of the plugin API.

A plugin is a module (or object) with functions marked ``@cloudbridge.hookimpl``, published
under the entry-point group ``cloudbridge``::

    [project.entry-points.cloudbridge]
    foo = "cloudbridge_foo.plugin"

Registration hooks take a ``register`` callback and must be cheap: hand over strings and
plain data, import no SDK. The builtin ``local`` provider registers itself through the same
hooks (see :mod:`cloudbridge.backends.local.plugin`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

__all__ = [
    "PLUGIN_API_VERSION",
    "JobEvent",
    "ProviderInfo",
    "hookimpl",
    "hookspec",
    "cloudbridge_register_providers",
    "cloudbridge_resolve_settings",
    "cloudbridge_job_event",
    "cloudbridge_register_catalog",
    "cloudbridge_register_commands",
]

#: Version of this hook API. A plugin may declare ``CLOUDBRIDGE_PLUGIN_API = 1`` in its plugin
#: module; a plugin built for a newer API than this one is refused with a clear message.
PLUGIN_API_VERSION = 1

PROJECT = "cloudbridge"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class ProviderInfo:
    """What a plugin says about a provider, without importing it.

    ``factory`` and ``settings`` are ``"module:attr"`` strings, imported only when the provider
    is first used. ``capabilities`` is a subset of ``{"storage", "compute", "deploy"}``;
    ``schemes`` the storage URI schemes it serves; ``install_hint`` how to install what it
    needs. ``distribution`` is filled in by the plugin manager.
    """

    name: str
    factory: str
    settings: str | None = None
    capabilities: frozenset[str] | set[str] | tuple[str, ...] = frozenset()
    schemes: tuple[str, ...] = ()
    install_hint: str | None = None
    description: str = ""
    distribution: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))
        object.__setattr__(self, "schemes", tuple(self.schemes))
        for value, what in ((self.factory, "factory"), (self.settings, "settings")):
            if value is not None and (":" not in value or value.count(":") != 1):
                raise ValueError(f"ProviderInfo({self.name!r}).{what} must be 'module:attr', got {value!r}")
        unknown = set(self.capabilities) - {"storage", "compute", "deploy"}
        if unknown:
            raise ValueError(f"ProviderInfo({self.name!r}) has unknown capabilities {sorted(unknown)}")


@dataclass(frozen=True)
class JobEvent:
    """A job changed state. ``previous`` is ``None`` for the first event of a job."""

    job_id: str
    provider: str
    name: str
    state: str
    previous: str | None
    time: float
    reason: str | None = None
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@hookspec
def cloudbridge_register_providers(register: Callable[[ProviderInfo], None]) -> None:
    """Register providers by calling ``register(ProviderInfo(...))``; import nothing heavy."""


@hookspec(firstresult=True)
def cloudbridge_resolve_settings(provider: str, profile: str | None) -> dict[str, Any] | None:
    """Return settings values (credentials, defaults) for ``provider``, or ``None`` to pass."""


@hookspec
def cloudbridge_job_event(event: JobEvent) -> None:
    """Observe a job state change (notifications, cost logs); must not raise."""


@hookspec
def cloudbridge_register_catalog(register: Callable[[Any], None]) -> None:
    """Add planner catalog rows: ``register(path_to_csv)`` or ``register(iterable_of_row_dicts)``."""


@hookspec
def cloudbridge_register_commands(app: Any) -> None:
    """Add commands to the CLI; ``app`` is the root ``typer.Typer``."""
