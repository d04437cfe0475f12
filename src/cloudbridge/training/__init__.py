"""``cloudbridge-finetune``: the reference workload, written with accelerate.

Fine-tunes a BERT-style model for ``text-classification`` or ``token-classification`` on CSV, JSONL
or CoNLL files, on one CPU or many GPUs across nodes, on any platform (paths default from
:class:`cloudbridge.runtime.RuntimeContext`). Modules: :mod:`.data` (reading and checking files),
:mod:`.models` (model and tokenizer), :mod:`.features` (tokenisation, batching), :mod:`.metrics`,
:mod:`.checkpointing` (atomic checkpoints, resume), :mod:`.loop` (the training loop),
:mod:`.reporting` (metrics.json, progress), :mod:`.cli` (options). Importing this package does not
import torch.
"""

from __future__ import annotations

__all__: list[str] = []
