"""Cost of shipping the workdir to a local job, against the same job without code, in the same run.

    python benchmarks/local_submit.py [--repeat 9]

A local job runs in its own copy of the workdir package (``jobs/<id>/code/``). This submits a
trivial job (``run: true``) with ``workdir: null`` (the baseline: nothing packaged) and with two
workdirs -- small (20 files, 40 KB) and big (2,000 files, 100 MB; plus a ``.venv`` that is not
shipped) -- interleaved, and prints the median ``submit()`` time and submit -> ``SUCCEEDED`` time,
and the ratio to the baseline. The first submit of a workdir also hashes it (cached afterwards).
Target: a small workdir adds at most 20% to submit -> SUCCEEDED.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

TARGET_RATIO_SMALL = 1.2


def _make(root: Path, files: int, size: int) -> Path:
    for i in range(files):
        folder = root / f"pkg{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.py").write_bytes(os.urandom(size))
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "pyvenv.cfg").write_text("home = /usr\n")
    for i in range(200):
        (root / ".venv" / "lib" / f"m{i}.py").write_text("x" * 1000)
    return root


def main() -> None:
    """Run the benchmark and print one line per case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cb-bench-local-"))
    os.environ["CLOUDBRIDGE_HOME"] = str(work / "home")
    os.environ["CLOUDBRIDGE_FAKE_GPUS"] = "0"
    os.environ["CLOUDBRIDGE_LOCAL_POLL_INTERVAL"] = "0.05"
    from cloudbridge.backends import get_provider
    from cloudbridge.specs import JobSpec

    compute = get_provider("local").compute
    cases: dict[str, str | None] = {
        "no workdir (baseline)": None,
        "small workdir (20 files, 40 KB)": str(_make(work / "small", 20, 2000)),
        "big workdir (2000 files, 100 MB)": str(_make(work / "big", 2000, 50_000)),
    }
    submit: dict[str, list[float]] = {name: [] for name in cases}
    total: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, workdir in cases.items():
            started = time.perf_counter()
            job = compute.submit(JobSpec(name="bench", run="true", workdir=workdir))
            submitted = time.perf_counter()
            while not compute.get(job.id).state.is_terminal:
                time.sleep(0.01)
            ended = time.perf_counter()
            assert compute.get(job.id).state.value == "SUCCEEDED"
            submit[name].append(submitted - started)
            total[name].append(ended - started)
    base = statistics.median(total["no workdir (baseline)"])
    print(f"local submit, median of {args.repeat} (os.cpu_count()={os.cpu_count()})")
    for name in cases:
        med = statistics.median(total[name])
        print(f"  {name:34} submit() {statistics.median(submit[name]) * 1000:6.0f} ms   submit->SUCCEEDED "
              f"{med * 1000:6.0f} ms   x{med / base:.2f} of baseline (first {total[name][0] * 1000:.0f} ms)")
    ratio = statistics.median(total["small workdir (20 files, 40 KB)"]) / base
    verdict = "met" if ratio <= TARGET_RATIO_SMALL else "MISSED"
    print(f"target: small workdir <= x{TARGET_RATIO_SMALL} of baseline: {verdict} (x{ratio:.2f})")


if __name__ == "__main__":
    main()
