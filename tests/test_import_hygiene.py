"""``import cloudbridge``, ``cloudbridge --help`` and ``cloudbridge providers`` import nothing heavy.

Each check runs in a fresh interpreter (a subprocess), so modules imported by other tests in this
process cannot hide or fake a leak. Installed plugins (e.g. ``cloudbridge-aws``) are loaded as
usual, so their registration must be import-free too.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Never imported by the fast paths (the brief's hard rule).
FORBIDDEN = ("torch", "transformers", "accelerate", "boto3", "botocore", "google.cloud", "azure")
#: Not needed to list commands or providers either; importing them would make the CLI slow.
SLOW = ("numpy", "scipy", "yaml", "moto")
#: Not needed by ``import cloudbridge`` or ``--help``. (Invoking a command with options does
#: import it: typer >= 0.20 converts option values through pydantic TypeAdapters.)
NOT_FOR_HELP = ("pydantic",)

# Modules already loaded when the interpreter starts are not cloudbridge's doing: google-cloud-aiplatform
# installs a *-nspkg.pth that imports the bare ``google.cloud`` namespace in every interpreter of the venv.
PROBE = """
import json, sys
at_start = set(sys.modules)
{body}
names = {names!r}
leaked = sorted({{m for m in set(sys.modules) - at_start for n in names if m == n or m.startswith(n + ".")}})
sys.__stdout__.write("\\n@@" + json.dumps(leaked) + "\\n")
"""

CLI = """
import io, contextlib
from cloudbridge.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main({argv!r})
assert code == 0, (code, out.getvalue())
"""


def _leaked(body: str, names: tuple[str, ...]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(body=body, names=names)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    marker = [line for line in result.stdout.splitlines() if line.startswith("@@")]
    assert marker, result.stdout
    return json.loads(marker[-1][2:])


@pytest.mark.parametrize(
    "body",
    [
        "import cloudbridge",
        "import cloudbridge as cb; cb.__version__; cb.hookimpl; cb.ProviderInfo",
        CLI.format(argv=["--help"]),
        CLI.format(argv=["providers"]),
        CLI.format(argv=["providers", "--json"]),
        CLI.format(argv=["plugins"]),
        CLI.format(argv=["--version"]),
    ],
    ids=["import", "attributes", "help", "providers", "providers-json", "plugins", "version"],
)
def test_fast_paths_import_nothing_heavy(body: str) -> None:
    assert _leaked(body, FORBIDDEN + SLOW) == []


@pytest.mark.parametrize("body", ["import cloudbridge", CLI.format(argv=["--help"])], ids=["import", "help"])
def test_import_and_help_do_not_import_pydantic(body: str) -> None:
    assert _leaked(body, NOT_FOR_HELP) == []


def test_probe_detects_a_heavy_import() -> None:
    # The probe itself works: importing one of the watched modules is reported.
    assert "yaml" in _leaked("import yaml", SLOW)
