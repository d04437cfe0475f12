"""Registers the builtin ``local`` provider through the ordinary plugin hook."""

from __future__ import annotations

from collections.abc import Callable

from cloudbridge.hookspecs import ProviderInfo, hookimpl

CLOUDBRIDGE_PLUGIN_API = 1


@hookimpl
def cloudbridge_register_providers(register: Callable[[ProviderInfo], None]) -> None:
    """Register ``local``: files on this machine, jobs under a local supervisor, local endpoints."""
    register(
        ProviderInfo(
            name="local",
            factory="cloudbridge.backends.local.provider:LocalProvider",
            settings="cloudbridge.backends.local.settings:LocalSettings",
            capabilities={"storage", "compute", "deploy"},
            schemes=("file",),
            description="This machine: filesystem storage, GPU-aware job queue, local HTTP endpoints.",
        )
    )
