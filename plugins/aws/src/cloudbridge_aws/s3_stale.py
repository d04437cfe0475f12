"""Finding and aborting the multipart uploads a killed transfer left behind (``abort_incomplete``).

Their parts are invisible to a listing but stored and billed until aborted; ``sync`` runs this on
its destination prefix before its first copy. Through the CRT when :class:`S3Storage` has it
(:mod:`cloudbridge_aws.s3_wire`), else botocore's paginator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloudbridge.errors import NotFound
from cloudbridge_aws.errors import aws_errors

if TYPE_CHECKING:
    from cloudbridge.uri import StorageURI
    from cloudbridge_aws.storage import S3Storage

__all__ = ["abort_stale_uploads"]


def abort_stale_uploads(storage: S3Storage, parsed: StorageURI, older_than_s: float) -> int:
    """Abort the uploads under the prefix ``parsed`` initiated over ``older_than_s`` seconds ago;
    returns how many were aborted (one that completed or was aborted meanwhile is skipped)."""
    from datetime import datetime, timedelta, timezone

    prefix = parsed.key.rstrip("/") + "/" if parsed.key else ""
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than_s)
    crt = storage.crt(parsed.bucket)
    try:
        with aws_errors("list unfinished uploads", resource=storage._uri(parsed.bucket, prefix), bucket=parsed.bucket):
            if crt is not None:
                from cloudbridge_aws.s3_wire import list_uploads

                found = list(list_uploads(crt, parsed.bucket, prefix))
            else:
                pages = storage.client.get_paginator("list_multipart_uploads").paginate(
                    Bucket=parsed.bucket, Prefix=prefix
                )
                found = [(u["Key"], u["UploadId"], u["Initiated"]) for p in pages for u in p.get("Uploads", [])]
    except NotFound as exc:
        if "NoSuchUpload" not in str(exc.__cause__):
            raise
        return 0  # some S3-compatible servers (rclone serve s3) answer "no uploads" with NoSuchUpload
    aborted = 0
    for key, upload_id, initiated in found:
        if initiated is None or initiated > cutoff:
            continue  # started recently (perhaps by a transfer running now), or of unknown age
        try:
            with aws_errors("abort an unfinished upload", resource=storage._uri(parsed.bucket, key)):
                if crt is not None:
                    from cloudbridge_aws.s3_wire import abort_upload

                    abort_upload(crt, parsed.bucket, key, upload_id)
                else:
                    storage.client.abort_multipart_upload(Bucket=parsed.bucket, Key=key, UploadId=upload_id)
        except NotFound:
            continue  # completed or aborted meanwhile
        aborted += 1
    return aborted

