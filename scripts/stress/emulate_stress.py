"""Stress ``cloudbridge emulate``: N runs per platform of a 2-node plain accelerate script beside a CPU hog,
with two emulations at once. Run by hand (not part of the test suite); prints one line per run and a summary
(passed/failed and wall time min/median/max per platform, the 1-minute load average sampled every 5 s).
Each failing run's whole output is kept in ``<base>/<platform>-<index>.out``.

    python scripts/stress/emulate_stress.py --runs 20 --parallel 2 --hogs 1 [--platforms sagemaker,vertex,azureml]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SCRIPT = """\
import os
import torch
from accelerate import Accelerator
acc = Accelerator()
total = acc.reduce(torch.tensor([acc.process_index + 1.0]), "sum").item()
expected = acc.num_processes * (acc.num_processes + 1) / 2
assert total == expected, (total, expected)
acc.wait_for_everyone()
print(f"rank {acc.process_index}/{acc.num_processes} ok total={total}", flush=True)
"""


def _hog(stop: float) -> None:
    x = 0
    while time.monotonic() < stop:
        x = (x * 31 + 7) % 1000003


def _job(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "allreduce.py").write_text(SCRIPT)
    spec = root / "job.yaml"
    spec.write_text("name: stress\nworkdir: .\nrun: python allreduce.py\ndistribution: accelerate\n"
                    "resources: {nodes: 2, processes: 1}\n")
    return spec


def _one(platform: str, index: int, base: Path, timeout: float) -> tuple[str, int, int, float, str]:
    spec = _job(base / f"{platform}-{index}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CB_", "SM_", "RANK", "WORLD_SIZE", "MASTER_"))}
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "cloudbridge.cli", "emulate", str(spec), "--as", platform,
                               "--root", str(base / f"root-{platform}-{index}")],
                              capture_output=True, text=True, env=env, timeout=timeout)
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out = 124, f"timeout: {(exc.stdout or b'')[-2000:]!r} {(exc.stderr or b'')[-2000:]!r}"
    return platform, index, code, time.monotonic() - started, out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--hogs", type=int, default=1)
    parser.add_argument("--platforms", default="sagemaker,vertex,azureml")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--base", help="folder for the runs (default: a new temporary folder)")
    args = parser.parse_args()
    print("command:", shlex.join([sys.executable, *sys.argv]), flush=True)
    base = Path(args.base) if args.base else Path(tempfile.mkdtemp(prefix="cb-stress-"))
    base.mkdir(parents=True, exist_ok=True)
    loads: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(5):
            loads.append(os.getloadavg()[0])

    threading.Thread(target=sample, daemon=True).start()
    began = time.monotonic()
    platforms = [p for p in args.platforms.split(",") if p]
    work = [(p, i) for i in range(args.runs) for p in platforms]
    hogs = [multiprocessing.Process(target=_hog, args=(time.monotonic() + 10 ** 6,), daemon=True)
            for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    failures = []
    took_by: dict[str, list[float]] = {p: [] for p in platforms}
    failed_by: dict[str, int] = {p: 0 for p in platforms}
    try:
        with ThreadPoolExecutor(args.parallel) as pool:
            for platform, index, code, took, out in pool.map(lambda w: _one(*w, base, args.timeout), work):
                print(f"{platform:<10} run {index:>2}: exit {code} in {took:5.1f}s "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
                took_by[platform].append(took)
                if code != 0:
                    failed_by[platform] += 1
                    failures.append((platform, index, code, out))
                    (base / f"{platform}-{index}.out").write_text(out)
    finally:
        done.set()
        for hog in hogs:
            hog.terminate()
    for platform, index, code, out in failures:
        print(f"\n===== {platform} run {index} exit {code}: last 40 lines =====")
        print("\n".join(out.splitlines()[-40:]))
    print()
    for platform in platforms:
        times = took_by[platform]
        if times:
            print(f"{platform:<10} {len(times) - failed_by[platform]}/{len(times)} passed; wall time per run "
                  f"min {min(times):.1f}s median {statistics.median(times):.1f}s max {max(times):.1f}s")
    if loads:
        print(f"load average (1 min, every 5 s): min {min(loads):.2f} mean {statistics.fmean(loads):.2f} "
              f"max {max(loads):.2f} on {os.cpu_count()} CPU(s)")
    print(f"total wall time {time.monotonic() - began:.0f}s")
    print(f"{len(work) - len(failures)}/{len(work)} passed ({args.parallel} at once, {args.hogs} CPU hog(s)); "
          f"folders under {base}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
