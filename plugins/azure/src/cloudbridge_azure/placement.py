"""Where an Azure ML job runs: the VM size from the planner catalog (or the settings), and the region."""

from __future__ import annotations

import difflib

from cloudbridge.errors import ResourceUnavailable
from cloudbridge.managed.adapter import Placement
from cloudbridge.specs import JobSpec, spec_error
from cloudbridge_azure.settings import VM_SIZE_RE, AzureSettings

__all__ = ["DEFAULT_REGION", "place_job"]

#: Region used for prices when the workspace region is not set.
DEFAULT_REGION = "eastus"


def _known_sizes() -> list[str]:
    from cloudbridge.planner.catalog import load_catalog

    return sorted({r.instance_type for r in load_catalog().rows if r.provider == "azure"})


def place_job(spec: JobSpec, settings: AzureSettings) -> Placement:
    """The VM size for one node of ``spec``: ``resources.instance_type`` (checked against the catalog,
    with the nearest size named), else ``instance_types`` for the accelerator, else the cheapest fit."""
    resources = spec.resources
    region = settings.region or DEFAULT_REGION
    pinned = resources.instance_type
    if pinned:
        known = _known_sizes()
        if not VM_SIZE_RE.match(pinned) or pinned not in known:
            close = difflib.get_close_matches(pinned, known, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else "see `cloudbridge plan --provider azure`"
            raise spec_error(spec, "resources.instance_type",
                             f"{pinned!r} is not an Azure ML VM size in the catalog", hint=hint)
        return Placement(pinned, region, resources.nodes, resources.spot)
    override = settings.instance_types.get(resources.accelerator_name or "cpu")
    if override:
        return Placement(override, region, resources.nodes, resources.spot)
    from cloudbridge.planner.placement import choose_instance

    try:
        row = choose_instance("azure", resources, region)
    except ResourceUnavailable as exc:
        raise spec_error(spec, "resources.accelerators" if resources.accelerators else "resources",
                         f"no Azure ML VM size fits: {exc.message}", hint=exc.hint) from exc
    return Placement(row.instance_type, region, resources.nodes, resources.spot)
