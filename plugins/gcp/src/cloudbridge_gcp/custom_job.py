"""``to_custom_job``: a :class:`~cloudbridge.specs.JobSpec` as a Vertex AI ``CustomJob``. Pure: no call,
no clock, no randomness (golden-tested; every field name is the ``aiplatform_v1`` REST JSON name).

How the job runs (documented in ``docs/providers/gcp.md``):

* worker pool 0 is the chief (1 replica), pool 1 the workers (``nodes - 1`` replicas), each on the
  placement's ``machineSpec`` (:func:`~cloudbridge_gcp.machines.machine_spec`);
* every replica's container runs :data:`BOOTSTRAP`: install cloudbridge when the image lacks it,
  then ``python -m cloudbridge_gcp.entry``, which unpacks the content-addressed code package
  (``CB_CODE_URI``, read through the Cloud Storage FUSE mount ``/gcs``) and execs
  ``cloudbridge-launch -- $CB_RUN`` -- the launcher contract of every provider;
* ``baseOutputDirectory`` (the spec's one ``gs://`` output, or ``gs://STAGING/PREFIX/outputs/NAME``)
  gives ``AIP_MODEL_DIR`` (``.../model/``), ``AIP_CHECKPOINT_DIR`` and ``AIP_TENSORBOARD_LOG_DIR``;
* inputs travel as ``CB_INPUT_<NAME>=gs://...`` (read through ``/gcs``), the spec's env as is;
* ``scheduling``: ``timeout`` is the run-time cap from the limits, ``strategy: SPOT`` for ``spot``
  (with ``maxWaitDuration``), ``restartJobOnWorkerRestart`` when the job checkpoints.
"""

from __future__ import annotations

import re
from typing import Any

from cloudbridge.errors import InvalidSpec
from cloudbridge.managed.adapter import Placement
from cloudbridge.managed.limits import Limits
from cloudbridge.specs import JobSpec, spec_error
from cloudbridge_gcp.labels import encode_tags, encode_value
from cloudbridge_gcp.machines import machine_spec
from cloudbridge_gcp.settings import GcpSettings

__all__ = ["BOOTSTRAP", "DISPLAY_NAME_MAX", "LONGEST_RUNTIME", "bucket_prefix", "default_image", "to_custom_job"]

#: Vertex AI's display names: at most 128 characters.
DISPLAY_NAME_MAX = 128
#: The longest ``scheduling.timeout`` cloudbridge asks Vertex AI for (7 days).
LONGEST_RUNTIME = 7 * 24 * 3600
#: Vertex AI's prebuilt PyTorch training images.
GPU_IMAGE = "us-docker.pkg.dev/vertex-ai/training/pytorch-gpu.2-4.py310:latest"
CPU_IMAGE = "us-docker.pkg.dev/vertex-ai/training/pytorch-xla.2-4.py310:latest"
#: What every replica's container runs (``bash -c``): cloudbridge from the image or from PyPI, then the entry.
BOOTSTRAP = (
    'python -c "import cloudbridge_gcp.entry" 2>/dev/null || '
    'pip install --quiet --no-input "cloudbridge-ai[train]==$CB_VERSION" "cloudbridge-gcp==$CB_VERSION" || exit 1; '
    "exec python -m cloudbridge_gcp.entry"
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_ENV = ("AIP_", "CLUSTER_SPEC", "TF_CONFIG", "CLOUD_ML_")


def default_image(placement: Placement) -> str:
    """Vertex AI's prebuilt PyTorch image: the GPU build when the machine has accelerators."""
    return GPU_IMAGE if "acceleratorType" in machine_spec(placement.instance_type) else CPU_IMAGE


def bucket_prefix(settings: GcpSettings) -> str:
    """``gs://STAGING_BUCKET/PREFIX``: code packages, default outputs and tag files live there."""
    if not settings.staging_bucket:
        raise InvalidSpec(
            "no staging bucket is set for code packages and outputs",
            field="settings.gcp.staging_bucket",
            hint="set staging_bucket in the [gcp] table of config.toml, CLOUDBRIDGE_GCP_STAGING_BUCKET or "
            "overrides.gcp.staging_bucket; create one with `gcloud storage buckets create gs://NAME`",
        )
    base = f"gs://{settings.staging_bucket}"
    return f"{base}/{settings.prefix}" if settings.prefix else base


def _gs(value: str, field: str, spec: JobSpec) -> str:
    text = value.strip()
    if not text.startswith("gs://") or len(text) <= len("gs://"):
        raise spec_error(spec, field, f"{value!r} is not a gs:// URI; Vertex AI jobs read and write Cloud Storage",
                         hint=f"upload it first: cloudbridge migrate {spec.source or 'job.yaml'} --to gcp")
    return text.rstrip("/")


def _environment(spec: JobSpec, name: str, code_uri: str, checkpoints: str | None) -> list[dict[str, str]]:
    from cloudbridge import __version__

    env = dict(spec.env)
    for key in env:
        if not _ENV_NAME.match(key) or key.startswith(_RESERVED_ENV):
            raise spec_error(spec, f"env.{key}", f"{key!r} cannot be set: Vertex AI reserves AIP_*, CLUSTER_SPEC, "
                             "TF_CONFIG and CLOUD_ML_*, and names must be letters, digits and '_'")
    processes = spec.resources.processes or spec.resources.accelerator_count or None
    env.update({"CB_RUN": spec.run, "CB_DISTRIBUTION": spec.distribution, "CB_JOB_ID": f"gcp-{name}",
                "CB_CODE_URI": code_uri, "CB_VERSION": __version__})
    if processes:
        env["CB_NUM_PROCESSES"] = str(processes)
    for channel, uri in spec.inputs.items():
        env[f"CB_INPUT_{channel.upper().replace('-', '_')}"] = _gs(uri, f"inputs.{channel}", spec)
    if checkpoints:
        env["CB_CHECKPOINT_DIR"] = checkpoints
    return [{"name": key, "value": value} for key, value in sorted(env.items())]


def _check_name(spec: JobSpec, name: str) -> None:
    if not name or len(name) > DISPLAY_NAME_MAX or any(ord(ch) < 32 for ch in name):
        raise spec_error(spec, "name", f"Vertex AI refuses the job name {name!r}: display names are 1 to "
                         f"{DISPLAY_NAME_MAX} printable characters", hint="shorten the spec's name")


def to_custom_job(spec: JobSpec, placement: Placement, limits: Limits, code_uri: str, *, settings: GcpSettings,
                  name: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``CustomJob`` (REST JSON) that runs ``spec`` on ``placement`` within ``limits``.

    ``code_uri`` is the uploaded code package, ``name`` the display name, ``tags`` the core's
    ``cloudbridge:*`` tags (stored as labels, see :mod:`cloudbridge_gcp.labels`). Bad input raises
    :class:`~cloudbridge.errors.InvalidSpec` naming the spec field (or ``settings.gcp.*``).
    """
    _check_name(spec, name)
    if len(spec.outputs) > 1:
        raise spec_error(spec, "outputs", "Vertex AI jobs have one output location (baseOutputDirectory); give "
                         "one output", hint="the model lands in its model/ folder, checkpoints in checkpoints/")
    if spec.resources.spot and settings.reservation:
        raise spec_error(spec, "resources.spot", "spot capacity cannot consume a reservation",
                         hint="drop spot: true, or unset settings.gcp.reservation")
    if spec.outputs:
        ((channel, uri),) = spec.outputs.items()
        base_output = _gs(uri, f"outputs.{channel}", spec)
    else:
        base_output = f"{bucket_prefix(settings)}/outputs/{name}"
    checkpoints = _gs(spec.checkpoints, "checkpoints", spec) if spec.checkpoints else None
    machine = machine_spec(placement.instance_type)
    if settings.reservation:
        machine["reservationAffinity"] = {
            "reservationAffinityType": "SPECIFIC_RESERVATION",
            "key": "compute.googleapis.com/reservation-name",
            "values": [settings.reservation],
        }
    container = {
        "imageUri": spec.image or settings.image or default_image(placement),
        "command": ["bash", "-c", BOOTSTRAP],
        "env": _environment(spec, name, code_uri, checkpoints),
    }
    pool = {"machineSpec": machine, "diskSpec": {"bootDiskType": "pd-ssd", "bootDiskSizeGb": settings.boot_disk_gb},
            "containerSpec": container}
    pools = [{**pool, "replicaCount": "1"}]
    if placement.nodes > 1:
        pools.append({**pool, "replicaCount": str(placement.nodes - 1)})
    scheduling: dict[str, Any] = {"timeout": f"{limits.run_cap()}s"}
    if spec.checkpoints:
        scheduling["restartJobOnWorkerRestart"] = True  # a restarted worker resumes from the checkpoints
    if placement.spot:
        scheduling.update(strategy="SPOT", maxWaitDuration=f"{limits.spot_wait(longest=LONGEST_RUNTIME)}s")
    job_spec: dict[str, Any] = {"workerPoolSpecs": pools, "scheduling": scheduling,
                                "baseOutputDirectory": {"outputUriPrefix": base_output}}
    if settings.service_account:
        job_spec["serviceAccount"] = settings.service_account
    if settings.network:
        job_spec["network"] = settings.network
    labels = {k: encode_value(v)[:63] for k, v in sorted(settings.labels.items())}
    labels.update(encode_tags(tags or {}))
    return {"displayName": name, "jobSpec": job_spec, "labels": labels}
