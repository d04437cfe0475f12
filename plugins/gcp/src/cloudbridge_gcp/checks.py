"""``cloudbridge check gcp``: what is configured, what is missing, and the command that fixes it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from cloudbridge.errors import AuthenticationError, CloudbridgeError, NotFound
from cloudbridge.records import CheckReport
from cloudbridge_gcp.errors import ADC_FIX

if TYPE_CHECKING:
    from cloudbridge_gcp.provider import GcpProvider

__all__ = ["run_checks", "vertex_api_check"]

ENABLE_FIX = "gcloud services enable aiplatform.googleapis.com --project {project}"
VERTEX_ROLE_FIX = ("gcloud projects add-iam-policy-binding {project} --member=user:YOU@EXAMPLE.COM "
                   "--role=roles/aiplatform.user")
BUCKET_ROLE_FIX = ("gcloud storage buckets add-iam-policy-binding gs://{bucket} --member=user:YOU@EXAMPLE.COM "
                   "--role=roles/storage.objectAdmin")


def _text(exc: CloudbridgeError) -> str:
    text, hint = str(exc), exc.hint
    return text[: -len(hint) - 3] if hint and text.endswith(f" ({hint})") else text


def vertex_api_check(provider: GcpProvider) -> tuple[bool, str, str | None]:
    """``(ok, detail, fix)`` of one cheap Vertex AI call (``customJobs.list``, one result)."""
    session = provider.session
    try:
        from cloudbridge_gcp.errors import gcp_errors

        with gcp_errors("list custom jobs"):
            session.vertex("jobs").list_custom_jobs(request={"parent": session.parent, "page_size": 1})
    except AuthenticationError as exc:
        text = _text(exc)
        if "SERVICE_DISABLED" in text or "has not been used" in text or "is disabled" in text:
            return False, "the Vertex AI API is not enabled", ENABLE_FIX.format(project=session.project)
        if "denied" in text:
            return False, f"{text} (role roles/aiplatform.user is lacking)", VERTEX_ROLE_FIX.format(
                project=session.project)
        return False, text, ADC_FIX
    except CloudbridgeError as exc:
        return False, _text(exc), exc.hint or "check the region and api_endpoint settings"
    return True, f"{session.settings.vertex_endpoint()} answers for {session.parent}", None


def run_checks(provider: GcpProvider) -> CheckReport:
    """Project, credentials, region, the Vertex AI API (and its IAM role), the staging bucket (and its role)."""
    report = CheckReport(provider.name)
    session, settings = provider.session, provider.settings
    credentials_ok = False
    if session.vertex_is_local():
        report.add("credentials", True, f"anonymous (a fake at {settings.api_endpoint})")
        credentials_ok = True
    else:
        try:
            credentials, _ = session.adc()
        except AuthenticationError as exc:
            report.add("credentials", False, _text(exc), ADC_FIX)
        else:
            who = getattr(credentials, "service_account_email", None) or type(credentials).__name__
            report.add("credentials", True, f"Application Default Credentials ({who})")
            credentials_ok = True
    try:
        project = session.project
    except CloudbridgeError as exc:
        report.add("project", False, _text(exc), exc.hint or "set project in the [gcp] table of config.toml")
        project = None
    else:
        report.add("project", True, project)
    try:
        region = session.region
    except CloudbridgeError as exc:
        report.add("region", False, _text(exc), exc.hint or "set region in the [gcp] table of config.toml")
        region = None
    else:
        report.add("region", True, region)
    if credentials_ok and project and region:
        report.add("Vertex AI API", *vertex_api_check(provider))
    if not settings.staging_bucket:
        report.add("staging bucket", False, "no staging bucket is set (code packages, outputs and models go there)",
                   "set staging_bucket in the [gcp] table of config.toml or CLOUDBRIDGE_GCP_STAGING_BUCKET; create "
                   "one with `gcloud storage buckets create gs://NAME --location REGION`")
    elif credentials_ok or session.storage_is_local():
        report.add("staging bucket", *_bucket_check(provider))
    return report


def _bucket_check(provider: GcpProvider) -> tuple[bool, str, str | None]:
    bucket = provider.settings.staging_bucket or ""
    prefix = provider.settings.prefix
    probe = f"gs://{bucket}/{prefix + '/' if prefix else ''}.cloudbridge-check-{uuid.uuid4().hex[:8]}"
    storage = provider.storage
    try:
        storage.write_bytes(probe, b"cloudbridge check")
        storage.delete(probe)
    except NotFound:
        region = provider.settings.region or "REGION"
        return False, f"bucket gs://{bucket} does not exist", \
            f"gcloud storage buckets create gs://{bucket} --location {region}"
    except AuthenticationError as exc:
        return False, f"{_text(exc)} (role roles/storage.objectAdmin is lacking)", BUCKET_ROLE_FIX.format(bucket=bucket)
    except CloudbridgeError as exc:
        return False, _text(exc), exc.hint or "check the bucket name and your permissions on it"
    return True, f"gs://{bucket} is writable", None
