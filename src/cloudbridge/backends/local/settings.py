"""Settings of the ``local`` provider (env prefix ``CLOUDBRIDGE_LOCAL_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from cloudbridge.settings import ProviderSettings

__all__ = ["LocalSettings"]


class LocalSettings(ProviderSettings):
    """How the local backend runs jobs. Every field can be set in ``config.toml`` under ``[local]``,
    as ``CLOUDBRIDGE_LOCAL_<FIELD>`` or in a job's ``overrides.local``."""

    model_config = SettingsConfigDict(env_prefix="CLOUDBRIDGE_LOCAL_", extra="forbid", env_ignore_empty=True)

    gpus: str | None = Field(
        None, description="Only use these GPU indices, e.g. '0,1' (default: every GPU found)."
    )
    log_dir: Path | None = Field(
        None, description="Folder holding one sub-folder per job (logs, outputs); default CLOUDBRIDGE_HOME/jobs."
    )
    price_per_hour: float = Field(
        0.0, ge=0, description="What an hour of this machine costs in USD, for budgets (default 0: free)."
    )
    kill_grace: float = Field(10.0, ge=0, le=3600, description="Seconds between SIGTERM and SIGKILL on stop.")
    heartbeat_interval: float = Field(2.0, gt=0, le=300, description="Seconds between supervisor heartbeats.")
    poll_interval: float = Field(0.2, gt=0, le=60, description="Seconds between supervisor checks.")
    checkpoint_sync_interval: float = Field(
        300.0, gt=0, description="Seconds between checkpoint uploads when `checkpoints` is a remote URI."
    )

    @field_validator("gpus", mode="before")
    @classmethod
    def _check_gpus(cls, value: object) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        if not isinstance(value, str):
            raise ValueError("expected GPU indices such as '0,1'")
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts or not all(p.isdigit() for p in parts):
            raise ValueError(f"{value!r} is not a list of GPU indices; use e.g. '0,1'")
        return ",".join(parts)

    @property
    def gpu_indices(self) -> list[int] | None:
        """The allowed GPU indices, or ``None`` for all."""
        return [int(p) for p in self.gpus.split(",")] if self.gpus else None

    def jobs_dir(self) -> Path:
        """Where job folders live (created on use)."""
        from cloudbridge.settings import cloudbridge_home, private_dir

        path = Path(self.log_dir).expanduser() if self.log_dir else cloudbridge_home() / "jobs"
        return private_dir(path)
