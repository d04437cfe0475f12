"""Azurite, the Azure Storage emulator, started on 127.0.0.1 for tests.

``scripts/ci/azure.sh`` installs it with npm into ``.cache/azurite`` (once); :func:`azurite_server`
starts ``azurite-blob`` in memory on a free port in its own process group and stops it by that
group on exit::

    from cloudbridge.testing.azurite import azurite_server, find_azurite

    @pytest.fixture(scope="session")
    def azurite():
        binary = find_azurite()
        if binary is None:
            pytest.skip("Azurite is not installed: bash scripts/ci/azure.sh")
        with azurite_server(binary) as server:
            yield server

The server speaks for the well-known development account ``devstoreaccount1`` with path-style
URLs (``http://127.0.0.1:PORT/devstoreaccount1``); :meth:`AzuriteServer.env` gives the connection
string and the cloudbridge settings that point Blob storage at it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ACCOUNT", "ACCOUNT_KEY", "AzuriteServer", "azurite_server", "find_azurite"]

#: Azurite's well-known development account and its published key (not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def find_azurite() -> str | None:
    """The ``azurite-blob`` executable: ``CLOUDBRIDGE_AZURITE``, the repo's ``.cache/azurite``, or PATH."""
    candidates = [os.environ.get("CLOUDBRIDGE_AZURITE", "")]
    for parent in Path(__file__).resolve().parents:
        candidates.append(str(parent / ".cache/azurite/node_modules/.bin/azurite-blob"))
    candidates.append(shutil.which("azurite-blob") or "")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and shutil.which("node"):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AzuriteServer:
    """A running Azurite blob service."""

    port: int
    process: Any = field(default=None, repr=False)

    @property
    def blob_endpoint(self) -> str:
        """``http://127.0.0.1:PORT/devstoreaccount1``."""
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        """The connection string of the development account on this server."""
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.blob_endpoint};")

    def env(self) -> dict[str, str]:
        """``AZURE_STORAGE_CONNECTION_STRING`` and ``CLOUDBRIDGE_AZURE_BLOB_ENDPOINT`` for this server."""
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string,
                "CLOUDBRIDGE_AZURE_BLOB_ENDPOINT": self.blob_endpoint}

    def service(self) -> Any:
        """An ``azure.storage.blob.BlobServiceClient`` on this server."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_container(self, name: str) -> str:
        """Create container ``name`` (fine when it exists); returns ``az://devstoreaccount1/NAME``."""
        from azure.core.exceptions import ResourceExistsError

        try:
            self.service().create_container(name)
        except ResourceExistsError:
            pass
        return f"az://{ACCOUNT}/{name}"

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL after 5 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@contextmanager
def azurite_server(binary: str, *, timeout: float = 30.0) -> Iterator[AzuriteServer]:
    """Start ``azurite-blob`` in memory on 127.0.0.1 and a free port; stop it on exit."""
    port = _free_port()
    argv = [binary, "--inMemoryPersistence", "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    server = AzuriteServer(port=port, process=process)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Azurite exited with {process.returncode}: {process.stderr.read().decode()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Azurite did not listen on port {port} within {timeout:g}s") from None
                time.sleep(0.1)
        yield server
    finally:
        server.stop()
