"""The root ``cloudbridge`` command: global options, command registration, error handling.

Every command module named in :data:`COMMAND_MODULES` exposes ``register(app)``; plugins add
commands through the ``cloudbridge_register_commands(app)`` hook. A plugin whose hook raises is
reported (stderr, and as failed by ``cloudbridge plugins``) and never breaks the CLI.

Errors: a :class:`~cloudbridge.errors.CloudbridgeError` raised by any command becomes one red line
on stderr (``error: <message>``) and the error's ``exit_code`` (2 for bad input); ``--debug`` (or
``CLOUDBRIDGE_DEBUG=1``) prints the traceback too. A usage error (unknown option or command,
missing or invalid argument) is one line too, ``error: <message> (see: cloudbridge <cmd> --help)``,
exit 2. Ctrl-C exits with status 130 and one line.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = [
    "COMMAND_MODULES",
    "CommandHookFailure",
    "build_app",
    "command_hook_failures",
    "main",
    "print_error",
]

#: Command modules under ``cloudbridge.cli`` (short names); each defines ``register(app)``.
COMMAND_MODULES: list[str] = [
    "providers",
    "jobs",
    "storage",
    "migrate",
    "deploy",
    "planner",
    "emulate",
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


def command_hook_failures() -> list[CommandHookFailure]:
    """Plugins whose command hook raised while the current app was built."""
    return list(_hook_failures)


def debug_enabled() -> bool:
    """True when ``--debug`` or ``CLOUDBRIDGE_DEBUG=1`` asked for tracebacks."""
    return _debug


def _one_line(text: str) -> str:
    return " ".join(text.split())


def print_error(message: str) -> None:
    """Write ``error: <message>`` as one red line on stderr."""
    typer.secho(f"error: {_one_line(message)}", fg="red", err=True)


def print_warning(message: str) -> None:
    """Write ``warning: <message>`` as one yellow line on stderr."""
    typer.secho(f"warning: {_one_line(message)}", fg="yellow", err=True)


def _print_traceback(exc: BaseException) -> None:
    import traceback

    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


def _handle_error(exc: BaseException) -> int:
    """Report ``exc`` the CLI way and return the exit status."""
    from cloudbridge.errors import CloudbridgeError

    if isinstance(exc, KeyboardInterrupt):
        typer.secho("interrupted", fg="red", err=True)
        return 130
    if _debug:
        _print_traceback(exc)
    if isinstance(exc, CloudbridgeError):
        print_error(str(exc))
        return exc.exit_code
    print_error(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
    return 1


#: click's ``UsageError`` as typer uses it (typer >= 0.20 vendors click as ``typer._click``).
_UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _is_help_request(exc: BaseException) -> bool:
    # a bare group (``cloudbridge storage``) raises NoArgsIsHelpError to show its help: keep that
    return type(exc).__name__ == "NoArgsIsHelpError"


def _named_command(ctx: Any) -> str:
    """The deepest (sub-)command named on the command line after ``ctx``'s own options."""
    path, command = [ctx.command_path], ctx.command
    for word in [*getattr(ctx, "_protected_args", []), *ctx.args]:
        sub = command.get_command(ctx, word) if hasattr(command, "get_command") else None
        if sub is None:
            break
        path.append(word)
        command = sub
    return " ".join(path)


def _usage_error(exc: Any, command: str = "cloudbridge") -> typer.Exit:
    """Print a usage error as ``error: <message> (see: cloudbridge <cmd> --help)``; exit status 2.

    ``command`` names the command when the parser gave the error no context of its own.
    """
    message = _one_line(exc.format_message()).rstrip(".")
    if message[:2].istitle():  # "No such option" -> "no such option", but keep "JOB.yaml"
        message = message[0].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else command
    print_error(f"{message} (see: {command} --help)")
    return typer.Exit(2)


class CloudbridgeGroup(TyperGroup):
    """The root group: turns cloudbridge errors and usage errors into one line and an exit status."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        """Parse the root options; a usage error (``cloudbridge --bogus``) is one line, exit 2."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _UsageError as exc:
            if _is_help_request(exc):
                raise
            raise _usage_error(exc) from exc

    def invoke(self, ctx: Any) -> Any:
        """Run the command; map ``CloudbridgeError``/``KeyboardInterrupt``/usage errors to exit statuses.

        A bare group (``cloudbridge storage``) still shows its help; every other usage error of a
        sub-command (unknown option or command, missing or bad argument) is one line and exit 2.
        """
        from cloudbridge.errors import CloudbridgeError

        named = _named_command(ctx)  # before click consumes the arguments
        try:
            return super().invoke(ctx)
        except (CloudbridgeError, KeyboardInterrupt) as exc:
            raise typer.Exit(_handle_error(exc)) from exc
        except _UsageError as exc:
            if _is_help_request(exc):
                raise
            raise _usage_error(exc, named) from exc


def _version_callback(value: bool) -> None:
    if value:
        from cloudbridge import __version__

        typer.echo(f"cloudbridge-ai {__version__}")
        raise typer.Exit()


def _root_callback(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.", envvar="CLOUDBRIDGE_DEBUG"),
) -> None:
    """One SDK and CLI to store data, run fine-tuning jobs and deploy models on any cloud or your own GPUs."""
    global _debug
    if debug:
        _debug = True


def _register_command_modules(app: typer.Typer) -> None:
    for short_name in COMMAND_MODULES:
        module_name = f"cloudbridge.cli.{short_name}"
        try:
            module = importlib.import_module(module_name)
            module.register(app)
        except Exception as exc:  # noqa: BLE001 - one broken command module must not break the CLI
            if _debug:
                _print_traceback(exc)
            print_warning(f"command module {module_name} failed to load: {type(exc).__name__}: {exc}")


def _register_plugin_commands(app: typer.Typer) -> None:
    from cloudbridge.plugins import load_plugins

    try:
        pm = load_plugins()
    except Exception as exc:  # noqa: BLE001 - the CLI must still start to report the problem
        if _debug:
            _print_traceback(exc)
        print_warning(f"plugins failed to load: {type(exc).__name__}: {exc}")
        return
    for impl in pm.hook.cloudbridge_register_commands.get_hookimpls():
        try:
            impl.function(app=app)
        except Exception as exc:  # noqa: BLE001 - a plugin must never crash the CLI
            if _debug:
                _print_traceback(exc)
            error = f"{type(exc).__name__} in cloudbridge_register_commands: {exc}"
            _hook_failures.append(CommandHookFailure(impl.plugin_name, error))
            print_warning(f"plugin {impl.plugin_name!r} could not add its commands: {error}")


def build_app(*, plugins: bool = True) -> typer.Typer:
    """A fresh root app with every command module (and, with ``plugins``, plugin commands)."""
    _hook_failures.clear()
    app = typer.Typer(
        name="cloudbridge",
        cls=CloudbridgeGroup,
        no_args_is_help=True,
        rich_markup_mode="rich",
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root_callback)
    _register_command_modules(app)
    if plugins:
        _register_plugin_commands(app)
    return app


_app: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    # ``app`` is built on first access so that importing this module stays cheap.
    global _app
    if name == "app":
        if _app is None:
            _app = build_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``cloudbridge`` console script; returns (and exits with) the exit status."""
    global _debug, _app
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:
        _debug = True
    try:
        if _app is None:
            _app = build_app()
        command = typer.main.get_command(_app)
        command.main(args=args, prog_name="cloudbridge", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            typer.echo(str(code), err=True)
            code = 1
        if argv is None:
            sys.exit(code)
        return code
    except BaseException as exc:  # noqa: BLE001 - the last line of defence: one line, an exit status
        code = _handle_error(exc)
        if argv is None:
            sys.exit(code)
        return code
    return 0

