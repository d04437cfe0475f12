"""The plugin module named by the entry point: registration only, no heavy imports."""

from __future__ import annotations

from collections.abc import Callable

from cloudbridge import ProviderInfo, hookimpl

#: The plugin API this plugin was written for; cloudbridge refuses plugins newer than itself.
CLOUDBRIDGE_PLUGIN_API = 1


@hookimpl
def cloudbridge_register_providers(register: Callable[[ProviderInfo], None]) -> None:
    """Register ``dirstore`` by name; its modules are imported only when it is first used."""
    register(
        ProviderInfo(
            name="dirstore",
            factory="cloudbridge_dirstore.provider:DirstoreProvider",
            settings="cloudbridge_dirstore.settings:DirstoreSettings",
            capabilities={"storage", "compute"},
            schemes=("dir",),
            install_hint="pip install -e examples/custom-provider",
            description="Example: a directory per bucket, jobs as local processes.",
        )
    )
