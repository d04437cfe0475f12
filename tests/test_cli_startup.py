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
    assert code == 0 and not {m for m in modules if m.startswith(("rich", "pydantic", "typer"))}
    assert not {m.removeprefix("cloudbridge.cli.") for m in modules} & set(COMMAND_MODULES)


def test_plain_help_lists_every_command_under_its_panel() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for entry in COMMANDS:
        assert f"  {entry.name} " in result.stdout, entry.name
    for panel in {e.panel for e in COMMANDS}:
        assert f"{panel}:" in result.stdout
    assert "\x1b[" not in result.stdout and "─" not in result.stdout  # plain text in a pipe, no rich boxes


TTY_PROBE = """
import json, os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    {env}
    from cloudbridge.cli.main import main
    code = main({argv!r})
    os.write(1, ("@@" + json.dumps([code, sorted(m for m in sys.modules if m.startswith(("rich", "typer")))])).encode())
    os._exit(0)
out = b""
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
os.waitpid(pid, 0)
sys.stdout.write(out.decode())
"""


@pytest.mark.parametrize(("argv", "env"), [(["--help"], {}), ([], {}), (["--help"], {"NO_COLOR": "1"})])
def test_root_help_on_a_terminal_is_styled_without_rich(argv: list[str], env: dict[str, str]) -> None:
    """On a terminal ``cloudbridge --help`` (and a bare ``cloudbridge``) is styled with ANSI codes and
    never imports rich (0.3 s); NO_COLOR gives plain text."""
    setup = "; ".join(f"os.environ[{k!r}] = {v!r}" for k, v in env.items()) or "pass"
    result = subprocess.run([sys.executable, "-c", TTY_PROBE.format(argv=argv, env=setup)], capture_output=True,
                            text=True, timeout=120)
    text, _, tail = result.stdout.rpartition("@@")
    code, modules = json.loads(tail)
    assert code == (0 if argv else 2), result.stdout
    assert not [m for m in modules if m.startswith("rich")], modules
    for entry in COMMANDS:
        assert entry.name in text, entry.name
    styled = "\x1b[1;36mrun\x1b[0m" in text and "\x1b[1mJobs:\x1b[0m" in text
    assert styled == (not env), text[:300]


@pytest.mark.parametrize("argv", [["jobs", "--debug"], ["--debug", "jobs"]])
def test_debug_before_or_after_the_command(argv: list[str], tmp_path) -> None:
    result = run_cli(*argv, env={"CLOUDBRIDGE_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ID")


def test_unknown_command_suggests_the_closest() -> None:
    result = run_cli("jbos")
    assert result.returncode == 2
    assert "no such command 'jbos'. Did you mean 'jobs'?" in result.stderr


@pytest.mark.parametrize("group", ["cloudbridge", "console_scripts"])
def test_entry_point_scan_agrees_with_importlib_metadata(group: str) -> None:
    from importlib import metadata

    from cloudbridge._entrypoints import entry_points

    ours = {(ep.name, ep.value, ep.dist.name if ep.dist else None) for ep in entry_points(group)}
    theirs = {(ep.name, ep.value, ep.dist.name if ep.dist else None) for ep in metadata.entry_points(group=group)}
    assert ours == theirs and ours


def test_providers_and_help_do_not_import_pydantic() -> None:
    # typer >= 0.20 would convert even an absent --json through a pydantic TypeAdapter
    for argv in (["providers"], ["providers", "--json"], ["jobs", "--help"]):
        code, modules = _modules_after(argv)
        assert code == 0 and not {m for m in modules if m.startswith("pydantic")}, argv


def test_root_options_in_plain_help_match_the_parser() -> None:
    import typer

    from cloudbridge.cli._app import LazyGroup, new_root
    from cloudbridge.cli._help import ROOT_OPTIONS

    group = typer.main.get_command(new_root(LazyGroup, rich=False))
    ctx = group.make_context("cloudbridge", ["--debug"])
    parsed = {frozenset(p.opts) for p in group.get_params(ctx) if p.opts}
    assert parsed == {frozenset(name.split(", ")) for name, _ in ROOT_OPTIONS}


def test_option_values_still_convert(tmp_path) -> None:
    # the pydantic-free shortcut hands anything unusual to typer: same values, same messages
    result = run_cli("plan", "--limit", "x", "job.yaml")
    assert result.returncode == 2 and "--limit" in result.stderr and "integer" in result.stderr
    result = run_cli("storage", "sync", str(tmp_path), str(tmp_path / "copy"), "--workers", "2000")
    assert result.returncode == 2 and "--workers" in result.stderr


def test_install_completion(tmp_path) -> None:
    result = run_cli("--install-completion", "bash", env={"HOME": str(tmp_path), "SHELL": "/bin/bash"})
    assert result.returncode == 0, result.stderr
    script = tmp_path / ".bash_completions" / "cloudbridge.sh"
    assert "_CLOUDBRIDGE_COMPLETE=complete_bash" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()
    completed = run_cli(env={"_CLOUDBRIDGE_COMPLETE": "complete_bash", "COMP_WORDS": "cloudbridge jo",
                             "COMP_CWORD": "1"})
    assert completed.stdout.split() == ["jobs"]


def test_tables_on_a_terminal_are_styled_without_rich() -> None:
    """``providers`` on a terminal: a bold header and coloured states, and no rich import (it folds
    only tables wider than the terminal)."""
    result = subprocess.run([sys.executable, "-c", TTY_PROBE.format(argv=["providers"], env="pass")],
                            capture_output=True, text=True, timeout=120)
    text, _, tail = result.stdout.rpartition("@@")
    code, modules = json.loads(tail)
    assert code == 0 and not [m for m in modules if m.startswith("rich")], (code, modules)
    assert "\x1b[1mPROVIDER\x1b[0m" in text and "\x1b[32myes" in text, text[:300]
    assert "local" in text and "file://" in text
