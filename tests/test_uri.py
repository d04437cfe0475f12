"""URI parsing and key safety, with hypothesis fuzzing of arbitrary strings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudbridge.errors import InvalidURI, UnsafeKey
from cloudbridge.uri import StorageURI, is_remote, join_key, parse_uri, safe_key


def test_bare_and_file_paths(tmp_path: Path) -> None:
    assert parse_uri("data/x.csv", base_dir=str(tmp_path)) == StorageURI("file", "", str(tmp_path / "data/x.csv"))
    assert parse_uri("/abs/p").key == "/abs/p"
    assert parse_uri("file:///abs/p/").key == "/abs/p/"
    assert parse_uri("./d/", base_dir="/b").key == "/b/d/"
    assert parse_uri("~/x").key == os.path.expanduser("~/x")
    uri = parse_uri("/abs/p")
    assert uri.is_local and uri.path == "/abs/p" and str(uri) == "/abs/p"


def test_cloud_uris() -> None:
    s3 = parse_uri("s3://bucket/a/b.txt")
    assert (s3.scheme, s3.bucket, s3.key) == ("s3", "bucket", "a/b.txt")
    assert str(s3) == "s3://bucket/a/b.txt"
    assert parse_uri("S3://bucket").key == ""
    gs = parse_uri("gs://b/./x//y")
    assert gs.key == "x/y"
    az = parse_uri("az://acct/container/k/v")
    assert (az.bucket, az.key) == ("acct/container", "k/v")
    assert parse_uri("dir://bucket/key").scheme == "dir"
    assert s3.child("c/d").key == "a/b.txt/c/d"
    with pytest.raises(InvalidURI):
        s3.path  # noqa: B018


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", InvalidURI),
        ("s3:/bucket/key", InvalidURI),
        ("file://relative/path", InvalidURI),
        ("az://acct", InvalidURI),
        ("s3://bad bucket/key", InvalidURI),
        ("s3://bucket/../etc/passwd", UnsafeKey),
        ("s3://bucket/a/../../b", UnsafeKey),
        ("s3://bucket//abs", UnsafeKey),
        ("s3://bucket/a\x00b", UnsafeKey),
    ],
)
def test_bad_uris(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_uri(text)


@pytest.mark.parametrize("key", ["../x", "a/../b", "a\\..\\b", "/etc/passwd", "C:\\x", "C:/x", "a\x00"])
def test_safe_key_refuses(key: str) -> None:
    with pytest.raises(UnsafeKey):
        safe_key(key)


def test_safe_key_normalises() -> None:
    assert safe_key("./a//b/./c") == "a/b/c"
    assert safe_key("a/b/") == "a/b/"
    assert safe_key("a..b/c..") == "a..b/c.."
    assert join_key("a/", "/b") == "a/b" and join_key("", "b") == "b" and join_key("a", "") == "a"
    assert is_remote("s3://b/k") and not is_remote("/x") and not is_remote("file:///x")


def _segments(key: str) -> list[str]:
    return key.replace("\\", "/").split("/")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab./\\:\x00 C")), max_size=24) | st.text(max_size=40))
def test_safe_key_fuzz(key: str) -> None:
    try:
        result = safe_key(key)
    except UnsafeKey:
        return
    assert not result.startswith("/")
    assert ".." not in _segments(result)
    assert "\x00" not in result
    assert safe_key(result) == result  # idempotent


_schemes = st.sampled_from(["s3", "gs", "az", "file", "dir", "S3", "x+y", "1bad", ""])
_parts = st.text(alphabet=st.sampled_from(list("ab-_.9/\\: \x00~")), max_size=20)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.builds(lambda s, r: f"{s}://{r}", _schemes, _parts), _parts, st.text(max_size=40)))
def test_parse_uri_fuzz(text: str) -> None:
    try:
        uri = parse_uri(text, base_dir="/base")
    except (InvalidURI, UnsafeKey):
        return
    assert isinstance(uri, StorageURI)
    if uri.is_local:
        assert os.path.isabs(uri.key)
    else:
        assert uri.bucket
        assert not uri.key.startswith("/")
        assert ".." not in uri.key.split("/")
        assert parse_uri(str(uri)) == uri  # round trip
