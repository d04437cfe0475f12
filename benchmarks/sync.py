"""Benchmark: ``cloudbridge storage sync`` vs ``aws s3 sync`` against the same moto server.

Data: 500 files of 4 KiB plus 2 files of 32 MiB. For each tool, in the same run and against the same
moto server on 127.0.0.1: a first sync into a fresh prefix, then a no-op re-sync. Both CLIs run as
the command a user types (a subprocess, interpreter and SDK start-up included). A third row,
"cloudbridge SDK (warm)", times ``cb.sync`` inside one Python process whose storage client is
already built (a pipeline or notebook calling the SDK): the engine without start-up. Each
measurement is repeated ``--repeat`` times (fresh prefixes each time) and the median is reported,
with the ratio ``aws time / cloudbridge time`` (targets: first sync >= 1.5x, no-op re-sync >= 3x).
The start-up floor (interpreter, ``cloudbridge --help``, boto3 + an S3 client + one listing) is
timed in the same run: it bounds what any Python CLI built on boto3 can reach for a no-op.

    python benchmarks/sync.py [--repeat 3] [--chart docs/img/sync-benchmark.png] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from _common import LARGE_FILES, LARGE_SIZE, SMALL_FILES, SMALL_SIZE, console_script, make_data, timed

WARM = """
import json, sys, time
from cloudbridge.transfers.resolve import resolve
from cloudbridge.transfers.sync import sync

src, bucket, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
storage, _ = resolve(f"s3://{bucket}/warm")
list(storage.list(f"s3://{bucket}/warm"))  # build the client before timing
out = {"first": [], "noop": []}
for rep in range(reps):
    dst = f"s3://{bucket}/sdk-{rep}"
    for key in ("first", "noop"):
        started = time.perf_counter()
        result = sync(src, dst, progress=False)
        out[key].append(time.perf_counter() - started)
        assert result.ok, result.failures
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chart", default=None, help="write a bar chart PNG here")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = parser.parse_args()

    from cloudbridge.testing.emulators import moto_server

    aws = console_script("aws")
    with tempfile.TemporaryDirectory(prefix="cb-bench-") as tmp, moto_server() as moto:
        data = Path(tmp) / "data"
        total = make_data(data)
        env = {**os.environ, **moto.env(), "CLOUDBRIDGE_HOME": str(Path(tmp) / "home"), "NO_COLOR": "1"}
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        moto.client("s3").create_bucket(Bucket=bucket)
        tools = {
            "cloudbridge": lambda dst: [sys.executable, "-m", "cloudbridge.cli", "storage", "sync", str(data), dst],
            "aws s3 sync": lambda dst: [aws, "s3", "sync", str(data), dst, "--only-show-errors"],
        }
        results: dict[str, dict[str, list[float]]] = {name: {"first": [], "noop": []} for name in tools}
        for rep in range(args.repeat):
            for name, command in tools.items():  # alternate tools within a repetition
                dst = f"s3://{bucket}/{name.split()[0]}-{rep}"
                results[name]["first"].append(timed(command(dst), env))
                results[name]["noop"].append(timed(command(dst), env))
        warm = subprocess.run(
            [sys.executable, "-c", WARM, str(data), bucket, str(args.repeat)], env=env, capture_output=True, text=True
        )
        if warm.returncode != 0:
            raise SystemExit(f"warm SDK run failed:\n{warm.stderr[-2000:]}")
        results["cloudbridge SDK (warm)"] = json.loads(warm.stdout)
        floor = start_up_floor(env, bucket, args.repeat)
        medians = {name: {k: statistics.median(v) for k, v in runs.items()} for name, runs in results.items()}
    ratios = {k: medians["aws s3 sync"][k] / medians["cloudbridge"][k] for k in ("first", "noop")}
    sdk_ratios = {k: medians["aws s3 sync"][k] / medians["cloudbridge SDK (warm)"][k] for k in ("first", "noop")}
    report = {
        "data": f"{SMALL_FILES} x {SMALL_SIZE // 1024} KiB + {LARGE_FILES} x {LARGE_SIZE // 2**20} MiB",
        "bytes": total,
        "repeat": args.repeat,
        "median_seconds": medians,
        "all_seconds": results,
        "ratio_aws_over_cloudbridge": ratios,
        "ratio_aws_over_cloudbridge_sdk_warm": sdk_ratios,
        "start_up_floor_seconds": floor,
        "load_average": os.getloadavg(),
        "targets": {"first": 1.5, "noop": 3.0},
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"data: {report['data']} ({total / 2**20:.1f} MiB), moto server on 127.0.0.1, median of {args.repeat}")
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        for name, m in medians.items():
            print(f"  {name:<24} first sync {m['first']:6.2f} s   no-op re-sync {m['noop']:6.2f} s")
        for name, seconds in floor.items():
            print(f"  floor: {name:<48} {seconds:6.2f} s")
        for key, target in report["targets"].items():
            verdict = "meets" if ratios[key] >= target else "MISSES"
            print(
                f"  {key:<6} ratio aws/cloudbridge CLI = {ratios[key]:.2f}x ({verdict} target {target}x);"
                f" aws/SDK (warm) = {sdk_ratios[key]:.2f}x"
            )
    if args.chart:
        chart(medians, ratios, args.chart)
    if args.markdown:
        print(markdown(report))


FLOOR_LIST = "import boto3, sys; boto3.client('s3').list_objects_v2(Bucket=sys.argv[1], Prefix='cloudbridge-0/')"


def start_up_floor(env: dict[str, str], bucket: str, repeat: int) -> dict[str, float]:
    """Median seconds of what every run of the CLI pays before its sync logic: the interpreter,
    the CLI's own start-up (``--help``), and boto3 creating an S3 client and listing the prefix."""
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "cloudbridge --help": [sys.executable, "-m", "cloudbridge.cli", "--help"],
        "import boto3 + S3 client + one listing": [sys.executable, "-c", FLOOR_LIST, bucket],
    }
    return {name: statistics.median(timed(cmd, env) for _ in range(repeat)) for name, cmd in commands.items()}


def markdown(report: dict) -> str:
    """The results as a markdown table (for docs/benchmarks.md)."""
    medians, ratios = report["median_seconds"], report["ratio_aws_over_cloudbridge"]
    sdk = report["ratio_aws_over_cloudbridge_sdk_warm"]
    lines = ["| tool | first sync s | no-op re-sync s |", "|---|---|---|"]
    for name, m in medians.items():
        lines.append(f"| {name} | {m['first']:.2f} | {m['noop']:.2f} |")
    lines.append(
        f"| **aws / cloudbridge CLI** | **{ratios['first']:.2f}x** (target 1.5x) |"
        f" **{ratios['noop']:.2f}x** (target 3x) |"
    )
    lines.append(f"| aws / cloudbridge SDK (warm) | {sdk['first']:.2f}x | {sdk['noop']:.2f}x |")
    lines += ["", "| start-up floor (same run) | s |", "|---|---|"]
    lines += [f"| {name} | {seconds:.2f} |" for name, seconds in report["start_up_floor_seconds"].items()]
    return "\n".join(lines)


def chart(medians: dict[str, dict[str, float]], ratios: dict[str, float], path: str) -> None:
    """A grouped bar chart: seconds per tool for the first sync and the no-op re-sync."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["first sync", "no-op re-sync"]
    keys = ["first", "noop"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.27
    tools = (("cloudbridge", "#2b7bba"), ("cloudbridge SDK (warm)", "#9ecae1"), ("aws s3 sync", "#f28e2b"))
    for offset, (name, color) in zip((-width, 0.0, width), tools, strict=True):
        values = [medians[name][k] for k in keys]
        label = "cloudbridge CLI" if name == "cloudbridge" else name
        bars = ax.bar([i + offset for i in range(2)], values, width, label=label, color=color)
        ax.bar_label(bars, fmt="%.2f s", fontsize=9)
    ax.set_xticks(
        range(2), [f"{lab}\n(aws/cloudbridge CLI = {ratios[k]:.1f}x)" for lab, k in zip(labels, keys, strict=True)]
    )
    ax.set_ylabel("seconds (median, lower is better)")
    ax.set_title("500 x 4 KiB + 2 x 32 MiB into S3 (moto server)")
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
