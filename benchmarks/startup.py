"""Startup time of the CLI against bare Python, measured in the same run.

    python benchmarks/startup.py [--repeat 21] [--markdown]

Runs each command ``--repeat`` times, interleaved (so load on a shared machine affects every
command alike), and prints the median and best wall time, and the ratio of the medians to
``python -c pass``. Output goes to a pipe, as in scripts; the ``(tty)`` rows run the command on
a pseudo-terminal, where tables and help are drawn with rich.
Targets: ``cloudbridge providers`` and ``cloudbridge --help`` at most 0.25 s and 3x bare Python.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 0.25
TARGET_RATIO = 3.0


def _cloudbridge() -> list[str]:
    script = Path(sys.executable).parent / "cloudbridge"
    if script.exists():
        return [str(script)]
    found = shutil.which("cloudbridge")
    return [found] if found else [sys.executable, "-m", "cloudbridge.cli"]


def _time_once(argv: list[str], tty: bool) -> float:
    env = {**os.environ, "COLUMNS": "100"}
    if tty:
        import pty

        leader, follower = pty.openpty()
        try:
            start = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=follower, stderr=subprocess.DEVNULL, env=env)
            os.close(follower)
            follower = -1
            while True:  # drain the terminal so the child never blocks on a full buffer
                try:
                    if not os.read(leader, 65536):
                        break
                except OSError:
                    break
            proc.wait()
            elapsed = time.perf_counter() - start
        finally:
            os.close(leader)
            if follower != -1:
                os.close(follower)
    else:
        start = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}")
    return elapsed


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()

    cb = _cloudbridge()
    cases: list[tuple[str, list[str], bool]] = [
        ("python -c pass", [sys.executable, "-c", "pass"], False),
        ("cloudbridge --version", [*cb, "--version"], False),
        ("cloudbridge --help", [*cb, "--help"], False),
        ("cloudbridge providers", [*cb, "providers"], False),
        ("cloudbridge --help (tty)", [*cb, "--help"], True),
        ("cloudbridge providers (tty)", [*cb, "providers"], True),
    ]
    if os.name != "posix":
        cases = [c for c in cases if not c[2]]
    for _, argv, tty in cases:  # warm the OS file cache and .pyc files
        _time_once(argv, tty)
    samples: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(args.repeat):
        for name, argv, tty in cases:
            samples[name].append(_time_once(argv, tty))

    base = statistics.median(samples["python -c pass"])
    print(
        f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, {args.repeat} repetitions, interleaved"
    )
    header = ("command", "median s", "best s", "x bare python", "target")
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        ratio = median / base
        target = ""
        if name.startswith(("cloudbridge --help", "cloudbridge providers")):
            met = median <= TARGET_SECONDS and ratio <= TARGET_RATIO
            target = f"{'met' if met else 'MISSED'} (<= {TARGET_SECONDS}s, <= {TARGET_RATIO:g}x)"
        rows.append((name, f"{median:.3f}", f"{min(values):.3f}", f"{ratio:.2f}", target))
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
