"""The one place where Azure SDK exceptions become :mod:`cloudbridge.errors` types.

Every call into an Azure SDK runs inside :func:`azure_errors`, which re-raises with ``raise ... from``
the SDK exception, so users get one line and ``--debug`` still shows the cause. 429 and 5xx answers
are first retried by azure-core's ``RetryPolicy`` (``retry_total`` attempts, exponential back-off,
``Retry-After`` honoured; see :mod:`cloudbridge_azure.auth`) and reach this module only when the
retries are spent, as :class:`~cloudbridge.errors.TransientError`.

============================================  ==========================================
SDK exception                                 cloudbridge error
============================================  ==========================================
``ClientAuthenticationError`` (401, no login)  :class:`AuthenticationError`
403 ``AuthorizationFailed``                   :class:`AuthenticationError` (RBAC hint)
quota codes / quota text                       :class:`QuotaExceeded`
``ResourceNotFoundError`` / 404                :class:`NotFound`
``ResourceExistsError`` / 409                  :class:`ConflictError`
429, 5xx, connection errors                    :class:`TransientError`
400 / azure-ai-ml ``ValidationException``      :class:`InvalidSpec`
anything else from Azure                       :class:`ProviderError`
============================================  ==========================================
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
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

__all__ = ["QUOTA_CODES", "azure_errors", "error_code", "translate"]

PROVIDER = "azure"
RBAC_HINT = "the identity lacks an RBAC role; see the roles in docs/providers/azure.md"
LOGIN_HINT = "run `az login`, or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET"
QUOTA_CODES = frozenset(
    {"QuotaExceeded", "InsufficientQuota", "OperationNotAllowed", "ResourceQuotaExceeded", "UserQuotaExceeded"}
)
AUTH_CODES = frozenset(
    {"AuthorizationFailed", "AuthenticationFailed", "AuthorizationPermissionMismatch", "InvalidAuthenticationToken",
     "ExpiredAuthenticationToken", "LinkedAuthorizationFailed", "Unauthorized", "Forbidden"}
)
_QUOTA_TEXT = re.compile(r"quota|exceed(s|ed)? the (core|vm|node) limit", re.IGNORECASE)


_clean = one_line


def error_code(exc: BaseException) -> str:
    """The Azure error code of ``exc`` (``error.code`` of the body, else the ``x-ms-error-code`` header)."""
    code = getattr(exc, "error_code", None) or ""
    error = getattr(exc, "error", None)
    if not code and error is not None:
        code = getattr(error, "code", "") or ""
    response = getattr(exc, "response", None)
    if not code and response is not None:
        headers = getattr(response, "headers", None) or {}
        code = headers.get("x-ms-error-code", "") or ""
    return str(code)


def _message(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    text = getattr(error, "message", None) if error is not None else None
    return _clean(str(text or getattr(exc, "message", None) or exc).split("\n")[0])


def _status(exc: BaseException) -> int:
    status = getattr(exc, "status_code", None)
    if status is None and getattr(exc, "response", None) is not None:
        status = getattr(exc.response, "status_code", None)  # type: ignore[attr-defined]
    try:
        return int(status or 0)
    except (TypeError, ValueError):
        return 0


def translate(exc: BaseException, action: str, *, resource: str | None = None) -> Exception:
    """The :mod:`cloudbridge.errors` exception for ``exc`` raised while trying to ``action``.

    ``resource`` names the thing acted on (an URI, a job or endpoint name). Exceptions that are
    already cloudbridge errors are returned unchanged.
    """
    if isinstance(exc, CloudbridgeError):
        return exc
    from azure.core import exceptions as ax

    what = f" {resource}" if resource else ""
    if _is_validation(exc):
        return InvalidSpec(f"Azure ML refused the request to {action}{what}: {_message(exc)}")
    if isinstance(exc, ax.ClientAuthenticationError) and _status(exc) != 403:
        return AuthenticationError(
            f"not logged in to Azure, or the credentials were refused, to {action}{what}: {_message(exc)}",
            provider=PROVIDER,
            hint=LOGIN_HINT,
        )
    if isinstance(exc, (ax.ServiceRequestError, ax.ServiceResponseError)):
        return TransientError(f"could not reach Azure to {action}{what}: {_message(exc)}", provider=PROVIDER)
    if not isinstance(exc, ax.AzureError):
        return exc if isinstance(exc, Exception) else ProviderError(str(exc), provider=PROVIDER)
    code, status, message = error_code(exc), _status(exc), _message(exc)
    said = f"{code}: {message}" if code and code not in message else message
    if code in QUOTA_CODES and (code != "OperationNotAllowed" or _QUOTA_TEXT.search(message)) or (
        status in (400, 403, 409) and _QUOTA_TEXT.search(message)
    ):
        return QuotaExceeded(
            f"Azure quota reached while trying to {action}{what}: {said}",
            provider=PROVIDER,
            hint="request more vCPU quota for the VM family (Azure portal > Azure ML > Quotas), or use another size",
        )
    if status == 403 or code in AUTH_CODES:
        return AuthenticationError(f"Azure refused to {action}{what}: {said}", provider=PROVIDER, hint=RBAC_HINT)
    if isinstance(exc, ax.ResourceNotFoundError) or status == 404:
        return NotFound(f"not found:{what or ' ' + action} ({said})")
    if isinstance(exc, ax.ResourceExistsError) or status == 409:
        return ConflictError(f"cannot {action}{what}: {said}")
    if status == 429 or status >= 500:
        return TransientError(f"Azure failed to {action}{what} after retries: {said or f'HTTP {status}'}",
                              provider=PROVIDER)
    if status == 400:
        return InvalidSpec(f"Azure rejected the request to {action}{what}: {said}")
    return ProviderError(f"Azure refused to {action}{what}: {said or f'HTTP {status}'}", provider=PROVIDER)


def _is_validation(exc: BaseException) -> bool:
    """True for azure-ai-ml's client-side ``ValidationException`` (checked by name: no SDK import)."""
    return any(cls.__name__ == "ValidationException" and cls.__module__.startswith("azure.ai.ml")
               for cls in type(exc).__mro__)


def azure_errors(action: str, *, resource: str | None = None) -> AbstractContextManager[None]:
    """Run a block of Azure SDK calls, re-raising any SDK error as a cloudbridge error ``from`` it."""
    return translating(lambda exc: translate(exc, action, resource=resource))


def describe(exc: Any) -> str:
    """One line for a log: the code and message of an Azure exception."""
    code = error_code(exc)
    return f"{code}: {_message(exc)}" if code else _message(exc)
