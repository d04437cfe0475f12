"""``SlurmSettings``: where jobs go on the cluster and how the cluster is reached.

Resolution (lowest precedence first, see :func:`cloudbridge.settings.resolve_settings`): the
``[slurm]`` table of the ``config.toml`` profile < ``CLOUDBRIDGE_SLURM_*`` variables < a job's
``overrides.slurm``.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from cloudbridge.settings import ProviderSettings

__all__ = ["STAGING_BUCKET", "SlurmSettings"]

#: The "bucket" of every ``slurm://`` URI: ``slurm://staging/<key>`` is ``<staging_dir>/<key>`` on the cluster.
STAGING_BUCKET = "staging"
_LOGIN_RE = re.compile(r"^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(?::\d{1,5})?$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._,&|:*!-]+$")


class SlurmSettings(ProviderSettings):
    """Settings of the ``slurm`` provider (env prefix ``CLOUDBRIDGE_SLURM_``)."""

    model_config = SettingsConfigDict(env_prefix="CLOUDBRIDGE_SLURM_", extra="forbid", env_ignore_empty=True)

    partition: str | None = Field(None, description="Partition (queue) jobs are submitted to; default: the cluster's.")
    account: str | None = Field(None, description="Account charged for jobs (sbatch --account).")
    qos: str | None = Field(None, description="Quality of service (sbatch --qos).")
    constraint: str | None = Field(None, description="Node features required (sbatch --constraint), e.g. 'a100'.")
    staging_dir: str | None = Field(
        None, description="Absolute folder on the cluster's shared filesystem where code, inputs and outputs land."
    )
    login: str = Field(
        "", description="Empty: run the Slurm commands on this machine; 'user@host[:port]': run them over ssh."
    )
    setup: str = Field(
        "", description="Shell lines the job runs before srun, e.g. 'source /shared/venv/bin/activate'."
    )
    node_local: list[str] = Field(
        default_factory=lambda: ["/tmp", "/var/tmp", "/dev/shm", "/run"],
        description="Folders local to each node: staging_dir inside one is refused (nodes would not see it).",
    )
    sbatch_options: list[str] = Field(
        default_factory=list, description="Extra sbatch options for every job, e.g. ['--exclusive', '--reservation=x']."
    )
    node_hour_price: float | None = Field(
        None, ge=0, description="What one node-hour costs (your charge-back rate, USD): prices jobs so max_cost works."
    )
    ssh_options: list[str] = Field(default_factory=list, description="Extra ssh options, e.g. ['-i', '~/.ssh/hpc'].")
    command_timeout: float = Field(60.0, gt=0, le=3600, description="Seconds one Slurm command (or ssh) may take.")
    poll_interval: float = Field(5.0, gt=0, le=600, description="Seconds between polls when waiting or following.")

    @property
    def bucket(self) -> str:
        """``slurm://staging``: the location ``cloudbridge migrate --to slurm`` stages data under."""
        return f"slurm://{STAGING_BUCKET}"

    @field_validator("staging_dir")
    @classmethod
    def _check_staging(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("/"):
            raise ValueError(f"{value!r} is not an absolute path on the cluster (e.g. /shared/$USER/cloudbridge)")
        return value.rstrip("/") or "/"

    @field_validator("login")
    @classmethod
    def _check_login(cls, value: str) -> str:
        value = value.strip()
        if value and not _LOGIN_RE.match(value):
            raise ValueError(f"{value!r} is not a login host; use host, user@host or user@host:port")
        return value

    @field_validator("partition", "account", "qos", "constraint")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME_RE.match(value):
            raise ValueError(f"{value!r} has characters Slurm does not accept here")
        return value
