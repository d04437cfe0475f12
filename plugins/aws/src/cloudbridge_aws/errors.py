"""The one place where AWS SDK exceptions become :mod:`cloudbridge.errors` types.

Every call into boto3 runs inside :func:`aws_errors`, which re-raises with ``raise ... from`` the
botocore exception, so users get one line and ``--debug`` still shows the cause. Throttling and
5xx are retried by botocore's ``adaptive`` retry mode (see :mod:`cloudbridge_aws.session`)
before they reach this module as :class:`~cloudbridge.errors.TransientError`.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager

from cloudbridge.error_mapping import one_line, translating
from cloudbridge.errors import (
    AuthenticationError,
    BucketNotFound,
    CloudbridgeError,
    ConflictError,
    InvalidSpec,
    NotFound,
    ProviderError,
    QuotaExceeded,
    TransientError,
    UserError,
)

__all__ = ["AUTH_CODES", "QUOTA_CODES", "THROTTLE_CODES", "aws_errors", "translate"]

PROVIDER = "aws"
IAM_HINT = "see the IAM policy in docs/providers/aws.md"

AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidToken",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
    }
)
EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"})
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
QUOTA_CODES = frozenset({"ResourceLimitExceeded", "ServiceQuotaExceededException", "LimitExceededException"})
THROTTLE_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeout",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
    }
)
NOT_FOUND_CODES = frozenset(
    {"404", "NoSuchKey", "NotFound", "NoSuchUpload", "ResourceNotFound", "ResourceNotFoundException", "NoSuchEntity"}
)
CONFLICT_CODES = frozenset(
    {"BucketAlreadyExists", "BucketAlreadyOwnedByYou", "ConflictException", "ResourceInUse", "ResourceInUseException"}
)
_NOT_FOUND_TEXT = re.compile(r"could not find|not found|does not exist", re.IGNORECASE)
_CONFLICT_TEXT = re.compile(r"already exist", re.IGNORECASE)


def _clean(message: str) -> str:
    """One short line: HTML tags and whitespace runs collapsed, at most 300 characters."""
    return one_line(message, strip_tags=True)


def translate(exc: BaseException, action: str, *, resource: str | None = None, bucket: str | None = None) -> Exception:
    """The :mod:`cloudbridge.errors` exception for ``exc`` raised while trying to ``action``.

    ``resource`` names the object acted on (an URI, a job name) and ``bucket`` the S3 bucket,
    so messages say exactly what is missing and how to fix it. Exceptions that are already
    cloudbridge errors are returned unchanged.
    """
    from botocore import exceptions as bx

    if isinstance(exc, CloudbridgeError):
        return exc
    what = f" {resource}" if resource else ""
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return AuthenticationError(
            f"no AWS credentials found to {action}",
            provider=PROVIDER,
            hint="run `aws configure` or `aws sso login`, set AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
    if isinstance(exc, bx.ProfileNotFound):
        return AuthenticationError(
            f"AWS profile not found: {exc}", provider=PROVIDER, hint="check `profile` in config.toml or AWS_PROFILE"
        )
    if isinstance(exc, (bx.SSOError, bx.TokenRetrievalError, bx.UnauthorizedSSOTokenError)):
        return AuthenticationError(f"AWS SSO login needed to {action}: {exc}", provider=PROVIDER, hint="aws sso login")
    if isinstance(exc, bx.NoRegionError):
        return InvalidSpec("no AWS region is set", field="settings.aws.region", hint="set AWS_REGION or [aws] region")
    if isinstance(exc, bx.ParamValidationError):
        return InvalidSpec(f"invalid request to {action}: {_clean(str(exc))}")
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionClosedError, bx.ConnectTimeoutError)):
        return TransientError(f"could not reach AWS to {action}: {_clean(str(exc))}", provider=PROVIDER)
    if isinstance(exc, bx.ReadTimeoutError):
        return TransientError(f"AWS timed out while trying to {action}", provider=PROVIDER)
    if isinstance(exc, bx.ClientError):
        return _from_client_error(exc, action, what=what, bucket=bucket)
    if isinstance(exc, bx.BotoCoreError):
        return ProviderError(f"could not {action}: {_clean(str(exc))}", provider=PROVIDER)
    return exc if isinstance(exc, Exception) else ProviderError(str(exc), provider=PROVIDER)


def _from_client_error(exc: BaseException, action: str, *, what: str, bucket: str | None) -> Exception:
    response = getattr(exc, "response", {}) or {}
    error = response.get("Error", {}) or {}
    code = str(error.get("Code", "") or "")
    message = _clean(str(error.get("Message", "") or ""))
    status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    raw = str(error.get("Message", "") or "")
    if code.isdigit() and "<Code>" in raw:  # an XML error body the SDK did not parse (e.g. from an emulator)
        found = re.search(r"<Code>([^<]+)</Code>", raw)
        said_message = re.search(r"<Message>([^<]*)</Message>", raw)
        code = found.group(1) if found else code
        message = _clean(said_message.group(1)) if said_message else message
    if code in ("403", "Forbidden"):
        code = "AccessDenied"
    said = f"{code}: {message}" if message else code
    if code == "ModelError":  # the serving container answered with an error status
        original = response.get("OriginalStatusCode") or error.get("OriginalStatusCode") or 0
        detail = _clean(str(response.get("OriginalMessage") or error.get("OriginalMessage") or message))
        if 400 <= int(original) < 500:
            return UserError(f"endpoint{what} refused the request (HTTP {original}): {detail}")
        return ProviderError(f"endpoint{what} failed (HTTP {original or '?'}): {detail}", provider=PROVIDER)
    if code in AUTH_CODES:
        if code in EXPIRED_CODES:
            hint = "refresh your credentials (aws sso login, or a new session token)"
        elif code in DENIED_CODES:
            hint = f"the IAM identity lacks permission; {IAM_HINT}"
        else:
            hint = "check AWS_PROFILE / AWS_ACCESS_KEY_ID, or run `aws configure`"
        return AuthenticationError(
            f"AWS refused the credentials to {action}{what}: {said}", provider=PROVIDER, hint=hint
        )
    if code == "NoSuchBucket":
        name = bucket or error.get("BucketName") or "?"
        return BucketNotFound.of("s3", name, hint=f"create it: aws s3 mb s3://{name}")
    if code in NOT_FOUND_CODES or (code == "ValidationException" and _NOT_FOUND_TEXT.search(message)):
        return NotFound(f"not found:{what or ' ' + action}" + (f" ({message})" if message and code != "404" else ""))
    if code in CONFLICT_CODES or (code == "ValidationException" and _CONFLICT_TEXT.search(message)):
        return ConflictError(f"cannot {action}{what}: already exists ({said})")
    if code in QUOTA_CODES:
        return QuotaExceeded(
            f"AWS quota reached while trying to {action}{what}: {said}",
            provider=PROVIDER,
            hint="request an increase in the Service Quotas console (SageMaker quotas are per instance type)",
        )
    if code in THROTTLE_CODES or status >= 500:
        return TransientError(
            f"AWS failed to {action}{what} after retries: {said or f'HTTP {status}'}", provider=PROVIDER
        )
    if code in ("ValidationException", "InvalidParameterValue", "InvalidRequest", "InvalidArgument"):
        return InvalidSpec(f"AWS rejected the request to {action}{what}: {message or code}")
    return ProviderError(f"AWS refused to {action}{what}: {said or f'HTTP {status}'}", provider=PROVIDER)


def aws_errors(action: str, *, resource: str | None = None, bucket: str | None = None) -> AbstractContextManager[None]:
    """Run a block of boto3 calls, re-raising any SDK error as a cloudbridge error ``from`` it."""
    return translating(lambda exc: translate(exc, action, resource=resource, bucket=bucket))
