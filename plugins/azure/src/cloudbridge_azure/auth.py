"""Credentials and SDK clients for the Azure provider, built once and shared.

* Azure ML (ARM) calls use ``DefaultAzureCredential``; when ``arm_endpoint`` is a loopback URL (a
  local fake) they use :class:`LoopbackTestCredential`, a static test token that is handed out only
  for loopback token scopes, so it can never be sent to a real Azure endpoint. The fake's
  self-signed certificate is trusted through ``REQUESTS_CA_BUNDLE`` (requests reads it).
* Blob storage uses ``AZURE_STORAGE_CONNECTION_STRING`` when it names the account of the URI, else
  ``DefaultAzureCredential``. ``blob_endpoint`` replaces ``https://ACCOUNT.blob.core.windows.net``
  (Azurite's path-style ``http://127.0.0.1:PORT/devstoreaccount1``).
* Every client retries 429/5xx and connection errors with azure-core's exponential ``RetryPolicy``
  (``retry_total`` attempts, ``Retry-After`` honoured).
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cloudbridge.errors import InvalidSpec
from cloudbridge_azure.settings import AzureSettings, is_loopback_url

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken

__all__ = ["TEST_TOKEN", "AzureClients", "LoopbackTestCredential", "connection_string_values"]

#: The token :class:`LoopbackTestCredential` hands to loopback fakes (not a secret: fakes accept it).
TEST_TOKEN = "cloudbridge-loopback-test-token"


class LoopbackTestCredential:
    """A ``TokenCredential`` for local fakes: a static token, refused for any non-loopback scope.

    azure-core asks for a token per request with the scope ``<endpoint>/.default``; a scope that
    does not name a loopback host gets ``ClientAuthenticationError``, so the test token cannot
    leave this machine even when a client is misconfigured.
    """

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        """The static test token, for loopback scopes only."""
        from azure.core.credentials import AccessToken
        from azure.core.exceptions import ClientAuthenticationError

        for scope in scopes:
            if not is_loopback_url(scope):
                raise ClientAuthenticationError(f"the loopback test credential is not valid for scope {scope!r}")
        return AccessToken(TEST_TOKEN, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
        """``SupportsTokenInfo`` variant of :meth:`get_token` (newer azure-core asks for this)."""
        from azure.core.credentials import AccessTokenInfo

        token = self.get_token(*scopes, **kwargs)
        return AccessTokenInfo(token.token, token.expires_on)

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "<LoopbackTestCredential>"


def connection_string_values(text: str) -> dict[str, str]:
    """``KEY=VALUE;...`` of a storage connection string as a dict (keys as written)."""
    values = {}
    for part in text.split(";"):
        if "=" in part:
            key, _, value = part.partition("=")
            values[key.strip()] = value.strip()
    return values


class AzureClients:
    """One credential and one client per account/workspace, created on first use, thread-safe."""

    def __init__(self, settings: AzureSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._credential: Any = None
        self._blob: dict[str, Any] = {}
        self._ml: Any = None

    # ---- credentials -------------------------------------------------------------------------
    @property
    def credential(self) -> Any:
        """The ARM credential: the loopback test credential for fakes, else ``DefaultAzureCredential``."""
        with self._lock:
            if self._credential is None:
                if self.settings.uses_fake:
                    self._credential = LoopbackTestCredential()
                else:
                    from azure.identity import DefaultAzureCredential

                    self._credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
            return self._credential

    def _client_options(self) -> dict[str, Any]:
        s = self.settings
        return {"retry_total": s.retry_total, "retry_backoff_factor": 0.8, "retry_backoff_max": 60}

    # ---- Blob --------------------------------------------------------------------------------
    def account_url(self, account: str) -> str:
        """The Blob endpoint of ``account``: ``blob_endpoint`` when set for it, else the public one."""
        endpoint = self.settings.blob_endpoint
        if endpoint:
            parts = urlsplit(endpoint)
            path_account = parts.path.strip("/").split("/")[0] if parts.path.strip("/") else ""
            host_account = (parts.hostname or "").split(".")[0]
            if account in (path_account, host_account) or not path_account:
                return endpoint if path_account else f"{endpoint}/{account}"
        return f"https://{account}.blob.core.windows.net"

    def blob_service(self, account: str) -> Any:
        """A ``BlobServiceClient`` for ``account`` (connection string or ``DefaultAzureCredential``)."""
        with self._lock:
            client = self._blob.get(account)
        if client is not None:
            return client
        from azure.storage.blob import BlobServiceClient

        s = self.settings
        sizes = {"max_block_size": s.block_size, "max_single_put_size": s.single_put_size,
                 "min_large_block_upload_threshold": 1, **self._client_options()}
        conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if conn and connection_string_values(conn).get("AccountName") == account:
            values = connection_string_values(conn)
            if s.blob_endpoint and "BlobEndpoint" not in values:
                conn = conn.rstrip(";") + f";BlobEndpoint={self.account_url(account)}"
            client = BlobServiceClient.from_connection_string(conn, **sizes)
        else:
            url = self.account_url(account)
            credential = self.credential if not is_loopback_url(url) or not self.settings.uses_fake else None
            if credential is None:
                raise InvalidSpec(
                    f"no credentials for the local Blob endpoint {url}",
                    field="settings.azure.blob_endpoint",
                    hint="set AZURE_STORAGE_CONNECTION_STRING to the emulator's connection string",
                )
            client = BlobServiceClient(url, credential=credential, **sizes)
        with self._lock:
            return self._blob.setdefault(account, client)

    # ---- Azure ML ----------------------------------------------------------------------------
    def ml_client(self) -> Any:
        """An ``azure.ai.ml.MLClient`` for the workspace (pointed at ``arm_endpoint`` when set)."""
        with self._lock:
            if self._ml is not None:
                return self._ml
        from cloudbridge_azure.mlclient import make_ml_client

        client = make_ml_client(self.settings, self.credential, self._client_options())
        with self._lock:
            if self._ml is None:
                self._ml = client
            return self._ml
