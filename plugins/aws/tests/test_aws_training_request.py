"""The pure CreateTrainingJob builder: golden requests and bad input (no server involved).

Golden files live in ``golden/``; regenerate them after an intended change with
``CLOUDBRIDGE_UPDATE_GOLDEN=1 pytest plugins/aws/tests/test_aws_training_request.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cloudbridge_aws.settings import AwsSettings
from cloudbridge_aws.training_request import (
    choose_training_instance,
    job_name_for,
    launcher_package,
    to_training_job_request,
)

from cloudbridge.errors import InvalidSpec, ResourceUnavailable
from cloudbridge.planner.catalog import load_catalog
from cloudbridge.specs import JobSpec

GOLDEN = Path(__file__).parent / "golden"
ROLE = "arn:aws:iam::123456789012:role/cloudbridge-sagemaker"
CODE = "s3://cb-bucket/cloudbridge/code/workdir-0123abcd.tar.gz"
NAME = "sst2-minilm-20250101-120000-ab12"


@pytest.fixture(scope="module")
def catalog() -> Any:
    """The builtin planner catalog only (no plugin rows, no CLOUDBRIDGE_CATALOG)."""
    return load_catalog(include_plugins=False, include_env=False)


def settings(**values: Any) -> AwsSettings:
    base = {"region": "us-east-1", "bucket": "cb-bucket", "role_arn": ROLE}
    return AwsSettings(**{**base, **values})


def spec(**values: Any) -> JobSpec:
    base = {
        "name": "sst2-minilm",
        "provider": "aws",
        "run": "cloudbridge-finetune --task text-classification --model minilm --train data/train.csv",
        "distribution": "accelerate",
        "inputs": {"train": "s3://cb-data/sst2/train"},
        "outputs": {"model": "s3://cb-bucket/runs/sst2"},
        "env": {"HF_HUB_OFFLINE": "1"},
    }
    return JobSpec.model_validate({**base, **values})


CASES = {
    "single_node": spec(resources={"accelerators": "T4:1", "max_runtime": "2h"}),
    "multi_node": spec(resources={"accelerators": "A100:8", "nodes": 2, "max_runtime": "12h"}),
    "spot": spec(resources={"accelerators": "A10G:1", "spot": True, "max_runtime": "6h"}),
    "checkpoint": spec(
        resources={"accelerators": "V100:4", "spot": True, "max_runtime": "1d"},
        checkpoints="s3://cb-bucket/ckpt/sst2",
    ),
    "cpu": spec(resources={}, inputs={}, outputs={}, distribution="none", run="python train.py"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_request(case: str, catalog: Any) -> None:
    request = to_training_job_request(CASES[case], settings(), code_uri=CODE, job_name=NAME, catalog=catalog)
    path = GOLDEN / f"training_{case}.json"
    rendered = json.dumps(request, indent=2, sort_keys=True) + "\n"
    if os.environ.get("CLOUDBRIDGE_UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert rendered == path.read_text(encoding="utf-8"), f"{path.name} differs; see the module docstring"
    assert_valid("sagemaker", "CreateTrainingJob", request)


def assert_valid(service: str, operation: str, params: dict[str, Any]) -> None:
    """The request satisfies botocore's model of the operation (types, required members, ranges)."""
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model(service).operation_model(operation)
    validate_parameters(params, model.input_shape)  # raises ParamValidationError listing every problem


def test_golden_facts(catalog: Any) -> None:
    """The headline mappings, stated explicitly so the golden files are not the only record."""
    multi = to_training_job_request(CASES["multi_node"], settings(), code_uri=CODE, job_name=NAME, catalog=catalog)
    assert multi["ResourceConfig"] == {"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 2, "VolumeSizeInGB": 50}
    assert multi["StoppingCondition"] == {"MaxRuntimeInSeconds": 12 * 3600}
    assert multi["EnableManagedSpotTraining"] is False
    assert "CheckpointConfig" not in multi
    assert multi["Environment"]["CB_NUM_PROCESSES"] == "8"
    assert multi["AlgorithmSpecification"]["TrainingImage"].startswith(
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:"
    )
    assert multi["OutputDataConfig"] == {"S3OutputPath": "s3://cb-bucket/runs/sst2"}
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in multi["InputDataConfig"]}
    assert channels == {"cbcode": CODE, "train": "s3://cb-data/sst2/train"}

    spot = to_training_job_request(CASES["spot"], settings(), code_uri=CODE, job_name=NAME, catalog=catalog)
    assert spot["EnableManagedSpotTraining"] is True
    wait = spot["StoppingCondition"]["MaxWaitTimeInSeconds"]
    assert wait >= spot["StoppingCondition"]["MaxRuntimeInSeconds"] == 6 * 3600
    assert spot["CheckpointConfig"] == {
        "S3Uri": f"s3://cb-bucket/cloudbridge/checkpoints/{NAME}",
        "LocalPath": "/opt/ml/checkpoints",
    }, "spot without checkpoints still gets a checkpoint location, so a reclaimed job resumes"

    ckpt = to_training_job_request(CASES["checkpoint"], settings(), code_uri=CODE, job_name=NAME, catalog=catalog)
    assert ckpt["CheckpointConfig"]["S3Uri"] == "s3://cb-bucket/ckpt/sst2"
    assert ckpt["ResourceConfig"]["InstanceType"] == "ml.p3.8xlarge"

    cpu = to_training_job_request(CASES["cpu"], settings(), code_uri=CODE, job_name=NAME, catalog=catalog)
    assert cpu["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"
    assert "-cpu-" in cpu["AlgorithmSpecification"]["TrainingImage"]
    assert cpu["OutputDataConfig"] == {"S3OutputPath": "s3://cb-bucket/cloudbridge/outputs"}


@pytest.mark.parametrize(
    ("accelerators", "expected"),
    [
        ("A100:8", "ml.p4d.24xlarge"),
        ("T4:1", "ml.g4dn.xlarge"),
        (None, "ml.m5.xlarge"),
        ("H100:8", "ml.p5.48xlarge"),
        ("A10G:4", "ml.g5.12xlarge"),
        ("V100:1", "ml.p3.2xlarge"),
    ],
)
def test_instance_choice(accelerators: str | None, expected: str, catalog: Any) -> None:
    chosen = choose_training_instance(spec(resources={"accelerators": accelerators}), settings(), "us-east-1", catalog)
    assert chosen == expected


def test_instance_overrides(catalog: Any) -> None:
    s = settings(instance_types={"t4": "ml.g4dn.2xlarge", "cpu": "ml.c5.4xlarge"})
    assert (
        choose_training_instance(spec(resources={"accelerators": "T4"}), s, "us-east-1", catalog) == "ml.g4dn.2xlarge"
    )
    assert choose_training_instance(spec(resources={}), s, "us-east-1", catalog) == "ml.c5.4xlarge"
    pinned = spec(resources={"accelerators": "T4", "instance_type": "ml.g4dn.12xlarge"})
    assert choose_training_instance(pinned, s, "us-east-1", catalog) == "ml.g4dn.12xlarge", "a pinned type wins"


def test_job_names() -> None:
    assert job_name_for("sst2_minilm.v2", "20250101-120000-ab12") == "sst2-minilm-v2-20250101-120000-ab12"
    long = job_name_for("x" * 80, "20250101-120000-ab12")
    assert len(long) == 63 and long.endswith("-20250101-120000-ab12")


def test_launcher_package_is_reproducible() -> None:
    import io
    import tarfile

    data, digest = launcher_package()
    launcher_package.cache_clear()
    assert launcher_package() == (data, digest)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert sorted(tar.getnames()) == ["cloudbridge_entry.py", "requirements.txt"]
        requirements = tar.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
    assert requirements.startswith("cloudbridge-ai[train]==")


# ---- bad input: one clear line each ------------------------------------------------------------------
def build(s: JobSpec, st: AwsSettings | None = None, catalog: Any = None) -> dict[str, Any]:
    return to_training_job_request(s, st or settings(), code_uri=CODE, job_name=NAME, catalog=catalog)


def test_spot_runtime_over_28_days(catalog: Any) -> None:
    with pytest.raises(InvalidSpec) as info:
        build(spec(resources={"spot": True, "max_runtime": "30d"}), catalog=catalog)
    assert str(info.value).startswith("resources.max_runtime: max_runtime 30d is longer than SageMaker managed spot")
    assert "\n" not in str(info.value)


def test_instance_type_unknown_in_region(catalog: Any) -> None:
    with pytest.raises(
        ResourceUnavailable, match="'ml.p5.48xlarge' is not offered for SageMaker training in eu-west-1"
    ):
        build(spec(resources={"instance_type": "ml.p5.48xlarge"}), settings(region="eu-west-1"), catalog)
    with pytest.raises(InvalidSpec, match="resources.instance_type: 'p4d.24xlarge' is not a SageMaker instance type"):
        build(spec(resources={"instance_type": "p4d.24xlarge"}), catalog=catalog)


def test_local_paths_are_refused(catalog: Any) -> None:
    with pytest.raises(InvalidSpec, match=r"inputs.train: './data' is not an s3:// URI") as info:
        build(spec(inputs={"train": "./data"}), catalog=catalog)
    assert "cloudbridge migrate" in str(info.value)
    with pytest.raises(InvalidSpec, match="checkpoints: "):
        build(spec(checkpoints="/tmp/ckpt"), catalog=catalog)


def test_other_bad_input(catalog: Any) -> None:
    with pytest.raises(InvalidSpec, match="settings.aws.role_arn: no SageMaker execution role"):
        build(spec(), AwsSettings(region="us-east-1", bucket="cb-bucket"), catalog)
    with pytest.raises(InvalidSpec, match="outputs: SageMaker jobs have one output location"):
        build(spec(outputs={"a": "s3://b1/x", "b": "s3://b1/y"}), catalog=catalog)
    with pytest.raises(InvalidSpec, match="run: SageMaker limits environment values to 512 characters"):
        build(spec(run="python train.py " + "--flag x " * 80), catalog=catalog)
    with pytest.raises(InvalidSpec, match="inputs.cbcode: input channel name 'cbcode' is reserved"):
        build(spec(inputs={"cbcode": "s3://b1/x"}), catalog=catalog)
