"""Vertex AI machine specs: a catalog instance type as ``machineSpec``, and where a job runs.

The planner catalog names GCP offerings the way Vertex AI bills them: a machine type with its GPUs
built in (``a2-highgpu-8g``: 8 A100, ``g2-standard-8``: 1 L4) or an N1 machine with attached GPUs
(``n1-standard-4+NVIDIA_TESLA_T4:1``). :func:`machine_spec` turns either into the CustomJob's
``machineSpec``; :func:`place` chooses the row for a spec (pure: catalog only, no call).
"""

from __future__ import annotations

import re
from typing import Any

from cloudbridge.errors import ResourceUnavailable
from cloudbridge.managed.adapter import Placement
from cloudbridge.specs import JobSpec, spec_error

__all__ = ["ACCELERATOR_TYPES", "MACHINE_TYPE_RE", "machine_spec", "place"]

#: cloudbridge accelerator names -> Vertex AI ``AcceleratorType`` enum names.
ACCELERATOR_TYPES = {
    "T4": "NVIDIA_TESLA_T4",
    "P4": "NVIDIA_TESLA_P4",
    "P100": "NVIDIA_TESLA_P100",
    "V100": "NVIDIA_TESLA_V100",
    "A100": "NVIDIA_TESLA_A100",
    "A100-80GB": "NVIDIA_A100_80GB",
    "L4": "NVIDIA_L4",
    "H100": "NVIDIA_H100_80GB",
    "H200": "NVIDIA_H200_141GB",
}
#: ``family-kind-N`` machine types: a Compute Engine machine type name.
MACHINE_TYPE_RE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9]+(-[a-z0-9]+)?(\+[A-Z0-9_]+:\d+)?$")
#: Machine families whose GPUs come with the machine: family prefix -> accelerator enum name.
_BUNDLED = {"a2-highgpu": "NVIDIA_TESLA_A100", "a2-megagpu": "NVIDIA_TESLA_A100", "a2-ultragpu": "NVIDIA_A100_80GB",
            "a3-highgpu": "NVIDIA_H100_80GB", "a3-megagpu": "NVIDIA_H100_MEGA_80GB", "a3-ultragpu": "NVIDIA_H200_141GB"}
#: G2 machines: vCPUs -> L4 count.
_G2_L4 = {4: 1, 8: 1, 12: 1, 16: 1, 32: 1, 24: 2, 48: 4, 96: 8}


def machine_spec(instance_type: str) -> dict[str, Any]:
    """``machineSpec`` (REST JSON names) of a catalog instance type.

    ``a2-highgpu-8g`` -> 8 ``NVIDIA_TESLA_A100``; ``g2-standard-24`` -> 2 ``NVIDIA_L4``;
    ``n1-standard-4+NVIDIA_TESLA_T4:1`` -> ``n1-standard-4`` with 1 ``NVIDIA_TESLA_T4``; CPU types have none.
    """
    machine, _, attached = instance_type.partition("+")
    spec: dict[str, Any] = {"machineType": machine}
    if attached:
        kind, _, count = attached.partition(":")
        spec.update(acceleratorType=kind, acceleratorCount=int(count or 1))
        return spec
    for prefix, kind in _BUNDLED.items():
        match = re.fullmatch(re.escape(prefix) + r"-(\d+)g", machine)
        if match:
            spec.update(acceleratorType=kind, acceleratorCount=int(match.group(1)))
            return spec
    match = re.fullmatch(r"g2-standard-(\d+)", machine)
    if match and int(match.group(1)) in _G2_L4:
        spec.update(acceleratorType="NVIDIA_L4", acceleratorCount=_G2_L4[int(match.group(1))])
    return spec


def _regions_offering(catalog: Any, accelerator: str) -> list[str]:
    names = {accelerator.upper(), ACCELERATOR_TYPES.get(accelerator.upper(), "")}
    return sorted({r.region for r in catalog.rows if r.provider == "gcp" and (r.accelerator or "").upper() in names})


def place(spec: JobSpec, region: str, *, reservation: str | None = None, catalog: Any = None) -> Placement:
    """Choose the Vertex AI machine for one node of ``spec`` in ``region``.

    ``resources.instance_type`` wins (a Compute Engine machine type, optionally with ``+GPU:N``);
    otherwise the planner's cheapest fitting catalog row. An accelerator the catalog lists in other
    regions but not in ``region`` is refused with those regions; ``spot`` with a reservation is refused.
    """
    from cloudbridge.planner.catalog import load_catalog
    from cloudbridge.planner.placement import choose_instance

    resources = spec.resources
    if resources.spot and reservation:
        raise spec_error(spec, "resources.spot", "spot capacity cannot consume a reservation (settings.gcp."
                         "reservation is set)", hint="drop spot: true, or unset the reservation for this job "
                         "(overrides: {gcp: {reservation: null}})")
    pinned = resources.instance_type
    if pinned and not MACHINE_TYPE_RE.match(pinned):
        raise spec_error(spec, "resources.instance_type", f"{pinned!r} is not a Compute Engine machine type "
                         "(e.g. a2-highgpu-1g or n1-standard-8+NVIDIA_TESLA_T4:1)")
    catalog = catalog or load_catalog()
    if resources.accelerator_name and not pinned:
        offered = _regions_offering(catalog, resources.accelerator_name)
        if offered and region not in offered:
            raise spec_error(spec, "resources.accelerators",
                             f"{resources.accelerator_name} is not offered by Vertex AI in {region} (the planner "
                             "catalog lists none there)",
                             hint=f"regions that offer it: {', '.join(offered)} (planner catalog); set "
                             "overrides.gcp.region")
    if pinned:
        return Placement(pinned, region, resources.nodes, resources.spot)
    try:
        row = choose_instance("gcp", resources, region, catalog=catalog)
    except ResourceUnavailable as exc:
        raise spec_error(spec, "resources", str(exc)) from exc
    return Placement(row.instance_type, region, resources.nodes, resources.spot)

