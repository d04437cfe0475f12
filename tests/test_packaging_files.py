"""The project says what it is honestly: licence text, supported Python, changelog, contributing guide."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: md5 of the canonical https://www.apache.org/licenses/LICENSE-2.0.txt
APACHE_2_MD5 = "3b83ef96387f14655fc854ddc3c6bd57"


def test_license_file_is_the_apache_2_text() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    assert hashlib.md5((ROOT / "LICENSE").read_bytes()).hexdigest() == APACHE_2_MD5


def test_requires_python_claims_what_the_tests_run() -> None:
    for pyproject in [ROOT / "pyproject.toml", *ROOT.glob("plugins/*/pyproject.toml"),
                      *ROOT.glob("examples/*/pyproject.toml")]:
        assert tomllib.loads(pyproject.read_text())["project"]["requires-python"] == ">=3.11", pyproject


def test_changelog_and_contributing_guide() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## Unreleased" in changelog and "## 0.1.0" in changelog
    guide = (ROOT / "CONTRIBUTING.md").read_text()
    for section in ("## Set up and run the tests", "## Write and test a plugin", "## Style"):
        assert section in guide
    assert "scripts/test.sh" in guide and "cloudbridge.testing" in guide
