"""Settings of the ``dirstore`` provider (``[dirstore]`` in config.toml, ``CLOUDBRIDGE_DIRSTORE_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from cloudbridge.settings import ProviderSettings, cloudbridge_home


class DirstoreSettings(ProviderSettings):
    """Where buckets and job folders live, and how jobs are stopped."""

    model_config = SettingsConfigDict(env_prefix="CLOUDBRIDGE_DIRSTORE_", extra="forbid", env_ignore_empty=True)

    root: Path | None = Field(
        None, description="Folder holding buckets/ and jobs/ (default CLOUDBRIDGE_HOME/dirstore)."
    )
    create_buckets: bool = Field(False, description="Create a missing bucket on first write instead of failing.")
    kill_grace: float = Field(5.0, ge=0, le=600, description="Seconds between SIGTERM and SIGKILL when cancelling.")

    def root_dir(self) -> Path:
        """The resolved root folder (created on use)."""
        path = Path(self.root).expanduser() if self.root else cloudbridge_home() / "dirstore"
        path.mkdir(parents=True, exist_ok=True)
        return path.resolve()
