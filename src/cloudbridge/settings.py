"""Where cloudbridge keeps its state, and how provider settings are resolved.

Precedence, lowest first: the settings model's defaults < the ``cloudbridge_resolve_settings``
hook < the profile in ``CLOUDBRIDGE_HOME/config.toml`` < environment variables < a job's
``overrides.<provider>``. ``config.toml`` looks like::

    [aws]                       # the "default" profile
    region = "eu-west-1"

    [profiles.prod.aws]         # selected by --profile prod or CLOUDBRIDGE_PROFILE=prod
    region = "us-east-1"
    role_arn = "arn:aws:iam::123456789012:role/SageMaker"
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import InvalidSpec

if TYPE_CHECKING:
    from cloudbridge._settings_model import ProviderSettings

__all__ = ["ProviderSettings", "cloudbridge_home", "home_path", "config_path", "load_config", "private_dir",
           "private_file", "resolve_settings"]


def __getattr__(name: str) -> Any:
    # ProviderSettings needs pydantic-settings; the home and config helpers (read by every CLI
    # command through the job store) do not, so the model is imported only when asked for.
    if name == "ProviderSettings":
        from cloudbridge._settings_model import ProviderSettings

        return ProviderSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def home_path() -> Path:
    """``CLOUDBRIDGE_HOME`` (``~`` expanded), else the platform's user data dir for ``cloudbridge``.

    Only works the path out; :func:`cloudbridge_home` also creates it.
    """
    override = os.environ.get("CLOUDBRIDGE_HOME")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("cloudbridge", appauthor=False))


def cloudbridge_home() -> Path:
    """:func:`home_path`, created on use, private to its owner (0700): on a shared machine it holds job
    logs, code copies and records that other users must not read."""
    return private_dir(home_path())


def private_dir(path: str | os.PathLike[str]) -> Path:
    """The folder ``path``, created if needed and made 0700 when this user owns it."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten(folder, 0o700)
    return folder


def private_file(path: str | os.PathLike[str]) -> Path:
    """The file ``path``, created empty if needed (never truncated) and made 0600 when this user owns it."""
    file = Path(path)
    os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    _tighten(file, 0o600)
    return file


def _tighten(path: Path, mode: int) -> None:
    try:
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(path, (st.st_mode & 0o700) | mode)
    except OSError:
        pass  # not ours to change (or gone): the caller's own open/mkdir reports real problems


def config_path() -> Path:
    """The config file: ``CLOUDBRIDGE_HOME/config.toml``."""
    return cloudbridge_home() / "config.toml"


def load_config() -> dict[str, Any]:
    """The parsed ``config.toml`` (empty when absent); a malformed file is :class:`InvalidSpec`."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = config_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidSpec(f"malformed TOML: {exc}", source=str(path)) from exc


def profile_values(provider: str, profile: str | None = None) -> dict[str, Any]:
    """The ``[provider]`` table of ``profile`` (``None``: ``CLOUDBRIDGE_PROFILE`` or ``default``)."""
    profile = profile or os.environ.get("CLOUDBRIDGE_PROFILE") or "default"
    config = load_config()
    if profile == "default":
        table = config.get(provider, {})
    else:
        profiles = config.get("profiles", {})
        if profile not in profiles:
            known = ", ".join(["default", *sorted(profiles)])
            raise InvalidSpec(f"no profile {profile!r} (known: {known})", source=str(config_path()))
        table = profiles[profile].get(provider, {})
    return dict(table) if isinstance(table, dict) else {}


def resolve_settings(
    settings_cls: type[ProviderSettings],
    provider: str,
    *,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    source: str | None = None,
) -> ProviderSettings:
    """Build ``settings_cls`` from the hook, the config profile, the environment and ``overrides``.

    A validation error becomes :class:`InvalidSpec` naming ``overrides.<provider>.<field>`` (a value
    from the job) or ``settings.<provider>.<field>`` plus where the value was set: the config file
    and its table, the environment variable or the plugin hook. The value itself is never shown.
    """
    from pydantic import ValidationError
    from pydantic_settings import EnvSettingsSource

    from cloudbridge.plugins import get_plugin_manager

    hooked = get_plugin_manager().hook.cloudbridge_resolve_settings(provider=provider, profile=profile) or {}
    from_profile = profile_values(provider, profile)
    from_env = EnvSettingsSource(settings_cls)()
    layers = {"hook": hooked, "profile": from_profile, "env": from_env, "overrides": overrides or {}}
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for layer, values in layers.items():
        merged.update(values)
        origin.update(dict.fromkeys(values, layer))
    try:
        return settings_cls(**merged)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        key = str(error["loc"][0]) if error["loc"] else field
        where = "overrides" if origin.get(key) == "overrides" else "settings"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            known = ", ".join(sorted(settings_cls.model_fields))
            message = f"unknown setting (known: {known})"
        hint = _origin_hint(settings_cls, provider, profile, key, origin.get(key))
        raise InvalidSpec(message, source=source, field=f"{where}.{provider}.{field}", hint=hint) from None


def _origin_hint(
    settings_cls: type[ProviderSettings], provider: str, profile: str | None, key: str, layer: str | None
) -> str | None:
    """Where a bad setting's value came from (never the value itself), for the error line."""
    if layer == "profile":
        profile = profile or os.environ.get("CLOUDBRIDGE_PROFILE") or "default"
        table = provider if profile == "default" else f"profiles.{profile}.{provider}"
        return f"set in {config_path()} [{table}]"
    if layer == "env":
        name = f"{settings_cls.model_config.get('env_prefix') or ''}{key}"
        return f"set by ${name if settings_cls.model_config.get('case_sensitive') else name.upper()}"
    if layer == "hook":
        return "set by a plugin's cloudbridge_resolve_settings hook"
    return None
