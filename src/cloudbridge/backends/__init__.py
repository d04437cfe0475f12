"""Turning a registered :class:`~cloudbridge.hookspecs.ProviderInfo` into a live provider.

:func:`get_provider` imports the provider's factory and settings model only now, on first use,
resolves its settings (see :mod:`cloudbridge.settings`) and caches the instance per profile.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import PluginError
from cloudbridge.plugins import import_object, provider_info

if TYPE_CHECKING:  # imported in get_provider: loading the builtin plugin (this package) stays cheap
    from cloudbridge.interfaces import Provider

__all__ = ["get_provider", "clear_provider_cache"]

_cache: dict[tuple[str, str | None, str], Provider] = {}
_lock = threading.Lock()


def get_provider(name: str, *, profile: str | None = None, overrides: dict[str, Any] | None = None) -> Provider:
    """The provider ``name`` with its settings resolved; unknown names raise ``ProviderNotFound``."""
    import json

    from cloudbridge.interfaces import Provider

    key = (name, profile, json.dumps(overrides or {}, sort_keys=True, default=str))
    with _lock:
        if key in _cache:
            return _cache[key]
    info = provider_info(name)
    settings = None
    if info.settings:
        from cloudbridge.settings import resolve_settings

        settings_cls = import_object(info.settings)
        settings = resolve_settings(settings_cls, name, profile=profile, overrides=overrides)
    factory = import_object(info.factory)
    try:
        provider = factory(settings)
    except PluginError:
        raise
    except TypeError as exc:
        raise PluginError(f"provider {name!r} factory {info.factory} could not be built: {exc}") from exc
    if not isinstance(provider, Provider):
        raise PluginError(f"provider {name!r} factory {info.factory} did not return a cloudbridge Provider")
    with _lock:
        _cache[key] = provider
    return provider


def clear_provider_cache() -> None:
    """Forget built providers (tests use this after changing settings)."""
    with _lock:
        _cache.clear()
