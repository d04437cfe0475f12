"""The detached runner of one dirstore job: ``python -m cloudbridge_dirstore.runner JOB_FOLDER``.

It stages the code and inputs, runs the command in its own process group with the job's log as
stdout/stderr, uploads the outputs (also when the command failed) and records the final state.
A ``cancel`` file in the job folder asks it to stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cloudbridge_dirstore.jobstate import read_state, update_state

IGNORE = shutil.ignore_patterns(".git", "__pycache__", ".venv", "*.pyc")


def _ignore_for(root: Path) -> Any:
    """Skip the usual clutter, and dirstore's own root when it lies inside the workdir."""
    real_root = os.path.realpath(root)

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(IGNORE(directory, names))
        skipped.update(n for n in names if os.path.realpath(os.path.join(directory, n)) == real_root)
        return skipped

    return ignore


def _storage(root: Path) -> Any:
    from cloudbridge_dirstore.storage import DirStorage

    return DirStorage(root)


def _stage_input(root: Path, source: str, target: Path) -> None:
    """Copy a dir:// object or prefix, or a local path, to ``target``."""
    from cloudbridge.uri import parse_uri

    uri = parse_uri(source)
    if uri.is_local:
        if os.path.isdir(uri.path):
            shutil.copytree(uri.path, target, ignore=_ignore_for(root))
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(uri.path, target / os.path.basename(uri.path))
        return
    from cloudbridge.transfers.download import download

    download(uri, target, storage=_storage(root))  # listed keys checked: nothing lands outside target


def _upload_output(root: Path, folder: Path, destination: str) -> None:
    from cloudbridge.uri import parse_uri

    uri = parse_uri(destination)
    if not folder.exists():
        return
    if uri.is_local:
        shutil.copytree(folder, uri.path, dirs_exist_ok=True)
        return
    storage = _storage(root)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            storage.upload(path, uri.child(path.relative_to(folder).as_posix()))


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run(folder: Path) -> None:
    """Run the job in ``folder`` to completion and record its final state."""
    state = read_state(folder)
    spec: dict[str, Any] = state["spec"]
    root = Path(state["root"])
    log = folder / "log.txt"
    if (folder / "cancel").exists():
        update_state(folder, state="CANCELLED", reason="cancelled before it started")
        return
    update_state(folder, state="STARTING")
    code, outputs = folder / "code", folder / "outputs"
    env = {**os.environ, **spec.get("env", {})}
    env.update(
        CB_JOB_ID=state["id"],
        CB_PLATFORM="dirstore",
        CB_NUM_PROCESSES="1",
        CB_OUTPUT_DIR=str(outputs),
        CB_MODEL_DIR=str(outputs / "model"),
        CB_CHECKPOINT_DIR=str(folder / "checkpoints"),
    )
    try:
        if state.get("workdir"):
            shutil.copytree(state["workdir"], code, ignore=_ignore_for(root))
        else:
            code.mkdir()
        outputs.mkdir(exist_ok=True)
        for channel, source in spec.get("inputs", {}).items():
            target = folder / "inputs" / channel
            _stage_input(root, source, target)
            env[f"CB_INPUT_{channel.upper()}"] = str(target)
        for channel in spec.get("outputs", {}):
            (outputs / channel).mkdir(parents=True, exist_ok=True)
            env[f"CB_OUTPUT_{channel.upper()}"] = str(outputs / channel)
    except Exception as exc:  # noqa: BLE001 - any staging failure ends the job with a reason
        update_state(folder, state="FAILED", reason="staging the code or inputs failed", detail=str(exc)[:2000])
        return

    with open(log, "ab", buffering=0) as out:
        child = subprocess.Popen(
            ["bash", "-c", spec["run"]],
            cwd=code,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        update_state(folder, state="RUNNING", started_at=time.time(), pgid=child.pid)
        deadline = time.monotonic() + state["max_runtime"] if state.get("max_runtime") else None
        timed_out = False
        while child.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                timed_out = True
                _stop(child.pid, 2.0)
            time.sleep(0.05)
    code_ = child.returncode
    try:
        for channel, destination in spec.get("outputs", {}).items():
            _upload_output(root, outputs / channel, destination)
        upload_error = None
    except Exception as exc:  # noqa: BLE001
        upload_error = str(exc)
    if (folder / "cancel").exists():
        update_state(folder, state="CANCELLED", exit_code=code_, reason="cancelled by the user")
    elif timed_out:
        update_state(
            folder, state="FAILED", exit_code=code_, reason="max_runtime exceeded (stage: running)", detail=_tail(log)
        )
    elif code_ != 0:
        update_state(
            folder, state="FAILED", exit_code=code_, reason=f"the command exited with status {code_}", detail=_tail(log)
        )
    elif upload_error:
        update_state(folder, state="FAILED", exit_code=0, reason="uploading outputs failed", detail=upload_error)
    else:
        update_state(folder, state="SUCCEEDED", exit_code=0)


def _stop(pgid: int, grace: float) -> None:
    """SIGTERM the process group, then SIGKILL it after ``grace`` seconds."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    run(Path(sys.argv[1]))
