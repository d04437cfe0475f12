"""Azure Monitor autoscale for a managed online deployment (``Microsoft.Insights/autoscaleSettings``).

A managed online endpoint does not scale by itself: Azure ML reads ``sku.capacity`` of the deployment,
and *Azure Monitor* changes it when an autoscale setting targets the deployment (``targetResourceUri`` =
the deployment's ARM id). So when an endpoint spec asks for ``max_replicas > min_replicas``,
``deploy`` creates one setting, named :func:`setting_name`, in the workspace's resource group:

* one profile, ``capacity`` ``{minimum: min_replicas, maximum: max_replicas, default: min_replicas}``;
* two rules on the deployment's ``CpuUtilizationPercentage`` (average over 5 minutes, 1-minute grain):
  above ``autoscale_cpu_out`` percent add one instance, below ``autoscale_cpu_in`` percent remove one,
  each with a 5-minute cool-down.

The setting is a resource of its own: deleting the deployment or the endpoint leaves it behind (Azure
does), so ``delete`` and the clean-up after a failed deploy delete it first, and an absent one is
fine. Calls go through azure-mgmt-monitor's ``MonitorManagementClient`` (api-version 2022-10-01),
pointed at ``arm_endpoint`` with the provider's credential; the SDK is imported on first use only.
Creating one needs ``microsoft.insights/autoscalesettings/write`` on the resource group (the built-in
*Monitoring Contributor* role).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import AuthenticationError, NotFound
from cloudbridge.specs import EndpointSpec
from cloudbridge_azure.deploy_request import DEPLOYMENT
from cloudbridge_azure.errors import azure_errors
from cloudbridge_azure.settings import AzureSettings

if TYPE_CHECKING:
    from cloudbridge_azure.provider import AzureProvider

__all__ = ["CPU_METRIC", "Autoscale", "autoscale_body", "capacity_of", "setting_name", "wants_autoscale"]

#: The deployment metric the rules watch (Azure ML's name; see "Monitor online endpoints").
CPU_METRIC = "CpuUtilizationPercentage"
PROFILE = "cloudbridge"
ROLE_HINT = ("creating an autoscale setting needs microsoft.insights/autoscalesettings/write: assign "
             "'Monitoring Contributor' on resource group {rg} to the identity (docs/providers/azure.md)")


def setting_name(endpoint: str, deployment: str = DEPLOYMENT) -> str:
    """The autoscale setting of ``endpoint``'s deployment: ``cb-<endpoint>-<deployment>-autoscale``.

    Fixed by the names, so a redeploy overwrites it (never a second one) and ``delete`` finds it
    without any stored state.
    """
    return f"cb-{endpoint}-{deployment}-autoscale"


def wants_autoscale(spec: EndpointSpec) -> bool:
    """True when the spec lets the replica count move (``max_replicas > min_replicas``)."""
    return spec.max_replicas > spec.min_replicas


def _rule(deployment_id: str, operator: str, threshold: int, direction: str) -> dict[str, Any]:
    return {
        "metricTrigger": {"metricName": CPU_METRIC, "metricResourceUri": deployment_id, "timeGrain": "PT1M",
                          "statistic": "Average", "timeWindow": "PT5M", "timeAggregation": "Average",
                          "operator": operator, "threshold": float(threshold)},
        "scaleAction": {"direction": direction, "type": "ChangeCount", "value": "1", "cooldown": "PT5M"},
    }


def autoscale_body(spec: EndpointSpec, settings: AzureSettings, deployment_id: str) -> dict[str, Any]:
    """``PUT .../providers/Microsoft.Insights/autoscalesettings/NAME``: the REST body (pure).

    Capacities are strings on the wire (``ScaleCapacity``); the default is ``min_replicas``, which is
    also the deployment's ``sku.capacity`` when it is created.
    """
    return {
        "location": settings.region or "eastus",
        "tags": {"cloudbridge:endpoint": spec.name, **settings.tags},
        "properties": {
            "name": setting_name(spec.name),
            "enabled": True,
            "targetResourceUri": deployment_id,
            "profiles": [{
                "name": PROFILE,
                "capacity": {"minimum": str(spec.min_replicas), "maximum": str(spec.max_replicas),
                             "default": str(spec.min_replicas)},
                "rules": [_rule(deployment_id, "GreaterThan", settings.autoscale_cpu_out, "Increase"),
                          _rule(deployment_id, "LessThan", settings.autoscale_cpu_in, "Decrease")],
            }],
            "notifications": [],
        },
    }


class Autoscale:
    """Create, read and delete the autoscale setting of an endpoint's deployment (azure-mgmt-monitor)."""

    def __init__(self, provider: AzureProvider) -> None:
        self.provider = provider
        self.settings = provider.settings
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def resource_group(self) -> str:
        """The workspace's resource group, where the setting lives."""
        return self.settings.resource_group or ""

    def client(self) -> Any:
        """The ``MonitorManagementClient`` (``arm_endpoint``, the provider's credential and retry policy)."""
        with self._lock:
            if self._client is None:
                from azure.mgmt.monitor import MonitorManagementClient

                s = self.settings
                base = (s.arm_endpoint or "https://management.azure.com").rstrip("/")
                with azure_errors("create the Azure Monitor client", resource=self.resource_group):
                    self._client = MonitorManagementClient(
                        self.provider.clients.credential, s.subscription_id or "", base_url=base,
                        credential_scopes=[f"{base}/.default"], retry_total=s.retry_total,
                        retry_backoff_factor=0.8, retry_backoff_max=60)
            return self._client

    def create(self, spec: EndpointSpec, deployment_id: str) -> dict[str, Any]:
        """Create (or overwrite) the setting for ``deployment_id``; returns it as REST JSON."""
        from azure.mgmt.monitor.models import AutoscaleSettingResource

        body = autoscale_body(spec, self.settings, deployment_id)
        resource = AutoscaleSettingResource.deserialize(body)
        try:
            with azure_errors("create the autoscale setting", resource=setting_name(spec.name)):
                made = self.client().autoscale_settings.create_or_update(
                    self.resource_group, setting_name(spec.name), resource)
        except AuthenticationError as exc:
            exc.hint = ROLE_HINT.format(rg=self.resource_group)
            raise
        return made.serialize(keep_readonly=True)

    def get(self, endpoint: str) -> dict[str, Any] | None:
        """The setting of ``endpoint`` as REST JSON, or ``None`` when there is none."""
        try:
            with azure_errors("read the autoscale setting", resource=setting_name(endpoint)):
                found = self.client().autoscale_settings.get(self.resource_group, setting_name(endpoint))
        except NotFound:
            return None
        return found.serialize(keep_readonly=True)

    def delete(self, endpoint: str) -> None:
        """Delete the setting of ``endpoint``; one that is not there is fine (200, 204 or 404)."""
        try:
            with azure_errors("delete the autoscale setting", resource=setting_name(endpoint)):
                self.client().autoscale_settings.delete(self.resource_group, setting_name(endpoint))
        except NotFound:
            return


def capacity_of(setting: dict[str, Any] | None) -> dict[str, int] | None:
    """``{"minimum", "maximum", "default"}`` of the setting's first profile as ints (``None`` without one)."""
    profiles = ((setting or {}).get("properties") or {}).get("profiles") or []
    if not profiles:
        return None
    capacity = profiles[0].get("capacity") or {}
    try:
        return {key: int(capacity[key]) for key in ("minimum", "maximum", "default")}
    except (KeyError, TypeError, ValueError):
        return None
