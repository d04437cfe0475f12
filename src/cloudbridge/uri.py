"""Storage URIs: parsing, joining and the key-safety rules.

Accepted forms::

    /abs/path  ./rel/path  file:///abs/path           -> scheme "file"
    s3://bucket/key                                   -> scheme "s3"
    gs://bucket/key                                   -> scheme "gs"
    az://account/container/key                        -> scheme "az" (bucket = "account/container")
    <any registered scheme>://bucket/key

Keys never start with ``/``, never contain ``..`` segments or NUL bytes: :func:`safe_key`
refuses them with :class:`~cloudbridge.errors.UnsafeKey`.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass

from cloudbridge.errors import InvalidURI, UnsafeKey

__all__ = ["StorageURI", "check_key", "is_remote", "join_key", "key_problem", "parse_uri", "safe_key"]

_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")
_BUCKET_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,221}$")


@dataclass(frozen=True)
class StorageURI:
    """A parsed storage location.

    ``scheme`` is ``file`` for local paths; ``bucket`` is empty for files and
    ``account/container`` for ``az``; ``key`` is the path inside the bucket (for ``file``, the
    absolute filesystem path).
    """

    scheme: str
    bucket: str
    key: str

    @property
    def is_local(self) -> bool:
        """True for filesystem paths."""
        return self.scheme == "file"

    @property
    def path(self) -> str:
        """The filesystem path of a ``file`` URI."""
        if not self.is_local:
            raise InvalidURI(f"{self} is not a local path")
        return self.key

    def child(self, name: str) -> StorageURI:
        """The URI of ``name`` below this one (``name`` is checked with :func:`safe_key`)."""
        name = safe_key(name)
        if self.is_local:
            return StorageURI("file", "", os.path.join(self.key, name))
        return StorageURI(self.scheme, self.bucket, join_key(self.key, name))

    def __str__(self) -> str:
        if self.is_local:
            return self.key
        return f"{self.scheme}://{self.bucket}/{self.key}" if self.key else f"{self.scheme}://{self.bucket}"


def safe_key(key: str) -> str:
    """Return ``key`` normalised (no leading ``./``), or raise :class:`UnsafeKey`.

    Refused: NUL bytes, absolute keys, backslash-escapes on Windows-style paths and any ``..``
    segment, because each would let a key land outside the prefix it was meant for.
    """
    if "\x00" in key:
        raise UnsafeKey(f"storage key {key!r} contains a NUL byte")
    if key.startswith("/") or re.match(r"^[a-zA-Z]:[\\/]", key):
        raise UnsafeKey(f"storage key {key!r} is absolute; keys are relative to their bucket or prefix")
    parts = key.replace("\\", "/").split("/")
    if any(part == ".." for part in parts):
        raise UnsafeKey(f"storage key {key!r} contains '..' and would escape its prefix")
    cleaned = [p for p in parts if p not in ("", ".")]
    trailing = "/" if key.endswith("/") and cleaned else ""
    return "/".join(cleaned) + trailing


def check_key(key: str) -> tuple[str, ...]:
    """The segments of the relative object key ``key``, or :class:`UnsafeKey` naming it and why.

    A key is accepted only when joining its segments back with ``/`` gives ``key`` again, so no two
    different keys can ever map to one local path.
    """
    why = key_problem(key)
    if why:
        raise UnsafeKey(f"object key {key!r} {why}; refused")
    return tuple(key.split("/"))


def key_problem(key: str) -> str | None:
    """Why the listed relative key ``key`` is unsafe to join to a folder, or ``None`` when it is safe."""
    if not key:
        return "is empty"
    for char in key:
        if char == "\x00":
            return "contains a NUL byte"
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return f"contains the control character {char!r}"
    if "\\" in key:
        return "contains a backslash"
    if key.startswith("/"):
        return "starts with '/' (an absolute path)"
    parts = key.split("/")
    if "" in parts:
        return "has an empty segment ('//' or a trailing '/')"
    if ".." in parts:
        return "has a '..' segment"
    if "." in parts:
        return "has a '.' segment"
    return None


def join_key(prefix: str, name: str) -> str:
    """Join two key fragments with exactly one ``/``."""
    if not prefix:
        return name
    if not name:
        return prefix
    return posixpath.join(prefix.rstrip("/"), name.lstrip("/"))


def parse_uri(uri: str | os.PathLike[str], *, base_dir: str | None = None) -> StorageURI:
    """Parse ``uri`` into a :class:`StorageURI`.

    Bare paths are made absolute against ``base_dir`` (default: the working directory).
    Raises :class:`InvalidURI` for malformed URIs and :class:`UnsafeKey` for unsafe keys.
    """
    text = os.fspath(uri)
    if not text:
        raise InvalidURI("empty storage URI")
    if "\x00" in text:
        raise UnsafeKey(f"storage URI {text!r} contains a NUL byte")
    match = _SCHEME_RE.match(text)
    if not match:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:/[^/]", text):
            raise InvalidURI(f"malformed URI {text!r}: expected SCHEME://BUCKET/KEY")
        path = os.path.expanduser(text)
        if not os.path.isabs(path):
            path = os.path.join(base_dir or os.getcwd(), path)
        return StorageURI("file", "", os.path.normpath(path) + ("/" if text.endswith("/") else ""))
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "file":
        if not rest.startswith("/"):
            raise InvalidURI(f"file URI {text!r} must be absolute: file:///path")
        return StorageURI("file", "", os.path.normpath(rest) + ("/" if rest.endswith("/") and rest != "/" else ""))
    segments = rest.split("/", 2 if scheme == "az" else 1)
    if scheme == "az":
        if len(segments) < 2 or not segments[0] or not segments[1]:
            raise InvalidURI(f"Azure URI {text!r} must be az://ACCOUNT/CONTAINER/KEY")
        bucket = f"{segments[0]}/{segments[1]}"
        key = segments[2] if len(segments) > 2 else ""
        names = segments[:2]
    else:
        bucket = segments[0]
        key = segments[1] if len(segments) > 1 else ""
        names = [bucket]
    for name in names:
        if not _BUCKET_RE.match(name):
            raise InvalidURI(f"invalid bucket or container name {name!r} in {text!r}")
    return StorageURI(scheme, bucket, safe_key(key) if key else "")


def is_remote(uri: str | os.PathLike[str]) -> bool:
    """True when ``uri`` names cloud storage rather than a local path."""
    text = os.fspath(uri)
    return bool(_SCHEME_RE.match(text)) and not text.startswith("file://")
