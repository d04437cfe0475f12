"""The base class of provider settings models (re-exported as ``cloudbridge.settings.ProviderSettings``).

Kept apart from :mod:`cloudbridge.settings` so that reading the home folder or ``config.toml``
(every CLI command does, through the job store) does not import pydantic-settings.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ProviderSettings"]


class ProviderSettings(BaseSettings):
    """Base class of every provider's settings model.

    Subclasses set ``model_config = SettingsConfigDict(env_prefix="CLOUDBRIDGE_AWS_")`` (or
    similar) and type secrets as ``pydantic.SecretStr`` so they never print.
    """

    model_config = SettingsConfigDict(extra="forbid", env_ignore_empty=True)
