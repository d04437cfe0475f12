"""Azure Monitor autoscale settings on the Azure ML fake (``Microsoft.Insights/autoscalesettings``).

Paths (what ``azure-mgmt-monitor``'s ``autoscale_settings`` operations send, api-version 2022-10-01)::

    PUT|GET|DELETE /subscriptions/S/resourcegroups/R/providers/Microsoft.Insights/autoscalesettings/NAME
    GET            /subscriptions/S/resourcegroups/R/providers/Microsoft.Insights/autoscalesettings

A PUT is checked as Azure Monitor does: a ``location``; 1 to 20 ``profiles``, each with a ``capacity``
of integer strings where ``0 <= minimum <= default <= maximum``; at most 10 rules per profile, each
with a complete ``metricTrigger`` (a metric an online deployment or endpoint emits, known operators,
statistics and aggregations, ISO 8601 grains, windows of 5 minutes to 12 hours) and ``scaleAction``;
and a ``targetResourceUri`` naming an existing online deployment of the fake's workspace (400 else).
Names are case-insensitive; a new setting is 201, a replaced one 200; DELETE is 200, or 204 when
there is nothing to delete (as ARM).

The fake has no metrics, so its autoscale engine holds the *default* capacity (what Azure Monitor
uses when metrics are unavailable): an enabled setting makes the target deployment report
``sku.capacity = default``, always within ``[minimum, maximum]`` (:meth:`AutoscaleSettings.capacity`).
Deleting the deployment or its endpoint leaves the setting in place, as Azure does;
:meth:`AutoscaleSettings.orphans` names those left pointing at nothing.
"""

from __future__ import annotations

import re
from typing import Any

from cloudbridge.testing.azureml.http import ApiError, Reply, Request, Router

__all__ = ["AutoscaleSettings"]

PATH = (r"/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/"
        r"Microsoft\.Insights/autoscalesettings")
API_VERSIONS = frozenset({"2015-04-01", "2021-05-01-preview", "2022-10-01"})
_DEPLOYMENT_RE = re.compile(r"/onlineEndpoints/(?P<ep>[^/]+)/deployments/(?P<dep>[^/]+)$", re.IGNORECASE)
_ENDPOINT_RE = re.compile(r"/onlineEndpoints/(?P<ep>[^/]+)$", re.IGNORECASE)
_DURATION_RE = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")
#: Metrics Azure ML online deployments and endpoints emit (Azure docs, "Monitor online endpoints").
METRICS = frozenset({
    "CpuUtilizationPercentage", "CpuMemoryUtilizationPercentage", "GpuUtilizationPercentage",
    "GpuMemoryUtilizationPercentage", "GpuEnergyJoules", "DiskUtilization", "DeploymentCapacity",
    "RequestsPerMinute", "RequestLatency", "RequestLatency_P50", "RequestLatency_P90", "RequestLatency_P95",
    "RequestLatency_P99", "ConnectionsActive", "NewConnectionsPerSecond", "NetworkBytes",
})
OPERATORS = frozenset({"Equals", "NotEquals", "GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual"})
STATISTICS = frozenset({"Average", "Min", "Max", "Sum", "Count"})
AGGREGATIONS = frozenset({"Average", "Minimum", "Maximum", "Total", "Count", "Last"})
DIRECTIONS = frozenset({"None", "Increase", "Decrease"})
ACTION_TYPES = frozenset({"ChangeCount", "PercentChangeCount", "ExactCount", "ServiceAllowedNextValue"})


def _bad(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _seconds(value: Any, field: str) -> int:
    match = _DURATION_RE.match(str(value or ""))
    if not value or not match:
        raise _bad(f"{field} '{value}' is not an ISO 8601 duration.")
    d, h, m, s = (int(match.group(k) or 0) for k in ("d", "h", "m", "s"))
    return ((d * 24 + h) * 60 + m) * 60 + s


class AutoscaleSettings:
    """The resource group's autoscale settings, kept in memory."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.settings: dict[str, dict[str, Any]] = {}  # lower-case name -> the resource as stored

    def routes(self, router: Router) -> None:
        """Add the routes to ``router``."""
        router.add("GET", PATH, self._list)
        router.add("PUT", PATH + r"/(?P<name>[^/]+)", self._put)
        router.add("GET", PATH + r"/(?P<name>[^/]+)", self._get)
        router.add("DELETE", PATH + r"/(?P<name>[^/]+)", self._delete)

    # ---- what tests and the deployments read ------------------------------------------------------
    def targeting(self, resource_id: str) -> list[dict[str, Any]]:
        """The settings whose ``targetResourceUri`` is ``resource_id`` (case-insensitive)."""
        wanted = resource_id.lower()
        with self.fake.lock:
            return [s for s in self.settings.values() if s["properties"]["targetResourceUri"].lower() == wanted]

    def capacity(self, resource_id: str, capacity: int | None) -> int | None:
        """The instance count of ``resource_id``: an enabled setting's default, else ``capacity``."""
        for setting in self.targeting(resource_id):
            if setting["properties"].get("enabled"):
                bounds = setting["properties"]["profiles"][0]["capacity"]
                low, high = int(bounds["minimum"]), int(bounds["maximum"])
                return min(max(int(bounds["default"]), low), high)
        return capacity

    def orphans(self) -> list[str]:
        """Names of settings whose target deployment no longer exists (Azure keeps them)."""
        with self.fake.lock:
            items = list(self.settings.values())
        return [s["name"] for s in items if self._deployment_of(s["properties"]["targetResourceUri"]) is None]

    # ---- REST --------------------------------------------------------------------------------------
    def _check(self, request: Request) -> None:
        groups = request.groups
        if groups["sub"] != self.fake.subscription or groups["rg"].lower() != self.fake.resource_group.lower():
            raise ApiError(404, "ResourceGroupNotFound", f"Resource group '{groups['rg']}' could not be found.")
        version = request.query.get("api-version")
        if not version:
            raise ApiError(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) "
                           "is required for all requests.")
        if version not in API_VERSIONS:
            raise ApiError(400, "InvalidApiVersionParameter", f"The api-version '{version}' is invalid. "
                           f"The supported versions are '{', '.join(sorted(API_VERSIONS))}'.")

    def _id(self, name: str) -> str:
        return (f"/subscriptions/{self.fake.subscription}/resourceGroups/{self.fake.resource_group}/providers/"
                f"microsoft.insights/autoscalesettings/{name}")

    def _deployment_of(self, uri: str) -> tuple[str, str] | None:
        """``(endpoint, deployment)`` when ``uri`` names an existing online deployment of the workspace."""
        ws = self.fake.workspace_id.lower()
        match = _DEPLOYMENT_RE.search(uri or "")
        if not match or not uri.lower().startswith(ws + "/onlineendpoints/"):
            return None
        endpoints = self.fake.endpoints
        for ep, dep in list(endpoints.deployments):
            if (ep.lower(), dep.lower()) == (match["ep"].lower(), match["dep"].lower()):
                return ep, dep
        return None

    def _metric_source_exists(self, uri: str) -> bool:
        if self._deployment_of(uri) is not None:
            return True
        match = _ENDPOINT_RE.search(uri or "")
        return bool(match and uri.lower().startswith(self.fake.workspace_id.lower() + "/onlineendpoints/")
                    and any(name.lower() == match["ep"].lower() for name in self.fake.endpoints.endpoints))

    def _validate(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("location"):
            raise ApiError(400, "LocationRequired", "The location property is required for this definition.")
        props = body.get("properties")
        if not isinstance(props, dict):
            raise _bad("The request content is invalid: 'properties' is required.")
        target = str(props.get("targetResourceUri") or "")
        if not target:
            raise _bad("The targetResourceUri of the autoscale setting is required.")
        if self._deployment_of(target) is None:
            raise ApiError(400, "TargetResourceNotFound", f"The target resource id '{target}' was not found, "
                           "or is not a resource autoscale supports.")
        profiles = props.get("profiles")
        if not isinstance(profiles, list) or not 1 <= len(profiles) <= 20:
            raise _bad("An autoscale setting needs between 1 and 20 profiles.")
        for profile in profiles:
            self._validate_profile(profile)
        return props

    def _validate_profile(self, profile: dict[str, Any]) -> None:
        if not profile.get("name"):
            raise _bad("Every profile needs a name.")
        capacity = profile.get("capacity") or {}
        try:
            low, high, default = (int(str(capacity[k])) for k in ("minimum", "maximum", "default"))
        except (KeyError, ValueError):
            raise _bad(f"Profile '{profile['name']}': capacity needs integer minimum, maximum and default, "
                       f"got {capacity}.") from None
        if low < 0 or high < low:
            raise _bad(f"Profile '{profile['name']}': the maximum capacity ({high}) must be at least the minimum "
                       f"({low}), and the minimum at least 0.")
        if not low <= default <= high:
            raise _bad(f"Profile '{profile['name']}': the default capacity ({default}) must be between the "
                       f"minimum ({low}) and the maximum ({high}).")
        rules = profile.get("rules") or []
        if len(rules) > 10:
            raise _bad(f"Profile '{profile['name']}' has {len(rules)} rules; at most 10 are allowed.")
        for rule in rules:
            self._validate_rule(rule)

    def _validate_rule(self, rule: dict[str, Any]) -> None:
        trigger, action = rule.get("metricTrigger") or {}, rule.get("scaleAction") or {}
        if trigger.get("metricName") not in METRICS:
            raise _bad(f"Metric '{trigger.get('metricName')}' is not supported for this resource.")
        if not self._metric_source_exists(str(trigger.get("metricResourceUri") or "")):
            raise _bad(f"The metric resource '{trigger.get('metricResourceUri')}' was not found.")
        for field, allowed in (("operator", OPERATORS), ("statistic", STATISTICS), ("timeAggregation", AGGREGATIONS)):
            if trigger.get(field) not in allowed:
                raise _bad(f"metricTrigger.{field} '{trigger.get(field)}' is not one of {sorted(allowed)}.")
        if not isinstance(trigger.get("threshold"), (int, float)):
            raise _bad("metricTrigger.threshold must be a number.")
        if _seconds(trigger.get("timeGrain"), "timeGrain") < 60:
            raise _bad("timeGrain must be at least PT1M.")
        if not 300 <= _seconds(trigger.get("timeWindow"), "timeWindow") <= 12 * 3600:
            raise _bad("timeWindow must be between PT5M and PT12H.")
        if action.get("direction") not in DIRECTIONS or action.get("type") not in ACTION_TYPES:
            raise _bad(f"scaleAction direction/type '{action.get('direction')}'/'{action.get('type')}' is invalid.")
        if not str(action.get("value", "1")).isdigit():
            raise _bad(f"scaleAction.value '{action.get('value')}' must be a non-negative integer string.")
        if not 60 <= _seconds(action.get("cooldown"), "cooldown") <= 7 * 24 * 3600:
            raise _bad("scaleAction.cooldown must be between PT1M and P7D.")

    def _put(self, request: Request) -> Reply:
        self._check(request)
        name, body = request.groups["name"], request.json()
        props = dict(self._validate(body))
        props["name"] = name
        props.setdefault("enabled", False)  # Azure's default
        props.setdefault("notifications", [])
        props.setdefault("targetResourceLocation", body["location"])
        stored = {"id": self._id(name), "name": name, "type": "Microsoft.Insights/autoscaleSettings",
                  "location": body["location"], "tags": dict(body.get("tags") or {}), "properties": props}
        with self.fake.lock:
            created = name.lower() not in self.settings
            self.settings[name.lower()] = stored
        return Reply(201 if created else 200, stored)

    def _get(self, request: Request) -> Reply:
        self._check(request)
        name = request.groups["name"]
        with self.fake.lock:
            found = self.settings.get(name.lower())
        if found is None:
            raise ApiError(404, "ResourceNotFound", f"The Resource 'Microsoft.Insights/autoscalesettings/{name}' "
                           f"under resource group '{self.fake.resource_group}' was not found.")
        return Reply(200, found)

    def _list(self, request: Request) -> Reply:
        self._check(request)
        with self.fake.lock:
            return Reply(200, {"value": list(self.settings.values()), "nextLink": None})

    def _delete(self, request: Request) -> Reply:
        self._check(request)
        with self.fake.lock:
            found = self.settings.pop(request.groups["name"].lower(), None)
        return Reply(200 if found is not None else 204, None)
