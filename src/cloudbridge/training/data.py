"""Reading training data: CSV/JSONL ``text,label`` and CoNLL-2003 or JSONL ``tokens,tags``.

Everything here is plain Python (no torch), so bad input is reported before any heavy import:
each problem is one :class:`~cloudbridge.errors.UserError` naming the file, the line and the column.
Storage URIs (``s3://...``) are downloaded through :func:`cloudbridge.transfers.storage_for` first.
"""

from __future__ import annotations

import csv
import json
import os
import random
from dataclasses import dataclass, field

from cloudbridge.errors import NotFound, UserError

__all__ = ["Dataset", "Example", "fetch", "find_data_file", "load_dataset", "split_eval"]

_EXTENSIONS = (".csv", ".jsonl", ".json", ".conll", ".txt", ".iob", ".tsv")
_TRAIN_STEMS = ("train", "training")
_EVAL_STEMS = ("eval", "dev", "valid", "validation", "test")


class DataError(UserError):
    """A data file is missing, empty or malformed."""


@dataclass
class Example:
    """One training example: ``text`` + ``label`` or ``tokens`` + ``tags``."""

    text: str | None = None
    label: str | None = None
    tokens: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class Dataset:
    """The examples of one file and where they came from."""

    source: str
    examples: list[Example]

    def labels(self) -> set[str]:
        """Every label (classification) or tag (token classification) used."""
        found: set[str] = set()
        for ex in self.examples:
            if ex.label is not None:
                found.add(ex.label)
            found.update(ex.tags)
        return found


def fetch(uri: str, cache_dir: str) -> str:
    """A local path for ``uri``: local paths unchanged, storage URIs downloaded into ``cache_dir``."""
    from cloudbridge.uri import is_remote, parse_uri

    if not is_remote(uri):
        return uri
    from cloudbridge.transfers import storage_for
    from cloudbridge.transfers.download import checked_join, download_prefix

    parsed = parse_uri(uri)
    store = storage_for(uri)
    place = "/".join(p for p in (parsed.scheme, parsed.bucket.replace("/", "_"), parsed.key.strip("/")) if p)
    target = str(checked_join(cache_dir, place))
    if not uri.endswith("/"):
        try:  # an object: one download (its own HEAD says whether it exists), no separate exists() check
            store.download(uri, target)
            return target
        except NotFound:
            pass  # not an object: a prefix
    if not download_prefix(uri, target, storage=store):
        raise DataError(f"{uri}: no such object or prefix")
    return target


def find_data_file(path: str, split: str, option: str) -> str | None:
    """The data file for ``split`` (``train``/``eval``) in ``path`` (a file or a directory)."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or directory ({option})")
    if os.path.isfile(path):
        return path
    stems = _TRAIN_STEMS if split == "train" else _EVAL_STEMS
    names = sorted(os.listdir(path))
    for stem in stems:
        for name in names:
            base, ext = os.path.splitext(name)
            if base.lower() == stem and ext.lower() in _EXTENSIONS:
                return os.path.join(path, name)
    if split == "train":
        candidates = [n for n in names if os.path.splitext(n)[1].lower() in _EXTENSIONS]
        if len(candidates) == 1:
            return os.path.join(path, candidates[0])
        raise DataError(
            f"{path}: cannot tell which file is the training data ({option}); "
            f"name it train.csv/train.jsonl/train.conll or pass the file itself"
        )
    return None


def _read_classification_csv(path: str, text_col: str, label_col: str) -> list[Example]:
    delimiter = "\t" if path.endswith(".tsv") else ","
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns = reader.fieldnames or []
        for col in (text_col, label_col):
            if col not in columns:
                raise DataError(f"{path}:1: column {col!r} is missing (columns: {', '.join(columns) or 'none'})")
        out = []
        for row in reader:
            text, label = row.get(text_col), row.get(label_col)
            if text is None or label is None or label.strip() == "":
                raise DataError(f"{path}:{reader.line_num}: row has no {label_col if text else text_col!r} value")
            out.append(Example(text=text, label=label.strip()))
        return out


def _jsonl_rows(path: str):
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object per line")
            yield number, row


def _read_classification_jsonl(path: str, text_col: str, label_col: str) -> list[Example]:
    out = []
    for number, row in _jsonl_rows(path):
        for col in (text_col, label_col):
            if col not in row:
                raise DataError(f"{path}:{number}: field {col!r} is missing (fields: {', '.join(row)})")
        out.append(Example(text=str(row[text_col]), label=str(row[label_col]).strip()))
    return out


def _read_conll(path: str) -> list[Example]:
    out: list[Example] = []
    tokens: list[str] = []
    tags: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                if tokens:
                    out.append(Example(tokens=tokens, tags=tags))
                tokens, tags = [], []
                continue
            if len(parts) < 2:
                raise DataError(f"{path}:{number}: expected 'TOKEN ... TAG', found {line.strip()!r}")
            tokens.append(parts[0])
            tags.append(parts[-1])
    if tokens:
        out.append(Example(tokens=tokens, tags=tags))
    return out


def _read_tokens_jsonl(path: str, tokens_col: str, tags_col: str) -> list[Example]:
    out = []
    for number, row in _jsonl_rows(path):
        for col in (tokens_col, tags_col):
            if col not in row:
                raise DataError(f"{path}:{number}: field {col!r} is missing (fields: {', '.join(row)})")
        tokens, tags = row[tokens_col], row[tags_col]
        if not isinstance(tokens, list) or not isinstance(tags, list) or len(tokens) != len(tags):
            raise DataError(f"{path}:{number}: {tokens_col!r} and {tags_col!r} must be lists of equal length")
        out.append(Example(tokens=[str(t) for t in tokens], tags=[str(t) for t in tags]))
    return out


def load_dataset(path: str, task: str, *, text_col: str = "text", label_col: str = "label",
                 tokens_col: str = "tokens", tags_col: str = "tags") -> Dataset:
    """Read one data file for ``task``; :class:`DataError` names the file and line of any problem."""
    ext = os.path.splitext(path)[1].lower()
    try:
        if task == "text-classification":
            if ext in (".jsonl", ".json"):
                examples = _read_classification_jsonl(path, text_col, label_col)
            else:
                examples = _read_classification_csv(path, text_col, label_col)
        elif ext in (".jsonl", ".json"):
            examples = _read_tokens_jsonl(path, tokens_col, tags_col)
        else:
            examples = _read_conll(path)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    if not examples:
        raise DataError(f"{path}: the dataset is empty")
    return Dataset(path, examples)


def split_eval(train: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Hold out ``fraction`` of ``train`` (shuffled with ``seed``) as the evaluation set."""
    indices = list(range(len(train.examples)))
    random.Random(seed).shuffle(indices)
    count = max(1, int(round(len(indices) * fraction)))
    if count >= len(indices):
        raise DataError(f"{train.source}: {len(indices)} example(s) are too few to hold out an evaluation split")
    held = set(indices[:count])
    rest = [ex for i, ex in enumerate(train.examples) if i not in held]
    evals = [ex for i, ex in enumerate(train.examples) if i in held]
    return Dataset(train.source, rest), Dataset(f"{train.source} (held-out {fraction:.0%})", evals)


def label_list(task: str, train: Dataset, evaluation: Dataset) -> list[str]:
    """The sorted label set of ``train``; eval labels never seen in training are an error."""
    seen = train.labels()
    unseen = sorted(evaluation.labels() - seen)
    if unseen:
        raise DataError(
            f"{evaluation.source}: label(s) {', '.join(map(repr, unseen[:5]))} never appear in the training data "
            f"{train.source}"
        )
    labels = sorted(seen)
    if task == "token-classification" and "O" in labels:
        labels.remove("O")
        labels.insert(0, "O")
    if task == "text-classification" and len(labels) < 2:
        raise DataError(f"{train.source}: text classification needs at least 2 labels, found {labels}")
    return labels
