"""The one place where Google SDK exceptions become :mod:`cloudbridge.errors` types.

Every call into ``google-cloud-storage`` or ``google-cloud-aiplatform`` runs inside
:func:`gcp_errors`, which re-raises with ``raise ... from`` the SDK exception:

==========================================  ==========================================
Google error                                cloudbridge error
==========================================  ==========================================
PermissionDenied / Forbidden (403)          :class:`~cloudbridge.errors.AuthenticationError` (names the IAM role)
Unauthenticated / Unauthorized (401),       :class:`~cloudbridge.errors.AuthenticationError` (``gcloud auth
no ADC, refresh failures                    application-default login``)
ResourceExhausted / TooManyRequests (429)   :class:`~cloudbridge.errors.QuotaExceeded`
Unavailable (503), DeadlineExceeded (504),  :class:`~cloudbridge.errors.TransientError`, after the
InternalServerError (500), connection       retries of :data:`RETRY` (google-api-core's ``Retry``)
InvalidArgument / BadRequest (400)          :class:`~cloudbridge.errors.InvalidSpec`
NotFound (404)                              :class:`~cloudbridge.errors.NotFound`
AlreadyExists / Conflict (409)              :class:`~cloudbridge.errors.ConflictError`
==========================================  ==========================================
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import lru_cache
from typing import Any

from cloudbridge.error_mapping import one_line, translating
from cloudbridge.errors import (
    AuthenticationError,
    CloudbridgeError,
    ConflictError,
    InvalidSpec,
    NotFound,
    ProviderError,
    QuotaExceeded,
    TransientError,
)

__all__ = ["ADC_FIX", "IAM_HINT", "gcp_errors", "retry", "translate"]

PROVIDER = "gcp"
ADC_FIX = "gcloud auth application-default login"
IAM_HINT = "grant the role named in docs/providers/gcp.md#iam-roles"
#: The role that each kind of call needs, named in permission errors.
ROLES = {
    "storage": "roles/storage.objectAdmin on the bucket",
    "vertex": "roles/aiplatform.user on the project",
}


_clean = one_line


@lru_cache(maxsize=1)
def _retryable() -> tuple[type[BaseException], ...]:
    import requests
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ga

    return (
        gx.ServiceUnavailable,
        gx.DeadlineExceeded,
        gx.InternalServerError,
        gx.BadGateway,
        gx.GatewayTimeout,
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        ga.TransportError,
    )


def retry(timeout: float = 120.0) -> Any:
    """google-api-core's ``Retry`` for Unavailable, DeadlineExceeded, 5xx and dropped connections.

    Exponential backoff from 0.5 s to 10 s, for at most ``timeout`` seconds in all. Quota errors
    (429 ResourceExhausted) are not retried: they say something the user must change.
    """
    from google.api_core.retry import Retry, if_exception_type

    return Retry(predicate=if_exception_type(*_retryable()), initial=0.5, maximum=10.0, multiplier=2.0,
                 timeout=timeout)


def translate(exc: BaseException, action: str, *, resource: str | None = None, service: str = "vertex") -> Exception:
    """The :mod:`cloudbridge.errors` exception for ``exc`` raised while trying to ``action``.

    ``resource`` names what was acted on (a URI, a job); ``service`` (``storage`` or ``vertex``)
    picks the IAM role a permission error names. Cloudbridge errors are returned unchanged.
    """
    import requests
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ga

    if isinstance(exc, CloudbridgeError):
        return exc
    what = f" {resource}" if resource else ""
    if isinstance(exc, gx.RetryError):
        cause = exc.cause if exc.cause is not None else exc
        if cause is not exc:
            inner = translate(cause, action, resource=resource, service=service)
            if isinstance(inner, TransientError):
                return TransientError(f"{inner.message} (gave up retrying)", provider=PROVIDER)
            return inner
        return TransientError(f"GCP did not answer in time to {action}{what}", provider=PROVIDER)
    if isinstance(exc, ga.DefaultCredentialsError):
        return AuthenticationError(
            f"no Google Application Default Credentials found to {action}", provider=PROVIDER, hint=ADC_FIX
        )
    if isinstance(exc, ga.RefreshError):
        return AuthenticationError(
            f"Google credentials could not be refreshed to {action}: {_clean(str(exc))}",
            provider=PROVIDER,
            hint=ADC_FIX,
        )
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ga.TransportError)):
        return TransientError(f"could not reach GCP to {action}{what}: {_clean(str(exc))}", provider=PROVIDER)
    if isinstance(exc, gx.GoogleAPICallError):
        return _from_call_error(exc, action, what=what, service=service)
    if isinstance(exc, gx.GoogleAPIError):
        return ProviderError(f"could not {action}{what}: {_clean(str(exc))}", provider=PROVIDER)
    return exc if isinstance(exc, Exception) else ProviderError(str(exc), provider=PROVIDER)


def _from_call_error(exc: Any, action: str, *, what: str, service: str) -> Exception:
    from google.api_core import exceptions as gx

    message = _clean(getattr(exc, "message", "") or str(exc))
    if isinstance(exc, (gx.PermissionDenied, gx.Forbidden)):
        role = ROLES.get(service, ROLES["vertex"])
        return AuthenticationError(
            f"GCP denied permission to {action}{what}: {message}", provider=PROVIDER,
            hint=f"the credentials need {role}; {IAM_HINT}",
        )
    if isinstance(exc, (gx.Unauthenticated, gx.Unauthorized)):
        return AuthenticationError(f"GCP refused the credentials to {action}{what}: {message}", provider=PROVIDER,
                                   hint=ADC_FIX)
    if isinstance(exc, (gx.ResourceExhausted, gx.TooManyRequests)):
        return QuotaExceeded(
            f"GCP quota reached while trying to {action}{what}: {message}", provider=PROVIDER,
            hint="request more quota in the console (IAM & Admin > Quotas; Vertex AI quotas are per region and "
            "per accelerator), or pick another region",
        )
    if isinstance(exc, gx.NotFound):
        return NotFound(f"not found:{what or ' ' + action} ({message})")
    if isinstance(exc, (gx.AlreadyExists, gx.Conflict)):
        return ConflictError(f"cannot {action}{what}: already exists ({message})")
    if isinstance(exc, (gx.InvalidArgument, gx.BadRequest, gx.FailedPrecondition, gx.OutOfRange)):
        return InvalidSpec(f"GCP rejected the request to {action}{what}: {message}")
    if isinstance(exc, _retryable()) or (getattr(exc, "code", 0) or 0) >= 500:
        return TransientError(f"GCP failed to {action}{what} after retries: {message}", provider=PROVIDER)
    return ProviderError(f"GCP refused to {action}{what}: {message}", provider=PROVIDER)


def gcp_errors(action: str, *, resource: str | None = None, service: str = "vertex") -> AbstractContextManager[None]:
    """Run a block of Google SDK calls, re-raising any SDK error as a cloudbridge error ``from`` it."""
    return translating(lambda exc: translate(exc, action, resource=resource, service=service))
