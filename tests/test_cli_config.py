"""``cloudbridge init`` and ``cloudbridge config show`` (real CLI in a subprocess)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from fixtures_cli import assert_one_error_line, run_cli


def test_init_writes_a_commented_config_and_prints_its_path(cb_home: Path) -> None:
    result = run_cli("init")
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == cb_home / "config.toml"
    text = path.read_text()
    assert text.count("\n# ") > 10 and tomllib.loads(text) == {"local": {}}  # comments only, and valid TOML
    assert_one_error_line(run_cli("init"), "already exists", "--force")
    assert run_cli("init", "--force").returncode == 0


def test_config_show_says_where_each_setting_came_from_and_masks_secrets(cb_home: Path) -> None:
    (cb_home / "config.toml").write_text('[local]\nprice_per_hour = 1.5\n[aws]\nregion = "eu-west-1"\n')
    env = {"CLOUDBRIDGE_LOCAL_GPUS": "0", "CLOUDBRIDGE_AWS_SECRET_ACCESS_KEY": "s3cr3t-value"}
    result = run_cli("config", "show", "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    rows = {(r["provider"], r["setting"]): r for r in data["settings"]}
    assert rows[("local", "price_per_hour")]["value"] == 1.5
    assert rows[("local", "price_per_hour")]["source"].endswith("config.toml [local]")
    assert rows[("local", "gpus")]["source"] == "$CLOUDBRIDGE_LOCAL_GPUS"
    assert rows[("local", "kill_grace")]["source"] == "default"
    assert rows[("aws", "region")]["value"] == "eu-west-1"
    assert rows[("aws", "secret_access_key")]["value"] == "****"
    table = run_cli("config", "show", env=env)
    assert "s3cr3t-value" not in table.stdout + table.stderr and "$CLOUDBRIDGE_LOCAL_GPUS" in table.stdout
