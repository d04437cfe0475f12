"""Core settings resolution with the builtin ``local`` provider only (no cloud plugin loaded):
``config.toml`` profiles, ``CLOUDBRIDGE_PROFILE``, precedence hook < profile < env < overrides,
and the errors a bad config gives (in-process and through the real CLI: one line, exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixtures_cli import run_cli

from cloudbridge.backends import clear_provider_cache, get_provider
from cloudbridge.backends.local.settings import LocalSettings
from cloudbridge.errors import InvalidSpec
from cloudbridge.hookspecs import hookimpl
from cloudbridge.plugins import get_plugin_manager, provider_infos, reset_plugins
from cloudbridge.settings import config_path, load_config, profile_values, resolve_settings

CONFIG = """\
[local]                      # the default profile
kill_grace = 3
poll_interval = 0.5

[profiles.dev.local]
kill_grace = 7
gpus = "0,1"

[profiles.ci]                # a profile with no [local] table
"""


@pytest.fixture(autouse=True)
def builtins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load the builtin plugins only: no cloud plugin takes part, whatever is installed."""
    monkeypatch.setenv("CLOUDBRIDGE_PLUGINS", "no-such-plugin")
    for name in ("KILL_GRACE", "POLL_INTERVAL", "HEARTBEAT_INTERVAL", "PRICE_PER_HOUR", "GPUS"):
        monkeypatch.delenv(f"CLOUDBRIDGE_LOCAL_{name}", raising=False)
    reset_plugins()
    clear_provider_cache()
    assert set(provider_infos()) == {"local"}


@pytest.fixture
def config(cb_home: Path) -> Path:
    path = cb_home / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


class DefaultsHook:
    """A real plugin object: the lowest-precedence ``cloudbridge_resolve_settings`` source."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    @hookimpl
    def cloudbridge_resolve_settings(self, provider: str, profile: str | None) -> dict[str, Any] | None:
        self.calls.append((provider, profile))
        if provider != "local":
            return None
        return {"kill_grace": 1, "poll_interval": 1, "heartbeat_interval": 1, "price_per_hour": 1}


def test_no_config_means_model_defaults(cb_home: Path) -> None:
    assert config_path() == cb_home / "config.toml" and load_config() == {}
    settings = resolve_settings(LocalSettings, "local")
    assert settings == LocalSettings()
    assert (settings.kill_grace, settings.poll_interval, settings.gpus) == (10.0, 0.2, None)


def test_default_profile_and_named_profile(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert profile_values("local") == {"kill_grace": 3, "poll_interval": 0.5}
    default = resolve_settings(LocalSettings, "local")
    assert (default.kill_grace, default.poll_interval, default.gpu_indices) == (3.0, 0.5, None)

    dev = resolve_settings(LocalSettings, "local", profile="dev")
    # a named profile is its own table: [local] of the default profile does not leak into it
    assert (dev.kill_grace, dev.poll_interval, dev.gpu_indices) == (7.0, 0.2, [0, 1])
    assert resolve_settings(LocalSettings, "local", profile="ci") == LocalSettings()

    # CLOUDBRIDGE_PROFILE picks the profile when none is passed; an explicit profile wins
    monkeypatch.setenv("CLOUDBRIDGE_PROFILE", "dev")
    assert resolve_settings(LocalSettings, "local").kill_grace == 7.0
    assert resolve_settings(LocalSettings, "local", profile="default").kill_grace == 3.0

    # the provider object gets the same settings
    clear_provider_cache()
    assert get_provider("local").settings.kill_grace == 7.0
    assert get_provider("local", profile="default").settings.kill_grace == 3.0


def test_precedence_hook_profile_env_overrides(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = DefaultsHook()
    get_plugin_manager().register(hook, name="defaults-hook")
    (config.parent / "config.toml").write_text(
        "[local]\npoll_interval = 2\nheartbeat_interval = 2\nprice_per_hour = 2\n[profiles.dev]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("CLOUDBRIDGE_LOCAL_HEARTBEAT_INTERVAL", "3")
    monkeypatch.setenv("CLOUDBRIDGE_LOCAL_PRICE_PER_HOUR", "3")
    settings = resolve_settings(LocalSettings, "local", overrides={"price_per_hour": 4})
    assert settings.kill_grace == 1  # hook only
    assert settings.poll_interval == 2  # profile beats hook
    assert settings.heartbeat_interval == 3  # env beats profile
    assert settings.price_per_hour == 4  # the job's overrides beat everything
    assert settings.checkpoint_sync_interval == 300  # nobody set it: the model's default
    assert hook.calls == [("local", None)]

    resolve_settings(LocalSettings, "local", profile="dev")
    assert hook.calls[-1] == ("local", "dev")  # the hook is told which profile


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("profile", "settings.local.kill_grace: Input should be greater than or equal to 0 (set in {config} [local])"),
        ("named", "settings.local.kill_grace: Input should be greater than or equal to 0 "
                  "(set in {config} [profiles.dev.local])"),
        ("env", "settings.local.kill_grace: Input should be greater than or equal to 0 "
                "(set by $CLOUDBRIDGE_LOCAL_KILL_GRACE)"),
        ("overrides", "job.yaml: overrides.local.kill_grace: Input should be greater than or equal to 0"),
    ],
)
def test_bad_value_names_where_it_was_set(
    where: str, expected: str, cb_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = cb_home / "config.toml"
    overrides = None
    profile = None
    if where == "profile":
        config.write_text("[local]\nkill_grace = -5\n", encoding="utf-8")
    elif where == "named":
        config.write_text("[profiles.dev.local]\nkill_grace = -5\n", encoding="utf-8")
        profile = "dev"
    elif where == "env":
        monkeypatch.setenv("CLOUDBRIDGE_LOCAL_KILL_GRACE", "-5")
    else:
        overrides = {"kill_grace": -5}
    with pytest.raises(InvalidSpec) as info:
        resolve_settings(LocalSettings, "local", profile=profile, overrides=overrides, source="job.yaml"
                         if where == "overrides" else None)
    assert str(info.value) == expected.format(config=config)


def test_unknown_setting_lists_the_known_ones(cb_home: Path) -> None:
    (cb_home / "config.toml").write_text("[local]\nkil_grace = 3\n", encoding="utf-8")
    with pytest.raises(InvalidSpec) as info:
        resolve_settings(LocalSettings, "local")
    text = str(info.value)
    assert text.startswith("settings.local.kil_grace: unknown setting (known: ")
    assert "kill_grace" in text and "poll_interval" in text and f"set in {cb_home / 'config.toml'} [local]" in text


def test_unknown_profile_lists_known_ones(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidSpec) as info:
        resolve_settings(LocalSettings, "local", profile="prod")
    assert str(info.value) == f"{config}: no profile 'prod' (known: default, ci, dev)"
    monkeypatch.setenv("CLOUDBRIDGE_PROFILE", "staging")
    with pytest.raises(InvalidSpec, match=r"no profile 'staging' \(known: default, ci, dev\)"):
        get_provider("local")


def test_malformed_config_in_process(cb_home: Path) -> None:
    path = cb_home / "config.toml"
    path.write_text("[local\nkill_grace = 3\n", encoding="utf-8")
    with pytest.raises(InvalidSpec) as info:
        load_config()
    assert str(info.value).startswith(f"{path}: malformed TOML: ") and "line 1" in str(info.value)


def _job(tmp_path: Path) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text("name: settings-check\nprovider: local\nworkdir: null\nrun: echo hi\n", encoding="utf-8")
    return path


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def test_cli_malformed_config_exits_2_naming_the_file(tmp_path: Path, cb_home: Path) -> None:
    path = cb_home / "config.toml"
    path.write_text('[local]\nkill_grace = "3\n', encoding="utf-8")
    result = run_cli("run", str(_job(tmp_path)), env={"CLOUDBRIDGE_PLUGINS": "no-such-plugin"})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = _error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: {path}: malformed TOML: ") and "line 2" in errors[0]
    assert not (cb_home / "jobs").exists() or not any((cb_home / "jobs").iterdir())


def test_cli_unknown_profile_exits_2_listing_known(tmp_path: Path, config: Path) -> None:
    result = run_cli("run", str(_job(tmp_path)),
                     env={"CLOUDBRIDGE_PLUGINS": "no-such-plugin", "CLOUDBRIDGE_PROFILE": "prod"})
    assert result.returncode == 2, result.stderr
    assert _error_lines(result.stderr) == [f"error: {config}: no profile 'prod' (known: default, ci, dev)"]


def test_cli_bad_setting_from_env_names_the_variable(tmp_path: Path) -> None:
    result = run_cli("run", str(_job(tmp_path)),
                     env={"CLOUDBRIDGE_PLUGINS": "no-such-plugin", "CLOUDBRIDGE_LOCAL_POLL_INTERVAL": "soon"})
    assert result.returncode == 2, result.stderr
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and errors[0].startswith("error: settings.local.poll_interval: "), result.stderr
    assert errors[0].endswith("(set by $CLOUDBRIDGE_LOCAL_POLL_INTERVAL)")
