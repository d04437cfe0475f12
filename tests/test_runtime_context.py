"""RuntimeContext.detect against environments transcribed from each platform's documentation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cloudbridge.errors import UserError
from cloudbridge.runtime import RuntimeContext

# SageMaker Training Toolkit, ENVIRONMENT_VARIABLES.md
# (https://github.com/aws/sagemaker-training-toolkit/blob/master/ENVIRONMENT_VARIABLES.md): the values are
# the documented examples for a two-host job, seen from the second host.
SAGEMAKER_ENV = {
    "SM_MODEL_DIR": "/opt/ml/model",
    "SM_CHANNELS": '["testing","training"]',
    "SM_CHANNEL_TRAINING": "/opt/ml/input/data/training",
    "SM_CHANNEL_TESTING": "/opt/ml/input/data/testing",
    "SM_HPS": '{"batch-size": "256", "learning-rate": "0.0001","communicator": "pure_nccl"}',
    "SM_CURRENT_HOST": "algo-2",
    "SM_HOSTS": '["algo-1","algo-2"]',
    "SM_NUM_GPUS": "1",
    "SM_NUM_CPUS": "32",
    "SM_LOG_LEVEL": "20",
    "SM_NETWORK_INTERFACE_NAME": "ethwe",
    "SM_INPUT_DIR": "/opt/ml/input",
    "SM_INPUT_CONFIG_DIR": "/opt/ml/input/config",
    "SM_OUTPUT_DIR": "/opt/ml/output",
    "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data",
    "SM_RESOURCE_CONFIG": '{"current_host":"algo-2","hosts":["algo-1","algo-2"]}',
    "TRAINING_JOB_NAME": "sst2-minilm-2024-01-01-00-00-00-000",
}

# Vertex AI, "Distributed training" > "CLUSTER_SPEC" and "Code requirements" > "Environment variables"
# (https://cloud.google.com/vertex-ai/docs/training/distributed-training,
#  https://cloud.google.com/vertex-ai/docs/training/code-requirements#environment-variables):
# the first replica of worker pool 1 in a job with one primary and two workers.
VERTEX_ENV = {
    "CLUSTER_SPEC": json.dumps({
        "cluster": {
            "workerpool0": ["cmle-training-workerpool0-ab123cd4e5-0:2222"],
            "workerpool1": ["cmle-training-workerpool1-ab123cd4e5-0:2222",
                            "cmle-training-workerpool1-ab123cd4e5-1:2222"],
        },
        "environment": "cloud",
        "task": {"type": "workerpool1", "index": 0},
        "job": '{"worker_pool_specs": []}',
    }),
    "AIP_MODEL_DIR": "gs://my-bucket/sst2/model/",
    "AIP_CHECKPOINT_DIR": "gs://my-bucket/sst2/checkpoints/",
    "AIP_TENSORBOARD_LOG_DIR": "gs://my-bucket/sst2/logs/",
    "CLOUD_ML_JOB_ID": "1234567890123456789",
}

# Vertex AI, "Distributed training" > "TF_CONFIG"
# (https://cloud.google.com/vertex-ai/docs/training/distributed-training#tf-config): Vertex AI sets TF_CONFIG on
# every replica of a distributed job, pools renamed chief/worker/ps. The page's example output for one of the
# workers of a job with a primary replica, two workers and a parameter server, during the first hyperparameter
# tuning trial ("job" abbreviated, the [ID_STRING_n] placeholders filled in). No other contract variable is set.
VERTEX_TF_CONFIG_ENV = {
    "TF_CONFIG": json.dumps({
        "cluster": {
            "chief": ["training-workerpool0-ab123cd4e5-0:2222"],
            "ps": ["training-workerpool2-ab123cd4e5-0:2222"],
            "worker": ["training-workerpool1-ab123cd4e5-0:2222", "training-workerpool1-ab123cd4e5-1:2222"],
        },
        "environment": "cloud",
        "job": {"worker_pool_specs": [{"machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": 1}]},
        "task": {"cloud": "cb7f1e4a2d9c6b30", "index": 0, "trial": "1", "type": "worker"},
    }),
}

# Azure ML, "Distributed GPU training guide (SDK v2)" > PyTorch
# (https://learn.microsoft.com/azure/machine-learning/how-to-train-distributed-gpu#pytorch): with
# process_count_per_instance=4 on 2 instances, Azure ML starts every process itself and sets these in each;
# the node variables follow the Azure Batch AI names the same page's MPI section lists.
AZUREML_ENV = {
    "MASTER_ADDR": "10.0.0.4",
    "MASTER_PORT": "6105",
    "WORLD_SIZE": "8",
    "NODE_RANK": "1",
    "RANK": "5",
    "LOCAL_RANK": "1",
    "AZUREML_NODE_COUNT": "2",
    "AZ_BATCHAI_TASK_INDEX": "1",
    "AZ_BATCHAI_GPU_COUNT": "4",
    "AZ_BATCH_MASTER_NODE": "10.0.0.4:6105",
    "AZUREML_RUN_ID": "sst2-minilm_1700000000_abcdef01",
    "AZURE_ML_INPUT_train": "/mnt/azureml/cr/j/abc/cap/data-capability/wd/INPUT_train",
    "AZURE_ML_OUTPUT_model": "/mnt/azureml/cr/j/abc/cap/data-capability/wd/model",
}

# torchrun, "torchrun (Elastic Launch)" > Environment Variables
# (https://pytorch.org/docs/stable/elastic/run.html#environment-variables): worker 3 of 2 nodes x 2 processes.
TORCHRUN_ENV = {
    "LOCAL_RANK": "1",
    "RANK": "3",
    "GROUP_RANK": "1",
    "ROLE_RANK": "3",
    "LOCAL_WORLD_SIZE": "2",
    "WORLD_SIZE": "4",
    "ROLE_WORLD_SIZE": "4",
    "MASTER_ADDR": "node0.example",
    "MASTER_PORT": "29400",
    "TORCHELASTIC_RUN_ID": "job-42",
}

# cloudbridge's local backend (src/cloudbridge/backends/local): what its supervisor exports before
# running `cloudbridge-launch -- <run>`.
LOCAL_ENV = {
    "CB_JOB_ID": "local-1a2b3c4d",
    "CB_NUM_PROCESSES": "2",
    "CB_GPU_IDS": "",
    "MASTER_ADDR": "127.0.0.1",
    "MASTER_PORT": "41234",
    "CB_DISTRIBUTION": "torchrun",
    "CB_INPUT_DATA": "/home/me/.cloudbridge/jobstore/local-1a2b3c4d/inputs/data",
    "CB_OUTPUT_DIR": "/home/me/.cloudbridge/jobstore/local-1a2b3c4d/outputs",
    "CB_MODEL_DIR": "/home/me/.cloudbridge/jobstore/local-1a2b3c4d/outputs/model",
    "CB_CHECKPOINT_DIR": "/home/me/.cloudbridge/jobstore/local-1a2b3c4d/checkpoints",
}


def test_sagemaker_two_hosts_from_toolkit_docs() -> None:
    ctx = RuntimeContext.detect(SAGEMAKER_ENV, gpu_count=0)
    assert ctx.platform == "sagemaker"
    assert (ctx.node_rank, ctx.num_nodes, ctx.processes_per_node) == (1, 2, 1)
    assert ctx.master_addr == "algo-1" and ctx.hosts == ("algo-1", "algo-2")
    assert ctx.input_dirs == {"training": "/opt/ml/input/data/training", "testing": "/opt/ml/input/data/testing"}
    assert ctx.model_dir == "/opt/ml/model"
    assert ctx.output_dir == "/opt/ml/output/data"
    assert ctx.checkpoint_dir == "/opt/ml/checkpoints"
    assert ctx.job_id == "sst2-minilm-2024-01-01-00-00-00-000"
    assert ctx.total_processes == 2 and not ctx.is_launched and not ctx.is_main_process


def test_sagemaker_gpus_set_processes_per_node() -> None:
    ctx = RuntimeContext.detect({**SAGEMAKER_ENV, "SM_NUM_GPUS": "8"}, gpu_count=0)
    assert ctx.processes_per_node == 8 and ctx.gpus_per_node == 8 and ctx.total_processes == 16


def test_sagemaker_without_toolkit_reads_resourceconfig_under_emulate_root(tmp_path: Path) -> None:
    """A bring-your-own container has no SM_* variables: /opt/ml/input/config/resourceconfig.json says it all."""
    config = tmp_path / "opt/ml/input/config"
    config.mkdir(parents=True)
    # "How Amazon SageMaker Provides Training Information" > Distributed Training Configuration
    # (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html)
    (config / "resourceconfig.json").write_text(json.dumps({
        "current_host": "algo-1", "current_instance_type": "ml.p3.16xlarge",
        "hosts": ["algo-1", "algo-2", "algo-3"], "network_interface_name": "eth1",
    }))
    (tmp_path / "opt/ml/input/data/train").mkdir(parents=True)
    ctx = RuntimeContext.detect({"CB_EMULATE_ROOT": str(tmp_path)}, gpu_count=0)
    assert ctx.platform == "sagemaker"
    assert (ctx.node_rank, ctx.num_nodes) == (0, 3) and ctx.is_main_process
    assert ctx.input_dirs == {"train": str(tmp_path / "opt/ml/input/data/train")}
    assert ctx.model_dir == str(tmp_path / "opt/ml/model")
    assert ctx.checkpoint_dir == str(tmp_path / "opt/ml/checkpoints")


def test_sagemaker_bad_hosts_names_the_variable() -> None:
    with pytest.raises(UserError, match="SM_HOSTS"):
        RuntimeContext.detect({**SAGEMAKER_ENV, "SM_HOSTS": "algo-1,algo-2"}, gpu_count=0)
    with pytest.raises(UserError, match="SM_CURRENT_HOST"):
        RuntimeContext.detect({**SAGEMAKER_ENV, "SM_CURRENT_HOST": "algo-9"}, gpu_count=0)


def test_vertex_cluster_spec_worker_pool_one() -> None:
    ctx = RuntimeContext.detect(VERTEX_ENV, gpu_count=4)
    assert ctx.platform == "vertex"
    assert (ctx.node_rank, ctx.num_nodes, ctx.processes_per_node) == (1, 3, 4)
    assert ctx.master_addr == "cmle-training-workerpool0-ab123cd4e5-0" and ctx.master_port == 2222
    assert ctx.model_dir == "/gcs/my-bucket/sst2/model"
    assert ctx.checkpoint_dir == "/gcs/my-bucket/sst2/checkpoints"
    assert ctx.tensorboard_dir == "/gcs/my-bucket/sst2/logs"
    assert ctx.job_id == "1234567890123456789"


def test_vertex_primary_replica_and_emulated_fuse_root(tmp_path: Path) -> None:
    spec = json.loads(VERTEX_ENV["CLUSTER_SPEC"])
    spec["task"] = {"type": "workerpool0", "index": 0}
    env = {**VERTEX_ENV, "CLUSTER_SPEC": json.dumps(spec), "CB_EMULATE_ROOT": str(tmp_path),
           "AIP_TRAINING_DATA_URI": "gs://my-bucket/data/train.csv"}
    ctx = RuntimeContext.detect(env, gpu_count=0)
    assert ctx.node_rank == 0 and ctx.is_main_process and ctx.processes_per_node == 1
    assert ctx.model_dir == str(tmp_path / "gcs/my-bucket/sst2/model")
    assert ctx.input_dirs["train"] == str(tmp_path / "gcs/my-bucket/data/train.csv")


def test_vertex_evaluator_pool_does_not_train() -> None:
    spec = json.loads(VERTEX_ENV["CLUSTER_SPEC"])
    spec["cluster"]["workerpool3"] = ["cmle-training-workerpool3-ab123cd4e5-0:2222"]
    spec["task"] = {"type": "workerpool3", "index": 0}
    with pytest.raises(UserError, match="does not train"):
        RuntimeContext.detect({**VERTEX_ENV, "CLUSTER_SPEC": json.dumps(spec)}, gpu_count=0)


def test_vertex_malformed_cluster_spec() -> None:
    with pytest.raises(UserError, match="CLUSTER_SPEC is not valid JSON"):
        RuntimeContext.detect({**VERTEX_ENV, "CLUSTER_SPEC": "{cluster"}, gpu_count=0)


def test_vertex_tf_config_alone_from_the_docs() -> None:
    ctx = RuntimeContext.detect(VERTEX_TF_CONFIG_ENV, gpu_count=0)
    assert ctx.platform == "vertex"
    # chief (pool 0) first, then the workers; the parameter server does not train
    assert (ctx.node_rank, ctx.num_nodes, ctx.processes_per_node) == (1, 3, 1)
    assert ctx.hosts == ("training-workerpool0-ab123cd4e5-0", "training-workerpool1-ab123cd4e5-0",
                         "training-workerpool1-ab123cd4e5-1")
    assert (ctx.master_addr, ctx.master_port) == ("training-workerpool0-ab123cd4e5-0", 2222)
    assert not ctx.is_main_process


def test_vertex_tf_config_chief_and_parameter_server() -> None:
    spec = json.loads(VERTEX_TF_CONFIG_ENV["TF_CONFIG"])
    spec["task"] = {"type": "chief", "index": 0}
    ctx = RuntimeContext.detect({"TF_CONFIG": json.dumps(spec)}, gpu_count=0)
    assert (ctx.platform, ctx.node_rank, ctx.is_main_process) == ("vertex", 0, True)
    spec["task"] = {"type": "ps", "index": 0}
    with pytest.raises(UserError, match="TF_CONFIG: task type 'ps' does not train"):
        RuntimeContext.detect({"TF_CONFIG": json.dumps(spec)}, gpu_count=0)


def test_tf_config_of_another_cluster_manager_is_not_vertex() -> None:
    """Without Vertex's ``"environment": "cloud"`` a TF_CONFIG (e.g. a Kubeflow TFJob's) proves nothing."""
    spec = json.loads(VERTEX_TF_CONFIG_ENV["TF_CONFIG"])
    del spec["environment"]
    assert RuntimeContext.detect({"TF_CONFIG": json.dumps(spec)}, gpu_count=0).platform == "none"
    assert RuntimeContext.detect({"TF_CONFIG": "{not json"}, gpu_count=0).platform == "none"


def test_azureml_pytorch_per_process_launch() -> None:
    ctx = RuntimeContext.detect(AZUREML_ENV, gpu_count=0)
    assert ctx.platform == "azureml"
    assert (ctx.node_rank, ctx.num_nodes, ctx.processes_per_node, ctx.gpus_per_node) == (1, 2, 4, 4)
    assert (ctx.rank, ctx.local_rank, ctx.world_size) == (5, 1, 8) and ctx.is_launched
    assert (ctx.master_addr, ctx.master_port) == ("10.0.0.4", 6105)
    assert ctx.input_dirs == {"train": AZUREML_ENV["AZURE_ML_INPUT_train"]}
    assert ctx.model_dir == AZUREML_ENV["AZURE_ML_OUTPUT_model"]
    assert ctx.output_dir == os.path.abspath("outputs")


def test_azureml_mpi_variables() -> None:
    env = {"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "0",
           "OMPI_COMM_WORLD_LOCAL_SIZE": "2", "AZ_BATCH_MASTER_NODE": "10.0.0.5:6000",
           "AZUREML_RUN_ID": "run-1"}
    ctx = RuntimeContext.detect(env, gpu_count=2)
    assert (ctx.rank, ctx.world_size, ctx.node_rank, ctx.num_nodes) == (2, 4, 1, 2)
    assert (ctx.master_addr, ctx.master_port) == ("10.0.0.5", 6000)


def test_azure_sdk_variable_on_a_laptop_is_not_azureml() -> None:
    ctx = RuntimeContext.detect({"AZUREML_CURRENT_CLOUD": "AzureCloud"}, gpu_count=0)
    assert ctx.platform == "none"


def test_torchrun_worker() -> None:
    ctx = RuntimeContext.detect(TORCHRUN_ENV, gpu_count=0)
    assert ctx.platform == "torchrun"
    assert (ctx.node_rank, ctx.num_nodes, ctx.processes_per_node) == (1, 2, 2)
    assert (ctx.rank, ctx.local_rank, ctx.world_size) == (3, 1, 4)
    assert (ctx.master_addr, ctx.master_port) == ("node0.example", 29400)


def test_local_backend() -> None:
    ctx = RuntimeContext.detect(LOCAL_ENV)
    assert ctx.platform == "local" and ctx.job_id == "local-1a2b3c4d"
    assert (ctx.num_nodes, ctx.processes_per_node, ctx.gpus_per_node) == (1, 2, 0)
    assert ctx.distribution == "torchrun" and ctx.master_port == 41234
    assert ctx.input_dirs == {"data": LOCAL_ENV["CB_INPUT_DATA"]}
    assert ctx.input_dir("train", "data") == LOCAL_ENV["CB_INPUT_DATA"]
    assert ctx.checkpoint_dir == LOCAL_ENV["CB_CHECKPOINT_DIR"]


def test_cb_variables_override_every_platform() -> None:
    env = {**SAGEMAKER_ENV, "CB_NUM_PROCESSES": "3", "CB_CHECKPOINT_DIR": "/ckpt", "CB_INPUT_EXTRA": "/x"}
    ctx = RuntimeContext.detect(env, gpu_count=0)
    assert ctx.platform == "sagemaker" and ctx.processes_per_node == 3 and ctx.checkpoint_dir == "/ckpt"
    assert ctx.input_dirs["extra"] == "/x" and ctx.input_dirs["training"] == "/opt/ml/input/data/training"
    with pytest.raises(UserError, match="CB_DISTRIBUTION"):
        RuntimeContext.detect({**LOCAL_ENV, "CB_DISTRIBUTION": "mpi"})
    with pytest.raises(UserError, match="CB_NUM_PROCESSES='two' is not an integer"):
        RuntimeContext.detect({**LOCAL_ENV, "CB_NUM_PROCESSES": "two"})


def test_launched_worker_reads_back_the_launcher_exports() -> None:
    """What cloudbridge-launch exports, plus torchrun's per-process variables, is the same context."""
    node = RuntimeContext.detect(SAGEMAKER_ENV, gpu_count=0)
    child_env = {**SAGEMAKER_ENV, **node.to_env(), "RANK": "1", "LOCAL_RANK": "0", "WORLD_SIZE": "2"}
    child = RuntimeContext.detect(child_env, gpu_count=0)
    assert child.platform == "sagemaker" and child.is_launched and child.rank == 1
    assert (child.model_dir, child.checkpoint_dir, child.input_dirs) == (
        node.model_dir, node.checkpoint_dir, node.input_dirs)


def test_nothing_set_is_a_single_process_run_in_the_working_directory() -> None:
    ctx = RuntimeContext.detect({}, gpu_count=0)
    assert ctx.platform == "none" and ctx.total_processes == 1
    assert ctx.output_dir == os.path.abspath("outputs")


def test_runtime_imports_no_torch_cli_or_plugins() -> None:
    code = (
        "import sys, cloudbridge.runtime, cloudbridge.runtime.launch\n"
        "cloudbridge.runtime.RuntimeContext.detect({}, gpu_count=0)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch','transformers','accelerate','boto3')"
        " or m.startswith(('cloudbridge.cli', 'cloudbridge_'))]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
