"""S3's REST calls around a transfer, sent through the AWS CRT instead of a botocore client.

Why: profiled (py-spy, ``-X importtime``), a no-op ``cloudbridge storage sync`` of 1,000 objects
spent more time building botocore's S3 client (importing boto3/botocore, loading the service model
and endpoint rules: ~0.15 s) than listing the bucket. The CRT (``cloudbridge-aws[crt]``) already
signs and sends the transfers, so the listing, the ``HEAD`` that tells an object from a prefix,
the search for stale multipart uploads and single deletes go through it too: one signed request
each, the reply parsed with the standard library's C XML parser.

What needs botocore stays there: an unusual endpoint (FIPS, dual-stack, accelerate, an
``endpoint_url`` in the AWS config file, ``AWS_ENDPOINT_URL_S3``), a region or credentials that
only the AWS profile knows (the CRT then takes botocore's credentials, as before), multipart
uploads and large downloads (s3transfer). :func:`endpoint_without_botocore` and
:func:`static_credentials` say ``None`` whenever botocore's answer could differ.
"""

from __future__ import annotations

import email.utils
import os
import re
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_plus
from xml.etree import ElementTree

if TYPE_CHECKING:
    from cloudbridge_aws.s3_crt import CrtS3
    from cloudbridge_aws.settings import AwsSettings

__all__ = [
    "abort_upload",
    "endpoint_without_botocore",
    "head_object",
    "list_objects",
    "list_uploads",
    "static_credentials",
]

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
#: AWS config file settings that change which S3 endpoint botocore talks to.
_ENDPOINT_SETTINGS = ("endpoint_url", "use_fips_endpoint", "use_dualstack_endpoint", "addressing_style", "accelerate")


def _true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def endpoint_without_botocore(settings: AwsSettings) -> str | None:
    """The S3 endpoint URL botocore would use, when it can be told without botocore; else ``None``.

    The settings' ``endpoint_url`` (which ``AWS_ENDPOINT_URL`` fills), else the regional
    ``https://s3.<region>.amazonaws.com`` (``.com.cn`` in China), unless something could make
    botocore choose another: ``AWS_ENDPOINT_URL_S3``, FIPS or dual-stack variables, or an
    endpoint-related line in the AWS config file.
    """
    if settings.endpoint_url:
        return settings.endpoint_url
    region = settings.region
    if not region or not _REGION.match(region) or "-iso" in region:  # ISO partitions have their own domains
        return None
    if os.environ.get("AWS_ENDPOINT_URL_S3") or _true("AWS_USE_FIPS_ENDPOINT") or _true("AWS_USE_DUALSTACK_ENDPOINT"):
        return None
    config = os.environ.get("AWS_CONFIG_FILE") or os.path.join(os.path.expanduser("~"), ".aws", "config")
    try:
        with open(config, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        text = ""
    if any(name in text for name in _ENDPOINT_SETTINGS) or re.search(r"^\s*s3\s*=", text, re.MULTILINE):
        return None
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://s3.{region}.{domain}"


def static_credentials(settings: AwsSettings) -> tuple[str, str, str | None] | None:
    """``(key, secret, token)`` when botocore's chain would stop at explicit or environment keys.

    Explicit keys in the settings come first (as botocore's explicit arguments do); then, when no
    profile is named (a named profile makes botocore skip the environment),
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``. Anything else (profiles, SSO, roles, instance
    metadata) returns ``None``: botocore resolves and refreshes those.
    """
    if settings.access_key_id and settings.secret_access_key:
        token = settings.session_token.get_secret_value() if settings.session_token else None
        return settings.access_key_id.get_secret_value(), settings.secret_access_key.get_secret_value(), token
    if settings.profile is None and settings.access_key_id is None:
        key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:
            return key, secret, os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_SECURITY_TOKEN") or None
    return None


# ---- calls ------------------------------------------------------------------------------------
def _text(node: ElementTree.Element, name: str) -> str | None:
    found = node.find(_NS + name)
    if found is None:
        found = node.find(name)  # an S3-compatible server without the namespace
    return None if found is None else (found.text or "")


def _all(node: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return node.findall(_NS + name) or node.findall(name)


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def list_objects(crt: CrtS3, bucket: str, prefix: str, delimiter: str | None) -> Iterator[dict[str, Any]]:
    """ListObjectsV2 pages of ``bucket`` under ``prefix``: items shaped like botocore's ``Contents``
    (``Key``, ``Size``, ``LastModified``, ``ETag``) and, with a delimiter, ``{"Prefix": ...}``.

    Keys travel URL-encoded (``encoding-type=url``: XML 1.0 cannot carry every byte a key may hold)
    and are decoded when the reply says it encoded them.
    """
    token: str | None = None
    while True:
        query = {"list-type": "2", "encoding-type": "url"}
        if prefix:
            query["prefix"] = prefix
        if delimiter:
            query["delimiter"] = delimiter
        if token:
            query["continuation-token"] = token
        _, body = crt.call("GET", bucket, "", query, "ListObjectsV2", "list objects")
        root = ElementTree.fromstring(body)
        encoded = (_text(root, "EncodingType") or "").lower() == "url"

        def decode(value: str, encoded: bool = encoded) -> str:
            return unquote_plus(value) if encoded else value

        for item in _all(root, "Contents"):
            yield {
                "Key": decode(_text(item, "Key") or ""),
                "Size": int(_text(item, "Size") or 0),
                "LastModified": _timestamp(_text(item, "LastModified")),
                "ETag": _text(item, "ETag"),
            }
        for common in _all(root, "CommonPrefixes"):
            yield {"Prefix": decode(_text(common, "Prefix") or "")}
        token = _text(root, "NextContinuationToken")
        if (_text(root, "IsTruncated") or "").lower() != "true" or not token:
            return


def head_object(crt: CrtS3, bucket: str, key: str) -> dict[str, Any]:
    """HeadObject with checksums, shaped like botocore's reply (``ContentLength``, ``ETag``,
    ``LastModified``, ``Metadata``, ``ChecksumSHA256``/``ChecksumCRC32``/``ChecksumType``)."""
    from cloudbridge_aws.s3_crt import reply_from_headers

    headers, _ = crt.call(
        "HEAD", bucket, key, {}, "HeadObject", "read object metadata", headers=[("x-amz-checksum-mode", "ENABLED")]
    )
    reply = reply_from_headers(headers)
    modified = headers.get("last-modified")
    if modified:
        try:
            reply["LastModified"] = email.utils.parsedate_to_datetime(modified)
        except (TypeError, ValueError):
            pass
    return reply


def list_uploads(crt: CrtS3, bucket: str, prefix: str) -> Iterator[tuple[str, str, datetime | None]]:
    """``(key, upload id, initiated)`` of every unfinished multipart upload under ``prefix``."""
    markers: dict[str, str] = {}
    while True:
        query = {"uploads": "", "encoding-type": "url", **markers}
        if prefix:
            query["prefix"] = prefix
        _, body = crt.call("GET", bucket, "", query, "ListMultipartUploads", "list unfinished uploads")
        root = ElementTree.fromstring(body)
        encoded = (_text(root, "EncodingType") or "").lower() == "url"
        for upload in _all(root, "Upload"):
            key = _text(upload, "Key") or ""
            yield (unquote_plus(key) if encoded else key), _text(upload, "UploadId") or "", _timestamp(
                _text(upload, "Initiated")
            )
        key_marker, id_marker = _text(root, "NextKeyMarker"), _text(root, "NextUploadIdMarker")
        if (_text(root, "IsTruncated") or "").lower() != "true" or not (key_marker or id_marker):
            return
        markers = {"key-marker": key_marker or "", "upload-id-marker": id_marker or ""}


def abort_upload(crt: CrtS3, bucket: str, key: str, upload_id: str) -> None:
    """AbortMultipartUpload: the parts of ``upload_id`` are deleted (a missing upload is NotFound)."""
    crt.call("DELETE", bucket, key, {"uploadId": upload_id}, "AbortMultipartUpload", "abort an upload")


def query_string(query: dict[str, str]) -> str:
    """``?a=b&c`` with every name and value percent-encoded as SigV4 expects (empty value: bare name)."""
    if not query:
        return ""
    parts = [quote(k, safe="-_.~") + ("=" + quote(v, safe="-_.~") if v != "" else "") for k, v in query.items()]
    return "?" + "&".join(parts)
