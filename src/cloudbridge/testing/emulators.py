"""Cloud emulators started by test suites on 127.0.0.1: the moto server (S3, SageMaker, STS,
CloudWatch Logs, Application Auto Scaling, ...).

Use it from a session-scoped fixture and reset it between tests::

    from cloudbridge.testing.emulators import moto_server

    @pytest.fixture(scope="session")
    def moto():
        with moto_server() as server:
            yield server

    @pytest.fixture
    def aws_env(moto, monkeypatch):
        moto.reset()
        for name, value in moto.env().items():
            monkeypatch.setenv(name, value)
        return moto

:meth:`MotoServer.env` gives boto3 and the AWS CLI fake credentials, a region and
``AWS_ENDPOINT_URL`` (both honour it), and points the shared AWS config files at nothing, so a
developer's real ``~/.aws`` is never read by a test. moto is imported only when a server starts.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAKE_ACCOUNT_ID", "MotoServer", "moto_available", "moto_server"]

#: The account id moto answers with (``sts get-caller-identity``, ARNs).
FAKE_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"


def moto_available() -> bool:
    """True when ``moto[server]`` is installed (tests skip with a reason otherwise)."""
    import importlib.util

    return importlib.util.find_spec("moto") is not None and importlib.util.find_spec("flask") is not None


@dataclass
class MotoServer:
    """A running moto server: its ``endpoint`` URL and helpers to drive it."""

    host: str
    port: int
    region: str = DEFAULT_REGION
    _server: Any = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: pass as ``endpoint_url`` or ``AWS_ENDPOINT_URL``."""
        return f"http://{self.host}:{self.port}"

    def env(self, region: str | None = None) -> dict[str, str]:
        """Environment for boto3/awscli: fake credentials, region, endpoint, no real ~/.aws files."""
        region = region or self.region
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def _post(self, path: str, body: bytes = b"") -> bytes:
        request = urllib.request.Request(
            self.endpoint + path, data=body, method="POST", headers={"Content-Type": "application/octet-stream"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def reset(self) -> None:
        """Forget every resource in every service (``POST /moto-api/reset``)."""
        self._post("/moto-api/reset")

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for ``service`` talking to this server with fake credentials."""
        import boto3

        return boto3.client(
            service,
            region_name=region or self.region,
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def set_sagemaker_results(self, results: list[dict[str, Any]], region: str | None = None) -> None:
        """Queue canned ``invoke_endpoint`` replies: ``[{"Body": "...", "ContentType": "..."}]``.

        moto hands them out in order, one per distinct request, and repeats a reply for a request
        it has seen before.
        """
        body = json.dumps({"results": results, "region": region or self.region}).encode()
        self._post("/moto-api/static/sagemaker/endpoint-results", body)

    def set_iam_auth(self, initial_no_auth_count: float) -> float:
        """Turn IAM checks on after ``initial_no_auth_count`` more requests (``inf`` = off).

        With checks on, unknown access keys get ``InvalidClientTokenId`` and users without a
        policy get ``AccessDenied``, exactly as AWS answers. Returns the previous setting.
        """
        answer = self._post("/moto-api/reset-auth", str(initial_no_auth_count).encode())
        return float(json.loads(answer)["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])

    def stop(self) -> None:
        """Shut the server down (also done by :func:`moto_server` on exit)."""
        if self._server is not None:
            self._server.stop()
            self._server = None


@contextmanager
def moto_server(region: str = DEFAULT_REGION, *, quiet: bool = True) -> Iterator[MotoServer]:
    """Start ``moto.server.ThreadedMotoServer`` on 127.0.0.1 and a free port; stop it on exit.

    ``quiet`` silences the per-request access log of the embedded werkzeug server.
    """
    from moto.server import ThreadedMotoServer

    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    handle = MotoServer(host=host, port=port, region=region, _server=server)
    try:
        yield handle
    finally:
        handle.stop()
