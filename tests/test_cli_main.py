"""The root CLI: version, help, plugin commands, error handling (real app, real test plugins)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, make_plugin, run_cli
from typer.testing import CliRunner

from cloudbridge import __version__
from cloudbridge.cli.main import COMMAND_MODULES, build_app, command_hook_failures, main
from cloudbridge.plugins import reset_plugins

COMMANDS_PLUGIN = """
import cloudbridge
import typer

@cloudbridge.hookimpl
def cloudbridge_register_commands(app):
    @app.command("hello")
    def hello(name: str = typer.Argument("world")) -> None:
        '''Say hello (from a plugin).'''
        typer.echo(f"hello {name}")

    @app.command("interrupt")
    def interrupt() -> None:
        '''Pretend the user pressed Ctrl-C.'''
        raise KeyboardInterrupt

    @app.command("fail")
    def fail() -> None:
        '''Raise a cloudbridge error.'''
        from cloudbridge.errors import QuotaExceeded
        raise QuotaExceeded("no more GPUs in this account", provider="x", hint="ask for a quota increase")

    @app.command("crash")
    def crash() -> None:
        '''Raise an unexpected error.'''
        raise ZeroDivisionError("oops")
"""

BROKEN_COMMANDS_PLUGIN = """
import cloudbridge

@cloudbridge.hookimpl
def cloudbridge_register_commands(app):
    raise RuntimeError("cannot add my commands")
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    make_plugin(root, dist="cloudbridge-hello", entry_name="hello", modules={"cbtest_hello/plugin.py": COMMANDS_PLUGIN})
    make_plugin(
        root,
        dist="cloudbridge-nocmd",
        entry_name="nocmd",
        modules={"cbtest_nocmd/plugin.py": BROKEN_COMMANDS_PLUGIN},
    )
    monkeypatch.syspath_prepend(str(root))
    reset_plugins()
    return root


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"cloudbridge-ai {__version__}"


def test_no_args_shows_help() -> None:
    result = run_cli()
    assert "Usage" in result.stdout + result.stderr
    for command in ("providers", "plugins", "check", "run", "jobs", "status", "logs", "cancel"):
        assert command in result.stdout + result.stderr


def test_every_command_module_registers() -> None:
    app = build_app(plugins=False)
    names = {info.name for info in app.registered_commands} | {g.name for g in app.registered_groups}
    assert {"providers", "run", "status"} <= names
    assert "providers" in COMMAND_MODULES and "jobs" in COMMAND_MODULES


def test_plugin_commands_in_process(plugin_dir: Path) -> None:
    app = build_app()
    runner = CliRunner()
    assert runner.invoke(app, ["hello", "cloud"]).stdout == "hello cloud\n"
    failures = command_hook_failures()
    assert [f.plugin for f in failures] == ["nocmd"]
    assert "RuntimeError" in failures[0].error

    result = runner.invoke(app, ["fail"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no more GPUs in this account (ask for a quota increase)"
    result = runner.invoke(app, ["interrupt"])
    assert result.exit_code == 130 and result.stderr.strip() == "interrupted"


def test_plugin_commands_subprocess(plugin_dir: Path) -> None:
    result = run_cli("hello", paths=[plugin_dir])
    assert result.returncode == 0 and result.stdout == "hello world\n"
    # the broken plugin is reported once, and never stops the CLI
    assert "plugin 'nocmd' could not add its commands" in result.stderr
    assert "Traceback" not in result.stderr

    listing = run_cli("plugins", "--json", paths=[plugin_dir])
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["hello"]["ok"] and not rows["nocmd"]["ok"]
    assert "cannot add my commands" in rows["nocmd"]["error"]

    interrupted = run_cli("interrupt", paths=[plugin_dir], env={"CLOUDBRIDGE_DISABLE_PLUGINS": "nocmd"})
    assert interrupted.returncode == 130 and interrupted.stderr.strip() == "interrupted"

    failed = run_cli("fail", paths=[plugin_dir], env={"CLOUDBRIDGE_DISABLE_PLUGINS": "nocmd"})
    assert_one_error_line(failed, "no more GPUs", code=1)

    crashed = run_cli("crash", paths=[plugin_dir], env={"CLOUDBRIDGE_DISABLE_PLUGINS": "nocmd"})
    assert crashed.returncode == 1 and "Traceback" not in crashed.stderr
    assert "unexpected ZeroDivisionError: oops" in crashed.stderr

    debug = run_cli("--debug", "crash", paths=[plugin_dir], env={"CLOUDBRIDGE_DISABLE_PLUGINS": "nocmd"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_main_returns_status_when_given_argv(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cloudbridge-ai {__version__}"
    assert main(["run", "/nonexistent/job.yaml"]) == 2
    assert capsys.readouterr().err.strip() == "error: /nonexistent/job.yaml: file not found"


def test_usage_errors_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    # through main() (the console script) and through the app itself (CliRunner, as plugins test it)
    assert main(["run", "--no-such-flag"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: no such option: --no-such-flag (see: cloudbridge run --help)"]

    result = CliRunner().invoke(build_app(plugins=False), ["status"], prog_name="cloudbridge")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: missing argument 'ID' (see: cloudbridge status --help)"]
    assert result.stdout == ""
