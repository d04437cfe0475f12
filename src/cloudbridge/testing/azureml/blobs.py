"""The Azure ML fake's view of its workspace storage (Azurite): datastores, SAS URIs, copies.

Blob URLs are Azurite's path-style ``http://127.0.0.1:PORT/ACCOUNT/CONTAINER/PATH``; datastore URIs
``azureml://datastores/NAME/paths/PATH`` resolve to a datastore's container.
"""

from __future__ import annotations

import datetime
import os
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["ARTIFACT_CONTAINER", "BLOB_CONTAINER", "Blobs"]

#: Containers of the workspace's default datastores (as Azure ML names them).
BLOB_CONTAINER = "azureml-blobstore"
ARTIFACT_CONTAINER = "azureml"


class Blobs:
    """Copies between Azurite and local folders for the fake, with the account's key."""

    def __init__(self, connection_string: str, blob_endpoint: str, account: str, key: str) -> None:
        from azure.storage.blob import BlobServiceClient

        self.endpoint, self.account, self.key = blob_endpoint.rstrip("/"), account, key
        self.service = BlobServiceClient.from_connection_string(connection_string)
        for container in (BLOB_CONTAINER, ARTIFACT_CONTAINER):
            self._ensure(container)

    def _ensure(self, container: str) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            self.service.create_container(container)
        except ResourceExistsError:
            pass

    def split(self, uri: str) -> tuple[str, str]:
        """``(container, path)`` of a blob URL or an ``azureml://datastores/.../paths/...`` URI."""
        if uri.startswith("azureml://datastores/"):
            rest = uri[len("azureml://datastores/"):]
            store, _, path = rest.partition("/paths/")
            container = ARTIFACT_CONTAINER if store == "workspaceartifactstore" else BLOB_CONTAINER
            return container, path.strip("/")
        path = unquote(urlsplit(uri).path).strip("/")
        parts = path.split("/", 2)
        if parts and parts[0] == self.account:
            parts = parts[1:]
        else:
            parts = path.split("/", 1)
        return parts[0], (parts[1] if len(parts) > 1 else "")

    def url(self, container: str, path: str) -> str:
        """The blob URL of ``container/path``."""
        return f"{self.endpoint}/{container}/{path}"

    def sas_url(self, container: str, path: str) -> str:
        """A read/write/list SAS URL for the folder ``container/path`` (valid for a day)."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        token = generate_container_sas(
            self.account, container, account_key=self.key,
            permission=ContainerSasPermissions(read=True, write=True, list=True, create=True, add=True),
            expiry=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1),
        )
        return f"{self.url(container, path)}?{token}"

    def download_prefix(self, uri: str, target: str, *, single: bool = False) -> int:
        """Download every blob under ``uri`` into ``target`` (keys relative to it); returns the count.

        Keys go through :func:`cloudbridge.transfers.download.checked_join` (all of them before any
        file is written): a key with ``..``, an empty segment or a control character is refused.
        """
        container, path = self.split(uri)
        client = self.service.get_container_client(container)
        os.makedirs(target, exist_ok=True)
        from cloudbridge.transfers.download import checked_join

        if single:
            name = path.rsplit("/", 1)[-1]
            with open(checked_join(target, name), "wb") as handle:
                client.download_blob(path).readinto(handle)
            return 1
        prefix = path.rstrip("/") + "/" if path else ""
        names = [b.name for b in client.list_blobs(name_starts_with=prefix or None)]
        keys = [n[len(prefix):] for n in names if n[len(prefix):] and not n.endswith("/")]
        targets = [checked_join(target, key) for key in keys]  # every key checked before anything is written
        count = 0
        for key, dest in zip(keys, targets, strict=True):
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as handle:
                client.download_blob(prefix + key).readinto(handle)
            count += 1
        return count

    def upload_dir(self, local: str, uri: str) -> int:
        """Upload every file below ``local`` under ``uri``; returns the count."""
        container, path = self.split(uri)
        client = self.service.get_container_client(container)
        count = 0
        for folder, _dirs, files in os.walk(local):
            for name in files:
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, local).replace(os.sep, "/")
                with open(full, "rb") as handle:
                    client.upload_blob(f"{path.rstrip('/')}/{rel}".lstrip("/"), handle, overwrite=True)
                count += 1
        return count

    def put_artifact(self, job: str, rel: str, local: str) -> None:
        """Copy ``local`` to the job's artifacts: ``azureml/ExperimentRun/dcid.JOB/REL``."""
        with open(local, "rb") as handle:
            self.service.get_container_client(ARTIFACT_CONTAINER).upload_blob(
                f"ExperimentRun/dcid.{job}/{rel}", handle, overwrite=True)

    def client(self) -> Any:
        """The ``BlobServiceClient``."""
        return self.service
