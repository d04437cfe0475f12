"""A typed SDK: mypy --strict over every SDK snippet of the README and the docs, the documented calls'
types (never ``Any``), ``cb.storage(prefix)`` scoped to its prefix, and ``help(cb.storage)``."""

from __future__ import annotations

import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cloudbridge as cb
from cloudbridge.errors import UnsafeKey
from cloudbridge.interfaces import Storage

ROOT = Path(__file__).resolve().parents[1]
#: The README and every docs page; a snippet that imports ``cloudbridge as cb`` is an SDK snippet.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

#: Each documented SDK call and the type mypy must give it (``reveal_type``), never ``Any``.
REVEALS = {
    'cb.run("job.yaml")': "cloudbridge.records.Job",
    'cb.get_job("local-1")': "cloudbridge.records.Job",
    "cb.jobs()": "builtins.list[cloudbridge.records.Job]",
    'cb.cancel("local-1")': "cloudbridge.records.Job",
    'cb.logs("local-1")': "typing.Iterator[builtins.str]",
    'cb.storage("s3://b/k")': "cloudbridge.scoped_storage.ScopedStorage",
    'cb.storage("s3://b/k").list()': "typing.Iterator[cloudbridge.records.ObjectInfo]",
    "cb.providers()": "builtins.dict[builtins.str, cloudbridge.hookspecs.ProviderInfo]",
    'cb.provider("local")': "cloudbridge.interfaces.Provider",
    'cb.deploy("model", name="ep")': "cloudbridge.records.Endpoint",
    'cb.deploy("model", name="ep").invoke({"inputs": "hi"})': "Any",  # a JSON reply: Any by design
    "cb.endpoints()": "builtins.list[cloudbridge.records.Endpoint]",
    'cb.validate("job.yaml")': "cloudbridge.specs.JobSpec",
    'cb.migrate("job.yaml", "aws")': "cloudbridge.migrate.MigrationPlan",
    'cb.JobSpec(name="j", run="python t.py")': "cloudbridge.specs.JobSpec",
    'cb.load_job_spec("job.yaml")': "cloudbridge.specs.JobSpec",
}


def sdk_snippets() -> list[tuple[str, str]]:
    """``(page:line, code)`` of every ```python block that does ``import cloudbridge as cb``."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"```python\n(.*?)```", text, re.S):
            if "import cloudbridge as cb" in match.group(1):
                line = text[: match.start()].count("\n") + 1
                found.append((f"{page.relative_to(ROOT)}:{line}", match.group(1)))
    return found


def _mypy(files: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy", reason="mypy is in the test extras")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
         "--cache-dir", str(cwd / ".mypy_cache"), "--hide-error-context", "--no-error-summary",
         "--python-version", f"{sys.version_info.major}.{sys.version_info.minor}", *map(str, files)],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


def test_mypy_strict_passes_on_every_sdk_snippet_and_types_every_call(tmp_path: Path) -> None:
    snippets = sdk_snippets()
    assert len(snippets) >= 4, "the README and the docs show the SDK"
    files, where = [], {}
    for index, (origin, code) in enumerate(snippets):
        path = tmp_path / f"snippet_{index}.py"
        path.write_text(code)
        files.append(path)
        where[path.name] = origin
    reveal = tmp_path / "reveal.py"
    reveal.write_text("import cloudbridge as cb\n\n" + "".join(f"reveal_type({call})\n" for call in REVEALS))
    bad = tmp_path / "bad.py"  # the check can fail: wrong argument types in SDK calls are errors
    bad.write_text('import cloudbridge as cb\n\ncb.storage(42)\njob = cb.run("job.yaml")\njob.wait("soon")\n')
    proc = _mypy([*files, reveal, bad], tmp_path)  # one mypy run: it is slow on a busy machine
    notes = [line for line in proc.stdout.splitlines() if "reveal.py" in line and "note: Revealed type" in line]
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert [line.split(":")[:2] for line in errors if line.startswith("bad.py")] == [["bad.py", "3"], ["bad.py", "5"]]
    readable = [re.sub(r"snippet_\d+\.py", lambda m: where[m.group(0)], line) for line in errors
                if not line.startswith("bad.py")]
    assert not readable, "\n".join(readable)
    got = [re.sub(r'^.*Revealed type is "(.*)"$', r"\1", line).rstrip("?").replace("builtins.", "")
           for line in notes]
    assert len(got) == len(REVEALS), proc.stdout
    wrong = [f"{call}: mypy sees {actual!r}, expected {expected!r}"
             for (call, expected), actual in zip(REVEALS.items(), got, strict=True)
             if actual != expected.replace("builtins.", "")]
    assert not wrong, "\n".join(wrong)


def test_storage_is_scoped_to_its_prefix(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    store = cb.storage(runs)
    assert isinstance(store, Storage) and store.prefix.path == str(runs)
    (tmp_path / "model.bin").write_bytes(b"weights")
    store.upload(tmp_path / "model.bin", "sst2/model.bin")
    assert (runs / "sst2" / "model.bin").read_bytes() == b"weights"
    store.write_bytes(str(runs / "notes.txt"), b"inside")  # a full location inside the prefix is fine
    assert [(i.key, i.size) for i in store.list()] == [("notes.txt", 6), ("sst2/model.bin", 7)]
    assert [i.key for i in store.list("sst2")] == ["model.bin"] and store.du() == (2, 13)
    assert store.exists("sst2/model.bin") and not store.exists("sst2/other.bin")
    for outside in ("../escape.txt", str(tmp_path / "elsewhere.txt"), str(tmp_path / "runs-other" / "x")):
        with pytest.raises(UnsafeKey):
            store.write_bytes(outside, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "runs"], "nothing written outside"
    store.delete("notes.txt")
    assert not (runs / "notes.txt").exists()


def test_help_of_cb_storage_shows_the_storage_methods() -> None:
    text = pydoc.render_doc(cb.storage, renderer=pydoc.plaintext)
    public = [name for name in dir(Storage) if not name.startswith("_") and callable(getattr(Storage, name))]
    missing = [name for name in public if f"{name}(" not in text]
    assert not missing, f"help(cb.storage) does not show: {missing}"
