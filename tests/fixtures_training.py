"""Tiny data, a tiny model config and a clean environment for the training and emulation tests."""

from __future__ import annotations

import csv
import json
import os
import random
import sys
from pathlib import Path

TINY_CONFIG = json.dumps({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                          "intermediate_size": 64, "vocab_size": 500})
BIN = os.path.dirname(sys.executable)
POS = ["good", "great", "lovely", "superb", "fine", "charming"]
NEG = ["bad", "awful", "dull", "poor", "boring", "clumsy"]
NOUNS = ["film", "plot", "meal", "room", "phone", "book", "cast", "staff"]


def write_classification(directory: Path, n_train: int = 160, n_test: int = 40, seed: int = 0) -> Path:
    """``train.csv``/``test.csv`` of short reviews whose label follows the adjective (learnable in seconds)."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name, count in (("train.csv", n_train), ("test.csv", n_test)):
        with (directory / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            for _ in range(count):
                label = rng.choice(["pos", "neg"])
                adj = rng.choice(POS if label == "pos" else NEG)
                writer.writerow([f"the {rng.choice(NOUNS)} was {adj} and {rng.choice(NOUNS)} ok", label])
    return directory


def write_ner(directory: Path, n_train: int = 120, n_test: int = 30, seed: int = 0) -> Path:
    """``train.conll``/``test.conll`` with PER/ORG/LOC/MISC entities in fixed contexts."""
    rng = random.Random(seed)
    people, orgs, locs, misc = ["Anna Berg", "Omar Haddad", "Mei"], ["Siemens", "Deutsche Bank"], \
        ["Paris", "New York"], ["Olympics", "Nobel Prize"]
    directory.mkdir(parents=True, exist_ok=True)

    def tagged(name: str, kind: str) -> list[tuple[str, str]]:
        return [(w, ("B-" if i == 0 else "I-") + kind) for i, w in enumerate(name.split())]

    for filename, count in (("train.conll", n_train), ("test.conll", n_test)):
        lines = ["-DOCSTART- -X- -X- O", ""]
        for _ in range(count):
            sent = tagged(rng.choice(people), "PER") + [("joined", "O")] + tagged(rng.choice(orgs), "ORG")
            sent += [("in", "O")] + tagged(rng.choice(locs), "LOC") + [("after", "O"), ("the", "O")]
            sent += tagged(rng.choice(misc), "MISC") + [(".", "O")]
            lines += [f"{tok} NN O {tag}" for tok, tag in sent] + [""]
        (directory / filename).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any platform or launcher variables (tests run under all sorts of CI)."""
    drop = ("SM_", "AIP_", "AZUREML_", "AZ_BATCH", "AZURE_ML_", "CB_", "CLUSTER_SPEC", "TF_CONFIG", "RANK",
            "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_", "TORCHELASTIC_", "ACCELERATE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **extra)
    return env


def finetune_args(data: Path, out: Path, *extra: str) -> list[str]:
    """Arguments of a tiny text-classification fine-tune writing everything below ``out``."""
    return ["--task", "text-classification", "--model-config", TINY_CONFIG, "--train", str(data),
            "--output-dir", str(out), "--model-dir", str(out / "model"), "--checkpoint-dir", str(out / "ckpt"),
            "--batch-size", "8", "--learning-rate", "3e-3", "--log-steps", "5", *extra]
