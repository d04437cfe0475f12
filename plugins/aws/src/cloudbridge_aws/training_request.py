"""``to_training_job_request``: a :class:`~cloudbridge.specs.JobSpec` as a SageMaker
``CreateTrainingJob`` request. Pure: no AWS call, no clock, no randomness (golden-tested).

How the job runs (the choice, documented in ``docs/providers/aws.md``): the image is the PyTorch
Deep Learning Container, whose SageMaker Training Toolkit downloads a small, content-addressed
*launcher package* (hyperparameter ``sagemaker_submit_directory``), installs its
``requirements.txt`` (``cloudbridge-ai``) and runs its ``cloudbridge_entry.py`` (``sagemaker_program``)
on every host. That script unpacks the job's *code package* (the packed workdir, input channel
``cbcode``) and execs ``cloudbridge-launch -- $CB_RUN``. The run command travels in the environment,
not in hyperparameters, so the toolkit passes no arguments.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from functools import lru_cache
from importlib import resources as importlib_resources
from typing import Any

from cloudbridge.errors import InvalidSpec, ResourceUnavailable
from cloudbridge.managed.adapter import Placement
from cloudbridge.managed.limits import JOB_ID_TAG, NAME_TAG, Limits
from cloudbridge.specs import JobSpec, spec_error
from cloudbridge.uri import parse_uri
from cloudbridge_aws.images import training_image_uri
from cloudbridge_aws.limits import DEFAULT_MAX_RUNTIME, stopping_condition
from cloudbridge_aws.settings import INSTANCE_TYPE_RE, AwsSettings

__all__ = [
    "CHECKPOINT_LOCAL_PATH",
    "CODE_CHANNEL",
    "DEFAULT_MAX_RUNTIME",
    "ENTRY_PROGRAM",
    "choose_training_instance",
    "job_limits",
    "job_name_for",
    "launcher_package",
    "bucket_prefix",
    "launcher_uri",
    "place_training",
    "secret_env_warning",
    "to_training_job_request",
    "training_job_request",
]

CODE_CHANNEL = "cbcode"
ENTRY_PROGRAM = "cloudbridge_entry.py"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
#: SageMaker limits: job names, environment values.
JOB_NAME_MAX = 63
ENV_VALUE_MAX = 512
_NAME_BAD = re.compile(r"[^A-Za-z0-9-]+")
#: Values that name a secret instead of holding one (Secrets Manager / SSM Parameter Store ARNs).
_SECRET_REFERENCE = re.compile(r"^arn:aws[a-z-]*:(secretsmanager|ssm):")


def job_name_for(spec_name: str, suffix: str, reserve: int = 0) -> str:
    """A SageMaker job name: ``spec_name`` made legal (letters, digits, ``-``) plus ``-suffix``.

    ``reserve`` characters are left free for a restart suffix (``-r2``).
    """
    base = _NAME_BAD.sub("-", spec_name).strip("-") or "job"
    base = re.sub(r"-{2,}", "-", base)[: JOB_NAME_MAX - len(suffix) - 1 - reserve].rstrip("-")
    return f"{base}-{suffix}"


@lru_cache(maxsize=4)
def launcher_package(version: str | None = None) -> tuple[bytes, str]:
    """The launcher package (``cloudbridge_entry.py`` + ``requirements.txt``) and its sha256.

    Byte-for-byte reproducible (fixed mtimes, owners and gzip header), so it is uploaded once per
    cloudbridge version and bucket.
    """
    from cloudbridge import __version__

    entry = importlib_resources.files("cloudbridge_aws").joinpath("launcher", ENTRY_PROGRAM).read_bytes()
    requirements = f"cloudbridge-ai[train]=={version or __version__}\n".encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((ENTRY_PROGRAM, entry), ("requirements.txt", requirements)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(data))
    packed = gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
    return packed, hashlib.sha256(packed).hexdigest()


def _bucket(settings: AwsSettings) -> str:
    if not settings.bucket:
        raise InvalidSpec(
            "no S3 bucket is set for code packages and outputs",
            field="settings.aws.bucket",
            hint="set bucket in the [aws] table of config.toml, CLOUDBRIDGE_AWS_BUCKET or overrides.aws.bucket; "
            "create one with `aws s3 mb s3://NAME`",
        )
    return settings.bucket


def bucket_prefix(settings: AwsSettings) -> str:
    """``s3://BUCKET/PREFIX``: where cloudbridge keeps code, launcher, default outputs and checkpoints."""
    return f"s3://{_bucket(settings)}/{settings.prefix}" if settings.prefix else f"s3://{_bucket(settings)}"


def launcher_uri(settings: AwsSettings) -> str:
    """Where the launcher package lives: ``s3://BUCKET/PREFIX/launcher/<sha256[:16]>.tar.gz``."""
    return f"{bucket_prefix(settings)}/launcher/{launcher_package()[1][:16]}.tar.gz"


def _s3(value: str, field: str, spec: JobSpec) -> str:
    """``value`` as an ``s3://`` URI, or :class:`InvalidSpec` naming the field."""
    text = value.strip()
    if not text.startswith("s3://"):
        raise spec_error(
            spec,
            field,
            f"{value!r} is not an s3:// URI; SageMaker jobs read and write S3",
            hint=f"upload it first: cloudbridge migrate {spec.source or 'job.yaml'} --to aws",
        )
    return str(parse_uri(text))


def choose_training_instance(spec: JobSpec, settings: AwsSettings, region: str, catalog: Any = None) -> str:
    """The SageMaker instance type for one node of ``spec``.

    Order: ``resources.instance_type`` (checked against the planner catalog for ``region``), then the
    ``instance_types`` setting for the accelerator (or ``cpu``), then the planner's cheapest fit.
    """
    resources = spec.resources
    pinned = resources.instance_type
    if pinned and not INSTANCE_TYPE_RE.match(pinned):
        raise spec_error(
            spec,
            "resources.instance_type",
            f"{pinned!r} is not a SageMaker instance type (ml.FAMILY.SIZE, e.g. ml.g5.xlarge)",
        )
    override = settings.instance_types.get(resources.accelerator_name or "cpu")
    if override and not pinned:
        return override
    from cloudbridge.planner.placement import choose_instance

    try:
        row = choose_instance("aws", resources, region, catalog=catalog)
    except ResourceUnavailable as exc:
        if pinned:
            raise ResourceUnavailable(
                f"instance type {pinned!r} is not offered for SageMaker training in {region}",
                hint="pick another type (see `cloudbridge plan`), or add a catalog row with CLOUDBRIDGE_CATALOG",
            ) from exc
        raise
    return row.instance_type


def job_limits(spec: JobSpec, instance_type: str, region: str, catalog: Any = None) -> Limits:
    """The job's :class:`~cloudbridge.managed.limits.Limits`: run time, budget cap, start timeout, restarts."""
    from cloudbridge.managed.compute import plan_limits
    from cloudbridge_aws.adapter import SageMakerAdapter

    placement = Placement(instance_type, region, spec.resources.nodes, spec.resources.spot)
    return plan_limits(SageMakerAdapter, spec, placement, catalog)[1]  # type: ignore[arg-type]


def _environment(spec: JobSpec, job_id: str, processes: int | None) -> dict[str, str]:
    env = dict(spec.env)
    env.update({"CB_RUN": spec.run, "CB_DISTRIBUTION": spec.distribution, "CB_JOB_ID": job_id})
    if processes:
        env["CB_NUM_PROCESSES"] = str(processes)
    for key, value in env.items():
        if len(value) > ENV_VALUE_MAX:
            field = "run" if key == "CB_RUN" else f"env.{key}"
            raise spec_error(
                spec,
                field,
                f"SageMaker limits environment values to {ENV_VALUE_MAX} characters ({len(value)} given)",
                hint="put the command in a script inside the workdir and run that" if key == "CB_RUN" else None,
            )
    return dict(sorted(env.items()))


def secret_env_warning(spec: Any, *, what: str = "job") -> str | None:
    """One warning line when ``spec.env`` holds values that look secret (by name or shape), else ``None``.

    SageMaker stores ``Environment`` in plain text: anyone allowed ``DescribeTrainingJob`` (a
    ``job``) or ``DescribeModel`` (an ``endpoint``) reads it. Names only, never values; a value that
    is a Secrets Manager or SSM parameter ARN is a reference (the recommended way, see
    ``docs/providers/aws.md``) and is not flagged.
    """
    from cloudbridge.redaction import is_secret

    names = sorted(k for k, v in spec.env.items() if is_secret(k, v) and not _SECRET_REFERENCE.match(v))
    if not names:
        return None
    action = "sagemaker:DescribeTrainingJob" if what == "job" else "sagemaker:DescribeModel"
    return (
        f"env {', '.join(names)} look{'s' if len(names) == 1 else ''} secret: SageMaker keeps the {what}'s "
        f"environment in plain text, readable by anyone allowed {action}; pass a "
        "Secrets Manager ARN instead (docs/providers/aws.md#secrets)"
    )


def place_training(spec: JobSpec, settings: AwsSettings, region: str | None, catalog: Any = None) -> Placement:
    """Check what the request needs besides the instance (region, role, channels, outputs), then place it."""
    region = region or settings.region
    if not region:
        raise InvalidSpec("no AWS region is set", field="settings.aws.region", hint="set AWS_REGION or [aws] region")
    if not settings.role_arn:
        raise InvalidSpec(
            "no SageMaker execution role is set",
            field="settings.aws.role_arn",
            hint="set role_arn in the [aws] table of config.toml, CLOUDBRIDGE_AWS_ROLE_ARN or overrides.aws.role_arn",
        )
    if CODE_CHANNEL in spec.inputs:
        raise spec_error(
            spec, f"inputs.{CODE_CHANNEL}", f"input channel name {CODE_CHANNEL!r} is reserved for the code package"
        )
    if len(spec.outputs) > 1:
        raise spec_error(
            spec,
            "outputs",
            "SageMaker jobs have one output location (OutputDataConfig.S3OutputPath); give one output",
            hint="the model dir and the output dir are both uploaded there, as model.tar.gz and output.tar.gz",
        )
    instance_type = choose_training_instance(spec, settings, region, catalog)
    return Placement(instance_type, region, spec.resources.nodes, spec.resources.spot)


def to_training_job_request(
    spec: JobSpec,
    settings: AwsSettings,
    *,
    code_uri: str,
    job_name: str,
    region: str | None = None,
    catalog: Any = None,
) -> dict[str, Any]:
    """The ``CreateTrainingJob`` request for ``spec`` (see the module docstring for the layout).

    ``code_uri`` is the uploaded code package, ``job_name`` the SageMaker job name; ``region``
    defaults to ``settings.region``; ``catalog`` to the planner's catalog. Bad input raises
    :class:`InvalidSpec` naming the spec field (or ``settings.aws.*``). The same steps as a submit:
    place, then limits (:func:`cloudbridge.managed.compute.plan_limits`), then
    :func:`training_job_request`.
    """
    from cloudbridge.managed.compute import job_tags, plan_limits
    from cloudbridge_aws.adapter import SageMakerAdapter

    placement = place_training(spec, settings, region, catalog)
    placement, limits = plan_limits(SageMakerAdapter, spec, placement, catalog)  # type: ignore[arg-type]
    return training_job_request(spec, settings, placement, limits, code_uri=code_uri, job_name=job_name,
                                tags=job_tags(f"aws-{job_name}", spec, limits))


def training_job_request(
    spec: JobSpec,
    settings: AwsSettings,
    placement: Placement,
    limits: Limits,
    *,
    code_uri: str,
    job_name: str,
    tags: dict[str, str],
) -> dict[str, Any]:
    """The ``CreateTrainingJob`` request for ``spec`` placed on ``placement`` with ``limits``. Pure.

    ``tags`` are the core's (``cloudbridge:job-id``, ``cloudbridge:name``, ``cloudbridge:limits``);
    ``settings.tags`` come between the first two and the limits.
    """
    resources = spec.resources
    region = placement.region or settings.region
    instance_type = placement.instance_type
    gpu = resources.accelerator_count > 0 or instance_type.split(".")[1][:1] in ("g", "p")
    image = spec.image or settings.training_image or training_image_uri(region, gpu=gpu)
    job_id = f"aws-{job_name}"
    channels = [
        {
            "ChannelName": CODE_CHANNEL,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": code_uri,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "InputMode": "File",
        }
    ]
    for name, uri in sorted(spec.inputs.items()):
        channels.append(
            {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": _s3(uri, f"inputs.{name}", spec),
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            }
        )
    if spec.outputs:
        ((name, uri),) = spec.outputs.items()
        output_path = _s3(uri, f"outputs.{name}", spec)
    else:
        output_path = f"{bucket_prefix(settings)}/outputs"
    processes = resources.processes or (resources.accelerator_count or None)
    hyper = {
        "sagemaker_program": ENTRY_PROGRAM,
        "sagemaker_submit_directory": launcher_uri(settings),
        "sagemaker_region": region,
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": job_name,
    }
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "RoleArn": settings.role_arn,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        # The toolkit json-decodes every hyperparameter value, as the SageMaker Python SDK encodes them.
        "HyperParameters": {key: json.dumps(value) for key, value in hyper.items()},
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": output_path},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": resources.nodes,
            "VolumeSizeInGB": settings.volume_size_gb,
        },
        "StoppingCondition": stopping_condition(limits, resources.spot),
        "EnableManagedSpotTraining": resources.spot,
        "Environment": _environment(spec, job_id, processes),
        "Tags": [{"Key": key, "Value": tags[key]} for key in (JOB_ID_TAG, NAME_TAG)]
        + [{"Key": k, "Value": v} for k, v in sorted(settings.tags.items())]
        + [{"Key": key, "Value": value} for key, value in tags.items() if key not in (JOB_ID_TAG, NAME_TAG)],
    }
    checkpoints = spec.checkpoints
    if checkpoints or resources.spot:
        default = f"{bucket_prefix(settings)}/checkpoints/{job_name}"
        uri = _s3(checkpoints, "checkpoints", spec) if checkpoints else default
        request["CheckpointConfig"] = {"S3Uri": uri, "LocalPath": CHECKPOINT_LOCAL_PATH}
    if settings.subnets:
        request["VpcConfig"] = {
            "Subnets": list(settings.subnets),
            "SecurityGroupIds": list(settings.security_group_ids),
        }
    return request
