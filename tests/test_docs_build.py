"""The documentation builds with ``mkdocs build --strict`` and the generated pages are current."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed (pip install -e .[test])"
)
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    cli_page = (site / "cli" / "index.html").read_text(encoding="utf-8")
    # the CLI reference is generated from the live command tree
    for command in ("cloudbridge run", "cloudbridge providers", "cloudbridge status", "--dry-run"):
        assert command in cli_page
    assert "<!-- cli-reference -->" not in cli_page
    spec_page = (site / "job-spec" / "index.html").read_text(encoding="utf-8")
    assert "max_runtime" in spec_page and "accelerators" in spec_page


def test_job_spec_page_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_spec_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_job_spec_page_documents_every_field() -> None:
    from cloudbridge.specs import EndpointSpec, JobSpec, Resources

    page = (ROOT / "docs" / "job-spec.md").read_text(encoding="utf-8")
    for model in (JobSpec, Resources, EndpointSpec):
        assert f"## {model.__name__}" in page
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            assert field.description, f"{model.__name__}.{name} has no description"
            assert f"| `{name}` |" in page, f"{model.__name__}.{name} missing from docs/job-spec.md"
