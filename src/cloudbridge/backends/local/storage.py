"""Storage on the local filesystem: the ``file`` scheme of the builtin ``local`` provider.

Guarantees (checked by :class:`cloudbridge.testing.storage.StorageConformance`):

* **Atomic writes.** Bytes go to a hidden temp file in the destination directory
  (``.cb-partial-<pid>-<random>``), which is fsynced and then renamed over the final name, so a
  reader (or a crash) never sees a partial object under its final key. Temp files are never listed;
  :meth:`LocalStorage.cleanup_partials` removes the ones whose writing process is gone.
* **Checksums.** ``ObjectInfo.etag`` is a cheap identity (``"<size>-<mtime_ns>"``) that changes when
  the file does; ``ObjectInfo.checksum`` is the hex sha256 of the content. Hashing a large tree on
  every listing would be slow, so checksums are computed lazily: :meth:`LocalStorage.checksum`
  hashes a file once and remembers the digest in a cache keyed by ``(path, size, mtime_ns, inode)``
  (in memory, and in ``CLOUDBRIDGE_HOME/cache/checksums.sqlite``). ``stat``/``list`` report the
  checksum only when the cache already knows it; ``write_stream`` hashes while writing, so freshly
  written objects always carry it.
* **Key safety.** URIs given as ``file://`` URIs or absolute paths must not contain ``..`` segments
  (relative paths such as ``../data`` are the user's own paths and are resolved against the working
  directory). With ``root`` set, every path must stay inside it, symlinks included.
* **Listing** is lazy and sorted by key (a depth-first walk over name-sorted directories in which a
  directory sorts as ``name/``), so listing a large tree streams.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
import stat as statmod
import threading
from collections.abc import Iterator
from typing import IO, Any

from cloudbridge.errors import NotFound, StorageError, UnsafeKey, UserError
from cloudbridge.interfaces import PARTIAL_PREFIX, Storage, URILike
from cloudbridge.records import ObjectInfo
from cloudbridge.transfers.checksum_cache import disk_cache as _disk_cache
from cloudbridge.uri import StorageURI, parse_uri

__all__ = ["PARTIAL_PREFIX", "LocalStorage"]

_CHUNK = 1024 * 1024


def _etag(st: os.stat_result) -> str:
    return f"{st.st_size:x}-{st.st_mtime_ns:x}"


class LocalStorage(Storage):
    """:class:`~cloudbridge.interfaces.Storage` over the local filesystem.

    ``settings`` may be the local provider's settings object (its ``storage_root`` attribute, when
    present and set, confines every path to that directory) or a path used as that root directly.
    """

    schemes = ("file",)

    def __init__(self, settings: Any = None, *, root: str | os.PathLike[str] | None = None) -> None:
        if root is None and isinstance(settings, (str, os.PathLike)):
            root = settings
        elif root is None and settings is not None:
            root = getattr(settings, "storage_root", None)
        self.root = os.path.realpath(os.fspath(root)) if root else None
        self._cache_lock = threading.Lock()
        self._mem_cache: dict[tuple[str, int, int, int, int], str] = {}

    def __repr__(self) -> str:
        return f"<LocalStorage root={self.root!r}>" if self.root else "<LocalStorage>"

    # ---- paths --------------------------------------------------------------------------------
    def _path(self, uri: URILike) -> str:
        """The absolute filesystem path of ``uri``, after the key-safety checks."""
        if isinstance(uri, StorageURI):
            parsed = uri
        else:
            text = os.fspath(uri)
            if "\x00" in text:
                raise UnsafeKey(f"storage key {text!r} contains a NUL byte")
            if text.startswith(("file://", "/")) and ".." in text.replace("\\", "/").split("/"):
                raise UnsafeKey(f"storage key {text!r} contains '..' and would escape its prefix")
            parsed = parse_uri(text)
        if not parsed.is_local:
            raise UserError(f"{parsed} is not a local path; LocalStorage serves file:// URIs only")
        path = parsed.path.rstrip("/") or "/"
        if self.root is not None:
            real = os.path.realpath(path)
            if real != self.root and not real.startswith(self.root.rstrip("/") + "/"):
                raise UnsafeKey(f"path {path!r} is outside the storage root {self.root!r}")
        return path

    # ---- checksum cache -----------------------------------------------------------------------
    def _cache_key(self, path: str, st: os.stat_result) -> tuple[str, int, int, int, int]:
        # ctime too: an in-place, same-size edit with the old mtime put back must not reuse the old digest
        return (path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)

    def _cached_checksum(self, path: str, st: os.stat_result) -> str | None:
        key = self._cache_key(path, st)
        with self._cache_lock:
            found = self._mem_cache.get(key)
        if found is None:
            found = _disk_cache().get(key)
            if found is not None:
                with self._cache_lock:
                    self._mem_cache[key] = found
        return found

    def _remember_checksum(self, path: str, st: os.stat_result, digest: str) -> None:
        key = self._cache_key(path, st)
        with self._cache_lock:
            self._mem_cache[key] = digest
        _disk_cache().put(key, digest)

    def checksum(self, uri: URILike) -> str:
        """The hex sha256 of the object's content, computed once per file version and cached."""
        path = self._path(uri)
        st = self._stat_file(path)
        cached = self._cached_checksum(path, st)
        if cached is not None:
            return cached
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(_CHUNK), b""):
                    digest.update(chunk)
        except FileNotFoundError as exc:
            raise NotFound(f"no such object: {path}") from exc
        after = os.stat(path)
        value = digest.hexdigest()
        if self._cache_key(path, after) == self._cache_key(path, st):  # unchanged while hashing
            self._remember_checksum(path, st, value)
        return value

    # ---- primitives ---------------------------------------------------------------------------
    def _stat_file(self, path: str) -> os.stat_result:
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            raise NotFound(f"no such object: {path}") from exc
        except NotADirectoryError as exc:
            raise NotFound(f"no such object: {path}") from exc
        except OSError as exc:
            raise StorageError(f"cannot stat {path}: {exc.strerror}", provider="local") from exc
        if not statmod.S_ISREG(st.st_mode):
            raise NotFound(f"no such object: {path} is a directory, not a file")
        return st

    def _info(self, path: str, key: str, st: os.stat_result) -> ObjectInfo:
        return ObjectInfo(
            uri=path,
            key=key,
            size=st.st_size,
            mtime=st.st_mtime,
            etag=_etag(st),
            checksum=self._cached_checksum(path, st),
        )

    def stat(self, uri: URILike) -> ObjectInfo:
        """Size, mtime, etag (``size-mtime_ns``) and, when cached, the sha256 of one file."""
        path = self._path(uri)
        st = self._stat_file(path)
        return self._info(path, os.path.basename(path), st)

    def list(self, uri: URILike, recursive: bool = True) -> Iterator[ObjectInfo]:
        """Files under the directory ``uri``, sorted by key, keys relative to it.

        With ``recursive=False`` the direct children are returned: files, and each subdirectory
        as a zero-size entry whose key ends in ``/`` (like S3's common prefixes). A missing
        directory (or a file) yields nothing. Symlinks to files are followed; symlinked
        directories are not descended into. In-progress temp files are never listed.
        """
        path = self._path(uri)
        if not os.path.isdir(path):
            return iter(())
        return self._walk(path, "", recursive)

    def _walk(self, directory: str, rel: str, recursive: bool) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(directory) as scan:
                entries = list(scan)
        except (FileNotFoundError, NotADirectoryError):
            return
        except PermissionError as exc:
            raise StorageError(f"cannot list {directory}: permission denied", provider="local") from exc
        items: list[tuple[str, os.DirEntry[str], bool]] = []
        for entry in entries:
            if entry.name.startswith(PARTIAL_PREFIX):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            items.append((entry.name + "/" if is_dir else entry.name, entry, is_dir))
        items.sort(key=lambda item: item[0])
        for sort_name, entry, is_dir in items:
            key = rel + sort_name
            if is_dir:
                if recursive:
                    yield from self._walk(entry.path, key, True)
                else:
                    yield ObjectInfo(uri=entry.path + "/", key=key, size=0)
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError:
                continue  # vanished, or a dangling symlink
            if statmod.S_ISREG(st.st_mode):
                yield self._info(entry.path, key, st)

    def open_read(self, uri: URILike) -> IO[bytes]:
        """The file opened for binary reading; :class:`NotFound` when absent."""
        path = self._path(uri)
        self._stat_file(path)
        try:
            return open(path, "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"no such object: {path}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror}", provider="local") from exc

    def _prepare_dir(self, path: str) -> str:
        directory = os.path.dirname(path)
        try:
            os.makedirs(directory, exist_ok=True)
        except FileExistsError as exc:
            raise UserError(f"cannot write {path}: a parent path is a file") from exc
        except NotADirectoryError as exc:
            raise UserError(f"cannot write {path}: a parent path is a file") from exc
        if os.path.isdir(path):
            raise UserError(f"cannot write {path}: it is a directory")
        return directory

    def _temp_path(self, directory: str, path: str) -> str:
        name = os.path.basename(path)[:80]
        return os.path.join(directory, f"{PARTIAL_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{name}")

    def write_stream(
        self, uri: URILike, stream: IO[bytes], size: int | None = None, *, mtime: float | None = None
    ) -> ObjectInfo:
        """Write everything read from ``stream`` to a temp file, fsync it and rename it into place.

        ``size``, when given, must match the bytes read (a short stream leaves nothing behind).
        ``mtime`` (seconds) sets the file's modification time before it becomes visible.
        """
        path = self._path(uri)
        directory = self._prepare_dir(path)
        tmp = self._temp_path(directory, path)
        digest = hashlib.sha256()
        written = 0
        try:
            with open(tmp, "wb") as out:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            if size is not None and written != size:
                raise StorageError(f"short write to {path}: expected {size} bytes, got {written}", provider="local")
            if mtime is not None:
                os.utime(tmp, (mtime, mtime))
            os.replace(tmp, path)
        except BaseException as exc:
            _unlink_quietly(tmp)
            if isinstance(exc, OSError):
                if exc.errno == errno.ENOSPC:
                    raise StorageError(f"no space left on device writing {path}", provider="local") from exc
                raise StorageError(f"cannot write {path}: {exc.strerror or exc}", provider="local") from exc
            raise
        _fsync_dir(directory)
        st = os.stat(path)
        self._remember_checksum(path, st, digest.hexdigest())
        return self._info(path, os.path.basename(path), st)

    def delete(self, uri: URILike) -> None:
        """Remove one file; a missing file is fine; a directory is refused (use ``rm -r``)."""
        path = self._path(uri)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except IsADirectoryError as exc:
            raise UserError(f"{path} is a directory; delete the objects under it instead") from exc
        except PermissionError as exc:
            if os.path.isdir(path):
                raise UserError(f"{path} is a directory; delete the objects under it instead") from exc
            raise StorageError(f"cannot delete {path}: permission denied", provider="local") from exc

    # ---- faster derived operations ----------------------------------------------------------
    def upload(self, local_path: str | os.PathLike[str], uri: URILike, *, mtime: float | None = None) -> ObjectInfo:
        """Copy a local file into place with the kernel's copy (temp + fsync + rename)."""
        source = os.fspath(local_path)
        if not os.path.isfile(source):
            raise NotFound(f"no such local file: {source}")
        path = self._path(uri)
        directory = self._prepare_dir(path)
        tmp = self._temp_path(directory, path)
        try:
            shutil.copyfile(source, tmp)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            if mtime is not None:
                os.utime(tmp, (mtime, mtime))
            os.replace(tmp, path)
        except BaseException as exc:
            _unlink_quietly(tmp)
            if isinstance(exc, OSError):
                raise StorageError(f"cannot write {path}: {exc.strerror or exc}", provider="local") from exc
            raise
        _fsync_dir(directory)
        return self.stat(path)

    def cleanup_partials(self, uri: URILike) -> int:
        """Delete temp files under ``uri`` left by processes that no longer run; return how many."""
        root = self._path(uri)
        removed = 0
        if not os.path.isdir(root):
            return 0
        for directory, _dirs, files in os.walk(root):
            for name in files:
                if not name.startswith(PARTIAL_PREFIX):
                    continue
                pid_text = name[len(PARTIAL_PREFIX) :].split("-", 1)[0]
                if pid_text.isdigit() and _pid_alive(int(pid_text)):
                    continue
                _unlink_quietly(os.path.join(directory, name))
                removed += 1
        return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
