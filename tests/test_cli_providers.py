"""``cloudbridge providers`` and ``cloudbridge check`` against real (test-installed) plugins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_cli import make_plugin, run_cli

PLUGIN = """
import cloudbridge

@cloudbridge.hookimpl
def cloudbridge_register_providers(register):
    register(cloudbridge.ProviderInfo(name="flaky", factory="cbtest_flaky.provider:Flaky",
             settings="cbtest_flaky.provider:FlakySettings", capabilities={"compute"}))
"""

PROVIDER = """
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict
from cloudbridge.interfaces import Provider
from cloudbridge.settings import ProviderSettings

class FlakySettings(ProviderSettings):
    model_config = SettingsConfigDict(env_prefix="CLOUDBRIDGE_FLAKY_", extra="forbid")
    token: SecretStr | None = None
    retries: int = 3

class Flaky(Provider):
    name = "flaky"

    def check(self):
        report = super().check()
        ok = self.settings.token is not None
        report.add("token", ok, "set" if ok else "missing", fix="export CLOUDBRIDGE_FLAKY_TOKEN=...")
        return report
"""


@pytest.fixture
def flaky(tmp_path: Path) -> Path:
    return make_plugin(
        tmp_path / "site",
        dist="cloudbridge-flaky",
        entry_name="flaky",
        modules={"cbtest_flaky/plugin.py": PLUGIN, "cbtest_flaky/provider.py": PROVIDER},
        version="2.3.4",
    )


def test_providers_table_and_json(flaky: Path) -> None:
    rows = {r["name"]: r for r in json.loads(run_cli("providers", "--json", paths=[flaky]).stdout)}
    assert rows["local"] == {
        "name": "local",
        "installed": True,
        "capabilities": ["compute", "deploy", "storage"],
        "schemes": ["file"],
        "distribution": "cloudbridge-ai",
        "description": rows["local"]["description"],
        "install_hint": None,
    }
    assert rows["flaky"]["distribution"] == "cloudbridge-flaky" and rows["flaky"]["capabilities"] == ["compute"]
    # known providers are listed with their install hint when their plugin is missing (blocked here,
    # since the test environment may have cloudbridge-gcp / cloudbridge-azure installed)
    blocked = json.loads(run_cli("providers", "--json", paths=[flaky],
                                 env={"CLOUDBRIDGE_DISABLE_PLUGINS": "gcp,azure"}).stdout)
    blocked_rows = {r["name"]: r for r in blocked}
    for known in ("gcp", "azure"):
        assert blocked_rows[known]["installed"] is False
        assert blocked_rows[known]["install_hint"] == f"pip install cloudbridge-{known}"
    table = run_cli("providers", paths=[flaky]).stdout.splitlines()
    assert table[0].split() == ["PROVIDER", "INSTALLED", "CAPABILITIES", "SCHEMES", "DISTRIBUTION"]
    assert any(line.split()[:2] == ["flaky", "yes"] for line in table)
    plugins = {r["name"]: r for r in json.loads(run_cli("plugins", "--json", paths=[flaky]).stdout)}
    assert plugins["flaky"]["version"] == "2.3.4" and plugins["flaky"]["ok"]


def test_check_fails_with_fix_then_passes(flaky: Path) -> None:
    failing = run_cli("check", "flaky", paths=[flaky])
    assert failing.returncode == 1
    assert "token" in failing.stdout and "failed" in failing.stdout
    assert "export CLOUDBRIDGE_FLAKY_TOKEN=..." in failing.stdout
    assert failing.stderr.strip() == "error: 1 check(s) failed: flaky: token"

    passing = run_cli("check", "flaky", "--json", paths=[flaky], env={"CLOUDBRIDGE_FLAKY_TOKEN": "s3cr3t-value"})
    assert passing.returncode == 0, passing.stderr
    report = json.loads(passing.stdout)
    assert report[0]["ok"] is True and "s3cr3t-value" not in passing.stdout + passing.stderr


def test_check_reports_bad_settings_as_a_failed_item(flaky: Path) -> None:
    env = {"CLOUDBRIDGE_FLAKY_RETRIES": "many", "CLOUDBRIDGE_PLUGINS": "flaky"}  # only local + flaky
    result = run_cli("check", "--json", paths=[flaky], env=env)
    assert result.returncode == 1
    reports = {r["provider"]: r for r in json.loads(result.stdout)}
    assert reports["local"]["ok"] is True
    item = reports["flaky"]["items"][0]
    assert item["ok"] is False and "retries" in item["detail"]
