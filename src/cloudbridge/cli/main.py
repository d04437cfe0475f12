"""The ``cloudbridge`` console script: fast start, lazy commands, one-line errors.

Start-up is kept short on purpose (``benchmarks/startup.py``): this module imports only the standard
library; ``--version`` answers without importing typer; every other call builds the root group of
:mod:`cloudbridge.cli._app`, which imports a command's module only when that command is named
(the table of builtin commands is :mod:`cloudbridge.cli.registry`). Help is drawn with rich on a
terminal and as plain text in pipes. Plugins add commands through the
``cloudbridge_register_commands(app)`` hook; a plugin whose hook raises is reported (stderr, and as
failed by ``cloudbridge plugins``) and never breaks the CLI.

Errors: a :class:`~cloudbridge.errors.CloudbridgeError` raised by any command becomes one red line
on stderr (``error: <message>``) and the error's ``exit_code`` (2 for bad input); ``--debug`` (or
``CLOUDBRIDGE_DEBUG=1``), before or after the command, prints the traceback too. A usage error
(unknown option or command, missing or invalid argument) is one line too,
``error: <message> (see: cloudbridge <cmd> --help)``, exit 2. Ctrl-C exits with status 130 and one line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from cloudbridge.cli.registry import COMMAND_MODULES

__all__ = [
    "COMMAND_MODULES",
    "CommandHookFailure",
    "build_app",
    "command_hook_failures",
    "main",
    "print_error",
    "print_warning",
]

_debug = os.environ.get("CLOUDBRIDGE_DEBUG", "") not in ("", "0")


class CommandHookFailure:
    """A plugin whose ``cloudbridge_register_commands`` hook raised while the CLI was built."""

    def __init__(self, plugin: str, error: str) -> None:
        self.plugin = plugin
        self.error = error

    def __repr__(self) -> str:
        return f"CommandHookFailure({self.plugin!r}, {self.error!r})"


_hook_failures: list[CommandHookFailure] = []
_hooks_ran = False


def command_hook_failures() -> list[CommandHookFailure]:
    """Plugins whose command hook raised (the hooks are run now if no command needed them yet)."""
    if not _hooks_ran:
        import typer

        from cloudbridge.cli._app import register_plugin_commands

        register_plugin_commands(typer.Typer())
    return list(_hook_failures)


def clear_hook_failures() -> None:
    """Forget the recorded command-hook failures (the hooks are about to run again)."""
    global _hooks_ran
    _hook_failures.clear()
    _hooks_ran = True


def add_hook_failure(plugin: str, error: str) -> None:
    """Record that ``plugin``'s command hook raised ``error``."""
    _hook_failures.append(CommandHookFailure(plugin, error))


def debug_enabled() -> bool:
    """True when ``--debug`` or ``CLOUDBRIDGE_DEBUG=1`` asked for tracebacks."""
    return _debug


def set_debug(value: bool) -> None:
    """Turn tracebacks on errors on or off."""
    global _debug
    _debug = value


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


def _secho(text: str, color: str) -> None:
    import typer

    typer.secho(text, fg=color, err=True)


def print_error(message: str) -> None:
    """Write ``error: <message>`` as one red line on stderr."""
    _secho(f"error: {one_line(message)}", "red")


def print_warning(message: str) -> None:
    """Write ``warning: <message>`` as one yellow line on stderr."""
    _secho(f"warning: {one_line(message)}", "yellow")


def print_traceback(exc: BaseException) -> None:
    """Write ``exc``'s traceback on stderr."""
    import traceback

    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


def handle_error(exc: BaseException) -> int:
    """Report ``exc`` the CLI way and return the exit status."""
    from cloudbridge.errors import CloudbridgeError

    if isinstance(exc, KeyboardInterrupt):
        _secho("interrupted", "red")
        return 130
    if _debug:
        print_traceback(exc)
    if isinstance(exc, CloudbridgeError):
        print_error(str(exc))
        return exc.exit_code
    print_error(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
    return 1


def build_app(*, plugins: bool = True) -> Any:
    """A fresh root ``typer.Typer`` with every builtin command (and, with ``plugins``, plugin commands).

    The console script does not use it (it loads commands lazily); tests and docs tooling that want
    the whole command tree at once do.
    """
    from cloudbridge.cli import _app

    _hook_failures.clear()
    app = _app.new_root(_app.CloudbridgeGroup)
    _app.register_command_modules(app)
    if plugins:
        _app.register_plugin_commands(app)
    return app


_app_cache: Any = None


def __getattr__(name: str) -> Any:
    # ``app`` (the whole tree, for tools) is built on first access so that importing this module stays cheap.
    global _app_cache
    if name == "app":
        if _app_cache is None:
            _app_cache = build_app()
        return _app_cache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _split_debug(args: list[str]) -> list[str]:
    """Take ``--debug`` out wherever it is before ``--`` (so ``cloudbridge run --debug x`` works)."""
    if "--debug" not in args:
        return args
    end = args.index("--") if "--" in args else len(args)
    if "--debug" in args[:end]:
        set_debug(True)
    return [a for a in args[:end] if a != "--debug"] + args[end:]


def _stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _plain_help(styled: bool, stream: Any = None) -> bool:
    """Print the root help without typer when no plugin adds commands; ``False`` when one does."""
    try:
        from cloudbridge.plugins import load_plugins

        if load_plugins().hook.cloudbridge_register_commands.get_hookimpls():
            return False
    except Exception:  # noqa: BLE001 - the full path reports plugin problems
        return False
    from cloudbridge.cli._help import color_allowed, root_help

    stream = stream or sys.stdout
    stream.write(root_help(styled=styled and color_allowed()))
    stream.flush()
    return True


def _exit(code: int, argv: Sequence[str] | None) -> int:
    if argv is None:
        sys.exit(code)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """The ``cloudbridge`` console script; returns (and exits with) the exit status."""
    args = _split_debug(list(sys.argv[1:] if argv is None else argv))
    if args == ["--version"]:  # answers that need no command line parser
        from cloudbridge import __version__

        sys.stdout.write(f"cloudbridge-ai {__version__}\n")
        return _exit(0, argv)
    if args in (["--help"], ["-h"]) and _plain_help(styled=_stdout_is_tty()):
        return _exit(0, argv)
    completing = "_CLOUDBRIDGE_COMPLETE" in os.environ  # shell completion calls us with no arguments
    if not args and not completing and _plain_help(styled=sys.stderr.isatty(), stream=sys.stderr):
        return _exit(2, argv)  # as click does: the help on stderr, exit status 2
    try:
        from cloudbridge.cli._app import lazy_root

        command = lazy_root(rich=_stdout_is_tty())
        command.main(args=args, prog_name="cloudbridge", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            sys.stderr.write(f"{code}\n")
            code = 1
        return _exit(code, argv)
    except BaseException as exc:  # noqa: BLE001 - the last line of defence: one line, an exit status
        return _exit(handle_error(exc), argv)
    return _exit(0, argv)
