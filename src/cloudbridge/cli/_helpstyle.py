"""Help that reads like a person wrote it: ``--include GLOB``, not ``--include <list[str]>``.

typer >= 0.20 shows Python types as placeholders (``<bool>`` after every flag, ``<str>``,
``<list[str]>``, ``{src}`` in the usage line). :func:`polish` gives every parameter of a command
tree a plain placeholder instead: nothing after a flag, an option's own ``metavar`` when it has
one, else ``TEXT``/``INTEGER``/``NUMBER`` (click's words); arguments by their upper-case name
(``SRC``). A repeatable option says so in its help text already.
"""

from __future__ import annotations

from typing import Any

__all__ = ["polish"]

_WORDS = {str: "TEXT", int: "INTEGER", float: "NUMBER", list[str]: "TEXT", list[int]: "INTEGER"}


def _placeholder(param: Any) -> str | None:
    if getattr(param, "is_flag", False) or getattr(param, "is_bool_flag", False):
        return None
    if param.metavar is not None:
        return param.metavar
    desc = getattr(param, "type_descriptor", None)
    try:
        word = _WORDS.get(getattr(desc, "annotation", None))
    except TypeError:  # unhashable annotation
        word = None
    if word is None:
        return None  # typer's own (choices, ranges, paths...)
    return word


def _polish_param(param: Any) -> None:
    if getattr(param, "_cb_polished", False) or not hasattr(param, "display_type"):
        return
    param._cb_polished = True
    if getattr(param, "param_type_name", "") == "argument":
        name = param.metavar or (param.name or "").upper()
        param.metavar = name
        param._usage_display_name = lambda: name if param.required else f"[{name}]"
        param.display_type = lambda ctx: None
        return
    original = param.display_type
    placeholder = _placeholder(param)
    if getattr(param, "is_flag", False) or placeholder is not None:
        param.display_type = lambda ctx: placeholder
    else:
        param.display_type = original


def polish(command: Any) -> Any:
    """Plain placeholders for ``command``, its sub-commands and their parameters (idempotent)."""
    for param in getattr(command, "params", ()):
        _polish_param(param)
    make_help_option = getattr(command, "get_help_option", None)
    if make_help_option is not None and not getattr(command, "_cb_help_polished", False):
        command._cb_help_polished = True

        def get_help_option(ctx: Any) -> Any:
            option = make_help_option(ctx)
            if option is not None:
                _polish_param(option)
            return option

        command.get_help_option = get_help_option
    for sub in (getattr(command, "commands", None) or {}).values():
        polish(sub)
    return command
