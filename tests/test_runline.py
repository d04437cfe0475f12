"""The run line means one thing everywhere: classified once (cloudbridge.runline), refused at validation
when it has no meaning, and the same lines give the same output on local and under every emulation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from fixtures_local import local_compute
from fixtures_training import clean_env
from test_runtime_context import LOCAL_ENV

import cloudbridge as cb
from cloudbridge.errors import InvalidSpec, UserError
from cloudbridge.runline import classify_run, shell_syntax
from cloudbridge.runtime import RuntimeContext
from cloudbridge.runtime.launch import build_launch
from cloudbridge.specs import JobSpec, load_job_spec

CLI = [sys.executable, "-m", "cloudbridge.cli"]
PY = "/usr/bin/python3"


@pytest.mark.parametrize("line", [
    "python train.py --lr 3e-4", "python -u -m pkg.train", "python -c 'print(1)'", "python3 -c \"print('$x')\"",
    "train.py --epochs 1", "cloudbridge-finetune --task text-classification --model minilm",
])
def test_one_command_is_a_program_under_a_launcher(line: str) -> None:
    if "$" in line:  # "$" in double quotes is bash's, not the program's: refused
        with pytest.raises(ValueError, match="shell syntax"):
            classify_run(line, "accelerate")
        return
    assert classify_run(line, "accelerate").kind == "program"
    assert classify_run(line, "torchrun").kind == "program"


@pytest.mark.parametrize(("line", "found"), [
    ("cd src && python train.py", "&&"), ("echo $HOME", "$"), ("python train.py > log.txt", ">"),
    ("python a.py; python b.py", ";"), ("python train.py | tee log", "|"),
    ("OMP_NUM_THREADS=1 python t.py", "OMP_NUM_THREADS=..."),
    ("python train.py data/*.csv", "*"), ("python ~/train.py", "~"), ("python t.py `date`", "`"),
])
def test_shell_lines_are_refused_under_a_launcher_with_how_to_write_them(line: str, found: str) -> None:
    assert shell_syntax(line) == found
    with pytest.raises(ValueError, match=r"\$CB_LAUNCH python train.py"):
        classify_run(line, "accelerate")
    assert classify_run(line, "none").kind == "bash"  # the same line is plain bash without a launcher
    assert classify_run(f"{line} && $CB_LAUNCH python train.py", "torchrun").kind == "bash"


def test_quoted_shell_characters_are_arguments() -> None:
    assert shell_syntax("python -c 'import sys; print(sys.argv[1:] or \"$HOME\")' a*b") == "*"
    assert shell_syntax("python -c 'import sys; print(\"a && b | c\")'") is None
    assert shell_syntax('python t.py --name "a b;c"') is None
    with pytest.raises(ValueError, match="needs SCRIPT, -m MODULE or -c CODE"):
        classify_run("python -u", "accelerate")


def test_the_spec_refuses_a_meaningless_run_line_naming_file_line_and_field(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("name: t\nworkdir: .\nrun: cd src && python train.py\ndistribution: accelerate\n")
    with pytest.raises(InvalidSpec) as info:
        load_job_spec(spec)
    text = str(info.value)
    assert text.startswith(f"{spec}:3: run: shell syntax '&&'"), text
    assert "$CB_LAUNCH python train.py" in text
    proc = subprocess.run([*CLI, "run", str(spec), "--dry-run"], capture_output=True, text=True, env=clean_env())
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and f"{spec}:3: run:" in proc.stderr, proc.stderr
    with pytest.raises(ValueError, match="shell syntax '\\$'"):  # pydantic's ValidationError, built in Python
        JobSpec(name="t", run="echo $HOME", distribution="torchrun")
    JobSpec(name="t", run="echo $HOME")  # distribution none: bash


def test_launcher_plans_for_each_kind_of_line() -> None:
    ctx = RuntimeContext.detect(LOCAL_ENV)  # torchrun, 2 processes on one node
    plan = build_launch(ctx, ["cd src && $CB_LAUNCH python train.py"], python=PY)
    assert plan.launcher == "bash" and plan.argv[1:] == ["-c", "cd src && $CB_LAUNCH python train.py"]
    assert plan.env["CB_LAUNCH"].endswith("--")
    plan = build_launch(ctx, ["python -c 'print(1)' x"], python=PY)
    assert plan.launcher == "torchrun" and plan.script is not None and plan.argv[-2:] == [plan.script[0], "x"]
    assert plan.script[1].endswith("print(1)")
    plan = build_launch(replace(ctx, distribution="none"), ["echo $HOME"], python=PY)
    assert plan.launcher == "bash" and plan.argv[-1] == "echo $HOME"
    single = replace(ctx, processes_per_node=1)
    assert build_launch(single, ["python -c 'print(1)'"], python=PY).argv == [PY, "-c", "print(1)"]
    with pytest.raises(UserError, match="shell syntax"):
        build_launch(ctx, ["cd src && python train.py"], python=PY)


def _project(tmp_path: Path, run: str, distribution: str) -> Path:
    (tmp_path / "src").mkdir(parents=True)
    (tmp_path / "src" / "train.py").write_text(
        "import os, sys\n"
        "rank = os.environ.get('RANK', '0')\n"
        "print(f'RESULT rank={rank} cwd={os.path.basename(os.getcwd())} args={sys.argv[1:]}', flush=True)\n")
    spec = tmp_path / "job.yaml"
    spec.write_text(json.dumps({"name": "runline", "workdir": ".", "run": run, "distribution": distribution,
                                "resources": {"processes": 1}, "env": {"GREETING": "hi there"}}))
    return spec


#: (distribution, run line, what every platform must print)
LINES = [
    ("none", "cd src && python train.py \"$GREETING\" && echo \"home-set=${HOME:+yes}\"",
     ["RESULT rank=0 cwd=src args=['hi there']", "home-set=yes"]),
    ("accelerate", "python -c 'import sys; print(\"RESULT code\", sys.argv[1:])' a1", ["RESULT code ['a1']"]),
    ("torchrun", "cd src && $CB_LAUNCH python train.py --x \"$GREETING\"",
     ["RESULT rank=0 cwd=src args=['--x', 'hi there']"]),
]


@pytest.mark.parametrize(("distribution", "run", "expected"), LINES, ids=[d for d, _, _ in LINES])
@pytest.mark.parametrize("where", ["local", "sagemaker", "vertex", "azureml"])
def test_the_same_line_prints_the_same_everywhere(tmp_path: Path, where: str, distribution: str, run: str,
                                                  expected: list[str], monkeypatch: pytest.MonkeyPatch,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    """In-process (cb.run / emulate()): the job's processes are real, the CLI start-up is skipped."""
    spec = load_job_spec(_project(tmp_path / "job", run, distribution))
    for name in [k for k in os.environ if k.startswith(("CB_", "SM_", "RANK", "WORLD_SIZE", "MASTER_"))]:
        monkeypatch.delenv(name)
    if where == "local":
        local_compute(monkeypatch)
        job = cb.run(spec, wait=True, timeout=120)
        out = "\n".join(job.logs())
        ok = job.state.value == "SUCCEEDED"
    else:
        from cloudbridge.emulate import emulate

        result = emulate(spec, where, root=str(tmp_path / "root"), timeout=120)
        captured = capfd.readouterr()
        out, ok = captured.out + captured.err, result.exit_code == 0
    assert ok, out[-3000:]
    for line in expected:
        assert line in out, out[-3000:]
