"""A provider registered in-process (docs/plugins.md, "Register a provider in-process for tests"), and
the plugin guide's numbers and signatures kept honest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cloudbridge as cb
from cloudbridge.interfaces import Compute, Deploy, Provider, Storage
from cloudbridge.plugins import register_plugin, unregister_plugin

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"


def test_register_a_provider_in_process_as_the_guide_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(r'```python title="tests/test_memtest.py"\n(.*?)```', text, re.S)
    assert match, "the guide shows in-process registration"
    (tmp_path / "cb_guide_memtest.py").write_text(match.group(1))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("cb_guide_memtest")
    module.test_memtest()
    assert "memtest" not in cb.providers(), "unregistered again"
    plugin = module.MemPlugin()
    register_plugin(plugin)
    try:
        assert cb.provider("memtest").name == "memtest" and "memtest" in cb.providers()
    finally:
        unregister_plugin(plugin)


def test_the_guide_states_the_example_size_and_every_signature() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    files = list((ROOT / "examples" / "custom-provider" / "src").rglob("*.py"))
    lines = sum(len(f.read_text(encoding="utf-8").splitlines()) for f in files)
    stated = re.search(r"custom-provider.*?\b(\d[\d,]*) lines of Python in (\d+) modules", text, re.S)
    assert stated, "the guide states the example's size"
    assert abs(int(stated.group(1).replace(",", "")) - lines) <= lines * 0.1, (stated.group(0), lines)
    assert int(stated.group(2)) == len(files)
    reference = text[text.index("## Reference: every method a plugin implements"):]
    for cls in (Provider, Storage, Compute, Deploy):
        for name, member in vars(cls).items():
            if name.startswith("_") or not (callable(member) or isinstance(member, property)):
                continue
            assert f"def {name}(self" in reference, f"{cls.__name__}.{name} has no signature in the guide"
