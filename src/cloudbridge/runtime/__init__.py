"""Runs inside a job, on any platform: read the platform's contract, launch the workers.

``RuntimeContext.detect()`` returns node rank, node count, processes per node, the master's
address and port, input channel directories and the output, model and checkpoint directories, read
from SageMaker, Vertex AI, Azure ML, torchrun/accelerate or cloudbridge's local backend.
``cloudbridge-launch -- CMD`` (:mod:`cloudbridge.runtime.launch`) turns it into an
``accelerate launch`` or ``torchrun`` call. :func:`log_metrics` records a job's metric series
(JSON Lines and TensorBoard scalars in the output dir, rank 0 only). Nothing here imports torch,
the CLI or any plugin.
"""

from __future__ import annotations

from cloudbridge.runtime.context import RuntimeContext, count_local_gpus, detect
from cloudbridge.runtime.metrics import log_metrics, log_table

__all__ = ["RuntimeContext", "count_local_gpus", "detect", "log_metrics", "log_table"]
