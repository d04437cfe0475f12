"""Plain option values without pydantic: a start-up shortcut for typer >= 0.20.

typer >= 0.20 converts every parameter value, even an absent ``--json``, through a pydantic
``TypeAdapter``; importing pydantic and building the adapters is a third of ``cloudbridge providers``'
start-up. For the parameters that need no conversion (``str``, ``bool``, ``list[str]``, and an
``int``/``float`` written as plain digits, with no parser or choices, inside its ``min``/``max`` if it
has them) :func:`speed_up` gives typer a converter that returns the value as it is; anything else
(bytes, ``"1e3"``, a value out of bounds, an enum...) goes to typer's own converter, so messages and
results are typer's. If typer's
private coercion API is not what this module expects, it changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["speed_up"]

_INT = re.compile(r"\s*[+-]?\d+\s*")
_FLOAT = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)\s*")
_MISS = object()

try:  # typer's private coercion layer (typer >= 0.20)
    from dataclasses import dataclass

    from typer._coercion import RuntimeParam, build_runtime_param

    @dataclass(frozen=True)
    class _PlainParam(RuntimeParam):
        """Returns plain values as they are; hands anything else to typer's converter."""

        kind: str = "str"
        low: float | None = None
        high: float | None = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            plain = _plain(self.kind, value)
            if plain is not _MISS and _within(plain, self.low, self.high):
                return plain
            real = build_runtime_param(param.type_descriptor)
            param._runtime_param = real
            return real._coerce_value(value, param=param, ctx=ctx)

except ImportError:  # pragma: no cover - another typer: no shortcut
    _PlainParam = None  # type: ignore[assignment,misc]


def _plain(kind: str, value: Any) -> Any:
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "list[str]" and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):  # a default
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "int" and isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    if kind == "float" and isinstance(value, str) and _FLOAT.fullmatch(value):
        return float(value)
    return _MISS


def _within(value: Any, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _kind(param: Any) -> str | None:
    desc = getattr(param, "type_descriptor", None)
    info = getattr(desc, "parameter_info", None)
    if desc is None or info is None:
        return None
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return None
    bounded = getattr(info, "min", None) is not None or getattr(info, "max", None) is not None
    if bounded and desc.annotation not in (int, float):
        return None
    if getattr(desc, "file_annotation", None) is not None:
        return None
    kinds = {str: "str", bool: "bool", int: "int", float: "float", list[str]: "list[str]"}
    try:
        return kinds.get(desc.annotation)
    except TypeError:  # an unhashable annotation
        return None


def _speed_up_param(param: Any) -> None:
    kind = _kind(param)
    if kind is not None and getattr(param, "_runtime_param", _MISS) is None:
        info = param.type_descriptor.parameter_info
        param._runtime_param = _PlainParam(
            parameter_info=info,
            annotation=param.type_descriptor.annotation,
            kind=kind,
            low=getattr(info, "min", None),
            high=getattr(info, "max", None),
        )


def speed_up(command: Any) -> Any:
    """Give ``command``'s (and its sub-commands') plain parameters the pydantic-free converter."""
    if _PlainParam is None:
        return command
    for param in getattr(command, "params", ()):
        _speed_up_param(param)
    make_help_option = getattr(command, "get_help_option", None)
    if make_help_option is not None:  # ``--help`` is made per command on first use: convert it too

        def get_help_option(ctx: Any) -> Any:
            option = make_help_option(ctx)
            if option is not None:
                _speed_up_param(option)
            return option

        command.get_help_option = get_help_option
    for sub in (getattr(command, "commands", None) or {}).values():
        speed_up(sub)
    return command
