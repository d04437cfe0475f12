"""The cloudbridge error hierarchy.

Every error cloudbridge raises on purpose is a :class:`CloudbridgeError`. Providers translate
their SDK's exceptions into these types in one place per plugin and always ``raise ... from``
the original, so the cause stays on ``__cause__`` for ``--debug`` while users see one clear line.

Each class carries ``exit_code``: the CLI exits with it. Bad input (a spec, a URI, an unknown
name) is ``2``; failures of the world (a cloud, a job) are ``1``.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BudgetExceeded",
    "CapabilityNotSupported",
    "BucketNotFound",
    "CloudbridgeError",
    "ConflictError",
    "InvalidSpec",
    "InvalidURI",
    "JobFailed",
    "NotFound",
    "PluginError",
    "ProviderError",
    "ProviderNotFound",
    "QuotaExceeded",
    "ResourceUnavailable",
    "StageTimeout",
    "StorageError",
    "TransientError",
    "UnsafeKey",
    "UserError",
]


class CloudbridgeError(Exception):
    """Base class of every error cloudbridge raises deliberately."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class UserError(CloudbridgeError):
    """Bad input from the user: the CLI prints one line and exits with status 2."""

    exit_code = 2


class InvalidSpec(UserError):
    """A job or endpoint spec (or a provider's settings) is invalid.

    ``source`` is the file, ``line`` the 1-based line and ``field`` the dotted field path,
    each ``None`` when unknown. ``str()`` renders ``file:line: field: message``.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.source = source
        self.line = line
        self.field = field

    def __str__(self) -> str:
        where = ""
        if self.source:
            where = f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        elif self.line:
            where = f"line {self.line}: "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{super().__str__()}"


class InvalidURI(UserError):
    """A storage URI is malformed or uses a scheme no provider serves."""


class UnsafeKey(UserError):
    """A storage key would escape its prefix (``..``, absolute path, NUL byte)."""


class NotFound(UserError):
    """A job, endpoint, object or bucket that was named does not exist."""


class BucketNotFound(NotFound):
    """The bucket (S3, GCS) or container (Azure Blob) of a URI does not exist.

    Every storage backend raises this one type, with the message ``bucket SCHEME://BUCKET does not
    exist`` and the command that creates it as the hint, so scripts and users see the same error
    (and exit status 2) whichever cloud the URI names. ``bucket_uri`` holds ``SCHEME://BUCKET``.
    """

    def __init__(self, message: str, *, hint: str | None = None, bucket_uri: str = "") -> None:
        super().__init__(message, hint=hint)
        self.bucket_uri = bucket_uri

    @classmethod
    def of(cls, scheme: str, bucket: str, *, role: str = "", hint: str | None = None) -> BucketNotFound:
        """The error for ``scheme://bucket`` (``role``, e.g. ``"source"``, starts the message when given)."""
        bucket_uri = f"{scheme}://{bucket}"
        lead = f"{role} bucket" if role else "bucket"
        return cls(f"{lead} {bucket_uri} does not exist", hint=hint, bucket_uri=bucket_uri)


class ProviderNotFound(UserError):
    """No registered provider has that name (the message lists the known ones)."""


class CapabilityNotSupported(UserError):
    """The provider does not offer this capability (storage, compute or deploy)."""


class ResourceUnavailable(UserError):
    """The job asks for resources the target can never provide (e.g. 8 GPUs on a 1-GPU box)."""


class ConflictError(UserError):
    """The name is already taken (an endpoint, a job name, a provider name claimed twice)."""


class PluginError(CloudbridgeError):
    """A plugin failed to load, declared a bad API version, or clashed with another plugin."""


class ProviderError(CloudbridgeError):
    """A provider's service refused or failed a request; ``provider`` names it."""

    def __init__(self, message: str, *, provider: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.provider = provider


class AuthenticationError(ProviderError):
    """Credentials are missing, wrong or expired."""

    exit_code = 2


class QuotaExceeded(ProviderError):
    """The account's quota or resource limit refuses the request."""


class TransientError(ProviderError):
    """Throttling, a 5xx or a dropped connection: retrying later may succeed."""


class StorageError(ProviderError):
    """A storage operation failed for a reason that is not the user's input."""


class JobFailed(CloudbridgeError):
    """A job ended in ``FAILED``; ``reason`` is provider-neutral, ``detail`` the provider's own."""

    def __init__(self, message: str, *, reason: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.detail = detail


class StageTimeout(CloudbridgeError):
    """A stage (submit, start, run, log follow) ran past its time limit; ``stage`` names it."""

    def __init__(self, message: str, *, stage: str) -> None:
        super().__init__(message)
        self.stage = stage


class BudgetExceeded(UserError):
    """A job's estimated or elapsed cost is over its ``max_cost`` / ``max_hourly_cost``."""
