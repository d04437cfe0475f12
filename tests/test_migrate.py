"""``cb.migrate`` / ``cloudbridge migrate`` on local -> local (the bucket is a directory)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli

from cloudbridge.errors import InvalidSpec, UserError
from cloudbridge.migrate import migrate, project_key
from cloudbridge.specs import load_job_spec

JOB = """\
name: demo
workdir: .
run: python train.py
inputs: {data: ./data}
outputs: {model: ./out}
checkpoints: ./ckpt
env: {GREETING: hi}
"""

TRAIN = """\
import os, pathlib
data = pathlib.Path(os.environ["CLOUDBRIDGE_INPUT_DATA"]) if "CLOUDBRIDGE_INPUT_DATA" in os.environ else None
print("inputs", sorted(p.name for p in data.rglob("*.csv")) if data else "none")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "data" / "sub").mkdir(parents=True)
    (root / "ckpt").mkdir()
    (root / "job.yaml").write_text(JOB)
    (root / "train.py").write_text(TRAIN)
    (root / ".cloudbridgeignore").write_text("data/\nckpt/\n")
    (root / "data" / "a.csv").write_text("a\n" * 1000)
    (root / "data" / "sub" / "b.csv").write_text("b\n")
    (root / "ckpt" / "step-1.pt").write_bytes(os.urandom(4096))
    return root


def test_dry_run_plans_and_writes_nothing(project: Path, tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    plan = migrate(project / "job.yaml", "local", bucket=str(bucket), dry_run=True)
    items = {i.field: i for i in plan.items}
    assert items["inputs.data"].action == "upload" and items["inputs.data"].bytes == 2002
    assert items["inputs.data"].copied == 2
    assert items["checkpoints"].bytes == 4096
    assert items["outputs.model"].action == "map"
    assert items["workdir"].files == 2  # train.py, .cloudbridgeignore (the spec file is never packaged)
    assert plan.upload_bytes == 2002 + 4096
    assert not bucket.exists() and not (project / "job.local.yaml").exists()
    assert "would upload" in plan.summarize()


def test_migrate_writes_spec_and_rerun_is_cheap(project: Path, tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    plan = migrate(project / "job.yaml", "local", bucket=str(bucket))
    prefix = bucket / "cloudbridge" / project_key(load_job_spec(project / "job.yaml"))
    assert plan.prefix == str(prefix) and prefix.name.startswith("demo-")
    assert (prefix / "inputs" / "data" / "sub" / "b.csv").read_text() == "b\n"
    assert (prefix / "checkpoints" / "step-1.pt").stat().st_size == 4096
    migrated = load_job_spec(project / "job.local.yaml")
    assert migrated.inputs == {"data": str(prefix / "inputs" / "data")}
    assert migrated.outputs == {"model": str(prefix / "outputs" / "model")}
    assert migrated.checkpoints == str(prefix / "checkpoints")
    assert migrated.env == {"GREETING": "hi"} and migrated.run == "python train.py"
    assert "# log_dir: <unset>" in (project / "job.local.yaml").read_text()
    assert plan.upload_bytes == 2002 + 4096
    again = migrate(project / "job.yaml", "local", bucket=str(bucket))
    assert again.upload_bytes == 0, "an unchanged re-run uploads nothing"
    (project / "data" / "new.csv").write_text("n\n")
    third = migrate(project / "job.yaml", "local", bucket=str(bucket))
    assert {i.field: i.copied for i in third.items if i.action == "upload"} == {"inputs.data": 1, "checkpoints": 0}


def test_path_outside_workdir_needs_include(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "x.csv").write_text("x")
    (tmp_path / "proj").mkdir()
    spec = tmp_path / "proj" / "job.yaml"
    spec.write_text("name: j\nworkdir: .\nrun: echo\ninputs: {data: ../shared, more: ../shared/x.csv}\n")
    with pytest.raises(UserError) as info:
        migrate(spec, "local", bucket=str(tmp_path / "bucket"))
    text = str(info.value)
    assert "inputs.data=" in text and "inputs.more=" in text and "--include" in text
    assert not (tmp_path / "bucket").exists() and not (tmp_path / "proj" / "job.local.yaml").exists()
    plan = migrate(spec, "local", bucket=str(tmp_path / "bucket"), include=[str(tmp_path / "shared")])
    uploaded = Path(plan.prefix) / "inputs"
    assert Path(plan.prefix).parent == tmp_path / "bucket" / "cloudbridge"
    assert (uploaded / "data" / "x.csv").read_text() == "x"
    assert (uploaded / "more" / "x.csv").read_text() == "x"
    assert plan.upload_bytes == 2


def test_one_rule_for_every_local_path(tmp_path: Path) -> None:
    """Checkpoints and outputs outside the workdir need --include exactly like inputs do."""
    (tmp_path / "private-ckpt").mkdir()
    (tmp_path / "private-ckpt" / "step-9.pt").write_bytes(b"secret weights")
    (tmp_path / "proj" / "data").mkdir(parents=True)
    (tmp_path / "proj" / "data" / "a.csv").write_text("a")
    spec = tmp_path / "proj" / "job.yaml"
    spec.write_text(
        "name: j\nworkdir: .\nrun: echo\ninputs: {data: ./data}\n"
        "outputs: {model: ../private-out}\ncheckpoints: ../private-ckpt\n"
    )
    bucket = tmp_path / "bucket"
    with pytest.raises(UserError) as info:
        migrate(spec, "local", bucket=str(bucket))
    text = str(info.value)
    assert f"checkpoints={tmp_path / 'private-ckpt'}" in text and f"outputs.model={tmp_path / 'private-out'}" in text
    assert "inputs.data" not in text and "--include" in text
    assert not bucket.exists(), "nothing is uploaded, not even the inputs inside the workdir"
    assert not (tmp_path / "proj" / "job.local.yaml").exists()
    with pytest.raises(UserError, match=r"outputs\.model=") as partial:
        migrate(spec, "local", bucket=str(bucket), include=[str(tmp_path / "private-ckpt")])
    assert "checkpoints=" not in str(partial.value)
    assert not bucket.exists()
    plan = migrate(
        spec, "local", bucket=str(bucket), include=[str(tmp_path / "private-ckpt"), str(tmp_path / "private-out")]
    )
    prefix = Path(plan.prefix)
    assert (prefix / "checkpoints" / "step-9.pt").read_bytes() == b"secret weights"
    assert {i.field: i.action for i in plan.items} == {
        "workdir": "package",
        "inputs.data": "upload",
        "outputs.model": "map",
        "checkpoints": "upload",
    }


def test_missing_input_and_bucket_errors(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text("name: j\nrun: echo\ninputs: {data: ./nope}\n")
    with pytest.raises(InvalidSpec, match="inputs.data"):
        migrate(tmp_path / "job.yaml", "local", bucket=str(tmp_path / "b"))
    (tmp_path / "job2.yaml").write_text("name: j\nrun: echo\n")
    with pytest.raises(UserError, match="--bucket"):
        migrate(tmp_path / "job2.yaml", "local")


def test_cli_migrate_submit_runs_on_local(project: Path, tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    dry = run_cli("migrate", str(project / "job.yaml"), "--to", "local", "--bucket", str(bucket), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["upload_bytes"] == 2002 + 4096
    result = run_cli(
        "migrate", str(project / "job.yaml"), "--to", "local", "--bucket", str(bucket), "--submit", timeout=180
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "submitted local-" in result.stdout
    assert "SUCCEEDED" in result.stdout
    assert (project / "job.local.yaml").exists()


def test_cli_outside_workdir_one_line(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "proj" / "job.yaml").write_text("name: j\nrun: echo\ninputs: {d: ../other}\n")
    assert_one_error_line(
        run_cli("migrate", str(tmp_path / "proj" / "job.yaml"), "--to", "local", "--bucket", str(tmp_path / "b")),
        "outside its workdir",
        "--include",
    )


def test_projects_with_one_job_name_never_share_a_prefix(project: Path, tmp_path: Path) -> None:
    import shutil

    twin = tmp_path / "twin"
    shutil.copytree(project, twin)
    (twin / "data" / "a.csv").write_text("other project\n")
    bucket = tmp_path / "bucket"
    first = migrate(project / "job.yaml", "local", bucket=str(bucket))
    second = migrate(twin / "job.yaml", "local", bucket=str(bucket))
    assert first.prefix != second.prefix and Path(first.prefix).parent == Path(second.prefix).parent
    assert (Path(first.prefix) / "inputs" / "data" / "a.csv").read_text() == "a\n" * 1000
    assert (Path(second.prefix) / "inputs" / "data" / "a.csv").read_text() == "other project\n"
    assert migrate(project / "job.yaml", "local", bucket=str(bucket)).prefix == first.prefix


def test_a_migrated_spec_is_not_migrated_again(project: Path, tmp_path: Path) -> None:
    migrate(project / "job.yaml", "local", bucket=str(tmp_path / "bucket"))
    with pytest.raises(UserError, match="job.local.yaml is already migrated"):
        migrate(project / "job.local.yaml", "local", bucket=str(tmp_path / "bucket"))
    result = run_cli("migrate", str(project / "job.local.yaml"), "--to", "local", "--bucket", str(tmp_path / "b"))
    assert_one_error_line(result, "already migrated", "cloudbridge run")
    assert not (project / "job.local.local.yaml").exists()
