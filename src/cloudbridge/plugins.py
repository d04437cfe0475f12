"""The plugin manager: loads builtin and entry-point plugins, isolates broken ones.

``load_plugins()`` is idempotent. Builtins load first, then each entry point of the group
``cloudbridge`` in its own ``try``: a plugin that fails to import, declares a newer plugin API
or raises while registering is recorded in :func:`plugin_statuses` with its error and skipped.
``CLOUDBRIDGE_PLUGINS=a,b`` loads only those entry points; ``CLOUDBRIDGE_DISABLE_PLUGINS=c``
skips ``c``. Two distributions claiming one provider name raise :class:`PluginError` naming both.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from typing import Any

import pluggy

from cloudbridge import _entrypoints, hookspecs
from cloudbridge.errors import PluginError, ProviderNotFound
from cloudbridge.hookspecs import PLUGIN_API_VERSION, ProviderInfo

__all__ = [
    "BUILTIN_PLUGINS",
    "KNOWN_PROVIDERS",
    "PluginStatus",
    "get_plugin_manager",
    "import_object",
    "load_plugins",
    "plugin_statuses",
    "plugin_warnings",
    "provider_for_scheme",
    "provider_info",
    "provider_infos",
    "register_plugin",
    "reset_plugins",
    "unregister_plugin",
]

ENTRY_POINT_GROUP = "cloudbridge"
BUILTIN_DISTRIBUTION = "cloudbridge-ai"

#: Builtin plugin modules, registered through the same hooks as third-party plugins.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "cloudbridge.backends.local.plugin",
    "cloudbridge.jobstore.events",
)

#: Providers we know of but which live in separate distributions: name -> install hint.
KNOWN_PROVIDERS: dict[str, str] = {
    "aws": "pip install cloudbridge-aws",
    "gcp": "pip install cloudbridge-gcp",
    "azure": "pip install cloudbridge-azure",
}


@dataclass(frozen=True)
class PluginStatus:
    """One plugin as ``cloudbridge plugins`` shows it."""

    name: str
    distribution: str
    version: str | None
    ok: bool
    error: str | None = None
    builtin: bool = False


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.pm: pluggy.PluginManager | None = None
        self.statuses: list[PluginStatus] = []
        self.providers: dict[str, ProviderInfo] | None = None
        self.plugin_dist: dict[int, str] = {}
        self.warnings: list[str] = []


_state = _State()


def _csv_env(name: str) -> set[str] | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _check_api(module: Any, name: str) -> None:
    declared = getattr(module, "CLOUDBRIDGE_PLUGIN_API", PLUGIN_API_VERSION)
    if not isinstance(declared, int) or declared > PLUGIN_API_VERSION:
        raise PluginError(
            f"plugin {name!r} needs plugin API {declared}, this cloudbridge speaks {PLUGIN_API_VERSION}",
            hint="upgrade cloudbridge-ai",
        )


def load_plugins() -> pluggy.PluginManager:
    """Create the plugin manager once and load every allowed plugin into it."""
    with _state.lock:
        if _state.pm is not None:
            return _state.pm
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        allow = _csv_env("CLOUDBRIDGE_PLUGINS")
        block = _csv_env("CLOUDBRIDGE_DISABLE_PLUGINS") or set()
        statuses: list[PluginStatus] = []
        for module_name in BUILTIN_PLUGINS:
            module = importlib.import_module(module_name)
            pm.register(module, name=module_name)
            _state.plugin_dist[id(module)] = BUILTIN_DISTRIBUTION
        found = sorted(_entrypoints.entry_points(ENTRY_POINT_GROUP), key=lambda e: e.name)
        names = {ep.name for ep in found} | set(BUILTIN_PLUGINS)
        for ep in found:
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else None
            if (allow is not None and ep.name not in allow) or ep.name in block:
                continue
            if pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
                _check_api(module, ep.name)
                pm.register(module, name=ep.name)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must never break the CLI
                statuses.append(PluginStatus(ep.name, dist, version, False, f"{type(exc).__name__}: {exc}"))
                continue
            _state.plugin_dist[id(module)] = dist
            statuses.append(PluginStatus(ep.name, dist, version, True))
        _state.statuses = statuses
        _state.warnings = _unknown_names(allow, block, names)
        _state.pm = pm
        return pm


def _unknown_names(allow: set[str] | None, block: set[str], names: set[str]) -> list[str]:
    """Warnings for names in ``CLOUDBRIDGE_PLUGINS``/``CLOUDBRIDGE_DISABLE_PLUGINS`` that match no plugin."""
    warnings = []
    for variable, wanted in (("CLOUDBRIDGE_PLUGINS", allow or set()), ("CLOUDBRIDGE_DISABLE_PLUGINS", block)):
        for name in sorted(wanted - names):
            warnings.append(f"{variable} names {name!r}, which is no installed plugin (installed: "
                            f"{', '.join(sorted(names - set(BUILTIN_PLUGINS))) or 'none'})")
    return warnings


def plugin_warnings() -> list[str]:
    """Problems with the plugin environment variables (e.g. a misspelt name in CLOUDBRIDGE_DISABLE_PLUGINS)."""
    load_plugins()
    return list(_state.warnings)


def get_plugin_manager() -> pluggy.PluginManager:
    """The loaded plugin manager (loading plugins on first use)."""
    return load_plugins()


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register ``plugin`` (a module or any object with ``@hookimpl`` functions) in this process.

    For tests and notebooks: no distribution, no entry point. Its providers are listed and built
    like any other (``cb.provider(name)``); :func:`unregister_plugin` or :func:`reset_plugins` removes it.
    """
    pm = load_plugins()
    with _state.lock:
        pm.register(plugin, name=name)
        _state.plugin_dist[id(plugin)] = "(in-process)"
        _state.providers = None  # collected again, with this plugin's providers
    _forget_built_providers()


def unregister_plugin(plugin: object) -> None:
    """Remove a plugin added with :func:`register_plugin`."""
    pm = load_plugins()
    with _state.lock:
        pm.unregister(plugin)
        _state.plugin_dist.pop(id(plugin), None)
        _state.providers = None
    _forget_built_providers()


def _forget_built_providers() -> None:
    from cloudbridge.backends import clear_provider_cache

    clear_provider_cache()


def reset_plugins() -> None:
    """Forget everything loaded (tests use this after changing the plugin env vars)."""
    with _state.lock:
        _state.pm = None
        _state.statuses = []
        _state.providers = None
        _state.plugin_dist = {}


def plugin_statuses() -> list[PluginStatus]:
    """Every plugin: builtins, loaded entry points and the ones that failed, with their errors."""
    load_plugins()
    _collect_providers()
    builtins = [
        PluginStatus(name, BUILTIN_DISTRIBUTION, _own_version(), True, builtin=True) for name in BUILTIN_PLUGINS
    ]
    return builtins + list(_state.statuses)


def _own_version() -> str | None:
    from cloudbridge import __version__

    return __version__


def _collect_providers() -> dict[str, ProviderInfo]:
    with _state.lock:
        if _state.providers is not None:
            return _state.providers
        pm = load_plugins()
        providers: dict[str, ProviderInfo] = {}
        for impl in reversed(pm.hook.cloudbridge_register_providers.get_hookimpls()):
            dist = _state.plugin_dist.get(id(impl.plugin), impl.plugin_name)

            def register(info: ProviderInfo, _dist: str = dist) -> None:
                if not isinstance(info, ProviderInfo):
                    raise PluginError(f"register() expects a cloudbridge.ProviderInfo, got {type(info).__name__}")
                if info.name in providers:
                    other = providers[info.name].distribution
                    raise PluginError(
                        f"provider name {info.name!r} is claimed by two distributions: {other} and {_dist}",
                        hint="uninstall one, or block one with CLOUDBRIDGE_DISABLE_PLUGINS",
                    )
                providers[info.name] = ProviderInfo(**{**info.__dict__, "distribution": _dist})

            try:
                impl.function(register=register)
            except PluginError:
                raise
            except Exception as exc:  # noqa: BLE001
                _mark_failed(impl.plugin_name, dist, exc)
        _state.providers = providers
        return providers


def _mark_failed(name: str, dist: str, exc: Exception) -> None:
    message = f"{type(exc).__name__} while registering: {exc}"
    _state.statuses = [s for s in _state.statuses if s.name != name] + [PluginStatus(name, dist, None, False, message)]


def provider_infos() -> dict[str, ProviderInfo]:
    """Every registered provider by name, in name order."""
    return dict(sorted(_collect_providers().items()))


def provider_info(name: str) -> ProviderInfo:
    """The registered provider ``name``; :class:`ProviderNotFound` lists the known ones."""
    providers = _collect_providers()
    if name in providers:
        return providers[name]
    known = ", ".join(sorted(providers)) or "none"
    hint = None
    if name in KNOWN_PROVIDERS:
        hint = f"install it: {KNOWN_PROVIDERS[name]}"
        failed = [s for s in _state.statuses if not s.ok and name in s.name]
        if failed:
            hint = f"the plugin {failed[0].name!r} failed to load: {failed[0].error}"
    else:
        import difflib

        close = difflib.get_close_matches(name, list(providers) + list(KNOWN_PROVIDERS), n=1)
        if close:
            hint = f"did you mean {close[0]!r}?"
    raise ProviderNotFound(f"unknown provider {name!r}; known providers: {known}", hint=hint)


def provider_for_scheme(scheme: str) -> ProviderInfo:
    """The provider that serves URIs of ``scheme`` (``file`` -> ``local``)."""
    if scheme == "file":
        return provider_info("local")
    for info in _collect_providers().values():
        if scheme in info.schemes:
            return info
    from cloudbridge.errors import InvalidURI

    hints = {"s3": "aws", "gs": "gcp", "az": "azure"}
    hint = f"install it: {KNOWN_PROVIDERS[hints[scheme]]}" if scheme in hints else None
    raise InvalidURI(f"no installed provider serves {scheme}:// URIs", hint=hint)


def import_object(path: str) -> Any:
    """Import ``"module:attr"`` (attr may be dotted)."""
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"cannot import {path!r}: {exc}") from exc
    return obj
