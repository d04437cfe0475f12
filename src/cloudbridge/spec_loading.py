"""YAML loading that remembers where every field came from, and error messages that say so."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from cloudbridge.errors import InvalidSpec

__all__ = ["load_yaml_with_lines", "validation_to_invalid_spec", "field_line"]

LineMap = dict[tuple[Any, ...], int]


def _walk(node: yaml.Node, path: tuple[Any, ...], lines: LineMap) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _walk(item, path + (index,), lines)


def load_yaml_with_lines(path: str | Path) -> tuple[dict[str, Any], LineMap]:
    """Read a YAML mapping from ``path``; return it with a map ``field path -> line``.

    Raises :class:`InvalidSpec` for a missing or unreadable file, malformed YAML, or a document
    that is not a mapping.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidSpec("file not found", source=source) from exc
    except IsADirectoryError as exc:
        raise InvalidSpec("is a directory, expected a YAML file", source=source) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSpec(f"cannot read file: {exc}", source=source) from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        raise InvalidSpec(f"malformed YAML: {problem}", source=source, line=line) from exc
    except yaml.YAMLError as exc:
        raise InvalidSpec(f"malformed YAML: {exc}", source=source) from exc
    if data is None:
        raise InvalidSpec("the file is empty; expected a mapping of fields", source=source)
    if not isinstance(data, dict):
        raise InvalidSpec(
            f"expected a mapping of fields at the top level, found {type(data).__name__}", source=source, line=1
        )
    lines: LineMap = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def field_line(lines: LineMap | None, loc: tuple[Any, ...]) -> int | None:
    """The line of the longest known prefix of ``loc``."""
    if not lines:
        return None
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The nested pydantic model that owns the last element of ``loc``."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return None
        annotation = current.model_fields[part].annotation
        current = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return current


def validation_to_invalid_spec(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    source: str | None = None,
    lines: LineMap | None = None,
) -> InvalidSpec:
    """Turn the first error of a pydantic ``ValidationError`` into one clear :class:`InvalidSpec`."""
    error = exc.errors()[0]
    loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and "[" in part))
    if error["type"] == "cb_field":  # a model-level check about one field (the run line)
        loc = tuple(str(error.get("ctx", {}).get("field", "")).split(".")) if not loc else loc
    field = ".".join(str(p) for p in loc) or None
    message = error["msg"]
    hint = None
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if error["type"] == "extra_forbidden":
        owner = _model_at(model, loc)
        known = sorted(owner.model_fields) if owner else []
        known = [k for k in known if k != "source"]
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        message = "unknown field"
        hint = f"did you mean '{close[0]}'?" if close else f"known fields: {', '.join(known)}"
    elif error["type"] == "missing":
        message = "required field is missing"
    count = exc.error_count()
    if count > 1:
        message += f" (and {count - 1} more error{'s' if count > 2 else ''})"
    return InvalidSpec(message, source=source, line=field_line(lines, loc), field=field, hint=hint)
