"""One boto3 session per provider and the clients made from it (adaptive retries everywhere).

Start-up cost is what a short CLI call (``cloudbridge storage ls s3://...``) mostly pays, so:
nothing here imports boto3 until the first client is made; every session of the process reads
botocore's JSON data (service models, endpoint rules: ~0.1 s per session) through one shared
:func:`shared_loader`, so a second provider (another profile, a job's ``overrides.aws``) builds its
clients from the already parsed models; and each session caches one client per service.
"""

from __future__ import annotations

import os
import sys
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cloudbridge.errors import InvalidSpec
from cloudbridge_aws.settings import AwsSettings

if TYPE_CHECKING:
    import boto3

__all__ = ["AwsSession", "fast_timestamp", "import_botocore", "shared_loader"]

_USER_AGENT = "cloudbridge-aws/0.1.0"
_loaders: dict[str, Any] = {}
_loaders_lock = threading.Lock()
_botocore_lock = threading.Lock()


def import_botocore() -> None:
    """Import botocore with its own pure-Python signer, even when ``awscrt`` is installed (and loaded).

    With ``awscrt`` importable, ``botocore.compat`` switches botocore's S3 signer to the CRT's, which
    reads every request body through a Python stream to hash it (profiled: a third of a multipart
    upload's CPU over plain HTTP), and lets boto3's ``upload_file`` hand itself to s3transfer's CRT
    manager on some EC2 instance types. cloudbridge uses the CRT directly
    (:mod:`cloudbridge_aws.s3_crt`), so botocore is kept on the behaviour every test pins down, through
    botocore's own switch ``BOTO_DISABLE_CRT``, set only while ``botocore.compat`` is first imported.
    A process that imported botocore itself first is left as it is.
    """
    if "botocore.compat" in sys.modules:
        return
    with _botocore_lock:
        if "botocore.compat" in sys.modules:
            return
        before = os.environ.get("BOTO_DISABLE_CRT")
        os.environ["BOTO_DISABLE_CRT"] = "true"
        try:
            import botocore.compat  # noqa: F401
        finally:
            if before is None:
                os.environ.pop("BOTO_DISABLE_CRT", None)
            else:
                os.environ["BOTO_DISABLE_CRT"] = before


def shared_loader() -> Any:
    """The process-wide ``botocore.loaders.Loader`` (one per ``AWS_DATA_PATH``; it caches what it parsed)."""
    import_botocore()
    key = os.environ.get("AWS_DATA_PATH", "")
    with _loaders_lock:
        if key not in _loaders:
            from botocore.loaders import create_loader

            _loaders[key] = create_loader(key or None)
        return _loaders[key]


def fast_timestamp(value: str) -> datetime:
    """Parse a timestamp of an AWS reply, ISO 8601 through the standard library's C parser.

    botocore's default goes through ``dateutil`` for every ``LastModified`` of a listing: profiled,
    that was a quarter of a no-op sync of 1,000 objects (``BaseXMLResponseParser._handle_timestamp``).
    Anything ``fromisoformat`` does not take (epoch numbers, RFC 822 dates) falls back to botocore's
    own parser, so the result is the same timezone-aware datetime either way.
    """
    if isinstance(value, str) and "T" in value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:  # a naive one is left to botocore, whose rule differs
                return parsed
    from botocore.utils import parse_timestamp

    return parse_timestamp(value)


class AwsSession:
    """Lazily builds the boto3 session and caches one client per service.

    ``region`` is the settings' region, else the AWS profile's; a provider without any is
    refused with the ways to set one. Every client uses botocore's ``adaptive`` retry mode
    (client-side rate limiting plus exponential backoff for throttling and 5xx) and the
    settings' ``connect_timeout`` / ``read_timeout``, so no call hangs forever.
    """

    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings
        self._session: boto3.session.Session | None = None
        self._clients: dict[str, Any] = {}
        self._prefetching: set[str] = set()
        self._lock = threading.Lock()
        self._account: str | None = None

    @property
    def boto_session(self) -> boto3.session.Session:
        """The underlying ``boto3.session.Session`` (created on first use)."""
        if self._session is None:
            import_botocore()
            import boto3
            import botocore.session

            from cloudbridge_aws.errors import aws_errors

            s = self.settings
            core = botocore.session.Session()
            core.register_component("data_loader", shared_loader())
            core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=fast_timestamp)
            with aws_errors("open the AWS profile"):
                self._session = boto3.session.Session(
                    botocore_session=core,
                    aws_access_key_id=s.access_key_id.get_secret_value() if s.access_key_id else None,
                    aws_secret_access_key=s.secret_access_key.get_secret_value() if s.secret_access_key else None,
                    aws_session_token=s.session_token.get_secret_value() if s.session_token else None,
                    region_name=s.region,
                    profile_name=s.profile,
                )
            with _loaders_lock:  # boto3 appends its data directory to the shared loader each time
                paths = core.get_component("data_loader").search_paths
                paths[:] = list(dict.fromkeys(paths))
        return self._session

    @property
    def region(self) -> str:
        """The region every call goes to; :class:`InvalidSpec` with the fix when none is set."""
        region = self.settings.region or self.boto_session.region_name
        if not region:
            raise InvalidSpec(
                "no AWS region is set",
                field="settings.aws.region",
                hint="set region in the [aws] table of config.toml, CLOUDBRIDGE_AWS_REGION or AWS_REGION",
            )
        return region

    def client(self, service: str) -> Any:
        """A cached boto3 client for ``service`` in :attr:`region`."""
        with self._lock:
            if service not in self._clients:
                import_botocore()
                from botocore.config import Config

                config = Config(
                    retries={"mode": "adaptive", "total_max_attempts": self.settings.max_attempts},
                    user_agent_extra=_USER_AGENT,
                    # a sync runs 32 transfers while large files each keep max_concurrency parts in flight
                    max_pool_connections=max(64, self.settings.max_concurrency * 4),
                    connect_timeout=self.settings.connect_timeout,
                    read_timeout=self.settings.read_timeout,
                )
                self._clients[service] = self.boto_session.client(
                    service, region_name=self.region, endpoint_url=self.settings.endpoint_url, config=config
                )
            return self._clients[service]

    def prefetch_client(self, service: str) -> None:
        """Start building :meth:`client` for ``service`` on a daemon thread, unless it exists or is
        being built: importing botocore and loading the service model (~0.15 s of CPU) then overlaps
        work that waits or runs outside the GIL. :meth:`client` still builds it once (its lock)."""
        with self._lock:
            if service in self._clients or service in self._prefetching:
                return
            self._prefetching.add(service)

        def build() -> None:
            try:
                self.client(service)
            except Exception:  # noqa: BLE001 - the caller's own client() call reports it
                pass

        threading.Thread(target=build, name=f"cb-{service}-client", daemon=True).start()

    def account_id(self) -> str:
        """The caller's account id (STS ``GetCallerIdentity``, cached)."""
        if self._account is None:
            from cloudbridge_aws.errors import aws_errors

            with aws_errors("verify AWS credentials (sts:GetCallerIdentity)"):
                self._account = self.client("sts").get_caller_identity()["Account"]
        return self._account

    def partition_domain(self) -> str:
        """``amazonaws.com``, or ``amazonaws.com.cn`` in the China regions."""
        return "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
