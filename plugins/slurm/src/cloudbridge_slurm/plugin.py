"""Registration of the ``slurm`` provider: strings and plain data only, nothing imported."""

from __future__ import annotations

from collections.abc import Callable

from cloudbridge.hookspecs import ProviderInfo, hookimpl

CLOUDBRIDGE_PLUGIN_API = 1


@hookimpl
def cloudbridge_register_providers(register: Callable[[ProviderInfo], None]) -> None:
    """Register the ``slurm`` provider (sbatch jobs; ``slurm://staging/...`` is its staging folder)."""
    register(
        ProviderInfo(
            name="slurm",
            factory="cloudbridge_slurm.provider:SlurmProvider",
            settings="cloudbridge_slurm.settings:SlurmSettings",
            capabilities={"storage", "compute"},
            schemes=("slurm",),
            install_hint="pip install cloudbridge-slurm",
            description="Slurm clusters: sbatch jobs, staged on the cluster's shared filesystem",
        )
    )
