"""The pure command-job builder: golden REST bodies, checked against azure-ai-ml's own serialisation.

Golden files live in ``golden/``; regenerate them after an intended change with
``CLOUDBRIDGE_UPDATE_GOLDEN=1 pytest plugins/azure/tests/test_azure_job_request.py`` and review the diff.
Each golden body is also produced independently by the SDK (``azure.ai.ml.command(...)`` with the
same values, serialised by ``_to_job()._to_rest_object()``) and must be equal to it, field for field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cloudbridge_azure.job_request import COMMAND, iso_duration, job_name_for, to_command_job
from cloudbridge_azure.settings import AzureSettings

from cloudbridge.errors import InvalidSpec
from cloudbridge.specs import JobSpec

GOLDEN = Path(__file__).parent / "golden"
SUB = "00000000-1111-2222-3333-444444444444"
WS = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/cb-ws"
CODE = f"{WS}/codes/cb-code/versions/3f2a"
ENV = "azureml://registries/azureml/environments/acpt-pytorch-2.2-cuda12.1/labels/latest"


def _settings(**extra: Any) -> AzureSettings:
    values = {"subscription_id": SUB, "resource_group": "rg", "workspace": "cb-ws", "region": "eastus",
              "storage_account": "cbdata", "container": "jobs", "compute": "gpu-cluster", **extra}
    return AzureSettings(**values)


CASES: dict[str, dict[str, Any]] = {
    "multi_node": {
        "spec": {"name": "sst2", "run": "cloudbridge-finetune --task text-classification --model minilm",
                 "distribution": "accelerate",
                 "resources": {"accelerators": "A100:1", "nodes": 2, "processes": 2, "max_runtime": "90m"},
                 "inputs": {"train": "az://cbdata/jobs/data/train"}, "outputs": {"model": "az://cbdata/jobs/runs/sst2"},
                 "checkpoints": "az://cbdata/jobs/ckpt/sst2", "env": {"HF_HUB_OFFLINE": "1"}},
        "settings": {},
        "instance_type": "Standard_NC24ads_A100_v4",
    },
    "serverless_spot": {
        "spec": {"name": "tiny.job", "run": "python train.py --epochs 1", "distribution": "none",
                 "resources": {"spot": True, "max_runtime": "2h"}},
        "settings": {"compute": "serverless", "tags": {"team": "nlp"}},
        "instance_type": "Standard_D4s_v3",
    },
}


def _body(case: str) -> dict[str, Any]:
    data = CASES[case]
    spec = JobSpec(provider="azure", **data["spec"])
    return to_command_job(spec, _settings(**data["settings"]), job_name=job_name_for(spec.name, "abc123"),
                          instance_type=data["instance_type"], code_id=CODE,
                          timeout_s=spec.resources.max_runtime_seconds or 0)


def _sdk_body(body: dict[str, Any]) -> dict[str, Any]:
    """The same job made with azure-ai-ml's public ``command()`` builder, serialised by the SDK."""
    from azure.ai.ml import Input, Output, PyTorchDistribution, command
    from azure.ai.ml.entities import QueueSettings

    props = body["properties"]
    job = command(
        display_name=props["displayName"], experiment_name=props["experimentName"], code=props["codeId"],
        command=props["command"], environment=props["environmentId"],
        environment_variables=props["environmentVariables"], compute=props.get("computeId"),
        instance_type=props["resources"].get("instanceType"), instance_count=props["resources"]["instanceCount"],
        inputs={k: Input(type="uri_folder", path=v["uri"], mode="ro_mount") for k, v in props["inputs"].items()},
        outputs={k: Output(type="uri_folder", path=v["uri"], mode="rw_mount") for k, v in props["outputs"].items()},
        distribution=PyTorchDistribution(process_count_per_instance=props["distribution"]["processCountPerInstance"])
        if "distribution" in props else None,
        timeout=_seconds(props["limits"]["timeout"]), tags=props["tags"],
        queue_settings=QueueSettings(job_tier="spot") if "queueSettings" in props else None,
    )
    rest = job._to_job()._to_rest_object().as_dict()
    return {"properties": rest["properties"]}


def _seconds(iso: str) -> int:
    import re

    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", iso)
    assert match, iso
    h, m, s = (int(x or 0) for x in match.groups())
    return h * 3600 + m * 60 + s


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_body(case: str) -> None:
    body = _body(case)
    path = GOLDEN / f"command_job_{case}.json"
    if os.environ.get("CLOUDBRIDGE_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    assert body == json.loads(path.read_text())


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_equals_sdk_serialisation(case: str) -> None:
    golden = json.loads((GOLDEN / f"command_job_{case}.json").read_text())
    assert _sdk_body(golden) == golden


@pytest.mark.parametrize("case", sorted(CASES))
def test_sdk_reads_the_body_back_unchanged(case: str) -> None:
    """What the adapter sends (the body parsed into the SDK's Job) serialises back to the same body."""
    from azure.ai.ml._restclient.arm_ml_service.models import JobBase
    from azure.ai.ml.entities import Job

    body = _body(case)
    entity = Job._from_rest_object(JobBase({"name": "x", **body}))
    assert {"properties": entity._to_job()._to_rest_object().as_dict()["properties"]} == body


def test_headline_mappings() -> None:
    """Stated explicitly so the golden files are not the only record."""
    props = _body("multi_node")["properties"]
    assert props["distribution"] == {"distributionType": "PyTorch", "processCountPerInstance": 2}
    assert props["resources"]["instanceCount"] == 2 and "instanceType" not in props["resources"]
    assert props["computeId"] == f"{WS}/computes/gpu-cluster"
    assert props["command"] == COMMAND and props["environmentVariables"]["CB_RUN"].startswith("cloudbridge-finetune")
    assert props["inputs"]["train"]["uri"] == "https://cbdata.blob.core.windows.net/jobs/data/train"
    assert props["outputs"]["checkpoints"]["mode"] == "ReadWriteMount"
    assert props["limits"]["timeout"] == "PT1H30M"
    serverless = _body("serverless_spot")["properties"]
    assert serverless["resources"]["instanceType"] == "Standard_D4s_v3" and "computeId" not in serverless
    assert serverless["queueSettings"] == {"jobTier": "Spot"} and "distribution" not in serverless


def test_blob_endpoint_rewrites_input_urls() -> None:
    spec = JobSpec(name="j", run="true", provider="azure", inputs={"d": "az://devstoreaccount1/c/x"})
    settings = _settings(storage_account="devstoreaccount1", blob_endpoint="http://127.0.0.1:1234/devstoreaccount1")
    body = to_command_job(spec, settings, job_name="j-1", instance_type="Standard_D4s_v3", code_id=CODE, timeout_s=60)
    assert body["properties"]["inputs"]["d"]["uri"] == "http://127.0.0.1:1234/devstoreaccount1/c/x"


@pytest.mark.parametrize(
    ("spec_fields", "settings", "job_name", "field", "text"),
    [
        ({"inputs": {"d": "./data"}}, {}, "j-1", "inputs.d", "not an az:// URI"),
        ({"outputs": {"checkpoints": "az://a1b/c/x"}}, {}, "j-1", "outputs.checkpoints", "reserved"),
        ({}, {"workspace": None}, "j-1", "settings.azure.workspace", "no Azure ML workspace"),
        ({}, {"subscription_id": None}, "j-1", "settings.azure.subscription_id", "no subscription"),
        ({}, {}, "-bad name", "name", "refuses the job name"),
    ],
)
def test_bad_input(spec_fields: dict[str, Any], settings: dict[str, Any], job_name: str, field: str,
                   text: str) -> None:
    spec = JobSpec(name="j", run="true", provider="azure", **spec_fields)
    with pytest.raises(InvalidSpec) as info:
        to_command_job(spec, _settings(**settings), job_name=job_name, instance_type="Standard_D4s_v3",
                       code_id=CODE, timeout_s=60)
    assert field in str(info.value) and text in str(info.value)


def test_iso_duration_and_names() -> None:
    assert [iso_duration(s) for s in (0, 59, 3600, 5400, 90061)] == ["PT0S", "PT59S", "PT1H", "PT1H30M",
                                                                       "PT25H1M1S"]
    assert job_name_for("my job/v2", "abc") == "my-job-v2-abc"
