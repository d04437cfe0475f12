"""One CLI grammar: short flags, durations, placeholders, defaults, --provider, cp -r, lists and logs."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import typer
from fixtures_cli import assert_one_error_line, run_cli

from cloudbridge.cli._output import iso_time, parse_duration
from cloudbridge.cli.main import build_app, main
from cloudbridge.cli.registry import COMMANDS
from cloudbridge.errors import UserError


def _walk(command, path: str):
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _walk(sub, f"{path} {name}")


def test_each_short_flag_has_one_meaning() -> None:
    meanings: dict[str, set[str]] = {}
    for _path, command in _walk(typer.main.get_command(build_app(plugins=False)), "cloudbridge"):
        for param in command.params:
            names = [*param.opts, *param.secondary_opts]
            long = next((n for n in names if n.startswith("--")), "?")
            for short in (n for n in names if re.fullmatch(r"-[a-zA-Z]", n)):
                meanings.setdefault(short, set()).add(long)
    assert {k: v for k, v in meanings.items() if len(v) > 1} == {}
    assert meanings["-d"] == {"--detach"} and meanings["-n"] == {"--name"} and meanings["-p"] == {"--provider"}


@pytest.mark.parametrize("name", [e.name for e in COMMANDS])
def test_help_shows_no_python_type_placeholders(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--help"]) == 0
    text = capsys.readouterr().out
    assert not re.search(r"<(bool|str|int|float|list\[[a-z]+\])>|\{[a-z_]+\}", text), text


def test_defaults_agree_with_the_help_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["storage", "sync", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--workers INTEGER Parallel transfers. 0 (default): 32 threads" in text and "[default: 0;" in text


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("30s", 30), ("10m", 600), ("1h30m", 5400), ("2d", 172800), ("1w", 604800)]
)
def test_one_duration_grammar(text: str, seconds: float) -> None:
    assert parse_duration(text, "--x") == seconds


@pytest.mark.parametrize("text", ["soon", "-5", "0", "5x", "1h junk"])
def test_bad_durations_are_one_line(text: str) -> None:
    with pytest.raises(UserError, match="--timeout"):
        parse_duration(text, "--timeout")


def test_durations_on_the_command_line(tmp_path: Path) -> None:
    assert run_cli("cost", "--since", "1w").returncode == 0
    assert_one_error_line(run_cli("cost", "--since", "soon"), "--since", "not a duration")
    spec = tmp_path / "job.yaml"
    spec.write_text("name: t\nrun: echo hi\n")
    assert_one_error_line(run_cli("emulate", str(spec), "--as", "sagemaker", "--timeout", "soon"), "--timeout")
    assert_one_error_line(run_cli("logs", "local-00000000", "-f", "--timeout", "soon"), "--timeout")


def test_provider_option_in_catalog_and_plan(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("name: t\nrun: echo hi\nresources: {max_runtime: 1h}\n")
    for argv in (["catalog", "--provider", "aws"], ["plan", str(spec), "--provider", "local"]):
        result = run_cli(*argv)
        assert "no such option" not in result.stderr, result.stderr


def test_storage_cp_recursive_says_nothing_about_deleting(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    result = run_cli("storage", "cp", "-r", str(tmp_path / "src"), str(tmp_path / "dst"))
    assert result.returncode == 0, result.stderr
    assert "copied 1 object(s)" in result.stdout and "delete" not in result.stdout


def test_iso_time() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00Z" and iso_time(None) is None


def _submit(tmp_path: Path, name: str, run: str) -> str:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(f"name: {name}\nprovider: local\nrun: {run}\n")
    result = run_cli("run", "--detach", str(spec))
    assert result.returncode == 0, result.stderr
    # scripts: id=$(cloudbridge run --detach job.yaml) -- stdout is the id alone, the hint on stderr
    assert re.fullmatch(r"local-[0-9a-f]+\n", result.stdout), result.stdout
    assert "cloudbridge logs -f" in result.stderr
    return result.stdout.strip()


def test_lists_filters_json_cancel_all_and_prune(tmp_path: Path) -> None:
    done = _submit(tmp_path, "quick-one", "printf 'l1\\nl2\\nl3\\nl4\\nl5\\n'")
    assert run_cli("status", done, "--wait").returncode == 0
    sleeper = _submit(tmp_path, "sleepy", "sleep 60")
    deadline = time.time() + 60
    while json.loads(run_cli("status", sleeper, "--json").stdout)["state"] != "RUNNING":
        assert time.time() < deadline
        time.sleep(0.5)

    # logs --tail
    full = run_cli("logs", done).stdout.splitlines()
    assert ["l1", "l2", "l3", "l4", "l5"] == [line for line in full if re.fullmatch(r"l\d", line)]
    assert run_cli("logs", done, "--tail", "2").stdout.splitlines() == full[-2:]
    assert run_cli("logs", done, "--tail", "all").stdout.splitlines() == full

    # jobs --state/--name/--limit/--json
    rows = json.loads(run_cli("jobs", "--json").stdout)
    assert {r["id"] for r in rows} == {done, sleeper}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["created_at"]) for r in rows)
    assert [r["id"] for r in json.loads(run_cli("jobs", "--state", "running", "--json").stdout)] == [sleeper]
    assert [r["id"] for r in json.loads(run_cli("jobs", "--name", "quick-*", "--json").stdout)] == [done]
    assert len(json.loads(run_cli("jobs", "--limit", "1", "--json").stdout)) == 1
    assert_one_error_line(run_cli("jobs", "--state", "SLEEPING"), "--state", "SLEEPING")
    events = json.loads(run_cli("status", done, "--json").stdout)["events"]
    assert events and all(re.fullmatch(r"\d{4}-.*Z", e["time"]) for e in events)

    # cancel --all --state RUNNING: only the running one
    result = run_cli("cancel", "--all", "--state", "RUNNING")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{sleeper}: CANCELLED"
    assert_one_error_line(run_cli("cancel"), "job ID or --all")

    # prune: records, code copies and logs of finished jobs
    job_dir = Path(json.loads(run_cli("status", done, "--json").stdout)["extra"]["job_dir"])
    assert (job_dir / "job.log").exists()
    assert "0 job(s) pruned" in run_cli("jobs", "prune", "--older-than", "1d").stderr
    time.sleep(1.1)
    result = run_cli("jobs", "prune", "--older-than", "1s")
    assert result.returncode == 0, result.stderr
    assert f"removed {done}" in result.stdout and f"removed {sleeper}" in result.stdout
    assert json.loads(run_cli("jobs", "--json").stdout) == []
    assert not job_dir.exists()


def test_dry_run_shows_durations_and_no_null_fields(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("name: t\nprovider: local\nrun: echo hi\nresources: {max_runtime: 5m, max_cost: 1}\n")
    result = run_cli("run", "--dry-run", str(spec))
    assert result.returncode == 0, result.stderr
    assert "null" not in result.stdout and "{}" not in result.stdout
    assert "x 1 node x 5m = $0.00" in result.stdout and "0.08" not in result.stdout
    assert "  max_runtime: 5m" in result.stdout and "max_runtime_seconds" not in result.stdout
    data = json.loads(run_cli("run", "--dry-run", "--json", str(spec)).stdout)
    assert data["spec"]["resolved"]["max_runtime_seconds"] == 300  # scripts keep every field, in seconds
