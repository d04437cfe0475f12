"""``cloudbridge check azure``: what is configured, what is missing, and the command that fixes it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from cloudbridge.errors import AuthenticationError, CloudbridgeError, NotFound
from cloudbridge.records import CheckReport
from cloudbridge_azure.errors import azure_errors
from cloudbridge_azure.settings import SERVERLESS

if TYPE_CHECKING:
    from cloudbridge_azure.provider import AzureProvider

__all__ = ["check_container_writable", "cluster_max_nodes", "run_checks"]

ROLE_FIX = ("grant the identity 'Storage Blob Data Contributor' on the account: az role assignment create "
            "--role 'Storage Blob Data Contributor' --assignee <you> --scope <storage account id>")


def _detail_and_fix(exc: CloudbridgeError, default_fix: str) -> tuple[str, str]:
    text, hint = str(exc), exc.hint
    if hint and text.endswith(f" ({hint})"):
        text = text[: -len(hint) - 3]
    return text, hint or default_fix


def cluster_max_nodes(provider: AzureProvider, name: str) -> int:
    """The maximum node count of compute cluster ``name`` (:class:`NotFound` when it does not exist)."""
    with azure_errors("read the compute cluster", resource=name):
        compute = provider.clients.ml_client().compute.get(name)
    return int(getattr(compute, "max_instances", None) or 0)


def check_container_writable(provider: AzureProvider, account: str, container: str) -> None:
    """Write and delete a probe blob in ``account/container``; raises the translated error if refused."""
    storage = provider.storage
    probe = f"az://{account}/{container}/{provider.settings.prefix or 'cloudbridge'}/.cb-check-{uuid.uuid4().hex}"
    storage.write_bytes(probe, b"cloudbridge check")
    storage.delete(probe)


def run_checks(provider: AzureProvider, nodes: int | None = None) -> CheckReport:
    """Workspace settings, login, workspace, compute cluster (and its size) and container, in that order."""
    report = CheckReport(provider.name)
    s = provider.settings
    missing = False
    for field, what, fix in (
        ("subscription_id", "subscription", "set subscription_id in the [azure] table or AZURE_SUBSCRIPTION_ID "
                                            "(az account show --query id)"),
        ("resource_group", "resource group", "set resource_group in the [azure] table or "
                                             "CLOUDBRIDGE_AZURE_RESOURCE_GROUP"),
        ("workspace", "workspace", "set workspace in the [azure] table or CLOUDBRIDGE_AZURE_WORKSPACE; create "
                                   "one with `az ml workspace create -n NAME -g GROUP`"),
    ):
        value = getattr(s, field)
        report.add(what, bool(value), value or f"no {what} is set", None if value else fix)
        missing = missing or not value

    logged_in = False
    try:
        scope = f"{s.arm_endpoint or 'https://management.azure.com'}/.default"
        with azure_errors("get an Azure token"):
            provider.clients.credential.get_token(scope)
    except CloudbridgeError as exc:
        report.add("login", False, *_detail_and_fix(exc, "run `az login`"))
    else:
        report.add("login", True, "test token for a local fake" if s.uses_fake else "DefaultAzureCredential")
        logged_in = True

    if logged_in and not missing:
        try:
            with azure_errors("read the workspace", resource=s.workspace):
                workspace = provider.clients.ml_client().workspaces.get(s.workspace)
        except NotFound:
            report.add("workspace exists", False, f"workspace {s.workspace!r} not found in resource group "
                       f"{s.resource_group!r}", f"az ml workspace create -n {s.workspace} -g {s.resource_group}")
        except CloudbridgeError as exc:
            report.add("workspace exists", False, *_detail_and_fix(exc, "check the workspace name and your roles"))
        else:
            report.add("workspace exists", True, f"{workspace.name} in {getattr(workspace, 'location', '?')}")
            _check_compute(provider, report, nodes)

    if not (s.storage_account and s.container):
        report.add("container", False, "no storage_account/container for code, outputs and models",
                   "set storage_account and container in the [azure] table (CLOUDBRIDGE_AZURE_STORAGE_ACCOUNT, "
                   "CLOUDBRIDGE_AZURE_CONTAINER)")
    else:
        uri = f"az://{s.storage_account}/{s.container}"
        try:
            check_container_writable(provider, s.storage_account, s.container)
        except NotFound as exc:
            report.add("container writable", False, *_detail_and_fix(exc, "create the container"))
        except AuthenticationError as exc:
            report.add("container writable", False, f"{uri} is not writable: {exc.message}", ROLE_FIX)
        except CloudbridgeError as exc:
            report.add("container writable", False, *_detail_and_fix(exc, ROLE_FIX))
        else:
            report.add("container writable", True, uri)
    return report


def _check_compute(provider: AzureProvider, report: CheckReport, nodes: int | None) -> None:
    s = provider.settings
    if s.compute == SERVERLESS:
        report.add("compute", True, "serverless compute (VM size chosen per job from the catalog)")
        return
    try:
        maximum = cluster_max_nodes(provider, s.compute)
    except NotFound:
        report.add("compute", False, f"compute cluster {s.compute!r} does not exist",
                   f"az ml compute create -n {s.compute} --type AmlCompute --size Standard_D4s_v3 "
                   f"--max-instances 2 -w {s.workspace} -g {s.resource_group} (or set compute = 'serverless')")
        return
    except CloudbridgeError as exc:
        report.add("compute", False, *_detail_and_fix(exc, "check the cluster name"))
        return
    wanted = nodes or 1
    if maximum < wanted:
        report.add("compute", False, f"cluster {s.compute!r} has at most {maximum} node(s), {wanted} needed",
                   f"az ml compute update -n {s.compute} --max-instances {wanted} -w {s.workspace} "
                   f"-g {s.resource_group}")
    else:
        report.add("compute", True, f"cluster {s.compute!r}, up to {maximum} node(s)")
