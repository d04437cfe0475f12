"""Workdir packaging: what code a job ships, and shipping it only once.

Every provider packages a job's ``workdir`` with :func:`package_workdir` / :func:`upload_workdir`:

* **What is included.** Every file under the workdir except what ``.gitignore`` and
  ``.cloudbridgeignore`` files exclude (gitignore syntax, via ``pathspec``; an ignore file applies
  to its own directory and below, deeper files override shallower ones, ``.cloudbridgeignore``
  overrides ``.gitignore`` in the same directory, and a file inside an excluded directory cannot be
  re-included -- exactly git's rules). Skipped by default (lowest precedence, so ``!venv/`` in an
  ignore file brings one back): ``.git``, ``.hg``, ``.svn``, virtualenvs (``.venv``, ``venv`` and any
  directory holding a ``pyvenv.cfg``) and caches (``__pycache__``, ``.pytest_cache``,
  ``.mypy_cache``, ``.ruff_cache``, ``node_modules``, ``.ipynb_checkpoints``). Only ignore files
  inside the workdir count (not ``.git/info/exclude`` or a global excludes file).
* **The spec file is left out.** Given the job's spec, its own file (and the ``<name>.<provider>.yaml``
  copies ``cloudbridge migrate`` writes next to it) is not packaged, even when it lies in the workdir:
  its ``env`` may hold secrets, and a package is kept (content-addressed, in a bucket) long after the job.
* **Symlinks.** A symlink to a file inside the workdir is packaged as the file's content. One that
  resolves outside the workdir (``~/.aws/credentials``, ``/etc/passwd``) is refused with its path
  (exit 2) unless ``follow_symlinks`` (``cloudbridge run --follow-symlinks`` or ``follow_symlinks: true``
  in the spec) says to ship what it points to. Symlinked directories are not followed.
* **Content addressing.** The package digest is the sha256 over the sorted relative paths, their
  executable bit and each file's sha256 (cached per file version, see
  :func:`cloudbridge.transfers.resolve.local_storage`). The archive is a deterministic
  ``tar.gz`` (sorted entries, fixed mtime, uid/gid 0, no user names, gzip header mtime 0), stored as
  ``<prefix>/workdir-<digest>.tar.gz``: an unchanged workdir is never uploaded twice.
* **Size guard.** Above 100 MB a warning lists the largest entries; above
  ``CLOUDBRIDGE_MAX_WORKDIR_MB`` (default 1024) packaging is refused with the way out: move data to
  ``inputs:`` or list it in ``.cloudbridgeignore``. Sizes are checked before anything is hashed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import re
import stat as statmod
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudbridge.errors import InvalidSpec, UserError

__all__ = [
    "DEFAULT_EXCLUDES",
    "IGNORE_FILES",
    "PackageEntry",
    "PackageManifest",
    "build_archive",
    "build_manifest",
    "max_workdir_bytes",
    "package_workdir",
    "scan_workdir",
    "spec_files",
    "upload_workdir",
]

log = logging.getLogger("cloudbridge.packaging")

#: Ignore files read in every directory, in increasing precedence.
IGNORE_FILES = (".gitignore", ".cloudbridgeignore")
#: Skipped unless an ignore file re-includes them (gitignore syntax).
DEFAULT_EXCLUDES = (
    ".venv/",
    "venv/",
    "__pycache__/",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    "node_modules/",
    ".ipynb_checkpoints/",
    ".hg/",
    ".svn/",
)
WARN_BYTES = 100 * 1024 * 1024
FIXED_MTIME = 315532800  # 1980-01-01, the zip epoch: a fixed, valid timestamp


def max_workdir_bytes() -> int:
    """The refusal limit: ``CLOUDBRIDGE_MAX_WORKDIR_MB`` (default 1024) in bytes."""
    raw = os.environ.get("CLOUDBRIDGE_MAX_WORKDIR_MB", "").strip()
    if not raw:
        return 1024 * 1024 * 1024
    try:
        value = float(raw)
    except ValueError:
        raise InvalidSpec(f"CLOUDBRIDGE_MAX_WORKDIR_MB must be a number of megabytes, got {raw!r}") from None
    if value <= 0:
        raise InvalidSpec(f"CLOUDBRIDGE_MAX_WORKDIR_MB must be positive, got {raw!r}")
    return int(value * 1024 * 1024)


@dataclass(frozen=True)
class PackageEntry:
    """One packaged file: its ``/``-separated path relative to the workdir."""

    path: str
    size: int
    executable: bool = False
    sha256: str = ""


@dataclass
class PackageManifest:
    """What a workdir package holds; ``digest`` identifies its content."""

    root: str
    entries: list[PackageEntry]
    digest: str = ""
    ignored: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def file_count(self) -> int:
        """Number of files."""
        return len(self.entries)

    @property
    def total_size(self) -> int:
        """Bytes of all files (before compression)."""
        return sum(e.size for e in self.entries)

    def largest(self, n: int = 5) -> list[PackageEntry]:
        """The ``n`` biggest files."""
        return sorted(self.entries, key=lambda e: (-e.size, e.path))[:n]

    @property
    def archive_name(self) -> str:
        """The content-addressed archive name, ``workdir-<digest>.tar.gz``."""
        return f"workdir-{self.digest}.tar.gz"

    def summarize(self) -> str:
        """A few lines for ``cloudbridge run --dry-run``: counts, size, digest, largest entries."""
        lines = [
            f"workdir {self.root}: {self.file_count} files, {_human(self.total_size)}"
            f" ({self.ignored} ignored), digest {self.digest[:12]}"
        ]
        for entry in self.largest(5):
            lines.append(f"  {_human(entry.size):>9}  {entry.path}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "root": self.root,
            "files": self.file_count,
            "bytes": self.total_size,
            "ignored": self.ignored,
            "digest": self.digest,
            "largest": [{"path": e.path, "size": e.size} for e in self.largest(5)],
            "warnings": list(self.warnings),
        }


def _human(n: float) -> str:
    from cloudbridge.transfers.progress import human_bytes

    return human_bytes(n)


# ---- ignore rules ---------------------------------------------------------------------------------
def _compile(lines: list[tuple[str, int, str]]) -> Any:
    """Compile ``(text, line number, file)`` ignore lines; a bad one is InvalidSpec with file:line."""
    import pathspec

    good: list[str] = []
    for text, number, source in lines:
        try:
            pathspec.GitIgnoreSpec.from_lines([text])
        except Exception as exc:
            raise InvalidSpec(f"invalid ignore pattern {text.strip()!r}: {exc}", source=source, line=number) from exc
        good.append(text)
    return pathspec.GitIgnoreSpec.from_lines(good) if good else None


def _read_ignores(directory: Path) -> Any:
    lines: list[tuple[str, int, str]] = []
    for name in IGNORE_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise InvalidSpec(f"cannot read ignore file: {exc.strerror}", source=str(path)) from exc
        for number, line in enumerate(text.splitlines(), start=1):
            lines.append((line, number, str(path)))
    return _compile(lines)


def _decide(stack: list[tuple[str, Any]], rel: str, is_dir: bool) -> bool:
    """True when ``rel`` is ignored: the deepest ignore file with a pattern matching ``rel`` itself
    decides, its last such pattern winning (git's rule, applied while walking the tree)."""
    for base, spec in reversed(stack):
        sub = rel[len(base) + 1 :] if base else rel
        text = sub + "/" if is_dir else sub
        for pattern in reversed(spec.patterns):
            if pattern.include is not None and _matches_itself(pattern.regex, text, is_dir):
                return bool(pattern.include)
    return False


def _matches_itself(regex: Any, text: str, is_dir: bool) -> bool:
    """Whether a compiled pathspec pattern matches the path ``text`` itself.

    pathspec's regexes also match everything below a matching directory (``*.txt`` matches
    ``d.txt/b``). Walking the tree, a directory's own match was decided when it was visited -- an
    excluded one is never entered -- so here only the path's own match counts: git's rule that
    ``!*.txt`` cannot re-include ``d.txt/b/a`` when ``b`` excluded ``d.txt/b``.
    """
    if regex is None:
        return False
    found = regex.match(text)
    if found is None:
        return False
    if "ps_d" in regex.groupindex:
        return found.group("ps_d") is None or found.end() == len(text)
    # "x/**" compiles to "^x/": it matches what is inside x, not the directory x itself
    return not (is_dir and regex.pattern.endswith("/") and found.end() == len(text))


# ---- scanning -------------------------------------------------------------------------------------
def _check_workdir(workdir: str | os.PathLike[str]) -> Path:
    root = Path(workdir).expanduser()
    if not root.exists():
        raise UserError(f"workdir {root} does not exist")
    if not root.is_dir():
        raise UserError(f"workdir {root} is a file, not a directory")
    return root.resolve()


def spec_files(spec: Any) -> set[str]:
    """The real paths of ``spec``'s own file and of the ``<stem>.<provider>.yaml`` copies next to it."""
    source = getattr(spec, "source", None)
    if not source:
        return set()
    path = Path(source)
    stem = path.name.split(".", 1)[0]
    found = {os.path.realpath(path)}
    try:
        siblings = os.listdir(path.parent)
    except OSError:
        return found
    pattern = re.compile(re.escape(stem) + r"(\.[A-Za-z0-9_-]+)?\.ya?ml")
    found.update(os.path.realpath(path.parent / name) for name in siblings if pattern.fullmatch(name))
    return found


def _walk(
    root: Path, *, leave_out: frozenset[str] | set[str] = frozenset(), follow_symlinks: bool = False
) -> tuple[list[tuple[str, str, os.stat_result]], int]:
    """``[(relative path, absolute path, stat)]`` of included files, and how many entries were ignored."""
    defaults = _compile([(p, i + 1, "<defaults>") for i, p in enumerate(DEFAULT_EXCLUDES)])
    files: list[tuple[str, str, os.stat_result]] = []
    ignored = 0

    def visit(directory: Path, rel_dir: str, stack: list[tuple[str, Any]]) -> None:
        nonlocal ignored
        spec = _read_ignores(directory)
        if spec is not None:
            stack = [*stack, (rel_dir, spec)]
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except PermissionError as exc:
            raise UserError(f"cannot read {directory}: permission denied") from exc
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.name == ".git":
                ignored += 1
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            if is_dir and (Path(entry.path) / "pyvenv.cfg").exists():
                ignored += 1
                continue
            if _decide(stack, rel, is_dir):
                ignored += 1
                continue
            if is_dir:
                visit(Path(entry.path), rel, stack)
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError:
                continue  # dangling symlink
            if not statmod.S_ISREG(st.st_mode):
                continue
            if leave_out and os.path.realpath(entry.path) in leave_out:
                ignored += 1  # the job's spec file: its env may hold secrets
                continue
            if entry.is_symlink() and not follow_symlinks:
                real = os.path.realpath(entry.path)
                if not real.startswith(str(root).rstrip(os.sep) + os.sep):
                    raise UserError(
                        f"{entry.path} is a symlink to {real}, outside the workdir {root}; refused",
                        hint="remove it or list it in .cloudbridgeignore; to ship what it points to, use "
                        "cloudbridge run --follow-symlinks or follow_symlinks: true in the spec",
                    )
            files.append((rel, entry.path, st))

    visit(root, "", [("", defaults)])
    return files, ignored


def scan_workdir(
    workdir: str | os.PathLike[str], *, hash_files: bool = True, spec: Any = None, follow_symlinks: bool | None = None
) -> PackageManifest:
    """List what the package of ``workdir`` holds, enforce the size limit, compute the digest.

    With the job's ``spec``, its spec file is left out and its ``follow_symlinks`` setting applies
    (``follow_symlinks`` given here wins); see the module docstring.
    """
    root = _check_workdir(workdir)
    if follow_symlinks is None:
        follow_symlinks = bool(getattr(spec, "follow_symlinks", False))
    found, ignored = _walk(root, leave_out=spec_files(spec), follow_symlinks=follow_symlinks)
    entries = [PackageEntry(rel, st.st_size, bool(st.st_mode & 0o111)) for rel, _path, st in found]
    manifest = PackageManifest(str(root), entries, ignored=ignored)
    total = manifest.total_size
    limit = max_workdir_bytes()
    biggest = ", ".join(f"{e.path} ({_human(e.size)})" for e in manifest.largest(5))
    if total > limit:
        raise UserError(
            f"workdir {root} is {_human(total)}, over the {_human(limit)} limit; largest: {biggest}",
            hint="move data to the job's inputs: (it is synced, not packaged) or list it in .cloudbridgeignore;"
            " CLOUDBRIDGE_MAX_WORKDIR_MB raises the limit",
        )
    if total > WARN_BYTES:
        message = f"workdir {root} is {_human(total)}; largest: {biggest} (use inputs: or .cloudbridgeignore)"
        manifest.warnings.append(message)
        log.warning(message)
    if hash_files:
        from cloudbridge.transfers.resolve import local_storage

        storage: Any = local_storage()  # the Storage serving local paths; its checksums are cached
        hashed = []
        digest = hashlib.sha256()
        for (rel, path, _st), entry in zip(found, entries, strict=True):
            sha = storage.checksum(path) if not os.path.islink(path) else _sha_of(path)
            hashed.append(PackageEntry(rel, entry.size, entry.executable, sha))
        hashed.sort(key=lambda e: e.path)
        for entry in hashed:
            digest.update(f"{entry.path}\0{int(entry.executable)}\0{entry.sha256}\n".encode("utf-8", "surrogateescape"))
        manifest.entries = hashed
        manifest.digest = digest.hexdigest()
    return manifest


#: Alias of :func:`scan_workdir` (the name ``cloudbridge run --dry-run`` looks for).
build_manifest = scan_workdir


def _sha_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---- archives and upload --------------------------------------------------------------------------
def build_archive(manifest: PackageManifest, target: str | os.PathLike[str]) -> int:
    """Write the deterministic ``tar.gz`` of ``manifest`` to ``target``; return its size in bytes."""
    root = Path(manifest.root)
    with open(target, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
                for entry in sorted(manifest.entries, key=lambda e: e.path):
                    info = tarfile.TarInfo(entry.path)
                    info.size = entry.size
                    info.mtime = FIXED_MTIME
                    info.mode = 0o755 if entry.executable else 0o644
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    with open(root / entry.path, "rb") as handle:
                        tar.addfile(info, _Exactly(handle, entry.size))
    return os.path.getsize(target)


class _Exactly(io.RawIOBase):
    """Reads exactly ``size`` bytes (a file that grew or shrank since scanning is an error)."""

    def __init__(self, handle: Any, size: int) -> None:
        self.handle = handle
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        if n < 0 or n > self.left:
            n = self.left
        data = self.handle.read(n)
        if len(data) < n:
            raise UserError(f"{self.handle.name} changed while it was being packaged; run again")
        self.left -= len(data)
        return data


def package_workdir(
    workdir: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None = None
) -> tuple[PackageManifest, str]:
    """Scan ``workdir`` and write its archive into ``out_dir`` (a temp dir by default)."""
    manifest = scan_workdir(workdir)
    directory = os.fspath(out_dir) if out_dir else tempfile.mkdtemp(prefix="cb-workdir-")
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, manifest.archive_name)
    build_archive(manifest, target)
    return manifest, target


def upload_workdir(
    workdir: str | os.PathLike[str], storage_prefix_uri: str, *, manifest: PackageManifest | None = None,
    storage: Any = None, spec: Any = None,
) -> tuple[str, int]:
    """Upload the workdir package under ``storage_prefix_uri`` unless that content is already there.

    Returns ``(archive URI, bytes uploaded)``; the second is ``0`` when an identical package exists.
    ``storage`` (a :class:`~cloudbridge.interfaces.Storage`) is the one to use, e.g. a provider's
    own, configured client; by default the one that serves the URI's scheme.
    """
    from cloudbridge.interfaces import as_uri
    from cloudbridge.transfers.resolve import resolve

    manifest = manifest or scan_workdir(workdir, spec=spec)
    if storage is None:
        storage, prefix = resolve(storage_prefix_uri)
    else:
        prefix = as_uri(storage_prefix_uri)
    target = prefix.child(manifest.archive_name)
    if storage.exists(target):
        return str(target), 0
    with tempfile.TemporaryDirectory(prefix="cb-workdir-") as tmp:
        path = os.path.join(tmp, manifest.archive_name)
        size = build_archive(manifest, path)
        storage.upload(path, target)
    return str(target), size
