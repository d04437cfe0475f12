"""``cloudbridge check slurm``: what is missing, and how to fix it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudbridge.errors import CloudbridgeError
from cloudbridge.records import CheckReport

if TYPE_CHECKING:
    from cloudbridge_slurm.provider import SlurmProvider

__all__ = ["COMMANDS", "run_checks"]

COMMANDS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun")


def run_checks(provider: SlurmProvider) -> CheckReport:
    """ssh (with ``login``), the Slurm commands, the controller, the partition and the staging folder."""
    report = CheckReport(provider.name)
    runner, settings = provider.runner, provider.settings
    if settings.login:
        try:
            runner.run(["true"], what=f"log in to {settings.login}")
        except CloudbridgeError as exc:
            report.add("ssh", False, exc.message, exc.hint or "check that `ssh HOST true` works without a prompt")
            return report
        report.add("ssh", True, f"{settings.login} (one shared connection)")
    missing = runner.which(COMMANDS)
    where = settings.login or "this machine"
    if missing:
        report.add("slurm commands", False, f"not found on {where}: {', '.join(missing)}",
                   "install Slurm's client commands (Debian: apt-get install slurm-client) or set login = "
                   "user@login-node in the [slurm] table of config.toml")
        return report
    report.add("slurm commands", True, f"on {where}")
    try:
        out = runner.text(["scontrol", "ping"], what="reach the controller (scontrol ping)")
    except CloudbridgeError as exc:
        report.add("controller", False, exc.message,
                   "check that slurmctld runs and SLURM_CONF points at its slurm.conf")
        return report
    if "UP" not in out:
        report.add("controller", False, out.strip() or "scontrol ping said nothing",
                   "start slurmctld, or check SLURM_CONF")
        return report
    report.add("controller", True, out.strip().splitlines()[0])
    adapter = provider.compute.adapter
    try:
        cluster = adapter.cluster(refresh=True)
    except CloudbridgeError as exc:
        report.add("partition", False, exc.message, "check sinfo --json")
        return report
    part = cluster.partitions.get(settings.partition) if settings.partition else cluster.default
    if part is None:
        known = ", ".join(cluster.partitions) or "none"
        report.add("partition", False, f"unknown partition {settings.partition!r} (partitions: {known})",
                   "set partition in the [slurm] table of config.toml to one of them")
    else:
        gpus = f", up to {part.max_gpus_per_node} GPUs per node" if part.max_gpus_per_node else ""
        report.add("partition", True, f"{part.name}: {len(part.nodes)} node(s){gpus}")
    if not settings.staging_dir:
        report.add("staging folder", False, "no staging_dir is set",
                   "set staging_dir in the [slurm] table of config.toml to a folder on the shared filesystem")
        return report
    try:
        report.add("staging folder", True, f"{adapter.check_staging()} is writable")
    except CloudbridgeError as exc:
        report.add("staging folder", False, getattr(exc, "message", str(exc)), exc.hint or
                   "choose a writable folder on the cluster's shared filesystem")
    return report
