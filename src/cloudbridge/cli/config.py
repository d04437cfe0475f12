"""``cloudbridge init`` (a commented config.toml) and ``cloudbridge config show`` (settings in effect)."""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["TEMPLATE", "register"]

config_app = typer.Typer(name="config", no_args_is_help=True)

TEMPLATE = """\
# cloudbridge configuration: {path}
#
# Each [provider] table sets that provider's defaults; environment variables win over this file
# (CLOUDBRIDGE_<PROVIDER>_<SETTING>, e.g. CLOUDBRIDGE_LOCAL_GPUS), and a job's
# `overrides: {{provider: {{...}}}}` win over both. `cloudbridge config show` prints what is in effect
# and where each value came from. Keep secrets out of this file: use your cloud's own credential
# chain (AWS profiles, gcloud auth, az login) or environment variables.
#
# Named profiles: [profiles.NAME.provider], chosen with CLOUDBRIDGE_PROFILE=NAME.

[local]
# gpus = "0,1"                  # GPUs local jobs may use (default: every visible GPU)
# price_per_hour = 0.0          # what an hour of this machine costs you, for cost estimates and budgets
# kill_grace = 10.0             # seconds between SIGTERM and SIGKILL when a job is stopped

# [aws]                         # pip install cloudbridge-aws
# region = "us-east-1"
# role_arn = "arn:aws:iam::123456789012:role/SageMakerRole"
# bucket = "s3://my-bucket/cloudbridge"

# [profiles.staging.aws]
# region = "eu-west-1"
"""


def init_command(
    force: bool = typer.Option(False, "--force", help="Overwrite an existing config.toml."),
) -> None:
    """Write a commented config.toml in the cloudbridge home and print its path."""
    from cloudbridge.errors import UserError
    from cloudbridge.settings import cloudbridge_home, config_path, private_file

    cloudbridge_home()
    path = config_path()
    if path.exists() and not force:
        typer.echo(str(path))
        raise UserError(f"{path} already exists; edit it, or start over with: cloudbridge init --force")
    path.write_text(TEMPLATE.format(path=path), encoding="utf-8")
    private_file(path)
    typer.echo(str(path))
    typer.echo("wrote a commented config.toml; see what is in effect with: cloudbridge config show", err=True)


def _secret(settings_cls: Any, key: str) -> bool:
    from pydantic import SecretBytes, SecretStr

    from cloudbridge.redaction import is_secret_name

    field = settings_cls.model_fields.get(key)
    annotation = getattr(field, "annotation", None)
    return is_secret_name(key) or annotation in (SecretStr, SecretBytes) or "Secret" in str(annotation)


def _provider_rows(name: str, info: Any, profile: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Each setting of provider ``name``: value (secrets masked) and where it came from."""
    from pydantic_settings import EnvSettingsSource

    from cloudbridge.errors import CloudbridgeError
    from cloudbridge.plugins import get_plugin_manager, import_object
    from cloudbridge.settings import config_path, profile_values, resolve_settings

    try:
        settings_cls = import_object(info.settings)
        settings = resolve_settings(settings_cls, name, profile=profile)
    except CloudbridgeError as exc:
        return [], str(exc)
    chosen = profile or "default"
    table = name if chosen == "default" else f"profiles.{chosen}.{name}"
    prefix = (settings_cls.model_config.get("env_prefix") or "").upper()
    layers = [
        ("plugin hook", get_plugin_manager().hook.cloudbridge_resolve_settings(provider=name, profile=profile) or {}),
        (f"{config_path()} [{table}]", profile_values(name, profile)),
        ("env", EnvSettingsSource(settings_cls)()),
    ]
    rows = []
    for key in settings_cls.model_fields:
        source = "default"
        for label, values in layers:
            if key in values:
                source = f"${prefix}{key.upper()}" if label == "env" else label
        value = getattr(settings, key)
        shown = "****" if value not in (None, "") and _secret(settings_cls, key) else value
        rows.append({"provider": name, "setting": key, "value": shown, "source": source})
    return rows, None


@config_app.command("show")
def show_command(
    provider: str = typer.Option(None, "--provider", "-p", help="Only this provider's settings."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the settings in effect for each provider, where each came from; secrets are masked."""
    import os

    from cloudbridge.cli._output import echo_json, print_table
    from cloudbridge.plugins import provider_info, provider_infos
    from cloudbridge.settings import config_path

    profile = os.environ.get("CLOUDBRIDGE_PROFILE") or None
    infos = {provider: provider_info(provider)} if provider else provider_infos()
    rows, errors = [], {}
    for name, info in infos.items():
        if not info.settings:
            continue
        found, error = _provider_rows(name, info, profile)
        rows += found
        if error:
            errors[name] = error
    if json_output:
        echo_json({"config": str(config_path()), "profile": profile or "default", "settings": rows,
                   "errors": errors})
        return
    typer.echo(f"config: {config_path()}{'' if config_path().exists() else ' (not written yet: cloudbridge init)'}"
               f"; profile: {profile or 'default'}", err=True)
    print_table(["PROVIDER", "SETTING", "VALUE", "SOURCE"],
                [[r["provider"], r["setting"], "" if r["value"] is None else r["value"], r["source"]] for r in rows])
    for name, error in errors.items():
        typer.secho(f"warning: {name}: {error}", fg="yellow", err=True)


@config_app.callback()
def config_command() -> None:
    """Show the settings in effect and where each came from."""


def register(app: typer.Typer) -> None:
    """Add ``init`` and ``config show`` to ``app``."""
    app.command("init", rich_help_panel="Setup")(init_command)
    app.add_typer(config_app, name="config", rich_help_panel="Setup")
