"""Start-up: the command table agrees with the commands, and a command imports only its own module."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fixtures_cli import run_cli

from cloudbridge.cli.main import build_app
from cloudbridge.cli.registry import COMMAND_MODULES, COMMANDS

PROBE = """
import io, contextlib, json, sys
from cloudbridge.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main({argv!r})
sys.__stdout__.write("@@" + json.dumps([code, sorted(m for m in sys.modules if m.startswith(("cloudbridge.cli.",
    "typer", "rich", "pydantic", "pluggy")))]) + "\\n")
"""


def _modules_after(argv: list[str]) -> tuple[int, set[str]]:
    result = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True,
                            timeout=120)
    line = [x for x in result.stdout.splitlines() if x.startswith("@@")]
    assert line, result.stderr
    code, modules = json.loads(line[-1][2:])
    return code, set(modules)


def test_table_agrees_with_the_commands() -> None:
    import typer

    group = typer.main.get_command(build_app(plugins=False))
    assert sorted(e.name for e in COMMANDS) == sorted(group.commands)  # every command is in the table
    for entry in COMMANDS:
        command = group.commands[entry.name]
        assert entry.help == (command.help or "").strip().splitlines()[0], entry.name
        assert entry.panel == (command.rich_help_panel or entry.panel)


def test_a_command_imports_only_its_own_module() -> None:
    code, modules = _modules_after(["providers", "--json"])
    assert code == 0
    loaded = {m.removeprefix("cloudbridge.cli.") for m in modules if m.startswith("cloudbridge.cli.")}
    assert loaded & set(COMMAND_MODULES) == {"providers"}


def test_version_and_plain_help_skip_the_parser() -> None:
    code, modules = _modules_after(["--version"])
    assert code == 0 and not {m for m in modules if m.startswith(("typer", "rich", "pydantic", "pluggy"))}
    code, modules = _modules_after(["--help"])
    assert code == 0 and not {m for m in modules if m.startswith(("rich", "pydantic"))}
    assert not {m.removeprefix("cloudbridge.cli.") for m in modules} & set(COMMAND_MODULES)


def test_plain_help_lists_every_command_under_its_panel() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for entry in COMMANDS:
        assert f"  {entry.name} " in result.stdout, entry.name
    for panel in {e.panel for e in COMMANDS}:
        assert f"{panel}:" in result.stdout
    assert "\x1b[" not in result.stdout and "─" not in result.stdout  # plain text in a pipe, no rich boxes


@pytest.mark.parametrize("argv", [["jobs", "--debug"], ["--debug", "jobs"]])
def test_debug_before_or_after_the_command(argv: list[str], tmp_path) -> None:
    result = run_cli(*argv, env={"CLOUDBRIDGE_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ID")


def test_unknown_command_suggests_the_closest() -> None:
    result = run_cli("jbos")
    assert result.returncode == 2
    assert "no such command 'jbos'. Did you mean 'jobs'?" in result.stderr
