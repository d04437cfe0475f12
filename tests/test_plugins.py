"""The plugin manager with real installed test distributions (dist-info on the path).

Each test writes its plugins into its own directory with a unique module name, so nothing leaks
between tests through ``sys.modules``.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, make_plugin, run_cli

from cloudbridge.errors import PluginError, ProviderNotFound
from cloudbridge.plugins import load_plugins, plugin_statuses, provider_info, provider_infos, reset_plugins

_ids = itertools.count()

PROVIDER_PLUGIN = """
import cloudbridge

@cloudbridge.hookimpl
def cloudbridge_register_providers(register):
    register(cloudbridge.ProviderInfo(name={name!r}, factory="{module}.provider:make",
             capabilities={{"storage"}}, schemes=({scheme!r},), description="test provider"))
"""

PROVIDER_FACTORY = """
import pathlib, time
pathlib.Path({marker!r}).write_text("imported")
time.sleep({sleep})
from cloudbridge.interfaces import Provider

class P(Provider):
    name = {name!r}

def make(settings):
    return P(settings)
"""


def _provider_plugin(root: Path, dist: str, name: str, *, scheme: str = "", sleep: float = 0) -> tuple[str, Path]:
    """A plugin registering provider ``name``; returns (module, marker file written on factory import)."""
    module = f"cbtest_{name.replace('-', '_')}_{next(_ids)}"
    marker = root / f"{module}.imported"
    make_plugin(
        root,
        dist=dist,
        entry_name=name,
        modules={
            f"{module}/plugin.py": PROVIDER_PLUGIN.format(name=name, module=module, scheme=scheme or name + "x"),
            f"{module}/provider.py": PROVIDER_FACTORY.format(marker=str(marker), sleep=sleep, name=name),
        },
        entry_target=f"{module}.plugin",
    )
    return module, marker


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path (and PYTHONPATH for subprocesses) for test distributions."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    reset_plugins()
    return root


def test_builtins_register_through_the_same_hook() -> None:
    infos = provider_infos()
    assert infos["local"].distribution == "cloudbridge-ai"
    statuses = {s.name: s for s in plugin_statuses()}
    assert statuses["cloudbridge.backends.local.plugin"].builtin


def test_entry_point_plugin_is_loaded(plugin_dir: Path) -> None:
    module, marker = _provider_plugin(plugin_dir, "cloudbridge-foo", "foo")
    info = provider_info("foo")
    assert info.distribution == "cloudbridge-foo" and info.schemes == ("foox",)
    status = next(s for s in plugin_statuses() if s.name == "foo")
    assert status.ok and status.version == "1.0.0" and status.distribution == "cloudbridge-foo"
    assert not marker.exists(), "registering must not import the factory module"
    assert f"{module}.provider" not in sys.modules


def test_allowlist_and_blocklist(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _provider_plugin(plugin_dir, "cloudbridge-alpha", "alpha")
    _provider_plugin(plugin_dir, "cloudbridge-beta", "beta")
    assert {"alpha", "beta"} <= set(provider_infos())

    monkeypatch.setenv("CLOUDBRIDGE_PLUGINS", "alpha")
    reset_plugins()
    names = set(provider_infos())
    assert "alpha" in names and "beta" not in names
    assert "local" in names  # builtins are always loaded

    monkeypatch.delenv("CLOUDBRIDGE_PLUGINS")
    monkeypatch.setenv("CLOUDBRIDGE_DISABLE_PLUGINS", "alpha, other")
    reset_plugins()
    names = set(provider_infos())
    assert "beta" in names and "alpha" not in names


def test_plugin_raising_on_import_is_listed_and_skipped(plugin_dir: Path) -> None:
    make_plugin(
        plugin_dir,
        dist="cloudbridge-broken",
        entry_name="broken",
        modules={"cbtest_broken_imp/plugin.py": "raise RuntimeError('boom at import')\n"},
    )
    _provider_plugin(plugin_dir, "cloudbridge-fine", "fine")
    statuses = {s.name: s for s in plugin_statuses()}
    assert not statuses["broken"].ok
    assert "RuntimeError: boom at import" in (statuses["broken"].error or "")
    assert statuses["broken"].distribution == "cloudbridge-broken"
    assert statuses["fine"].ok and "fine" in provider_infos()


def test_plugin_raising_while_registering_is_marked_failed(plugin_dir: Path) -> None:
    make_plugin(
        plugin_dir,
        dist="cloudbridge-badreg",
        entry_name="badreg",
        modules={
            "cbtest_badreg/plugin.py": """
            import cloudbridge

            @cloudbridge.hookimpl
            def cloudbridge_register_providers(register):
                raise ValueError("cannot register")
        """
        },
    )
    assert "local" in provider_infos()
    status = next(s for s in plugin_statuses() if s.name == "badreg")
    assert not status.ok and "ValueError while registering: cannot register" in (status.error or "")


def test_newer_plugin_api_is_refused(plugin_dir: Path) -> None:
    make_plugin(
        plugin_dir,
        dist="cloudbridge-future",
        entry_name="future",
        modules={"cbtest_future/plugin.py": "CLOUDBRIDGE_PLUGIN_API = 99\n"},
    )
    status = next(s for s in plugin_statuses() if s.name == "future")
    assert not status.ok and "plugin API 99" in (status.error or "")


def test_two_plugins_claiming_one_name_name_both_distributions(plugin_dir: Path) -> None:
    _provider_plugin(plugin_dir, "cloudbridge-one", "twin")
    module = "cbtest_twin_other"
    make_plugin(
        plugin_dir,
        dist="cloudbridge-two",
        entry_name="twin-again",
        modules={f"{module}/plugin.py": PROVIDER_PLUGIN.format(name="twin", module=module, scheme="twinx")},
    )
    load_plugins()
    with pytest.raises(PluginError) as info:
        provider_infos()
    assert "cloudbridge-one" in str(info.value) and "cloudbridge-two" in str(info.value)

    result = run_cli("providers", paths=[plugin_dir])
    line = assert_one_error_line(result, "cloudbridge-one", "cloudbridge-two", code=1)
    assert "'twin'" in line


def test_unknown_provider_lists_known_ones_and_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDBRIDGE_DISABLE_PLUGINS", "gcp")  # known but not loaded, whether or not it is installed
    with pytest.raises(ProviderNotFound) as info:
        provider_info("gcp")
    assert "known providers: " in str(info.value) and "local" in str(info.value)
    assert "pip install cloudbridge-gcp" in str(info.value)
    with pytest.raises(ProviderNotFound, match="did you mean 'local'"):
        provider_info("locl")


def test_slow_provider_module_does_not_slow_listing(plugin_dir: Path) -> None:
    """A provider module that takes 2 s to import is never imported by ``cloudbridge providers``."""
    module, marker = _provider_plugin(plugin_dir, "cloudbridge-slow", "slow", sleep=2)
    result = run_cli("providers", "--json", paths=[plugin_dir])
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["slow"]["distribution"] == "cloudbridge-slow" and rows["slow"]["installed"]
    assert not marker.exists(), "cloudbridge providers imported the provider's factory module"
    # The marker is a sound probe: building the provider does import the slow module.
    from cloudbridge.backends import get_provider

    assert get_provider("slow").name == "slow"
    assert marker.exists()


def test_plugins_command_lists_failures(plugin_dir: Path) -> None:
    make_plugin(
        plugin_dir,
        dist="cloudbridge-kaput",
        entry_name="kaput",
        modules={"cbtest_kaput/plugin.py": "import does_not_exist_anywhere\n"},
    )
    result = run_cli("plugins", "--json", paths=[plugin_dir])
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["kaput"]["ok"] is False and "does_not_exist_anywhere" in rows["kaput"]["error"]
    assert rows["cloudbridge.backends.local.plugin"]["ok"] is True
    table = run_cli("plugins", paths=[plugin_dir])
    assert "kaput" in table.stdout and "failed" in table.stdout
    assert "1 plugin(s) failed" in table.stderr
