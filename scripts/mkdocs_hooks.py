"""MkDocs hooks: render the CLI reference from the live command tree at build time.

A page containing ``<!-- cli-reference -->`` gets that marker replaced by one section per
command (usage, description, arguments and options), taken from the real typer app with every
module in ``COMMAND_MODULES`` registered. The reference therefore cannot drift from the CLI.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- cli-reference -->"


def _escape(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _param_row(param: Any) -> tuple[str, str, str]:
    if param.param_type_name == "argument":
        name = f"`{param.metavar or param.name.upper()}`"
        kind = "argument" + (" (required)" if param.required else "")
    else:
        name = ", ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
        kind = "flag" if getattr(param, "is_flag", False) else "option"
        if param.required:
            kind += " (required)"
        default = param.default
        if default not in (None, False, (), []) and not callable(default) and not getattr(param, "is_flag", False):
            kind += f", default `{default}`"
        if getattr(param, "envvar", None):
            kind += f", env `{param.envvar}`"
    return name, kind, _escape(getattr(param, "help", None) or "")


def _command_section(command: Any, ctx: Any, path: str, level: int) -> list[str]:
    lines = [f"{'#' * level} `{path}`", ""]
    help_text = (command.help or "").strip()
    if help_text:
        lines += [help_text.split("\n\n")[0].replace("\n", " "), ""]
    pieces = " ".join(command.collect_usage_pieces(ctx))
    lines += ["```text", f"{path} {pieces}".rstrip(), "```", ""]
    rows = [_param_row(p) for p in command.params if p.name not in ("help",) and not getattr(p, "hidden", False)]
    if rows:
        lines += ["| name | kind | description |", "|---|---|---|"]
        lines += [f"| {n} | {k} | {d} |" for n, k, d in rows]
        lines.append("")
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            sub_ctx = type(ctx)(sub, info_name=name, parent=ctx)
            lines += _command_section(sub, sub_ctx, f"{path} {name}", min(level + 1, 4))
    return lines


def cli_reference() -> str:
    """Markdown for every command of ``cloudbridge`` (plugins' commands excluded)."""
    import typer

    from cloudbridge.cli.main import build_app

    root = typer.main.get_command(build_app(plugins=False))
    ctx = root.context_class(root, info_name="cloudbridge")
    lines = []
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        if command is None or getattr(command, "hidden", False):
            continue
        sub_ctx = root.context_class(command, info_name=name, parent=ctx)
        lines += _command_section(command, sub_ctx, f"cloudbridge {name}", 3)
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the CLI reference marker on the page that has it."""
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown
