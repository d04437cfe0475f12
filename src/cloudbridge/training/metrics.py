"""Evaluation metrics: accuracy and F1 for classification, seqeval's CoNLL report for NER."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["classification_metrics", "ner_metrics"]


def classification_metrics(preds: Sequence[int], golds: Sequence[int], labels: list[str]) -> dict[str, float]:
    """Accuracy, macro-F1 and (for two labels) the F1 of the second label."""
    total = len(golds)
    correct = sum(1 for p, g in zip(preds, golds, strict=True) if p == g)
    f1s = []
    for index in range(len(labels)):
        tp = sum(1 for p, g in zip(preds, golds, strict=True) if p == g == index)
        fp = sum(1 for p, g in zip(preds, golds, strict=True) if p == index != g)
        fn = sum(1 for p, g in zip(preds, golds, strict=True) if g == index != p)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    result = {"accuracy": correct / total if total else 0.0, "f1_macro": sum(f1s) / len(f1s) if f1s else 0.0}
    if len(labels) == 2:
        result["f1"] = f1s[1]
    return result


def ner_metrics(pred_tags: list[list[str]], gold_tags: list[list[str]]) -> tuple[dict[str, object], str]:
    """Entity-level precision/recall/F1 overall and per entity type, plus the CoNLL-style table."""
    from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

    report = classification_report(gold_tags, pred_tags, digits=4, zero_division=0)
    per_entity = classification_report(gold_tags, pred_tags, output_dict=True, zero_division=0)
    entities = {
        name: {"precision": float(v["precision"]), "recall": float(v["recall"]), "f1": float(v["f1-score"]),
               "support": int(v["support"])}
        for name, v in per_entity.items()
        if not name.endswith("avg")
    }
    metrics = {
        "precision": float(precision_score(gold_tags, pred_tags, zero_division=0)),
        "recall": float(recall_score(gold_tags, pred_tags, zero_division=0)),
        "f1": float(f1_score(gold_tags, pred_tags, zero_division=0)),
        "accuracy": float(accuracy_score(gold_tags, pred_tags)),
        "entities": entities,
    }
    return metrics, report
