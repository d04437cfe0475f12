"""Workdir packaging: ignore semantics against git itself, dedup, determinism, size guard, bad input."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudbridge.errors import InvalidSpec, UserError
from cloudbridge.packaging import build_archive, package_workdir, scan_workdir, upload_workdir

GIT = shutil.which("git")


def _write(root: Path, files: dict[str, bytes | str]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)


def _git_included(root: Path) -> set[str]:
    """Files git would add: untracked and not ignored (the oracle)."""
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
    subprocess.run([GIT, "init", "-q", str(root)], check=True, env=env)
    out = subprocess.run(
        [
            GIT,
            "-C",
            str(root),
            "-c",
            "core.excludesFile=",
            "-c",
            "core.quotePath=false",
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
        ],
        check=True,
        capture_output=True,
        env=env,
    ).stdout
    shutil.rmtree(root / ".git")
    return {p.decode() for p in out.split(b"\0") if p}


_names = st.sampled_from(["a", "b", "c.log", "d.txt", "build", "x.py", "keep.log", "sub"])
_paths = st.lists(_names, min_size=1, max_size=3).map("/".join)
_patterns = st.sampled_from(
    [
        "*.log",
        "!keep.log",
        "build/",
        "build",
        "/d.txt",
        "sub/",
        "!sub/",
        "a/*",
        "**/x.py",
        "a/**/d.txt",
        "*.txt",
        "!*.txt",
        "b",
        "/a",
        "sub/*.log",
        "!build/",
        "# comment",
        "",
        "c.lo?",
        "[ab]",
        "**/sub/**",
    ]
)


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_excluded_directory_not_reincluded_by_a_parent_match(tmp_path: Path) -> None:
    """``b`` excludes ``d.txt/b``; ``!*.txt`` matches its parent ``d.txt``, not ``d.txt/b`` itself, so
    nothing under ``d.txt/b`` comes back (found by the generated-tree test; checked against git)."""
    _write(tmp_path, {"d.txt/b/a": "a", "d.txt/keep": "k", ".gitignore": "b\n!*.txt\n"})
    ours = {e.path for e in scan_workdir(tmp_path, hash_files=False).entries}
    assert ours == _git_included(tmp_path) == {".gitignore", "d.txt/keep"}


@pytest.mark.skipif(GIT is None, reason="git is not installed")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    files=st.lists(_paths, min_size=1, max_size=14),
    root_rules=st.lists(_patterns, max_size=6),
    nested=st.lists(
        st.tuples(st.sampled_from(["a", "sub", "a/sub", "build"]), st.lists(_patterns, max_size=3)), max_size=2
    ),
)
def test_ignore_semantics_match_git(tmp_path_factory: pytest.TempPathFactory, files, root_rules, nested) -> None:
    root = tmp_path_factory.mktemp("wd")
    written: set[str] = set()
    for rel in files:
        if any(rel.startswith(w + "/") or w.startswith(rel + "/") for w in written):
            continue  # a path cannot be a file and a directory
        _write(root, {rel: rel})
        written.add(rel)
    _write(root, {".gitignore": "\n".join(root_rules) + "\n"})
    for directory, rules in nested:
        if (root / directory).is_dir():
            _write(root, {f"{directory}/.gitignore": "\n".join(rules) + "\n"})
    ours = {e.path for e in scan_workdir(root, hash_files=False).entries}
    assert ours == _git_included(root)


def test_defaults_skip_vcs_venvs_and_caches(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "train.py": "print(1)",
            ".git/config": "x",
            ".venv/lib/site.py": "x",
            "venv/bin/python": "x",
            "env2/pyvenv.cfg": "home = /usr",
            "env2/lib/x.py": "x",
            "pkg/__pycache__/m.cpython-311.pyc": "x",
            ".pytest_cache/v": "x",
            ".mypy_cache/x": "x",
            ".ruff_cache/x": "x",
            "node_modules/lib/index.js": "x",
            "nb/.ipynb_checkpoints/a.ipynb": "x",
            "pkg/m.py": "x",
        },
    )
    manifest = scan_workdir(tmp_path)
    assert [e.path for e in manifest.entries] == ["pkg/m.py", "train.py"]
    assert manifest.ignored >= 9


def test_cloudbridgeignore_overrides_gitignore_and_defaults(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            ".gitignore": "*.csv\n",
            ".cloudbridgeignore": "!small.csv\ncheckpoints/\n!venv/\n",
            "small.csv": "1",
            "big.csv": "2",
            "checkpoints/c.pt": "3",
            "venv/keep.txt": "4",
            "run.py": "5",
        },
    )
    paths = [e.path for e in scan_workdir(tmp_path).entries]
    assert paths == [".cloudbridgeignore", ".gitignore", "run.py", "small.csv", "venv/keep.txt"]


def test_invalid_pattern_names_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path, {"sub/.cloudbridgeignore": "*.log\n\n!\n", "sub/a": "a"})
    with pytest.raises(InvalidSpec) as info:
        scan_workdir(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'sub' / '.cloudbridgeignore'}:3: ")


def test_missing_or_file_workdir(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        scan_workdir(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        scan_workdir(tmp_path / "f")


def test_digest_and_archive_deterministic(tmp_path: Path) -> None:
    _write(tmp_path / "w", {"a.py": "a", "d/b.py": "b", "run.sh": "#!/bin/sh\n"})
    os.chmod(tmp_path / "w" / "run.sh", 0o755)
    first, path1 = package_workdir(tmp_path / "w", tmp_path / "o1")
    os.utime(tmp_path / "w" / "a.py", (1, 1))  # mtimes do not matter
    second, path2 = package_workdir(tmp_path / "w", tmp_path / "o2")
    assert first.digest == second.digest
    assert Path(path1).read_bytes() == Path(path2).read_bytes()
    with tarfile.open(path1) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["a.py", "d/b.py", "run.sh"]
        assert {m.mtime for m in members} == {315532800} and {m.uid for m in members} == {0}
        assert members[2].mode == 0o755
        assert tar.extractfile("d/b.py").read() == b"b"
    (tmp_path / "w" / "a.py").write_text("changed")
    assert scan_workdir(tmp_path / "w").digest != first.digest


def test_upload_dedup_second_upload_zero_bytes(tmp_path: Path) -> None:
    _write(tmp_path / "w", {"train.py": "x" * 5000, "lib/util.py": "y"})
    store = tmp_path / "bucket" / "code"
    uri, sent = upload_workdir(tmp_path / "w", str(store))
    assert sent > 0 and Path(uri).is_file() and Path(uri).stat().st_size == sent
    again, sent2 = upload_workdir(tmp_path / "w", str(store))
    assert (again, sent2) == (uri, 0)
    (tmp_path / "w" / "lib" / "util.py").write_text("z")
    third, sent3 = upload_workdir(tmp_path / "w", str(store))
    assert third != uri and sent3 > 0


def test_size_warning_and_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, {"model.bin": b"\0" * (3 * 1024 * 1024), "small.py": "x"})
    monkeypatch.setenv("CLOUDBRIDGE_MAX_WORKDIR_MB", "2")
    with pytest.raises(UserError) as info:
        scan_workdir(tmp_path)
    text = str(info.value)
    assert "model.bin" in text and "inputs:" in text and ".cloudbridgeignore" in text
    monkeypatch.setenv("CLOUDBRIDGE_MAX_WORKDIR_MB", "nope")
    with pytest.raises(InvalidSpec, match="CLOUDBRIDGE_MAX_WORKDIR_MB"):
        scan_workdir(tmp_path)
    monkeypatch.setenv("CLOUDBRIDGE_MAX_WORKDIR_MB", "10")
    monkeypatch.setattr("cloudbridge.packaging.WARN_BYTES", 1024 * 1024)
    manifest = scan_workdir(tmp_path)
    assert manifest.warnings and "model.bin" in manifest.warnings[0]
    summary = manifest.summarize()
    assert "2 files" in summary and "model.bin" in summary and "warning:" in summary


def test_manifest_digest_covers_content(tmp_path: Path) -> None:
    _write(tmp_path, {"a": "1"})
    manifest = scan_workdir(tmp_path)
    assert manifest.entries[0].sha256 == hashlib.sha256(b"1").hexdigest()
    build_archive(manifest, tmp_path.parent / "x.tar.gz")
    assert manifest.to_dict()["files"] == 1
