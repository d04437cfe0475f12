"""Serving models: the inference handler contract, the HTTP server and the endpoint registry.

* :mod:`cloudbridge.deploy.handler` -- the handler contract (``model_fn``/``predict_fn``/
  ``input_fn``/``output_fn``) and :func:`~cloudbridge.deploy.handler.load_handler`;
* :mod:`cloudbridge.deploy.hf` -- the default handler for Hugging Face classification/NER models;
* :mod:`cloudbridge.deploy.server` -- the threaded HTTP server (``GET /ping``, ``POST /invocations``);
* :mod:`cloudbridge.deploy.serve` -- ``python -m cloudbridge.deploy.serve``, the entrypoint a local
  endpoint and a cloud container both run;
* :mod:`cloudbridge.deploy.registry` -- endpoint records in SQLite under ``CLOUDBRIDGE_HOME``;
* :mod:`cloudbridge.deploy.client` -- HTTP calls to a running server (``ping``, ``invoke``).

Nothing here imports torch or transformers until a model is loaded.
"""

from __future__ import annotations
