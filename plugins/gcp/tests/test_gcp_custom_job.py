"""The pure CustomJob builder: golden requests checked against the ``aiplatform_v1`` message, bad input.

Golden files live in ``golden/``; regenerate them after an intended change with
``CLOUDBRIDGE_UPDATE_GOLDEN=1 pytest plugins/gcp/tests/test_gcp_custom_job.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cloudbridge_gcp.custom_job import to_custom_job
from cloudbridge_gcp.labels import decode_labels
from cloudbridge_gcp.machines import machine_spec, place
from cloudbridge_gcp.settings import GcpSettings

from cloudbridge.errors import InvalidSpec
from cloudbridge.managed.compute import job_tags, plan_limits
from cloudbridge.planner.catalog import load_catalog
from cloudbridge.specs import JobSpec

GOLDEN = Path(__file__).parent / "golden"
CODE = "gs://cb-staging/cloudbridge/code/workdir-0123abcd.tar.gz"
NAME = "sst2-minilm-20250101-120000-ab12"


@pytest.fixture(scope="module")
def catalog() -> Any:
    """The builtin planner catalog only (no plugin rows, no CLOUDBRIDGE_CATALOG)."""
    return load_catalog(include_plugins=False, include_env=False)


def settings(**values: Any) -> GcpSettings:
    return GcpSettings(**{"project": "cb-project", "region": "us-central1", "staging_bucket": "cb-staging", **values})


def spec(**values: Any) -> JobSpec:
    base = {
        "name": "sst2-minilm",
        "provider": "gcp",
        "run": "cloudbridge-finetune --task text-classification --model minilm --train data/train.csv",
        "distribution": "accelerate",
        "inputs": {"train": "gs://cb-data/sst2/train"},
        "outputs": {"model": "gs://cb-staging/runs/sst2"},
        "env": {"HF_HUB_OFFLINE": "1"},
    }
    return JobSpec.model_validate({**base, **values})


CASES = {
    "single_node": (spec(resources={"accelerators": "T4:1", "max_runtime": "2h"}), {}),
    "multi_node": (spec(resources={"accelerators": "A100:8", "nodes": 2, "max_runtime": "12h"}), {}),
    "spot_checkpoints": (spec(resources={"accelerators": "L4:1", "spot": True, "max_runtime": "6h",
                                         "max_restarts": 2}, checkpoints="gs://cb-staging/ckpt/sst2"), {}),
    "cpu_defaults": (spec(resources={"cpus": "8+"}, outputs={}, inputs={}),
                     {"service_account": "trainer@cb-project.iam.gserviceaccount.com",
                      "network": "projects/123/global/networks/default", "reservation": "my-a100s",
                      "labels": {"team": "nlp"}}),
}


def build(job: JobSpec, catalog: Any, **values: Any) -> dict[str, Any]:
    s = settings(**values)

    class _Adapter:  # what plan_limits reads of an adapter
        provider, service, spot_name, longest_runtime = "gcp", "Vertex AI", "spot", 7 * 86400

    placement, limits = plan_limits(_Adapter(), job, place(job, s.region, reservation=s.reservation,
                                                           catalog=catalog), catalog)
    return to_custom_job(job, placement, limits, CODE, settings=s, name=NAME,
                         tags=job_tags(f"gcp-{NAME}", job, limits))


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_custom_jobs(case: str, catalog: Any) -> None:
    """Each request equals its golden file and parses as an ``aiplatform_v1.CustomJob`` (strict field names)."""
    from google.cloud import aiplatform_v1
    from google.protobuf import json_format

    job, values = CASES[case]
    request = build(job, catalog, **values)
    message = aiplatform_v1.CustomJob.pb()()
    json_format.ParseDict(request, message)  # unknown field or wrong type -> ParseError
    assert json_format.MessageToDict(message) == request, "every value must survive the proto round trip"
    path = GOLDEN / f"custom_job_{case}.json"
    if os.environ.get("CLOUDBRIDGE_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(request, indent=2, sort_keys=True) + "\n")
    assert request == json.loads(path.read_text())


def test_worker_pools_and_a100(catalog: Any) -> None:
    """A100:8 on 2 nodes: chief pool of 1 and worker pool of 1, each a2-highgpu-8g with 8 NVIDIA_TESLA_A100."""
    request = build(CASES["multi_node"][0], catalog)
    pools = request["jobSpec"]["workerPoolSpecs"]
    assert [p["replicaCount"] for p in pools] == ["1", "1"]
    assert pools[0]["machineSpec"] == {"machineType": "a2-highgpu-8g", "acceleratorType": "NVIDIA_TESLA_A100",
                                       "acceleratorCount": 8}


def test_spot_scheduling_and_labels(catalog: Any) -> None:
    """spot -> strategy SPOT with a wait; checkpoints -> restartJobOnWorkerRestart; tags round-trip as labels."""
    request = build(CASES["spot_checkpoints"][0], catalog)
    scheduling = request["jobSpec"]["scheduling"]
    assert scheduling["strategy"] == "SPOT" and scheduling["restartJobOnWorkerRestart"] is True
    assert scheduling["timeout"] == "21600s"
    tags = decode_labels(request["labels"], ("cloudbridge:job-id", "cloudbridge:limits", "cloudbridge:name"))
    assert tags["cloudbridge:job-id"] == f"gcp-{NAME}" and tags["cloudbridge:name"] == "sst2-minilm"
    assert "max_restarts=2" in tags["cloudbridge:limits"]
    assert all(len(v) <= 63 and len(k) <= 63 for k, v in request["labels"].items())


@pytest.mark.parametrize(("instance", "expected"), [
    ("n1-standard-4+NVIDIA_TESLA_T4:1", {"machineType": "n1-standard-4", "acceleratorType": "NVIDIA_TESLA_T4",
                                         "acceleratorCount": 1}),
    ("g2-standard-48", {"machineType": "g2-standard-48", "acceleratorType": "NVIDIA_L4", "acceleratorCount": 4}),
    ("a3-highgpu-8g", {"machineType": "a3-highgpu-8g", "acceleratorType": "NVIDIA_H100_80GB",
                       "acceleratorCount": 8}),
    ("n1-standard-8", {"machineType": "n1-standard-8"}),
])
def test_machine_spec(instance: str, expected: dict[str, Any]) -> None:
    """Catalog instance types become machineSpecs whose accelerator is an AcceleratorType enum name."""
    from google.cloud import aiplatform_v1

    assert machine_spec(instance) == expected
    if "acceleratorType" in expected:
        assert expected["acceleratorType"] in aiplatform_v1.AcceleratorType.__members__


def test_bad_input_is_one_line(catalog: Any, tmp_path: Path) -> None:
    """Spot with a reservation, an accelerator outside the region, non-gs:// inputs, a refused name."""
    source = tmp_path / "job.yaml"
    source.write_text("name: j\nprovider: gcp\nrun: echo\nresources:\n  accelerators: A100:8\n  spot: true\n")
    from cloudbridge.specs import load_job_spec

    job = load_job_spec(source)
    with pytest.raises(InvalidSpec, match=r"job.yaml:6: resources.spot: spot capacity cannot consume a reservation"):
        place(job, "us-central1", reservation="my-a100s", catalog=catalog)
    with pytest.raises(InvalidSpec, match=r"job.yaml:5: resources.accelerators: A100 is not offered by Vertex AI "
                       r"in us-west1.*us-central1"):
        place(job, "us-west1", catalog=catalog)
    with pytest.raises(InvalidSpec, match="inputs.train: '/data' is not a gs:// URI"):
        build(spec(inputs={"train": "/data"}), catalog)
    with pytest.raises(InvalidSpec, match="Vertex AI refuses the job name"):
        to_custom_job(spec(), place(spec(), "us-central1", catalog=catalog), _limits(), CODE, settings=settings(),
                      name="x" * 129)
    with pytest.raises(InvalidSpec, match="env.AIP_MODEL_DIR"):
        build(spec(env={"AIP_MODEL_DIR": "/x"}), catalog)


def _limits() -> Any:
    from cloudbridge.managed.limits import Limits

    return Limits()
