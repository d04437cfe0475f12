"""The SageMaker entry point on this machine: the launcher package, run as the Training Toolkit runs
``sagemaker_program``, under the SageMaker layout that ``cloudbridge emulate --as sagemaker`` builds.

moto cannot run containers, so this is where the AWS data path is exercised: the code package is
taken from the ``cbcode`` channel, unpacked, and ``cloudbridge-launch`` runs the job's command, which
writes into ``SM_MODEL_DIR`` (what SageMaker turns into ``model.tar.gz``).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from cloudbridge_aws.training_request import CODE_CHANNEL, ENTRY_PROGRAM, launcher_package

from cloudbridge.emulate import plan_emulation
from cloudbridge.packaging import build_archive, scan_workdir
from cloudbridge.specs import JobSpec

TRAIN = """\
import json, os, pathlib, sys
model = pathlib.Path(os.environ["CB_MODEL_DIR"])
model.mkdir(parents=True, exist_ok=True)
(model / "result.json").write_text(json.dumps({
    "cwd": os.getcwd(), "nodes": os.environ["CB_NUM_NODES"], "args": sys.argv[1:],
    "helper": pathlib.Path("lib/helper.txt").read_text(),
}))
print("trained")
"""


def clean_env() -> dict[str, str]:
    """This machine's environment without any platform or cloudbridge job variables."""
    drop = ("SM_", "CB_", "AIP_", "AZUREML_", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_", "TRAINING_JOB_NAME")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def test_entry_point_unpacks_code_and_launches(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "lib").mkdir(parents=True)
    (project / "train.py").write_text(TRAIN)
    (project / "lib" / "helper.txt").write_text("shipped")
    spec = JobSpec(name="entry-test", provider="aws", workdir=str(project), run="python train.py --epochs 1")

    root = tmp_path / "sm"
    node = plan_emulation(spec, "sagemaker", str(root), processes=1).nodes[0]
    ml = root / "algo-1" / "opt" / "ml"
    # What SageMaker downloads: the code package into the cbcode channel ...
    channel = ml / "input" / "data" / CODE_CHANNEL
    channel.mkdir(parents=True)
    manifest = scan_workdir(project)
    build_archive(manifest, str(channel / manifest.archive_name))
    # ... and what the Training Toolkit unpacks from sagemaker_submit_directory into /opt/ml/code.
    code = tmp_path / "toolkit-code"
    with tarfile.open(fileobj=io.BytesIO(launcher_package()[0])) as tar:
        tar.extractall(code, filter="data")
    workdir = ml / "code" / "unpacked"  # a fresh directory: only the package can fill it

    env = {**clean_env(), **node.env, f"SM_CHANNEL_{CODE_CHANNEL.upper()}": str(channel), "CB_WORKDIR": str(workdir)}
    result = subprocess.run(
        [sys.executable, ENTRY_PROGRAM], cwd=code, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trained" in result.stdout
    import json

    written = json.loads((ml / "model" / "result.json").read_text())
    assert written == {"cwd": str(workdir), "nodes": "1", "args": ["--epochs", "1"], "helper": "shipped"}


def test_entry_point_without_run_command(tmp_path: Path) -> None:
    code = tmp_path / "code"
    with tarfile.open(fileobj=io.BytesIO(launcher_package()[0])) as tar:
        tar.extractall(code, filter="data")
    env = clean_env()
    result = subprocess.run([sys.executable, ENTRY_PROGRAM], cwd=code, env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "cloudbridge: CB_RUN (the job's run command) is not set"
