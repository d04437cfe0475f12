"""The table of builtin commands: which module defines each, its one-line help and its help panel.

``cloudbridge`` loads command modules lazily: ``cloudbridge jobs`` imports only
:mod:`cloudbridge.cli.jobs`, and ``cloudbridge --help`` imports none, printing the one-line help
from this table. To add a builtin command:

1. write ``cloudbridge/cli/<module>.py`` with a ``register(app)`` that adds the command(s)
   (``app.command("name", rich_help_panel=PANEL)(fn)`` or ``app.add_typer(group, name="name")``);
2. add one :class:`CommandEntry` per command name below, with the first line of its docstring as
   ``help`` (``tests/test_cli_startup.py`` checks that they agree).

This module imports nothing but the standard library: it is read on every start.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["COMMANDS", "COMMAND_MODULES", "CommandEntry", "command_entry"]


class CommandEntry(NamedTuple):
    """One builtin command: its name, the module under ``cloudbridge.cli`` that registers it, help, panel."""

    name: str
    module: str
    help: str
    panel: str


COMMANDS: tuple[CommandEntry, ...] = (
    CommandEntry("init", "config", "Write a commented config.toml in the cloudbridge home and print its path.",
                 "Setup"),
    CommandEntry("config", "config", "Show the settings in effect and where each came from.", "Setup"),
    CommandEntry("providers", "providers", "List providers: capabilities, URI schemes, distribution, installed or not.",
                 "Setup"),
    CommandEntry("plugins", "providers", "List plugins: distribution, version, and whether each loaded (with its "
                 "error if not).", "Setup"),
    CommandEntry("check", "providers", "Check credentials and configuration; exit 1 when a check fails, saying how "
                 "to fix it.", "Setup"),
    CommandEntry("run", "jobs", "Run a job: show its cost estimate, submit it, stream its logs, exit with its status "
                 "(0 succeeded, 1 failed).", "Jobs"),
    CommandEntry("jobs", "joblist", "List jobs of every provider, newest first.", "Jobs"),
    CommandEntry("status", "jobs", "Show one job: state, failure reason and detail, attempts and state-change events.",
                 "Jobs"),
    CommandEntry("logs", "jobs", "Print a job's logs (-f follows them until the job ends, or --timeout passes: "
                 "exit 1).",
                 "Jobs"),
    CommandEntry("cancel", "joblist", "Cancel a job (on local: its whole process group); a finished job is left as "
                 "it is.", "Jobs"),
    CommandEntry("metrics", "metrics", "Show jobs' metrics: a table of the latest values and small charts of loss and "
                 "accuracy.", "Jobs"),
    CommandEntry("tensorboard", "metrics", "Start TensorBoard on 127.0.0.1 over the jobs' event files (synced from the "
                 "cloud if needed); Ctrl-C stops it.", "Jobs"),
    CommandEntry("dashboard", "dashboard", "Serve the web dashboard on 127.0.0.1: jobs of every provider, logs, "
                 "charts, endpoints, GPUs, spend.", "Jobs"),
    CommandEntry("emulate", "emulate", "Run JOB locally with the platform's exact environment variables and "
                 "directory layout.", "Jobs"),
    CommandEntry("migrate", "migrate", "Upload what a local job reads, write JOB.<provider>.yaml with URIs, "
                 "optionally submit it.", "Jobs"),
    CommandEntry("storage", "storage", "List, copy, delete, measure and sync data on local paths, s3://, gs:// and "
                 "az:// URIs.", "Data"),
    CommandEntry("deploy", "deploy", "Deploy a model behind an HTTP endpoint and wait until it serves.", "Endpoints"),
    CommandEntry("endpoints", "deploy", "List endpoints and their live state (a dead local server shows as Stopped).",
                 "Endpoints"),
    CommandEntry("invoke", "deploy", "Send a JSON payload to an endpoint and print its JSON reply.", "Endpoints"),
    CommandEntry("undeploy", "deploy", "Stop an endpoint and delete everything created for it.", "Endpoints"),
    CommandEntry("catalog", "planner", "List instance types and prices from the planner catalog (list prices: "
                 "estimates).", "Planning and cost"),
    CommandEntry("resources", "planner", "Show this machine's GPUs, CPUs and memory as the planner sees them, or "
                 "(--provider) a provider's machines.", "Planning and cost"),
    CommandEntry("plan", "planner", "Where could a job run, cheapest first (and why not elsewhere); or allocate "
                 "tasks, or split a batch.", "Planning and cost"),
    CommandEntry("queue", "planner", "Show the local GPU queue in the order the scheduler will start jobs, and who "
                 "holds which GPU.", "Planning and cost"),
    CommandEntry("cost", "planner", "Estimated spend per job and provider from job records x catalog prices (an "
                 "estimate).", "Planning and cost"),
)

#: Command modules under ``cloudbridge.cli`` (short names), in the order of :data:`COMMANDS`.
COMMAND_MODULES: list[str] = list(dict.fromkeys(entry.module for entry in COMMANDS))

_BY_NAME = {entry.name: entry for entry in COMMANDS}


def command_entry(name: str) -> CommandEntry | None:
    """The builtin command ``name``, or ``None`` (a plugin's command, or no command at all)."""
    return _BY_NAME.get(name)
