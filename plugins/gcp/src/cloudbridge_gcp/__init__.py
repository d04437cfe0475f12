"""cloudbridge-gcp: the GCP provider (GCS storage, Vertex AI custom jobs, Vertex AI endpoints).

Importing this package imports no Google SDK; ``google.cloud.storage`` and
``google.cloud.aiplatform_v1`` are loaded inside the functions that call GCP. The provider is
registered by :mod:`cloudbridge_gcp.plugin` through the ``cloudbridge`` entry point.
"""

__version__ = "0.1.0"
