"""``to_command_job``: a :class:`~cloudbridge.specs.JobSpec` as the REST body of an Azure ML command job.

Pure: no Azure call, no clock, no randomness (golden-tested against azure-ai-ml's own serialisation).

How the job runs (documented in ``docs/providers/azure.md``): the packed workdir is the job's *code*
asset (``codeId``); Azure ML starts ``process_count_per_instance`` processes on each of
``instance_count`` nodes (``PyTorchDistribution``) in the code snapshot and every process runs
``cloudbridge-launch -- "$CB_RUN"``; the run line travels in the environment, so quoting survives.
Inputs are ``uri_folder`` read-only mounts, outputs (and checkpoints) ``uri_folder`` read-write mounts
uploaded when the job ends; the runtime finds them through ``AZURE_ML_INPUT_<name>`` /
``AZURE_ML_OUTPUT_<name>``.
"""

from __future__ import annotations

import re
from typing import Any

from cloudbridge.errors import InvalidSpec
from cloudbridge.specs import JobSpec, spec_error
from cloudbridge.uri import parse_uri
from cloudbridge_azure.settings import SERVERLESS, AzureSettings

__all__ = [
    "COMMAND",
    "blob_url",
    "iso_duration",
    "job_name_for",
    "require_workspace",
    "to_command_job",
    "workspace_id",
]

#: What every process of the job runs (the run line is ``$CB_RUN``).
COMMAND = 'cloudbridge-launch -- "$CB_RUN"'
#: Azure ML job names: a letter or digit, then letters, digits, '-' or '_'.
JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$")
JOB_NAME_MAX = 255
_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]+")
_RESERVED_OUTPUTS = ("checkpoints",)


def job_name_for(spec_name: str, suffix: str) -> str:
    """An Azure ML job name: ``spec_name`` made legal (letters, digits, ``-``, ``_``) plus ``-suffix``."""
    base = _NAME_BAD.sub("-", spec_name).strip("-_") or "job"
    base = re.sub(r"-{2,}", "-", base)[: 64 - len(suffix) - 1].rstrip("-")
    return f"{base}-{suffix}"


def require_workspace(settings: AzureSettings) -> tuple[str, str, str]:
    """``(subscription_id, resource_group, workspace)``, or :class:`InvalidSpec` naming the missing one."""
    for field, what in (("subscription_id", "subscription"), ("resource_group", "resource group"),
                        ("workspace", "Azure ML workspace")):
        if not getattr(settings, field):
            raise InvalidSpec(
                f"no {what} is set",
                field=f"settings.azure.{field}",
                hint=f"set {field} in the [azure] table of config.toml, CLOUDBRIDGE_AZURE_{field.upper()} "
                f"or overrides.azure.{field}",
            )
    return settings.subscription_id or "", settings.resource_group or "", settings.workspace or ""


def workspace_id(settings: AzureSettings) -> str:
    """The ARM id of the workspace."""
    sub, rg, ws = require_workspace(settings)
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"


def blob_url(uri: str, settings: AzureSettings) -> str:
    """``az://account/container/path`` as the blob URL Azure ML reads (``blob_endpoint`` when set)."""
    parsed = parse_uri(uri)
    account, container = parsed.bucket.split("/", 1)
    endpoint = settings.blob_endpoint if settings.blob_endpoint and settings.storage_account in (None, account) \
        else f"https://{account}.blob.core.windows.net"
    return f"{endpoint}/{container}/{parsed.key}".rstrip("/")


def iso_duration(seconds: int) -> str:
    """Seconds as the ISO 8601 duration Azure ML uses (``PT1H30M``), as azure-ai-ml writes it."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return text if text != "PT" else "PT0S"


def _az(value: str, field: str, spec: JobSpec, settings: AzureSettings) -> str:
    text = value.strip()
    if not text.startswith("az://"):
        raise spec_error(
            spec, field, f"{value!r} is not an az:// URI; Azure ML jobs read and write Blob storage",
            hint=f"upload it first: cloudbridge migrate {spec.source or 'job.yaml'} --to azure",
        )
    return blob_url(text, settings)


def _environment(spec: JobSpec, job_id: str) -> dict[str, str]:
    env = dict(spec.env)
    env.update({"CB_RUN": spec.run, "CB_DISTRIBUTION": spec.distribution, "CB_JOB_ID": job_id})
    return dict(sorted(env.items()))


def to_command_job(
    spec: JobSpec,
    settings: AzureSettings,
    *,
    job_name: str,
    instance_type: str,
    code_id: str,
    timeout_s: int,
    job_id: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The ``PUT .../jobs/{job_name}`` body for ``spec`` (see the module docstring for the layout).

    ``instance_type`` is the VM size chosen from the catalog, ``code_id`` the ARM id of the uploaded
    code version, ``timeout_s`` the run-time limit, ``tags`` the core's ``cloudbridge:*`` tags (default:
    the job id and spec name), stored as Azure ML job tags with ``settings.tags``. Bad input raises
    :class:`InvalidSpec` naming the spec field (or ``settings.azure.*``).
    """
    ws = workspace_id(settings)
    if not JOB_NAME_RE.match(job_name):
        raise spec_error(spec, "name", f"Azure ML refuses the job name {job_name!r}: letters, digits, '-' and '_' "
                         "only, starting with a letter or digit")
    resources = spec.resources
    job_id = job_id or f"azure-{job_name}"
    inputs = {
        name: {"jobInputType": "uri_folder", "mode": "ReadOnlyMount", "uri": _az(uri, f"inputs.{name}", spec, settings)}
        for name, uri in sorted(spec.inputs.items())
    }
    outputs: dict[str, Any] = {}
    for name, uri in sorted(spec.outputs.items()):
        if name in _RESERVED_OUTPUTS:
            raise spec_error(spec, f"outputs.{name}", f"output name {name!r} is reserved for `checkpoints:`")
        outputs[name] = {"jobOutputType": "uri_folder", "mode": "ReadWriteMount",
                         "uri": _az(uri, f"outputs.{name}", spec, settings)}
    if spec.checkpoints:
        outputs["checkpoints"] = {"jobOutputType": "uri_folder", "mode": "ReadWriteMount",
                                  "uri": _az(spec.checkpoints, "checkpoints", spec, settings)}
    job_resources: dict[str, Any] = {"instanceCount": resources.nodes, "properties": {}}
    props: dict[str, Any] = {
        "jobType": "Command",
        "displayName": spec.name,
        "experimentName": _NAME_BAD.sub("-", spec.name).strip("-") or "cloudbridge",
        "codeId": code_id,
        "command": COMMAND,
        "environmentId": settings.environment,
        "environmentVariables": _environment(spec, job_id),
        "inputs": inputs,
        "outputs": outputs,
        "limits": {"jobLimitsType": "Command", "timeout": iso_duration(timeout_s)},
        "tags": {**dict(sorted(settings.tags.items())),
                 **(tags if tags is not None else {"cloudbridge:job-id": job_id, "cloudbridge:name": spec.name})},
        "properties": {},
        "isArchived": False,
    }
    if settings.compute == SERVERLESS:
        job_resources["instanceType"] = instance_type
    else:
        props["computeId"] = f"{ws}/computes/{settings.compute}"
    props["resources"] = job_resources
    if spec.distribution != "none":
        processes = resources.processes or resources.accelerator_count or 1
        props["distribution"] = {"distributionType": "PyTorch", "processCountPerInstance": processes}
    if resources.spot:
        props["queueSettings"] = {"jobTier": "Spot"}
    return {"properties": props}
