"""``cloudbridge check`` without an argument, plugin-name warnings, the unrelated PyPI ``cloudbridge``."""

from __future__ import annotations

import json
from pathlib import Path

from fixtures_cli import run_cli


def test_check_without_argument_checks_configured_providers_only(cb_home: Path) -> None:
    result = run_cli("check", "--json")
    assert result.returncode == 0, result.stderr  # aws is installed but not configured: not a failure
    reports = {r["provider"]: r for r in json.loads(result.stdout)}
    assert reports["local"]["configured"] and reports["local"]["items"]
    assert reports["aws"] == {**reports["aws"], "configured": False, "ok": True, "items": []}
    assert "not configured" in reports["aws"]["info"]
    table = run_cli("check")
    assert any(line.split()[:3] == ["aws", "configured", "info"] for line in table.stdout.splitlines())

    # configured through config.toml: now it is checked (and its own checks decide the status)
    (cb_home / "config.toml").write_text('[aws]\nregion = "eu-west-1"\nendpoint_url = "http://127.0.0.1:9"\n')
    reports = {r["provider"]: r for r in json.loads(run_cli("check", "--json", timeout=300).stdout)}
    assert reports["aws"]["configured"] and reports["aws"]["items"]


def test_unknown_name_in_disable_plugins_warns() -> None:
    result = run_cli("check", "local", env={"CLOUDBRIDGE_DISABLE_PLUGINS": "notfy"})
    assert result.returncode == 0
    assert "warning: CLOUDBRIDGE_DISABLE_PLUGINS names 'notfy', which is no installed plugin" in result.stderr
    plugins = run_cli("plugins", env={"CLOUDBRIDGE_DISABLE_PLUGINS": "notify"})
    assert "warning" not in plugins.stderr  # a real name: nothing to say


def test_check_warns_about_the_unrelated_pypi_cloudbridge(tmp_path: Path) -> None:
    info = tmp_path / "cloudbridge-3.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cloudbridge\nVersion: 3.0.0\n")
    result = run_cli("check", "local", paths=[tmp_path])
    assert "warning: the unrelated PyPI package 'cloudbridge' 3.0.0 is installed" in result.stderr
    assert "unrelated" not in run_cli("check", "local").stderr
