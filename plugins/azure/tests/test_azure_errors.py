"""Error mapping: each Azure SDK exception becomes one cloudbridge type, raised ``from`` the cause."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cloudbridge_azure.errors import azure_errors

from cloudbridge.errors import (
    AuthenticationError,
    ConflictError,
    InvalidSpec,
    NotFound,
    ProviderError,
    QuotaExceeded,
    TransientError,
)


class _Response:
    """The parts of an azure-core HTTP response that ``HttpResponseError`` reads."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status_code = status
        self.reason = "reason"
        self.headers = {"x-ms-error-code": code, "content-type": "application/json"}
        self._body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self.request = None
        self.content_type = "application/json"

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode()

    def body(self) -> bytes:
        return self._body


def _http(cls_name: str, status: int, code: str, message: str) -> Exception:
    from azure.core import exceptions as ax

    return getattr(ax, cls_name)(response=_Response(status, code, message))


def _raise(exc: Exception) -> Any:
    with azure_errors("submit the job", resource="job-1"):
        raise exc


@pytest.mark.parametrize(
    ("make", "expected", "text"),
    [
        (lambda: _http("ClientAuthenticationError", 401, "InvalidAuthenticationToken", "bad token"),
         AuthenticationError, "az login"),
        (lambda: _http("HttpResponseError", 403, "AuthorizationFailed", "no access"), AuthenticationError, "RBAC"),
        (lambda: _http("HttpResponseError", 400, "QuotaExceeded", "exceeding approved quota"), QuotaExceeded,
         "quota"),
        (lambda: _http("HttpResponseError", 429, "TooManyRequests", "slow down"), TransientError, "after retries"),
        (lambda: _http("HttpResponseError", 503, "ServiceUnavailable", "down"), TransientError, "after retries"),
        (lambda: _http("ResourceNotFoundError", 404, "ResourceNotFound", "gone"), NotFound, "job-1"),
        (lambda: _http("ResourceExistsError", 409, "Conflict", "exists"), ConflictError, "job-1"),
        (lambda: _http("HttpResponseError", 400, "UserError", "Invalid job name"), InvalidSpec, "Invalid job name"),
        (lambda: _http("HttpResponseError", 418, "Teapot", "odd"), ProviderError, "Teapot"),
    ],
)
def test_mapping(make: Any, expected: type[Exception], text: str) -> None:
    cause = make()
    with pytest.raises(expected) as info:
        _raise(cause)
    assert info.value.__cause__ is cause
    assert text in str(info.value) and "\n" not in str(info.value)


def test_credential_unavailable_is_authentication() -> None:
    from azure.identity import CredentialUnavailableError

    cause = CredentialUnavailableError("DefaultAzureCredential failed to retrieve a token")
    with pytest.raises(AuthenticationError, match="not logged in") as info:
        _raise(cause)
    assert info.value.__cause__ is cause


def test_connection_error_is_transient() -> None:
    from azure.core.exceptions import ServiceRequestError

    with pytest.raises(TransientError, match="could not reach Azure"):
        _raise(ServiceRequestError("connection refused"))


def test_sdk_validation_is_invalid_spec() -> None:
    from azure.ai.ml.exceptions import ErrorTarget, ValidationException

    cause = ValidationException(message="instance_count must be positive", no_personal_data_message="x",
                                target=ErrorTarget.JOB)
    with pytest.raises(InvalidSpec, match="instance_count must be positive") as info:
        _raise(cause)
    assert info.value.__cause__ is cause


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError):
        _raise(KeyError("mine"))
