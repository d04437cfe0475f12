"""A local job's code: its workdir package, copied into the job's own ``code/`` folder.

Like a cloud job, a local job never runs in the user's workdir. At submit the workdir is scanned
with :func:`cloudbridge.packaging.scan_workdir` -- the function every provider and ``cloudbridge run
--dry-run`` use, so the same files are shipped, the same size warning and limit apply and a bad
ignore pattern is the same ``InvalidSpec`` (ignore file and line) -- and exactly the packaged files
are copied into ``<job dir>/code/``, where the command runs. Ignored files, ``.git`` and virtualenvs
are not there, and what the job writes stays in its own folder.

**Copy, not hard links.** Each file is copied with ``os.copy_file_range``: on filesystems that
share extents (btrfs, XFS with reflink, NFS 4.2 server-side copy, ...) the kernel makes it a
copy-on-write clone that costs no space; elsewhere it is an in-kernel copy (no trip through Python).
Hard links to a read-only, content-addressed cache would use no space everywhere, but a read-only
bit does not stop root (GPU machines and containers often run jobs as root), a job may ``chmod`` its
files back, and then an in-place write would change the shared inode under every other job that
links it. A private copy is the only layout where nothing a job does reaches another job or the
user's files; its price is disk space on filesystems without clones, bounded by the workdir limit
(``CLOUDBRIDGE_MAX_WORKDIR_MB``; data belongs in ``inputs:``, which are not copied).

The package's content digest (the same one a cloud provider names its archive by) is recorded on
the job (``extra.package``), so two jobs can be compared for the code they ran.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import StorageError, UserError

if TYPE_CHECKING:
    from cloudbridge.packaging import PackageManifest

__all__ = ["materialise", "scan_code"]

#: ``copy_file_range`` errors meaning "not between these files": fall back to read/write.
_NO_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM, errno.EBADF}
_CHUNK = 1 << 20
_range_ok = hasattr(os, "copy_file_range")


def scan_code(workdir: str | os.PathLike[str], *, private: list[Path], spec: Any = None) -> PackageManifest:
    """The package manifest of ``workdir`` (hashed: its digest is recorded on the job).

    ``private`` are cloudbridge's own folders (``CLOUDBRIDGE_HOME``, the jobs folder): a package
    holding files from one of them is refused -- it would ship job logs and copies of other jobs'
    code -- with the way out (the ignore file or another ``CLOUDBRIDGE_HOME``).
    """
    from cloudbridge import packaging

    # the size warning reaches the user as a job warning (CLI line, job log): not a second time via logging
    quiet = logging.getLogger("cloudbridge.packaging")
    drop = _DropWarnings()
    quiet.addFilter(drop)
    try:
        manifest = packaging.scan_workdir(workdir, spec=spec)
    finally:
        quiet.removeFilter(drop)
    root = Path(manifest.root)
    for folder in private:
        try:
            rel = folder.resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        inside = [e.path for e in manifest.entries if rel in (".", "") or e.path.startswith(rel + "/")]
        if inside:
            raise UserError(
                f"workdir {root} contains cloudbridge's own folder {folder} ({len(inside)} file(s) would be "
                f"packaged, e.g. {inside[0]})",
                hint=f"list {rel}/ in {root}/.cloudbridgeignore, or set CLOUDBRIDGE_HOME outside the workdir",
            )
    return manifest


class _DropWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno != logging.WARNING


def materialise(manifest: PackageManifest, target: Path) -> int:
    """Copy exactly the files of ``manifest`` into ``target`` (created; must not exist); return bytes.

    File modes and modification times are kept. A file that changed size since the scan is a
    :class:`UserError` ("run again"); a disk error is a :class:`StorageError`. On any error the
    partial ``target`` is removed.
    """
    root = Path(manifest.root)
    target.mkdir(parents=True, mode=0o700)
    made: set[Path] = {target}
    total = 0
    try:
        for entry in manifest.entries:
            dst = target / entry.path
            if dst.parent not in made:
                dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                made.add(dst.parent)
            _copy_file(root / entry.path, dst, entry.size)
            total += entry.size
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return total


def _copy_file(src: Path, dst: Path, size: int) -> None:
    """Copy one file (following a symlink, as packaging does); its size must still be ``size``."""
    try:
        fin = os.open(src, os.O_RDONLY)
    except OSError as exc:
        raise UserError(f"{src} changed while it was being packaged ({exc.strerror}); run again") from exc
    try:
        st = os.fstat(fin)
        if st.st_size != size:
            raise UserError(f"{src} changed while it was being packaged; run again")
        try:
            # private copy: the owner's bits only (the executable bit is kept), whatever the source allowed
            fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, (st.st_mode & 0o700) | 0o600)
            try:
                copied = _copy_bytes(fin, fout, size)
            finally:
                os.close(fout)
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
        except OSError as exc:
            raise StorageError(f"could not copy {src} into the job folder: {exc.strerror or exc}",
                               provider="local") from exc
        if copied != size or os.read(fin, 1):
            raise UserError(f"{src} changed while it was being packaged; run again")
    finally:
        os.close(fin)


def _copy_bytes(fin: int, fout: int, size: int) -> int:
    """``size`` bytes from ``fin`` to ``fout``: ``copy_file_range`` (a clone where the filesystem
    can), else plain reads and writes. Returns the bytes copied (fewer when the source shrank)."""
    global _range_ok
    use_range = _range_ok
    copied = 0
    while copied < size:
        n = -1
        if use_range:
            try:
                n = os.copy_file_range(fin, fout, size - copied)
            except OSError as exc:
                if exc.errno not in _NO_RANGE:
                    raise
                use_range = False  # not between these two files: read/write the rest
                if exc.errno in (errno.ENOSYS, errno.EOPNOTSUPP):
                    _range_ok = False  # not on this system at all
        if n < 0:
            n = _copy_chunk(fin, fout, size - copied)
        if n == 0:
            break
        copied += n
    return copied


def _copy_chunk(fin: int, fout: int, left: int) -> int:
    data = os.read(fin, min(left, _CHUNK))
    view = memoryview(data)
    while view:
        written = os.write(fout, view)
        view = view[written:]
    return len(data)
