"""The root click group behind ``cloudbridge``: lazy command loading, plain help in pipes, error lines.

:class:`CloudbridgeGroup` turns cloudbridge errors and usage errors into one line and an exit
status. :class:`LazyGroup` (what the console script runs) imports a command's module only when the
command is named: ``cloudbridge jobs`` imports :mod:`cloudbridge.cli.jobs` and nothing else, and
``cloudbridge --help`` in a pipe prints the one-line help of :data:`cloudbridge.cli.registry.COMMANDS`
without importing any command module. Plugin commands (``cloudbridge_register_commands``) are
loaded only when the named command is not a builtin one, or when every command is listed.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

from cloudbridge.cli import main as _main
from cloudbridge.cli.registry import COMMAND_MODULES, COMMANDS, command_entry

__all__ = ["CloudbridgeGroup", "LazyGroup", "lazy_root", "register_command_modules", "register_plugin_commands"]

#: click's ``UsageError`` as typer uses it (typer >= 0.20 vendors click as ``typer._click``).
_UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")

PLUGIN_PANEL = "Plugin commands"


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
    message = _main.one_line(exc.format_message()).rstrip(".")
    if message[:2].istitle():  # "No such option" -> "no such option", but keep "JOB.yaml"
        message = message[0].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else command
    _main.print_error(f"{message} (see: {command} --help)")
    return typer.Exit(2)


class CloudbridgeGroup(TyperGroup):
    """The root group: turns cloudbridge errors and usage errors into one line and an exit status."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        """Parse the root options; a usage error (``cloudbridge --bogus``) is one line, exit 2."""
        from cloudbridge.cli._helpstyle import polish

        polish(self)  # plain placeholders in every help (idempotent; lazy commands are polished as they load)
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
            raise typer.Exit(_main.handle_error(exc)) from exc
        except _UsageError as exc:
            if _is_help_request(exc):
                raise
            raise _usage_error(exc, named) from exc


def _set_markup(command: Any, mode: Any) -> Any:
    """Give ``command`` and its sub-commands one help style (``None``: plain click help)."""
    if hasattr(command, "rich_markup_mode"):
        command.rich_markup_mode = mode
    for sub in (getattr(command, "commands", None) or {}).values():
        _set_markup(sub, mode)
    return command


class LazyGroup(CloudbridgeGroup):
    """The root group of the console script: a command's module is imported when it is named."""

    _loaded_modules: set[str]
    _plugins_loaded: bool

    def _ensure_state(self) -> None:
        if not hasattr(self, "_loaded_modules"):
            self._loaded_modules = set()
            self._plugins_loaded = False

    def _add_from(self, typer_app: typer.Typer) -> None:
        if not (typer_app.registered_commands or typer_app.registered_groups):
            return
        from cloudbridge.cli._fastparams import speed_up
        from cloudbridge.cli._helpstyle import polish

        group = typer.main.get_group(typer_app)
        for name, command in group.commands.items():
            self.commands.setdefault(name, polish(speed_up(_set_markup(command, self.rich_markup_mode))))

    def load_module(self, short_name: str) -> None:
        """Import ``cloudbridge.cli.<short_name>`` and add its commands (a failure is one warning)."""
        self._ensure_state()
        if short_name in self._loaded_modules:
            return
        self._loaded_modules.add(short_name)
        sub = typer.Typer(rich_markup_mode=self.rich_markup_mode)
        if register_command_module(sub, short_name):
            self._add_from(sub)

    def load_plugins(self) -> None:
        """Run every plugin's ``cloudbridge_register_commands`` hook (once) and add what they add."""
        self._ensure_state()
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        sub = typer.Typer(rich_markup_mode=self.rich_markup_mode)
        register_plugin_commands(sub)
        for info in sub.registered_commands + sub.registered_groups:  # type: ignore[operator]
            if getattr(info, "rich_help_panel", None) is None:
                info.rich_help_panel = PLUGIN_PANEL
        self._add_from(sub)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """The command ``cmd_name``, importing its module (or the plugins' commands) on first use."""
        command = self.commands.get(cmd_name)
        if command is not None:
            return command
        entry = command_entry(cmd_name)
        if entry is not None:
            self.load_module(entry.module)
        else:
            self.load_plugins()
        return self.commands.get(cmd_name)

    def list_commands(self, ctx: Any) -> list[str]:
        """Every command: the builtin ones in table order, then the plugins'."""
        self.load_plugins()
        names = [entry.name for entry in COMMANDS]
        return names + [name for name in self.commands if name not in names]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """Resolve the command; an unknown name suggests the closest known ones."""
        try:
            return super().resolve_command(ctx, args)
        except _UsageError as exc:
            if args and "Did you mean" not in exc.message:  # type: ignore[attr-defined]
                import difflib

                matches = difflib.get_close_matches(args[0], self.list_commands(ctx))
                if matches:
                    message = exc.message.rstrip(".")  # type: ignore[attr-defined]
                    exc.message = f"{message}. Did you mean {', '.join(repr(m) for m in matches)}?"  # type: ignore
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """The text of :func:`cloudbridge.cli._help.root_help`, styled on a terminal (no rich import)."""
        from cloudbridge.cli._help import color_allowed, root_help

        self.load_plugins()
        builtin = {entry.name for entry in COMMANDS}
        extra = [(name, command.get_short_help_str(80), getattr(command, "rich_help_panel", None))
                 for name, command in self.commands.items() if name not in builtin and not command.hidden]
        if self.rich_markup_mode is None:
            formatter.write(root_help(extra, width=formatter.width))
            return None
        # terminal mode prints at once, as typer's rich help does: a bare ``cloudbridge`` raises
        # NoArgsIsHelpError, whose message typer's rich error handler does not print
        typer.echo(root_help(extra, styled=color_allowed()), nl=False)
        return None


def _version(value: bool) -> None:
    if value:
        from cloudbridge import __version__

        typer.echo(f"cloudbridge-ai {__version__}")
        raise typer.Exit()


def root_callback(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show full tracebacks on errors (also after the command; env: CLOUDBRIDGE_DEBUG=1).",
        envvar="CLOUDBRIDGE_DEBUG", show_envvar=False
    ),
) -> None:
    """One SDK and CLI to store data, run fine-tuning jobs and deploy models on any cloud or your own GPUs."""
    if debug:
        _main.set_debug(True)


def new_root(cls: type[CloudbridgeGroup], *, rich: bool = True, completion: bool = True) -> typer.Typer:
    """An empty root app of class ``cls`` with the global options (and ``--install-completion``)."""
    app = typer.Typer(
        name="cloudbridge",
        cls=cls,
        no_args_is_help=True,
        rich_markup_mode="rich" if rich else None,
        pretty_exceptions_enable=False,
        add_completion=completion,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(root_callback)
    return app


def lazy_root(*, rich: bool) -> Any:
    """The click group the console script runs: nothing but the root options until a command is named."""
    from cloudbridge.cli._fastparams import speed_up

    return speed_up(typer.main.get_command(new_root(LazyGroup, rich=rich)))


def register_command_module(app: typer.Typer, short_name: str) -> bool:
    """Add the commands of ``cloudbridge.cli.<short_name>`` to ``app``; a failure is one warning."""
    module_name = f"cloudbridge.cli.{short_name}"
    try:
        module = importlib.import_module(module_name)
        module.register(app)
    except Exception as exc:  # noqa: BLE001 - one broken command module must not break the CLI
        if _main.debug_enabled():
            _main.print_traceback(exc)
        _main.print_warning(f"command module {module_name} failed to load: {type(exc).__name__}: {exc}")
        return False
    return True


def register_command_modules(app: typer.Typer) -> None:
    """Add every builtin command to ``app`` (what :func:`cloudbridge.cli.main.build_app` does)."""
    for short_name in COMMAND_MODULES:
        register_command_module(app, short_name)


def register_plugin_commands(app: typer.Typer) -> None:
    """Run every plugin's ``cloudbridge_register_commands(app)``; a plugin that raises is recorded."""
    from cloudbridge.plugins import load_plugins

    _main.clear_hook_failures()
    try:
        pm = load_plugins()
    except Exception as exc:  # noqa: BLE001 - the CLI must still start to report the problem
        if _main.debug_enabled():
            _main.print_traceback(exc)
        _main.print_warning(f"plugins failed to load: {type(exc).__name__}: {exc}")
        return
    for impl in pm.hook.cloudbridge_register_commands.get_hookimpls():
        try:
            impl.function(app=app)
        except Exception as exc:  # noqa: BLE001 - a plugin must never crash the CLI
            if _main.debug_enabled():
                _main.print_traceback(exc)
            error = f"{type(exc).__name__} in cloudbridge_register_commands: {exc}"
            _main.add_hook_failure(impl.plugin_name, error)
            _main.print_warning(f"plugin {impl.plugin_name!r} could not add its commands: {error}")
