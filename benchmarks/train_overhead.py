"""Training overhead: ``cloudbridge-finetune`` vs a minimal hand-written accelerate loop.

Both train the same model (a small BERT from ``--model-config``, or ``--model minilm``) on the same
tokenised data with the same batch size, optimizer and schedule, as separate processes started
alternately (A B A B ...) in one run, so machine load hits both alike. Each reports the samples/s of
its training loop (evaluation, model loading and the final save are outside the timed region for
both; cloudbridge-finetune's epoch-end checkpoint is too, its logging, gradient-accumulation
bookkeeping and progress reporting are inside). Target: ratio >= 0.97.

    python benchmarks/train_overhead.py                  # prints a table and the median ratio
    python benchmarks/train_overhead.py --repeats 5 --plot docs/img/train_overhead.png --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMALL_BERT = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024,
              "vocab_size": 2000}
WORDS = ("the film plot cast meal room phone book staff music ending was is felt good great awful dull superb "
         "poor lovely boring clumsy charming and but not really quite very overall honestly").split()


def make_data(directory: Path, count: int, seed: int = 0) -> Path:
    """A CSV of ``count`` random 12-20-word sentences with binary labels."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "train.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for _ in range(count):
            words = [rng.choice(WORDS) for _ in range(rng.randint(12, 20))]
            writer.writerow([" ".join(words), rng.choice(["pos", "neg"])])
    return path


def _env() -> dict[str, str]:
    drop = ("CB_", "SM_", "AIP_", "AZUREML_", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def run_finetune(args: argparse.Namespace, data: Path, work: Path) -> float:
    """samples/s of cloudbridge-finetune's training loop (from its metrics.json)."""
    out = Path(tempfile.mkdtemp(prefix="ft-", dir=work))
    cmd = [sys.executable, "-m", "cloudbridge.training.cli", "--task", "text-classification", *_model_args(args),
           "--train", str(data), "--eval-fraction", "0.05", "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--max-seq-len", str(args.max_seq_len), "--seed", "1",
           "--output-dir", str(out), "--model-dir", str(out / "model"), "--checkpoint-dir", str(out / "ckpt")]
    subprocess.run(cmd, check=True, env=_env(), stdout=subprocess.DEVNULL)
    return float(json.loads((out / "metrics.json").read_text())["train_samples_per_second"])


def run_baseline(args: argparse.Namespace, data: Path) -> float:
    """samples/s of the minimal loop (this script with ``--worker``)."""
    cmd = [sys.executable, __file__, "--worker", "--data", str(data), "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--max-seq-len", str(args.max_seq_len), "--model", args.model]
    out = subprocess.run(cmd, check=True, env=_env(), capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["samples_per_second"])


def _model_args(args: argparse.Namespace) -> list[str]:
    return ["--model", "minilm"] if args.model == "minilm" else ["--model-config", json.dumps(SMALL_BERT)]


def worker(args: argparse.Namespace) -> None:
    """The hand-written baseline: prepare, then forward/backward/step/schedule, nothing else."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from torch.utils.data import DataLoader
    from transformers import get_linear_schedule_with_warmup

    from cloudbridge.training import data as data_mod
    from cloudbridge.training.features import Collator, encode
    from cloudbridge.training.models import load_model, resolve_model

    accelerator = Accelerator()
    set_seed(1)
    dataset = data_mod.load_dataset(args.data, "text-classification")
    train, _ = data_mod.split_eval(dataset, 0.05, 1)  # the same 95% cloudbridge-finetune trains on
    labels = sorted(train.labels())
    source = resolve_model(args.model if args.model == "minilm" else None,
                           None if args.model == "minilm" else json.dumps(SMALL_BERT))
    model, tokenizer = load_model(source, "text-classification", labels, (e.text for e in train.examples),
                                  args.max_seq_len)
    rows = encode(train.examples, "text-classification", tokenizer, labels, args.max_seq_len)
    loader = DataLoader(rows, batch_size=args.batch_size, shuffle=True, collate_fn=Collator(tokenizer.pad_token_id))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    total = len(loader) * args.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * total), total)
    model.train()
    samples = 0
    started = time.perf_counter()
    for _ in range(args.epochs):
        for batch in loader:
            loss = model(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            samples += batch["input_ids"].shape[0] * accelerator.num_processes
    elapsed = time.perf_counter() - started
    print(json.dumps({"samples_per_second": samples / elapsed, "samples": samples, "seconds": elapsed}))


def plot(results: list[dict], path: str) -> None:
    """Bars of samples/s per repeat for both programs, with the median ratio in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratio = statistics.median(r["ratio"] for r in results)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    xs = range(len(results))
    ax.bar([x - 0.2 for x in xs], [r["baseline"] for r in results], 0.4, label="hand-written accelerate loop")
    ax.bar([x + 0.2 for x in xs], [r["finetune"] for r in results], 0.4, label="cloudbridge-finetune")
    ax.set_xticks(list(xs), [f"run {i + 1}" for i in xs])
    ax.set_ylabel("training samples / s")
    ax.set_title(f"Training overhead: median ratio {ratio:.3f} (target >= 0.97)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="small", choices=("small", "minilm"))
    parser.add_argument("--samples", type=int, default=1200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-seq-len", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plot", help="write a PNG bar chart here")
    parser.add_argument("--json", help="write the raw results here")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    work = Path(tempfile.mkdtemp(prefix="cb-train-overhead-"))
    data = make_data(work / "data", args.samples)
    results = []
    print(f"model={args.model} samples={args.samples} epochs={args.epochs} batch={args.batch_size} "
          f"max_seq_len={args.max_seq_len} repeats={args.repeats} cpus={os.cpu_count()}")
    print(f"{'run':>4} {'baseline s/s':>13} {'finetune s/s':>13} {'ratio':>7}")
    for index in range(args.repeats):
        # alternate which program goes first so a drifting machine load favours neither
        if index % 2 == 0:
            base, tuned = run_baseline(args, data), run_finetune(args, data, work)
        else:
            tuned, base = run_finetune(args, data, work), run_baseline(args, data)
        results.append({"baseline": base, "finetune": tuned, "ratio": tuned / base})
        print(f"{index + 1:>4} {base:>13.1f} {tuned:>13.1f} {tuned / base:>7.3f}", flush=True)
    ratio = statistics.median(r["ratio"] for r in results)
    print(f"median ratio cloudbridge-finetune / hand-written loop: {ratio:.3f} (target >= 0.97)")
    if args.plot:
        plot(results, args.plot)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results, "median_ratio": ratio},
                                              indent=2))


if __name__ == "__main__":
    main()
