"""Shared helpers for the deploy tests: tiny models, a pure-Python custom handler, direct predictions."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

#: A custom handler with every hook; its "model" is a word-weight table read from the model dir.
CUSTOM_HANDLER = textwrap.dedent(
    '''
    import json
    import os

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "weights.json")) as stream:
            return json.load(stream)

    def input_fn(body, content_type):
        if content_type != "application/json":
            raise ValueError(f"unsupported content type {content_type}")
        return json.loads(body)["text"]          # a missing "text" is a KeyError -> 400

    def predict_fn(text, model):
        if text == "crash":
            raise RuntimeError("model exploded")
        score = sum(model.get(word, 0) for word in text.lower().split())
        label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
        return {"label": label, "score": score}

    def output_fn(prediction, accept):
        return json.dumps({"predictions": [prediction], "accept": accept}), "application/json"
    '''
)

WEIGHTS = {"good": 1, "great": 2, "bad": -1, "awful": -2}


def write_custom_model(folder: Path, *, handler: str = CUSTOM_HANDLER, place: str = "inference.py") -> Path:
    """A model dir with ``weights.json`` and the handler at ``place`` (``inference.py`` or ``code/...``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.json").write_text(json.dumps(WEIGHTS))
    script = folder / place
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(handler)
    return folder


def direct_classify(model_dir: Path, texts: list[str]) -> list[dict[str, Any]]:
    """Predictions computed here, one text at a time, straight from transformers (the reference)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    out = []
    for text in texts:
        with torch.no_grad():
            probs = torch.softmax(model(**tokenizer(text, return_tensors="pt")).logits[0], dim=-1)
        index = int(probs.argmax())
        out.append({"label": model.config.id2label[index], "score": float(probs[index])})
    return out


def same_predictions(got: list[dict[str, Any]], want: list[dict[str, Any]], tol: float = 1e-4) -> bool:
    """Labels equal and scores within ``tol`` (batching pads, so floats may differ in the last bits)."""
    return len(got) == len(want) and all(
        g["label"] == w["label"] and abs(g["score"] - w["score"]) <= tol for g, w in zip(got, want, strict=True)
    )
