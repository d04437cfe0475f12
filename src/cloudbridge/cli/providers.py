"""``cloudbridge providers``, ``plugins`` and ``check``: what is installed and whether it works."""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["register"]

STATE_STYLES = {"ok": "green", "failed": "red", "info": "cyan", "not installed": "dim", "yes": "green", "no": "dim"}


def providers_command(
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List providers: capabilities, URI schemes, distribution, installed or not."""
    from cloudbridge.plugins import KNOWN_PROVIDERS, provider_infos

    infos = provider_infos()
    rows: list[dict[str, Any]] = []
    for name, info in infos.items():
        rows.append(
            {
                "name": name,
                "installed": True,
                "capabilities": sorted(info.capabilities),
                "schemes": list(info.schemes),
                "distribution": info.distribution,
                "description": info.description,
                "install_hint": None,
            }
        )
    for name, hint in sorted(KNOWN_PROVIDERS.items()):
        if name not in infos:
            rows.append(
                {
                    "name": name,
                    "installed": False,
                    "capabilities": [],
                    "schemes": [],
                    "distribution": hint.split()[-1],
                    "description": "",
                    "install_hint": hint,
                }
            )
    if json_output:
        from cloudbridge.cli._output import echo_json

        echo_json(rows)
        return
    from cloudbridge.cli._output import print_table

    print_table(
        ["PROVIDER", "INSTALLED", "CAPABILITIES", "SCHEMES", "DISTRIBUTION"],
        [
            [
                r["name"],
                "yes" if r["installed"] else "no",
                ",".join(r["capabilities"]) or "-",
                ",".join(f"{s}://" for s in r["schemes"]) or "-",
                r["distribution"] if r["installed"] else r["install_hint"],
            ]
            for r in rows
        ],
        styles=STATE_STYLES,
    )


def plugins_command(
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List plugins: distribution, version, and whether each loaded (with its error if not)."""
    from dataclasses import asdict

    from cloudbridge.cli.main import command_hook_failures
    from cloudbridge.plugins import plugin_statuses

    rows = [asdict(status) for status in plugin_statuses()]
    for failure in command_hook_failures():
        for row in rows:
            if row["name"] == failure.plugin:
                row["ok"] = False
                row["error"] = failure.error
    if json_output:
        from cloudbridge.cli._output import echo_json

        echo_json(rows)
        return
    from cloudbridge.cli._output import print_table

    print_table(
        ["PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "ERROR"],
        [
            [r["name"], r["distribution"], r["version"] or "?", "ok" if r["ok"] else "failed", r["error"] or ""]
            for r in rows
        ],
        styles=STATE_STYLES,
    )
    from cloudbridge.plugins import plugin_warnings

    for warning in plugin_warnings():
        typer.secho(f"warning: {warning}", fg="yellow", err=True)
    if not all(r["ok"] for r in rows):
        failed = sum(1 for r in rows if not r["ok"])
        typer.secho(f"{failed} plugin(s) failed to load and were skipped", fg="yellow", err=True)


def _check_one(name: str) -> Any:
    """Build provider ``name`` and run its check; a build failure becomes a failed item."""
    from cloudbridge.backends import get_provider
    from cloudbridge.errors import CloudbridgeError, ProviderNotFound
    from cloudbridge.records import CheckReport

    try:
        provider = get_provider(name)
    except ProviderNotFound:
        raise
    except CloudbridgeError as exc:
        report = CheckReport(name)
        report.add("provider loads", False, str(exc), fix=exc.hint or "fix the settings named above")
        return report
    return provider.check()


def _configured(name: str, info: Any) -> str | None:
    """Why provider ``name`` counts as configured (a config table, an env var, a hook), or ``None``."""
    import os

    from cloudbridge.errors import CloudbridgeError
    from cloudbridge.plugins import get_plugin_manager, import_object
    from cloudbridge.settings import config_path, profile_values

    if name == "local":
        return "builtin"
    try:
        if profile_values(name):
            return f"[{name}] in {config_path()}"
    except CloudbridgeError:
        return "config.toml"  # a malformed file is reported by the check itself
    prefix = ""
    if info.settings:
        try:
            prefix = (import_object(info.settings).model_config.get("env_prefix") or "").upper()
        except CloudbridgeError:
            return "settings model"  # cannot tell: check it, so the failure is shown
    if prefix and any(key.upper().startswith(prefix) and value for key, value in os.environ.items()):
        return f"${prefix}* variables"
    if get_plugin_manager().hook.cloudbridge_resolve_settings(provider=name, profile=None):
        return "a plugin's settings hook"
    return None


def _environment_warnings() -> list[str]:
    """Problems of the installation itself: the unrelated PyPI ``cloudbridge``, unknown plugin names."""
    from importlib import metadata

    from cloudbridge.plugins import plugin_warnings

    warnings = list(plugin_warnings())
    try:
        other = metadata.distribution("cloudbridge")
    except metadata.PackageNotFoundError:
        other = None
    if other is not None:
        warnings.append(
            f"the unrelated PyPI package 'cloudbridge' {other.version} is installed in this environment; it "
            "also imports as 'cloudbridge' and can shadow or overwrite this one (ours is 'cloudbridge-ai'): "
            "pip uninstall cloudbridge, then pip install --force-reinstall cloudbridge-ai"
        )
    return warnings


def check_command(
    provider: str = typer.Argument(None, help="Provider to check (default: every configured provider)."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Check credentials and configuration; exit 1 when a check fails, saying how to fix it.

    Without PROVIDER, every configured provider is checked (local, and each one with a table in
    config.toml, CLOUDBRIDGE_<NAME>_* variables or a settings hook); an installed provider that is
    not configured is listed as information, not as a failure.
    """
    from cloudbridge.plugins import provider_info, provider_infos

    warnings = _environment_warnings()
    for warning in warnings:
        typer.secho(f"warning: {warning}", fg="yellow", err=True)
    skipped: dict[str, str] = {}
    if provider:
        provider_info(provider)  # ProviderNotFound (exit 2) lists the known providers
        names = [provider]
    else:
        names = []
        for name, info in provider_infos().items():
            if _configured(name, info):
                names.append(name)
            else:
                skipped[name] = (f"installed, not configured: add [{name}] to config.toml (cloudbridge init) or "
                                 f"set its environment variables, then: cloudbridge check {name}")
    reports = [_check_one(name) for name in names]
    ok = all(report.ok for report in reports)
    if json_output:
        from cloudbridge.cli._output import echo_json

        data = [{**report.to_dict(), "configured": True} for report in reports]
        data += [{"provider": name, "ok": True, "configured": False, "items": [], "info": text}
                 for name, text in skipped.items()]
        echo_json(data)
    else:
        from cloudbridge.cli._output import print_table

        rows = [[report.provider, item.name, "ok" if item.ok else "failed", item.detail,
                 "" if item.ok else item.fix or ""] for report in reports for item in report.items]
        rows += [[name, "configured", "info", text, ""] for name, text in skipped.items()]
        print_table(["PROVIDER", "CHECK", "STATUS", "DETAIL", "FIX"], rows, styles=STATE_STYLES)
    if not ok:
        failed = [f"{r.provider}: {i.name}" for r in reports for i in r.items if not i.ok]
        typer.secho(f"error: {len(failed)} check(s) failed: {'; '.join(failed)}", fg="red", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``providers``, ``plugins`` and ``check`` to ``app``."""
    app.command("providers", rich_help_panel="Setup")(providers_command)
    app.command("plugins", rich_help_panel="Setup")(plugins_command)
    app.command("check", rich_help_panel="Setup")(check_command)
