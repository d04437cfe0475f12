"""``cloudbridge migrate --to azure``: data goes to Blob storage, paths become az:// URIs, the estimate
names an Azure ML VM size, and the planner lists Azure rows as installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloudbridge.migrate import migrate
from cloudbridge.specs import load_job_spec
from cloudbridge.testing.azurite import ACCOUNT

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "finetune-sentiment"


@pytest.fixture
def sentiment(tmp_path: Path) -> Path:
    if not (EXAMPLE / "job.yaml").exists():
        pytest.skip("examples/finetune-sentiment is not in this checkout")
    work = tmp_path / "sentiment"
    shutil.copytree(EXAMPLE, work)
    (work / ".cloudbridgeignore").write_text("data/\n")
    return work


def test_migrate_to_azure_uploads_and_rewrites(fake_env: Any, container: str, sentiment: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {**fake_env.settings(), "container": container}.items():
        monkeypatch.setenv(f"CLOUDBRIDGE_AZURE_{key.upper()}", str(value))
    dry = migrate(sentiment / "job.yaml", "azure", dry_run=True)
    assert dry.instance_type and dry.instance_type.startswith("Standard_"), dry.estimate
    plan = migrate(sentiment / "job.yaml", "azure")
    data_bytes = sum(p.stat().st_size for p in (sentiment / "data").iterdir())
    assert plan.upload_bytes == data_bytes
    spec = load_job_spec(sentiment / "job.azure.yaml")
    assert spec.provider == "azure"
    train = spec.inputs["train"]
    assert train.startswith(f"az://{ACCOUNT}/{container}/cloudbridge/finetune-sentiment")
    from cloudbridge.transfers import storage_for

    listed = {i.key for i in storage_for(train).list(train)}
    assert listed == {"train.csv", "test.csv"}
    assert spec.outputs["model"].startswith(f"az://{ACCOUNT}/{container}/")
    assert migrate(sentiment / "job.yaml", "azure").upload_bytes == 0, "an unchanged re-run uploads nothing"


def test_planner_rows_say_installed(tmp_path: Path) -> None:
    import json

    job = tmp_path / "job.yaml"
    job.write_text("name: p\nrun: echo\nresources: {accelerators: T4}\n")
    result = subprocess.run([sys.executable, "-m", "cloudbridge.cli", "plan", str(job), "--providers", "azure",
                             "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    rows = json.loads(text)
    rows = rows.get("placements", rows.get("rows", rows)) if isinstance(rows, dict) else rows
    azure = [r for r in rows if r.get("provider") == "azure"]
    assert azure and all(r["installed"] for r in azure), text[:500]
    assert azure[0]["instance_type"] == "Standard_NC4as_T4_v3"
