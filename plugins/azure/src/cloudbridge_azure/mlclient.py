"""One ``azure.ai.ml.MLClient`` for the workspace, pointed at ``arm_endpoint`` when it is set.

With ``arm_endpoint`` the SDK gets a custom cloud whose every endpoint (resource manager, AAD, AML
resource id, registry discovery) is that URL. azure-ai-ml keeps custom clouds in a process-wide table
and writes ``AZUREML_CURRENT_CLOUD`` to the environment, so the cloud name is unique per endpoint and
the variable is restored after construction: other clients in the process keep their cloud.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from cloudbridge_azure.errors import azure_errors
from cloudbridge_azure.job_request import require_workspace
from cloudbridge_azure.settings import AzureSettings

__all__ = ["cloud_name_for", "make_ml_client", "quiet_sdk_loggers"]

_LOCK = threading.Lock()


def cloud_name_for(endpoint: str) -> str:
    """A cloud name unique to ``endpoint`` (``cloudbridge-<sha256[:12]>``)."""
    return "cloudbridge-" + hashlib.sha256(endpoint.encode()).hexdigest()[:12]


def quiet_sdk_loggers() -> None:
    """Silence azure-ai-ml's own stderr notices ("experimental class", studio URL) below ERROR.

    Its modules give their loggers an INFO-level stderr handler of their own at import, which would
    interleave with cloudbridge's CLI output; called again after the SDK imports more modules.
    """
    import logging

    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("azure.ai.ml") and isinstance(logger, logging.Logger) and logger.handlers:
            logger.setLevel(logging.ERROR)


def make_ml_client(settings: AzureSettings, credential: Any, options: dict[str, Any]) -> Any:
    """The ``MLClient`` of the configured workspace (no call is made until an operation is used)."""
    sub, rg, ws = require_workspace(settings)
    from azure.ai.ml import MLClient

    quiet_sdk_loggers()
    kwargs: dict[str, Any] = {**options, "show_progress": False}
    if settings.arm_endpoint:
        endpoint = settings.arm_endpoint.rstrip("/")
        kwargs["cloud"] = cloud_name_for(endpoint)
        kwargs["cloud_metadata"] = {
            "azure_portal": endpoint + "/", "resource_manager": endpoint + "/", "active_directory": endpoint + "/",
            "aml_resource_id": endpoint + "/", "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": endpoint + "/",
        }
    with _LOCK, azure_errors("connect to the Azure ML workspace", resource=ws):
        saved = os.environ.get("AZUREML_CURRENT_CLOUD")
        try:
            return MLClient(credential, sub, rg, ws, **kwargs)
        finally:
            if saved is None:
                os.environ.pop("AZUREML_CURRENT_CLOUD", None)
            else:
                os.environ["AZUREML_CURRENT_CLOUD"] = saved
