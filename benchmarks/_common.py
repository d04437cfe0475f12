"""Shared pieces of the storage benchmarks (``s3_transfer.py``, ``sync.py``): the data tree, timing a
command, finding a console script, and the spread/machine fields every result carries.

The scripts run as ``python benchmarks/<name>.py``, so this folder is on ``sys.path`` and they import
this module as ``_common``.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SMALL_FILES, SMALL_SIZE = 500, 4 * 1024
LARGE_FILES, LARGE_SIZE = 2, 32 * 1024 * 1024


def make_data(root: Path) -> int:
    """Write the benchmark tree (``SMALL_FILES`` small files in 10 shards, ``LARGE_FILES`` large
    ones); return its size in bytes."""
    for i in range(SMALL_FILES):
        sub = root / f"shard{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"file{i:04d}.bin").write_bytes(os.urandom(SMALL_SIZE))
    for i in range(LARGE_FILES):
        (root / f"large{i}.bin").write_bytes(os.urandom(LARGE_SIZE))
    return SMALL_FILES * SMALL_SIZE + LARGE_FILES * LARGE_SIZE


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds one command takes; it must succeed."""
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return elapsed


def console_script(name: str) -> str:
    """Path of a console script: on ``PATH``, else next to this interpreter (the venv's ``bin``)."""
    return shutil.which(name) or str(Path(sys.executable).with_name(name))


def versus(times: dict[str, list[float]], suffix: str) -> tuple[float, float, dict[str, object]]:
    """Medians of a cloudbridge-vs-aws timing (``times`` keyed ``cloudbridge`` and ``aws``) and the
    result fields: both medians (keys ``cloudbridge<suffix>``, ``aws<suffix>``), the ratio
    aws / cloudbridge, every run, and the machine it ran on."""
    cb, ref = statistics.median(times["cloudbridge"]), statistics.median(times["aws"])
    fields: dict[str, object] = {
        f"cloudbridge{suffix}": round(cb, 3),
        f"aws{suffix}": round(ref, 3),
        "ratio_aws_over_cloudbridge": round(ref / cb, 2),
        "all_cloudbridge_s": [round(t, 3) for t in times["cloudbridge"]],
        "all_aws_s": [round(t, 3) for t in times["aws"]],
        "load_average": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    return cb, ref, fields
