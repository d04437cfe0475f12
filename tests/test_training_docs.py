"""Every command that the training docs and the fine-tuning examples show exists with the flags shown.

Commands are collected from ``docs/training.md``, ``examples/finetune-*/README.md`` and the header
comments of ``examples/finetune-*/job.yaml``: ``cloudbridge <command>`` lines are checked against the
real typer app (command and every ``--flag``), ``cloudbridge-finetune`` and ``cloudbridge-launch``
against their argument parsers, and ``cloudbridge run <spec in this repo>`` is validated for real
with ``--dry-run``. (Running them in full is ``tests/test_examples.py``.)
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "docs" / "training.md", *sorted(ROOT.glob("examples/finetune-*/README.md")),
           *sorted(ROOT.glob("examples/finetune-*/job.yaml"))]
_PROGRAMS = ("cloudbridge ", "cloudbridge-finetune ", "cloudbridge-launch ")


def _commands(path: Path) -> list[tuple[str, str]]:
    """``(where, command)`` of every command in fenced blocks and inline code, or a job.yaml's comments and ``run``."""
    text = path.read_text(encoding="utf-8")
    found: list[tuple[int, str]] = []
    fence = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = not fence
            continue
        if path.suffix == ".yaml":
            if stripped.startswith("#") and stripped.lstrip("#").strip().startswith(_PROGRAMS):
                found.append((number, stripped.lstrip("#").strip()))
            elif stripped.startswith("run:"):
                found.append((number, yaml.safe_load(text)["run"]))
            continue
        if fence and stripped.startswith(_PROGRAMS):
            found.append((number, stripped))
        elif not fence:
            found += [(number, span) for span in re.findall(r"`([^`]+)`", line) if span.startswith(_PROGRAMS)]
    return [(f"{path.relative_to(ROOT)}:{number}", command) for number, command in found]


def _tokens(command: str) -> list[str]:
    command = re.sub(r"\s+#.*$", "", command)  # a trailing shell comment
    command = re.sub(r"\s+\(.*\)$", "", command)  # a trailing remark in parentheses (job.yaml headers)
    return shlex.split(command.replace("…", "").replace("...", ""))


COMMANDS = [item for source in SOURCES for item in _commands(source)]


def test_the_docs_show_commands() -> None:
    programs = {command.split()[0] for _, command in COMMANDS}
    assert programs == {"cloudbridge", "cloudbridge-finetune", "cloudbridge-launch"}
    assert sum(command.startswith("cloudbridge run ") for _, command in COMMANDS) >= 3


def _typer_options() -> dict[str, set[str]]:
    import typer

    from cloudbridge.cli.main import app

    group = typer.main.get_command(app)
    return {name: {opt for param in cmd.params for opt in (*param.opts, *param.secondary_opts)}
            for name, cmd in group.commands.items()}


def _parser_options(parser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_exists_with_its_flags(where: str, command: str) -> None:
    tokens = _tokens(command)
    own = tokens[: tokens.index("--")] if "--" in tokens else tokens  # after "--": the launched command's
    flags = {re.sub(r"=.*", "", t) for t in own if t.startswith("--") and len(t) > 2}
    flags |= set(re.findall(r"\[(--[a-z-]+)", command))  # a synopsis: [--flag VALUE]
    if tokens[0] == "cloudbridge":
        options = _typer_options()
        assert tokens[1] in options, f"{where}: no command 'cloudbridge {tokens[1]}'"
        unknown = flags - options[tokens[1]]
    elif tokens[0] == "cloudbridge-finetune":
        from cloudbridge.training.cli import build_parser

        unknown = flags - _parser_options(build_parser())
    else:
        from cloudbridge.runtime.launch import _parser

        unknown = flags - _parser_options(_parser())
    assert not unknown, f"{where}: {command!r} uses unknown option(s) {sorted(unknown)}"


RUNS = sorted({(where, _tokens(command)[2]) for where, command in COMMANDS
               if command.startswith("cloudbridge run ") and (ROOT / _tokens(command)[2]).is_file()})


@pytest.mark.parametrize(("where", "spec"), RUNS, ids=[where for where, _ in RUNS])
def test_documented_run_validates(where: str, spec: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "cloudbridge.cli", "run", spec, "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{where}: {proc.stdout[-1000:]}{proc.stderr[-1000:]}"
    assert "valid; resolved spec (nothing submitted)" in proc.stdout


def test_option_table_matches_the_parser() -> None:
    from cloudbridge.training.cli import build_parser

    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    section = text[text.index("## `cloudbridge-finetune`"):text.index("## Checkpoints and resume")]
    table = [line for line in section.splitlines() if line.startswith("| `--")]
    documented = {flag for line in table for flag in re.findall(r"--[a-z-]+", line.split("|")[1])}
    known = _parser_options(build_parser()) - {"-h", "--help"}
    assert documented == known, (sorted(known - documented), sorted(documented - known))


def test_public_objects_of_training_and_runtime_have_docstrings() -> None:
    """pydocstyle's "missing docstring" rules (D1) over the training side, as STYLE.md asks."""
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip("ruff is not installed next to this Python")
    paths = ["src/cloudbridge/training", "src/cloudbridge/runtime", "src/cloudbridge/emulate.py",
             "src/cloudbridge/cli/emulate.py"]
    proc = subprocess.run([str(ruff), "check", "--select", "D1", "--output-format", "concise", *paths], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
