"""Start-up time of the CLI as a ratio to bare Python (and to SkyPilot's ``sky --help``), same run.

    python benchmarks/startup.py [--repeat 21] [--markdown] [--sky PATH_TO_sky]

Runs each command ``--repeat`` times, interleaved (so load on a shared machine affects every
command alike), and prints the median and best wall time and the ratio of the medians to
``python -c pass``. Ratios hold across machines; seconds do not. Output goes to a pipe, as in
scripts; the ``(tty)`` rows run the command on a pseudo-terminal, where help is drawn with rich.
``jobs``, ``status`` and ``cancel`` run against a throwaway ``CLOUDBRIDGE_HOME`` holding one
finished local job (``cancel`` of a finished job changes nothing, so it can repeat).

SkyPilot is measured when ``sky`` is found (``--sky``, ``$SKY``, ``/work/skyvenv/bin/sky`` or
``PATH``); install it in a separate venv so its dependencies do not slow cloudbridge down:
``python -m venv ~/skyvenv && ~/skyvenv/bin/pip install skypilot``.

Targets (issue 18): ``--help``, ``--version`` and ``providers`` at most 8x bare Python and
``--help`` at least 15x faster than ``sky --help``; ``jobs``, ``status``, ``cancel`` at most 12x.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TARGETS = {"--help": 8.0, "--version": 8.0, "providers": 8.0, "jobs": 12.0, "status": 12.0, "cancel": 12.0}
SKY_FACTOR = 15.0


def _cloudbridge() -> list[str]:
    script = Path(sys.executable).parent / "cloudbridge"
    if script.exists():
        return [str(script)]
    found = shutil.which("cloudbridge")
    return [found] if found else [sys.executable, "-m", "cloudbridge.cli"]


def _sky(explicit: str | None) -> str | None:
    for candidate in (explicit, os.environ.get("SKY"), "/work/skyvenv/bin/sky", shutil.which("sky")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _time_once(argv: list[str], tty: bool, env: dict[str, str]) -> float:
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


def _finished_job(cb: list[str], env: dict[str, str], folder: Path) -> str:
    """Submit one tiny local job in ``folder`` and wait for it; returns its id."""
    folder.mkdir()
    spec = folder / "job.yaml"
    spec.write_text(textwrap.dedent("""\
        name: startup-bench
        provider: local
        run: echo hello
        distribution: none
    """), encoding="utf-8")
    out = subprocess.run([*cb, "run", "--detach", str(spec)], capture_output=True, text=True, env=env, check=True)
    job_id = out.stdout.strip().splitlines()[-1].split()[0]
    subprocess.run([*cb, "status", job_id, "--wait"], capture_output=True, env=env, check=True)
    return job_id


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--sky", help="path of SkyPilot's sky script (default: looked for)")
    args = parser.parse_args()

    cb = _cloudbridge()
    home = Path(tempfile.mkdtemp(prefix="cb-startup-"))
    env = {**os.environ, "COLUMNS": "100", "CLOUDBRIDGE_HOME": str(home / "home")}
    # a user's Python writes .pyc files; a CI or container setting that forbids it would make every
    # run recompile cloudbridge's own modules (about 80 ms here) and measure that instead
    bytecode_off = env.pop("PYTHONDONTWRITEBYTECODE", None) is not None
    try:
        job_id = _finished_job(cb, env, home / "job")
        cases: list[tuple[str, list[str], bool]] = [
            ("python -c pass", [sys.executable, "-c", "pass"], False),
            ("cloudbridge --version", [*cb, "--version"], False),
            ("cloudbridge --help", [*cb, "--help"], False),
            ("cloudbridge providers", [*cb, "providers"], False),
            ("cloudbridge jobs", [*cb, "jobs"], False),
            ("cloudbridge status", [*cb, "status", job_id], False),
            ("cloudbridge cancel", [*cb, "cancel", job_id], False),
            ("cloudbridge --help (tty)", [*cb, "--help"], True),
            ("cloudbridge providers (tty)", [*cb, "providers"], True),
        ]
        sky = _sky(args.sky)
        if sky:
            cases.append(("sky --help", [sky, "--help"], False))
        if os.name != "posix":
            cases = [c for c in cases if not c[2]]
        for _, argv, tty in cases:  # warm the OS file cache and .pyc files
            _time_once(argv, tty, env)
        samples: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(args.repeat):
            for name, argv, tty in cases:
                samples[name].append(_time_once(argv, tty, env))
    finally:
        shutil.rmtree(home, ignore_errors=True)

    base = statistics.median(samples["python -c pass"])
    sky_median = statistics.median(samples["sky --help"]) if "sky --help" in samples else None
    print(
        f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, {args.repeat} repetitions, interleaved; "
        f"sky: {sky or 'not installed'}"
        + ("; PYTHONDONTWRITEBYTECODE unset for the runs (.pyc written, as for a user)" if bytecode_off else "")
    )
    header = ("command", "median s", "best s", "x bare python", "sky --help / this", "target")
    rows = []
    for name, values in samples.items():
        median = statistics.median(values)
        ratio = median / base
        words = name.split()
        key = words[1] if words[0] == "cloudbridge" else ""
        target = ""
        if key in TARGETS and "(tty)" not in name:
            met = ratio <= TARGETS[key]
            target = f"{'met' if met else 'MISSED'} (<= {TARGETS[key]:g}x)"
            if key == "--help" and sky_median is not None:
                faster = sky_median / median >= SKY_FACTOR
                target += f"; {'met' if faster else 'MISSED'} (>= {SKY_FACTOR:g}x faster than sky)"
        versus = f"{sky_median / median:.1f}" if sky_median is not None else ""
        rows.append((name, f"{median:.3f}", f"{min(values):.3f}", f"{ratio:.2f}", versus, target))
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
