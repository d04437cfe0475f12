"""Serving models: the inference handler contract, the HTTP server and the endpoint registry.

* :mod:`cloudbridge.serving.handler` -- the handler contract (``model_fn``/``predict_fn``/
  ``input_fn``/``output_fn``) and :func:`~cloudbridge.serving.handler.load_handler`;
* :mod:`cloudbridge.serving.hf` -- the default handler for Hugging Face classification/NER models;
* :mod:`cloudbridge.serving.server` -- the threaded HTTP server (``GET /ping``, ``POST /invocations``);
* :mod:`cloudbridge.serving.serve` -- ``python -m cloudbridge.serving.serve``, the entrypoint a local
  endpoint and a cloud container both run;
* :mod:`cloudbridge.serving.registry` -- endpoint records in SQLite under ``CLOUDBRIDGE_HOME``;
* :mod:`cloudbridge.serving.client` -- HTTP calls to a running server (``ping``, ``invoke``).

Nothing here imports torch or transformers until a model is loaded.
"""

from __future__ import annotations
