"""The house reads top-down (docs/concepts.md#layers): these import rules are checked on the source.

* core services never import the local backend's internals (``cloudbridge.backends.local``);
* ``specs`` imports nothing from the job store;
* code that runs inside a job (``runtime``, ``training``, ``serving``) never imports the CLI, the SDK
  facade or the backends;
* a plugin imports only the public modules of :data:`PLUGIN_MAY_IMPORT`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "cloudbridge"
#: What a plugin may import from cloudbridge (a module, or a package and everything under it).
PLUGIN_MAY_IMPORT = ("cloudbridge", "cloudbridge.interfaces", "cloudbridge.records", "cloudbridge.specs",
                     "cloudbridge.errors", "cloudbridge.error_mapping", "cloudbridge.reasons", "cloudbridge.uri",
                     "cloudbridge.settings", "cloudbridge.hookspecs", "cloudbridge.redaction", "cloudbridge.packaging",
                     "cloudbridge.managed", "cloudbridge.transfers", "cloudbridge.planner", "cloudbridge.runtime",
                     "cloudbridge.testing")
#: The one core module that reaches the local backend on purpose: file paths are served by its storage.
LOCAL_BRIDGE = {"transfers/resolve.py"}


def imports(path: Path) -> set[str]:
    """Every ``cloudbridge...`` module ``path`` imports (at any depth, lazy imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if name == "cloudbridge" or name.startswith("cloudbridge.")}


def under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def core_service_files() -> list[Path]:
    skip = ("backends", "cli", "dashboard")
    return [p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] not in skip
            and p.relative_to(SRC).as_posix() not in LOCAL_BRIDGE | {"plugins.py", "jobstore/redact.py"}]


def allowed_for_plugins(name: str) -> bool:
    """True for the public modules, and for top-level names (``from cloudbridge import hookimpl``)."""
    if name == "cloudbridge" or under(name, *PLUGIN_MAY_IMPORT[1:]):
        return True
    head = name.split(".")[1]
    return name.count(".") == 1 and not ((SRC / f"{head}.py").exists() or (SRC / head).is_dir())


def test_core_services_do_not_import_the_local_backend() -> None:
    bad = {p.relative_to(SRC).as_posix(): sorted(n for n in imports(p) if under(n, "cloudbridge.backends.local"))
           for p in core_service_files()}
    assert {k: v for k, v in bad.items() if v} == {}


def test_specs_do_not_import_the_job_store() -> None:
    assert not [n for n in imports(SRC / "specs.py") if under(n, "cloudbridge.jobstore")]


@pytest.mark.parametrize("package", ["runtime", "training", "serving"])
def test_in_job_code_imports_no_cli_sdk_or_backend(package: str) -> None:
    facade = {f"cloudbridge.{name}" for name in ("run", "get_job", "jobs", "cancel", "logs", "storage", "deploy",
                                                 "provider", "providers")}
    bad = {p.relative_to(SRC).as_posix(): sorted(n for n in imports(p) if n in facade or under(
        n, "cloudbridge.cli", "cloudbridge.sdk", "cloudbridge.backends")) for p in (SRC / package).rglob("*.py")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_plugins_import_only_public_core_modules() -> None:
    files = [p for base in ("plugins", "examples") for p in (ROOT / base).glob("*/src/**/*.py")]
    assert files, "no plugin sources found"
    bad = {}
    for path in files:
        names = sorted(n for n in imports(path) if not allowed_for_plugins(n))
        if names:
            bad[path.relative_to(ROOT).as_posix()] = names
    assert bad == {}, f"plugins may import only {', '.join(PLUGIN_MAY_IMPORT)}"


def test_the_rules_can_fail(tmp_path: Path) -> None:
    assert not allowed_for_plugins("cloudbridge.backends.local.storage")
    assert not allowed_for_plugins("cloudbridge.sdk") and not allowed_for_plugins("cloudbridge.jobstore.store")
    assert allowed_for_plugins("cloudbridge.hookimpl") and allowed_for_plugins("cloudbridge.managed.adapter")
    sample = tmp_path / "x.py"
    sample.write_text("def f():\n    from cloudbridge.backends.local.gpus import probe_gpus\n")
    assert imports(sample) == {"cloudbridge.backends.local.gpus", "cloudbridge.backends.local.gpus.probe_gpus"}


def test_gpu_probing_is_one_module() -> None:
    """The planner and the local backend both probe GPUs through ``cloudbridge.gpus`` (issue 11.4); the old
    name ``cloudbridge.backends.local.gpus`` is only an alias of that module for outside code."""
    old = "cloudbridge.backends.local.gpus"
    users = {p.relative_to(SRC).as_posix(): imports(p) for p in SRC.rglob("*.py")}
    assert {k for k, names in users.items() if any(under(n, old) for n in names)} == set()
    assert {"backends/local/compute.py", "backends/local/supervisor.py", "planner/probe.py"} <= {
        k for k, names in users.items() if any(under(n, "cloudbridge.gpus") for n in names)}
