"""Turning examples into model inputs: tokenisation, label alignment, padding, epoch-seeded order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from cloudbridge.training.data import Example

__all__ = ["Collator", "EpochSampler", "encode"]

IGNORE_INDEX = -100


def encode(examples: Sequence[Example], task: str, tokenizer: Any, labels: list[str], max_length: int) -> list[dict]:
    """Tokenise ``examples`` (unpadded) with their label ids.

    Token classification labels the first sub-word of each word and masks the rest (and the special
    tokens) with ``-100``, as the CoNLL evaluation counts words, not sub-words.
    """
    label2id = {label: i for i, label in enumerate(labels)}
    if task == "text-classification":
        enc = tokenizer([ex.text for ex in examples], truncation=True, max_length=max_length)
        return [
            {**{k: enc[k][i] for k in enc.keys()}, "labels": label2id[ex.label]} for i, ex in enumerate(examples)
        ]
    enc = tokenizer([ex.tokens for ex in examples], is_split_into_words=True, truncation=True, max_length=max_length)
    rows = []
    for i, ex in enumerate(examples):
        previous = None
        aligned = []
        for word in enc.word_ids(i):
            if word is None or word == previous:
                aligned.append(IGNORE_INDEX)
            else:
                aligned.append(label2id[ex.tags[word]])
            previous = word
        rows.append({**{k: enc[k][i] for k in enc.keys()}, "labels": aligned})
    return rows


class Collator:
    """Pads a batch to its longest row: ``pad_id`` for ids, 0 for masks, ``-100`` for token labels."""

    def __init__(self, pad_id: int) -> None:
        """Pad ``input_ids`` with ``pad_id`` (the tokenizer's pad token id)."""
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict:
        """One batch of ``torch.long`` tensors from the rows of :func:`encode`, each padded to the longest.

        Sequence-level labels (an int per row) become a 1-D tensor; token labels are padded with ``-100``
        so the loss and the metrics ignore the padding.
        """
        import torch

        width = max(len(row["input_ids"]) for row in rows)
        batch: dict[str, Any] = {}
        for key in rows[0]:
            if key == "labels" and not isinstance(rows[0]["labels"], list):
                batch[key] = torch.tensor([row[key] for row in rows], dtype=torch.long)
                continue
            fill = {"input_ids": self.pad_id, "labels": IGNORE_INDEX}.get(key, 0)
            batch[key] = torch.tensor([row[key] + [fill] * (width - len(row[key])) for row in rows], dtype=torch.long)
        return batch


class EpochSampler:
    """A shuffled order of ``size`` indices that depends only on ``seed`` and the epoch.

    Nothing else draws from its generator, so a job resumed mid-epoch sees exactly the order the
    uninterrupted job saw (accelerate shards it across processes and skips consumed batches).
    """

    def __init__(self, size: int, seed: int) -> None:
        """Orders of ``range(size)``, one per epoch, all derived from ``seed``; starts at epoch 0."""
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the order of ``epoch``."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        """The shuffled indices of the current epoch (the same on every process and every restart)."""
        import torch

        generator = torch.Generator().manual_seed(self.seed * 1000003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        """The number of indices per epoch."""
        return self.size
