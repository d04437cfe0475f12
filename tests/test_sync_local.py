"""Sync on local -> local: the shared sync semantics plus what only a filesystem can show."""

from __future__ import annotations

import os
import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudbridge.errors import InvalidURI, TransientError, UserError
from cloudbridge.testing.sync import SyncConformance, put_tree, read_tree
from cloudbridge.transfers.filters import KeyFilter
from cloudbridge.transfers.retry import RetryPolicy, retry_call
from cloudbridge.transfers.sync import sync


class TestSyncLocalToLocal(SyncConformance):
    @pytest.fixture
    def src_uri(self, tmp_path: Path) -> str:
        return str(tmp_path / "src")

    @pytest.fixture
    def dst_uri(self, tmp_path: Path) -> str:
        return str(tmp_path / "dst")


def test_destination_inside_source_refused(tmp_path: Path) -> None:
    put_tree(str(tmp_path / "src"), {"a": b"1"})
    with pytest.raises(UserError, match="inside the source"):
        sync(tmp_path / "src", tmp_path / "src" / "backup", progress=False)
    with pytest.raises(UserError, match="inside the source"):
        sync(tmp_path / "src", tmp_path / "src", progress=False)
    assert sorted(os.listdir(tmp_path / "src")) == ["a"]


def test_source_inside_destination_with_delete_refused(tmp_path: Path) -> None:
    put_tree(str(tmp_path / "top" / "src"), {"a": b"1"})
    with pytest.raises(UserError, match="--delete would remove it"):
        sync(tmp_path / "top" / "src", tmp_path / "top", delete=True, progress=False)
    assert (tmp_path / "top" / "src" / "a").read_bytes() == b"1"


def test_destination_is_a_file(tmp_path: Path) -> None:
    put_tree(str(tmp_path / "src"), {"a": b"1"})
    (tmp_path / "dst").write_bytes(b"file")
    with pytest.raises(UserError, match="is a file"):
        sync(tmp_path / "src", tmp_path / "dst", progress=False)


def test_unknown_scheme(tmp_path: Path) -> None:
    put_tree(str(tmp_path / "src"), {"a": b"1"})
    with pytest.raises(InvalidURI, match="nosuch://"):
        sync(tmp_path / "src", "nosuch://bucket/prefix", progress=False)


def test_permanent_error_reported_rest_completes(tmp_path: Path) -> None:
    files = {f"f{i:02d}": bytes([i]) * 100 for i in range(20)}
    put_tree(str(tmp_path / "src"), files)
    (tmp_path / "dst" / "f07").mkdir(parents=True)  # a directory where a file must go
    result = sync(tmp_path / "src", tmp_path / "dst", progress=False)
    assert not result.ok
    assert [(f.key, f.op) for f in result.failures] == [("f07", "copy")]
    assert "directory" in result.failures[0].error
    assert len(result.copied) == 19
    with pytest.raises(Exception, match="1 object"):
        result.raise_for_errors()


def test_stale_partials_cleaned(tmp_path: Path) -> None:
    put_tree(str(tmp_path / "src"), {"a": b"1"})
    stale = tmp_path / "dst" / ".cb-partial-999999999-0000-a"
    stale.parent.mkdir()
    stale.write_bytes(b"half")
    sync(tmp_path / "src", tmp_path / "dst", progress=False)
    assert sorted(os.listdir(tmp_path / "dst")) == ["a"]


def test_mtime_preserved_for_noop(tmp_path: Path) -> None:
    put_tree(str(tmp_path / "src"), {"a": b"1"})
    os.utime(tmp_path / "src" / "a", (1_500_000_000.25, 1_500_000_000.25))
    sync(tmp_path / "src", tmp_path / "dst", progress=False)
    assert abs(os.stat(tmp_path / "dst" / "a").st_mtime - 1_500_000_000.25) < 1e-3


def test_retry_call_backoff() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("503 slow down")
        return "ok"

    assert retry_call(flaky, RetryPolicy(attempts=5, base=0.1), sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2
    assert all(0 <= s <= 0.2 for s in sleeps)
    with pytest.raises(TransientError):
        retry_call(lambda: (_ for _ in ()).throw(TransientError("down")), RetryPolicy(attempts=3), sleep=sleeps.append)
    with pytest.raises(ValueError):  # permanent errors are not retried
        retry_call(lambda: (_ for _ in ()).throw(ValueError("bad")), RetryPolicy(attempts=3), sleep=sleeps.append)


@pytest.mark.parametrize(
    ("include", "exclude", "key", "selected"),
    [
        ((), (), "a/b.txt", True),
        ((), ("*.txt",), "a/b.txt", False),
        ((), ("__pycache__",), "pkg/__pycache__/m.pyc", False),
        ((), ("logs/",), "logs/x", False),
        ((), ("logs/",), "catalogs/x", True),
        (("data/*",), (), "data/x/y.csv", True),
        (("data/*",), (), "other/y.csv", False),
        (("*.csv",), ("secret*",), "data/secret.csv", False),
    ],
)
def test_key_filter(include: tuple[str, ...], exclude: tuple[str, ...], key: str, selected: bool) -> None:
    assert KeyFilter(include, exclude)(key) is selected


_segment = st.text(alphabet=string.ascii_letters + string.digits + "-_.é", min_size=1, max_size=8).filter(
    lambda s: s not in (".", "..") and not s.startswith(".cb-partial-")
)
_trees = st.dictionaries(
    st.lists(_segment, min_size=1, max_size=3).map("/".join), st.binary(max_size=2000), min_size=0, max_size=25
).filter(
    # a key may not be both a file and a directory
    lambda d: not any(k != o and o.startswith(k + "/") for k in d for o in d)
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=_trees, after=_trees)
def test_hypothesis_trees_converge(tmp_path_factory: pytest.TempPathFactory, before: dict, after: dict) -> None:
    """Whatever the trees, sync --delete makes dst equal src, and a re-sync does nothing."""
    root = tmp_path_factory.mktemp("hyp")
    src, dst = str(root / "src"), str(root / "dst")
    os.makedirs(src)
    put_tree(src, before)
    first = sync(src, dst, delete=True, progress=False)
    assert first.ok and read_tree(dst) == before
    # mutate the source into `after` (remove what is gone, write the rest) and converge again
    for key in before:
        os.unlink(os.path.join(src, key))
    for directory, _dirs, _files in os.walk(src, topdown=False):
        if directory != src and not os.listdir(directory):
            os.rmdir(directory)
    put_tree(src, after)
    if os.path.exists(dst):
        # a destination file blocking a new directory (or vice versa) is a permanent error; avoid it
        clash = any(k.startswith(o + "/") or o.startswith(k + "/") for k in after for o in before)
        if clash:
            return
    second = sync(src, dst, delete=True, checksum=True, progress=False)
    assert second.ok, second.failures
    assert read_tree(dst) == after
    assert sync(src, dst, delete=True, progress=False).copied == []


def test_rich_bar_renders_files_bytes_rate_and_failures(tmp_path: Path) -> None:
    """The bar drawn on a (recorded) terminal console: files, binary byte counts, a rate, and a
    red line per permanent failure while the rest completes."""
    from rich.console import Console

    from cloudbridge.transfers.progress import RichReporter

    put_tree(str(tmp_path / "src"), {f"f{i}.bin": os.urandom(64 * 1024) for i in range(16)} | {"bad": b"x"})
    (tmp_path / "dst" / "bad").mkdir(parents=True)  # a directory where a file must go: permanent error
    console = Console(record=True, force_terminal=True, width=160, color_system=None)
    result = sync(tmp_path / "src", tmp_path / "dst", progress=RichReporter(console=console), workers=2)
    text = console.export_text()
    assert [f.key for f in result.failures] == ["bad"] and len(result.copied) == 16
    assert "17/17 files, 1 failed" in text, text
    assert "1.0/1.0 MiB" in text, text
    assert re.search(r"\d+(\.\d)? (B|KiB|MiB|GiB)/s", text), text
    assert re.search(r"failed bad: .+", text), text
