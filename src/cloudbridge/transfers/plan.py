"""The sync plan: what to copy, what to delete and what is already up to date.

An object is **unchanged** when the destination has it with the same size and

* (``checksum=True``) the same sha256 content checksum; otherwise
* the same ETag, when both sides are the same kind of storage and report one; otherwise
* a destination modification time not older than the source's (local destinations receive the
  source's mtime when written, so a copy made by sync compares equal; cloud objects carry their
  upload time, which is never older than the local file that was uploaded). Timestamps from a
  cloud have one-second resolution, so 1 s of slack is allowed when either side is remote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cloudbridge.interfaces import Storage
from cloudbridge.records import ObjectInfo

__all__ = ["CopyItem", "SyncPlan", "build_plan", "content_sha256"]


@dataclass(frozen=True)
class CopyItem:
    """One object to copy: its key relative to both prefixes, the source object and the reason."""

    key: str
    source: ObjectInfo
    reason: str  # "new" | "size" | "newer" | "checksum" | "copy"


@dataclass
class SyncPlan:
    """The diff between a source and a destination prefix."""

    to_copy: list[CopyItem] = field(default_factory=list)
    to_delete: list[ObjectInfo] = field(default_factory=list)
    unchanged: int = 0
    excluded: int = 0
    #: Destination objects whose content matched by checksum but whose mtime differs from the
    #: source's: a local destination gets the source mtime, so the next size+mtime sync agrees.
    to_touch: list[tuple[ObjectInfo, float]] = field(default_factory=list)

    @property
    def copy_bytes(self) -> int:
        """Bytes that the copies will move."""
        return sum(item.source.size for item in self.to_copy)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``--dry-run --json``)."""
        return {
            "copy": [{"key": i.key, "size": i.source.size, "reason": i.reason} for i in self.to_copy],
            "delete": [{"key": i.key, "size": i.size} for i in self.to_delete],
            "unchanged": self.unchanged,
            "excluded": self.excluded,
            "copy_bytes": self.copy_bytes,
        }


def content_sha256(storage: Storage, info: ObjectInfo) -> str:
    """The hex sha256 of an object: its reported checksum, the storage's own (cached) one, or a stream hash."""
    if info.checksum and len(info.checksum) == 64:
        return info.checksum
    own = getattr(storage, "checksum", None)
    if callable(own):
        return str(own(info.uri))
    from cloudbridge.transfers.digests import stream_sha256

    with storage.open_read(info.uri) as stream:
        return stream_sha256(stream)


def _newer(src: ObjectInfo, dst: ObjectInfo, slack: float) -> bool:
    if src.mtime is None or dst.mtime is None:
        return False
    return src.mtime - dst.mtime > slack


def build_plan(
    src_storage: Storage,
    src_objects: Iterable[ObjectInfo],
    dst_storage: Storage,
    dst_objects: Iterable[ObjectInfo],
    *,
    select: Callable[[str], bool],
    delete: bool,
    checksum: bool,
    same_kind: bool,
    remote: bool,
    workers: int = 8,
    force: bool = False,
) -> SyncPlan:
    """Compare two listings (keys relative to their prefixes) and return the :class:`SyncPlan`.

    ``force=True`` (recursive copy) copies every selected source object, changed or not.
    """
    plan = SyncPlan()
    dst_map: dict[str, ObjectInfo] = {}
    for info in dst_objects:
        if info.key.endswith("/"):
            continue
        if select(info.key):
            dst_map[info.key] = info
    seen: set[str] = set()
    to_hash: list[tuple[ObjectInfo, ObjectInfo]] = []
    slack = 1.0 if remote else 0.0005
    for src in src_objects:
        if src.key.endswith("/"):
            continue
        if not select(src.key):
            plan.excluded += 1
            continue
        seen.add(src.key)
        dst = dst_map.get(src.key)
        if force:
            plan.to_copy.append(CopyItem(src.key, src, "copy"))
        elif dst is None:
            plan.to_copy.append(CopyItem(src.key, src, "new"))
        elif src.size != dst.size:
            plan.to_copy.append(CopyItem(src.key, src, "size"))
        elif checksum:
            to_hash.append((src, dst))
        elif same_kind and src.etag and src.etag == dst.etag:
            plan.unchanged += 1
        elif _newer(src, dst, slack):
            plan.to_copy.append(CopyItem(src.key, src, "newer"))
        else:
            plan.unchanged += 1
    if to_hash:

        def differs(pair: tuple[ObjectInfo, ObjectInfo]) -> bool:
            return content_sha256(src_storage, pair[0]) != content_sha256(dst_storage, pair[1])

        with ThreadPoolExecutor(max(1, workers)) as pool:
            for (src, dst), changed in zip(to_hash, pool.map(differs, to_hash), strict=True):
                if changed:
                    plan.to_copy.append(CopyItem(src.key, src, "checksum"))
                else:
                    plan.unchanged += 1
                    if _newer(src, dst, slack):
                        plan.to_touch.append((dst, src.mtime))
    if delete:
        plan.to_delete = [info for key, info in sorted(dst_map.items()) if key not in seen]
    plan.to_copy.sort(key=lambda item: item.key)
    return plan
