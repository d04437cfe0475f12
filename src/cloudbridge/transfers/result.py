"""What a sync did: :class:`SyncResult` (counts, bytes, failures, a one-line summary, JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudbridge.transfers.plan import SyncPlan
from cloudbridge.transfers.progress import human_bytes

__all__ = ["SyncFailure", "SyncResult"]


@dataclass(frozen=True)
class SyncFailure:
    """One object that could not be copied or deleted, with the reason."""

    key: str
    op: str
    error: str
    error_type: str


@dataclass
class SyncResult:
    """What a sync did (or, with ``dry_run``, would do)."""

    source: str
    destination: str
    plan: SyncPlan
    dry_run: bool = False
    copied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    bytes_copied: int = 0
    retries: int = 0
    failures: list[SyncFailure] = field(default_factory=list)
    elapsed: float = 0.0
    aborted_uploads: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    @property
    def unchanged(self) -> int:
        """Objects already up to date."""
        return self.plan.unchanged

    def raise_for_errors(self) -> None:
        """Raise :class:`~cloudbridge.errors.StorageError` summarising the failures, if any."""
        if self.failures:
            from cloudbridge.errors import StorageError

            first = self.failures[0]
            raise StorageError(
                f"{len(self.failures)} object(s) failed to {first.op}; first: {first.key}: {first.error}"
            )

    def summary(self) -> str:
        """One human line: counts, bytes, time."""
        verb = "would copy" if self.dry_run else "copied"
        n_copy = len(self.plan.to_copy) if self.dry_run else len(self.copied)
        n_del = len(self.plan.to_delete) if self.dry_run else len(self.deleted)
        size = self.plan.copy_bytes if self.dry_run else self.bytes_copied
        text = f"{verb} {n_copy} object(s) ({human_bytes(size)}), "
        if n_del:  # a copy (storage cp -r), or a sync that removed nothing, does not talk about deleting
            text += f"{'would delete' if self.dry_run else 'deleted'} {n_del}, "
        text += f"unchanged {self.unchanged}"
        if self.plan.excluded:
            text += f", excluded {self.plan.excluded}"
        if self.aborted_uploads:
            text += f", aborted {self.aborted_uploads} stale upload(s)"
        if self.failures:
            text += f", FAILED {len(self.failures)}"
        if not self.dry_run:
            text += f" in {self.elapsed:.2f}s"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (``--json``); the full plan is included on a dry run."""
        data: dict[str, Any] = {
            "source": self.source,
            "destination": self.destination,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "copied": len(self.copied),
            "deleted": len(self.deleted),
            "unchanged": self.unchanged,
            "excluded": self.plan.excluded,
            "bytes_copied": self.bytes_copied,
            "retries": self.retries,
            "aborted_uploads": self.aborted_uploads,
            "elapsed_s": round(self.elapsed, 3),
            "failures": [f.__dict__ for f in self.failures],
        }
        if self.dry_run:
            data["plan"] = self.plan.to_dict()
        return data
