"""Azure ML job logs, read where Azure ML writes them: the workspace artifact store.

Every process of a command job writes ``user_logs/std_log_process_<rank>.txt``; Azure ML copies them
to the workspace's artifact datastore (``workspaceartifactstore``, container ``azureml``) under
``ExperimentRun/dcid.<job name>/`` while the job runs. They are read here as Blob objects through the
provider's :class:`~cloudbridge_azure.storage.BlobStorage` (rank 0 first), not through the SDK's
``jobs.stream`` (which needs the run-history streaming service and prints instead of returning lines).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from cloudbridge.errors import StageTimeout
from cloudbridge_azure.errors import azure_errors

if TYPE_CHECKING:
    from cloudbridge_azure.adapter import AzureMLAdapter

__all__ = ["logs_prefix", "read_logs"]

_RANK = re.compile(r"std_log_process_(\d+)\.txt$")


def logs_prefix(adapter: AzureMLAdapter, name: str) -> str:
    """``az://ACCOUNT/CONTAINER/ExperimentRun/dcid.NAME/user_logs`` of the workspace's artifact store."""
    cached = getattr(adapter, "_artifact_store", None)
    if cached is None:
        with azure_errors("read the workspace artifact datastore", resource="workspaceartifactstore"):
            store = adapter.ml.datastores.get("workspaceartifactstore")
        cached = (store.account_name, store.container_name)
        adapter._artifact_store = cached  # type: ignore[attr-defined]
    account, container = cached
    return f"az://{account}/{container}/ExperimentRun/dcid.{name}/user_logs"


def _files(adapter: AzureMLAdapter, prefix: str) -> list[tuple[int, str]]:
    found = []
    for info in adapter.azure.storage.list(prefix, recursive=False):
        match = _RANK.search(info.key)
        if match:
            found.append((int(match.group(1)), info.uri))
    return sorted(found)


def read_logs(adapter: AzureMLAdapter, name: str, *, follow: bool = False, is_done: Callable[[], bool] | None = None,
              poll_interval: float = 5.0, deadline: float | None = None) -> Iterator[str]:
    """The job's lines, process 0 first; with ``follow``, new lines as they arrive until ``is_done()``."""
    prefix = logs_prefix(adapter, name)
    sent: dict[str, int] = {}
    while True:
        done = is_done() if (follow and is_done is not None) else False
        for _rank, uri in _files(adapter, prefix):
            lines = adapter.azure.storage.read_bytes(uri).decode("utf-8", "replace").splitlines()
            yield from lines[sent.get(uri, 0):]
            sent[uri] = len(lines)
        if not follow or done:
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise StageTimeout(f"log follow of Azure ML job {name} timed out", stage="log follow")
        time.sleep(poll_interval)
