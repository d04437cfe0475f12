"""The default handler: Hugging Face text classification and token classification (NER).

Request (``Content-Type: application/json``)::

    {"inputs": "one text"}            {"inputs": ["text 1", "text 2"]}
    {"instances": ["text 1", {"text": "text 2"}]}          # Vertex AI's shape

or a ``text/plain`` body holding one text. Reply: one prediction per input, in order::

    text-classification:   {"predictions": [{"label": "positive", "score": 0.97}, ...]}
    token-classification:  {"predictions": [[{"entity": "B-PER", "score": 0.99, "word": "Ada",
                                              "start": 0, "end": 3, "index": 0}, ...], ...]}

Token classification reports one entry per word (the label of its first sub-token, words tagged
``O`` left out) with character offsets into the input text. The task comes from the config's
``architectures`` (``*ForSequenceClassification`` / ``*ForTokenClassification``) unless given.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cloudbridge.errors import InvalidSpec, NotFound
from cloudbridge.serving.handler import JSON_TYPE, Handler, RequestError, decode_json, media_type

__all__ = ["TASKS", "HFHandler", "detect_task", "parse_texts"]

TASKS = ("text-classification", "token-classification")
_SUFFIXES = {"ForSequenceClassification": "text-classification", "ForTokenClassification": "token-classification"}


def detect_task(model_dir: str | os.PathLike[str], task: str = "auto") -> str:
    """The task for ``model_dir``: ``task`` unless ``auto``, else read from ``config.json``."""
    if task != "auto":
        if task not in TASKS:
            raise InvalidSpec(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}", field="task")
        return task
    config_path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(config_path):
        raise NotFound(
            f"{model_dir} has no config.json, so it is not a Hugging Face model directory",
            hint="save the model with save_pretrained(), or give a handler (inference.py)",
        )
    try:
        with open(config_path, encoding="utf-8") as stream:
            architectures = json.load(stream).get("architectures") or []
    except (OSError, ValueError) as exc:
        raise InvalidSpec(f"cannot read config.json: {exc}", source=config_path) from exc
    for architecture in architectures:
        for suffix, found in _SUFFIXES.items():
            if str(architecture).endswith(suffix):
                return found
    raise InvalidSpec(
        f"cannot tell the task from architectures {architectures}",
        source=config_path,
        field="architectures",
        hint="pass --task text-classification or --task token-classification",
    )


def parse_texts(data: Any, max_inputs: int = 256) -> list[str]:
    """The texts of a decoded request (see the module docstring); a wrong shape is a 400."""
    if isinstance(data, str):
        return [data]
    if not isinstance(data, dict):
        raise RequestError(
            400, f'expected a JSON object like {{"inputs": ["text"]}}, got a JSON {_json_kind(data)}'
        )
    unknown = sorted(set(data) - {"inputs", "instances", "parameters"})
    if unknown:
        raise RequestError(400, f'unknown field {unknown[0]!r}; send "inputs" (or "instances")')
    if "inputs" in data:
        field = "inputs"
    elif "instances" in data:
        field = "instances"
    else:
        raise RequestError(400, 'missing field "inputs": send {"inputs": "text"} or {"inputs": ["t1", "t2"]}')
    value = data[field]
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise RequestError(400, f'"{field}" must be a string or a non-empty list of strings')
    if len(value) > max_inputs:
        raise RequestError(413, f'"{field}" has {len(value)} items; at most {max_inputs} per request')
    texts: list[str] = []
    for index, item in enumerate(value):
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            item = item["text"]
        if not isinstance(item, str):
            raise RequestError(400, f'"{field}[{index}]" is a JSON {_json_kind(item)}; expected a string')
        texts.append(item)
    return texts


def _json_kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


class HFHandler(Handler):
    """Serves a ``save_pretrained`` directory with ``AutoTokenizer`` + ``AutoModelFor...``.

    ``max_batch_size`` bounds the texts per forward pass; ``max_inputs`` the texts per request.
    ``device`` defaults to ``cuda`` when available, else ``cpu``.
    """

    batchable = True

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        task: str = "auto",
        *,
        max_batch_size: int = 32,
        max_inputs: int = 256,
        device: str | None = None,
    ) -> None:
        super().__init__(model_dir)
        self.task = detect_task(self.model_dir, task)
        self.max_batch_size = max_batch_size
        self.max_inputs = max_inputs
        self.device = device
        self.model: Any = None
        self.tokenizer: Any = None
        self.labels: dict[int, str] = {}
        self.max_length = 512

    def load(self) -> None:
        """Load tokenizer and model (offline-safe: a local directory only)."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        auto = {"text-classification": AutoModelForSequenceClassification,
                "token-classification": AutoModelForTokenClassification}[self.task]
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
        if self.task == "token-classification" and not getattr(self.tokenizer, "is_fast", False):
            raise InvalidSpec(
                "token classification needs a fast tokenizer (tokenizer.json) for word offsets",
                source=str(self.model_dir),
            )
        self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = auto.from_pretrained(str(self.model_dir))
        self.model = model.to(self.device).eval()
        config = self.model.config
        self.labels = {int(k): str(v) for k, v in (config.id2label or {}).items()}
        limits = [getattr(config, "max_position_embeddings", None), getattr(self.tokenizer, "model_max_length", None)]
        sane = [x for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
        self.max_length = min(sane) if sane else 512

    def decode(self, body: bytes, content_type: str) -> list[str]:
        """JSON ``{"inputs": ...}`` / ``{"instances": ...}``, or one ``text/plain`` text."""
        kind = media_type(content_type)
        if kind == "text/plain":
            try:
                return [body.decode("utf-8")]
            except UnicodeDecodeError:
                raise RequestError(400, "text/plain body is not UTF-8") from None
        if kind not in ("", JSON_TYPE):
            raise RequestError(415, f"unsupported content type {content_type!r}; send {JSON_TYPE} or text/plain")
        return parse_texts(decode_json(body), self.max_inputs)

    def predict(self, data: list[str]) -> list[Any]:
        """One prediction per text, computed ``max_batch_size`` texts at a time."""
        results: list[Any] = []
        for start in range(0, len(data), self.max_batch_size):
            chunk = data[start : start + self.max_batch_size]
            if self.task == "text-classification":
                results.extend(self._classify(chunk))
            else:
                results.extend(self._tag(chunk))
        return results

    def encode(self, prediction: Any, accept: str) -> tuple[bytes, str]:
        """``{"predictions": [...]}`` as JSON."""
        return super().encode({"predictions": prediction}, accept)

    def _label(self, index: int) -> str:
        return self.labels.get(index, f"LABEL_{index}")

    def _classify(self, texts: list[str]) -> list[dict[str, Any]]:
        import torch

        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**batch.to(self.device)).logits.float()
        multi_label = getattr(self.model.config, "problem_type", None) == "multi_label_classification"
        probs = torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)
        scores, indices = probs.max(dim=-1)
        pairs = zip(scores.tolist(), indices.tolist(), strict=True)
        return [{"label": self._label(int(i)), "score": float(s)} for s, i in pairs]

    def _tag(self, texts: list[str]) -> list[list[dict[str, Any]]]:
        import torch

        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            return_offsets_mapping=True,
        )
        offsets = batch.pop("offset_mapping").tolist()
        with torch.inference_mode():
            probs = torch.softmax(self.model(**batch.to(self.device)).logits.float(), dim=-1)
        scores, indices = (t.tolist() for t in probs.max(dim=-1))
        out: list[list[dict[str, Any]]] = []
        for row, text in enumerate(texts):
            words: dict[int, dict[str, Any]] = {}
            for position, word in enumerate(batch.word_ids(row)):
                if word is None:
                    continue
                start, end = offsets[row][position]
                if word not in words:
                    words[word] = {
                        "entity": self._label(indices[row][position]),
                        "score": float(scores[row][position]),
                        "start": start,
                        "end": end,
                        "index": word,
                    }
                else:
                    words[word]["end"] = end
            entities = []
            for entry in words.values():
                if entry["entity"] == "O":
                    continue
                entry["word"] = text[entry["start"] : entry["end"]]
                entities.append(entry)
            out.append(entities)
        return out

    def describe(self) -> dict[str, Any]:
        """Handler kind, task, labels and device."""
        return {**super().describe(), "task": self.task, "labels": list(self.labels.values()), "device": self.device}
