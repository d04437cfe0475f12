"""cloudbridge-azure: the Azure provider (Blob storage, Azure ML command jobs, managed online endpoints).

Importing this package imports no Azure SDK; ``azure-storage-blob``, ``azure-identity`` and
``azure-ai-ml`` are loaded inside the functions that call Azure. The provider is registered by
:mod:`cloudbridge_azure.plugin` through the ``cloudbridge`` entry point.
"""

__version__ = "0.1.0"
