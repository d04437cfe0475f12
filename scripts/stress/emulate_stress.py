"""Stress ``cloudbridge emulate``: N runs per platform of a 2-node plain accelerate script beside a CPU hog,
with two emulations at once. Run by hand (not part of the test suite); prints one line per run and a summary.

    python scripts/stress/emulate_stress.py --runs 20 --parallel 2 --hogs 1 [--platforms sagemaker,vertex,azureml]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
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
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="cb-stress-"))
    platforms = [p for p in args.platforms.split(",") if p]
    work = [(p, i) for i in range(args.runs) for p in platforms]
    hogs = [multiprocessing.Process(target=_hog, args=(time.monotonic() + 10 ** 6,), daemon=True)
            for _ in range(args.hogs)]
    for hog in hogs:
        hog.start()
    failures = []
    try:
        with ThreadPoolExecutor(args.parallel) as pool:
            for platform, index, code, took, out in pool.map(lambda w: _one(*w, base, args.timeout), work):
                print(f"{platform:<10} run {index:>2}: exit {code} in {took:5.1f}s", flush=True)
                if code != 0:
                    failures.append((platform, index, code, out))
    finally:
        for hog in hogs:
            hog.terminate()
    for platform, index, code, out in failures:
        print(f"\n===== {platform} run {index} exit {code}: last 40 lines =====")
        print("\n".join(out.splitlines()[-40:]))
    print(f"\n{len(work) - len(failures)}/{len(work)} passed ({args.parallel} at once, {args.hogs} CPU hog(s)); "
          f"folders under {base}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
