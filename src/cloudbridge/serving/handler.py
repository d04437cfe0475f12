"""The inference handler contract shared by every provider.

A handler turns the bytes of one ``POST /invocations`` request into the bytes of its reply in
three steps, named after SageMaker's PyTorch inference toolkit:

* ``decode`` (``input_fn(body, content_type)``): request bytes -> data;
* ``predict`` (``predict_fn(data, model)``): data -> prediction;
* ``encode`` (``output_fn(prediction, accept)``): prediction -> reply bytes.

Two implementations exist. :class:`~cloudbridge.serving.hf.HFHandler` (the default) serves
Hugging Face sequence- and token-classification models saved with ``save_pretrained``.
:class:`CustomHandler` serves a user's ``inference.py`` that defines ``model_fn(model_dir)`` and
``predict_fn(data, model)`` and optionally ``input_fn`` / ``output_fn``; the same file runs
unchanged under SageMaker's PyTorch serving container.

A handler signals a bad request by raising :class:`RequestError` (HTTP status + message).
User code does not need to import cloudbridge: a ``ValueError`` or ``KeyError`` raised by a
custom handler becomes a 400 reply, any other exception a 500.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from types import ModuleType
from typing import Any

from cloudbridge.errors import InvalidSpec, NotFound

__all__ = [
    "JSON_TYPE",
    "CustomHandler",
    "Handler",
    "RequestError",
    "decode_json",
    "find_inference_script",
    "load_handler",
]

JSON_TYPE = "application/json"
#: Where a custom handler is looked for inside a model directory (SageMaker keeps it in ``code/``).
INFERENCE_SCRIPT_PLACES = ("inference.py", "code/inference.py")


class RequestError(Exception):
    """A request the handler refuses: ``status`` is the HTTP status (4xx or 5xx)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(content_type: str | None) -> str:
    """The bare media type of a ``Content-Type``/``Accept`` value (``""`` when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_json(body: bytes) -> Any:
    """Parse a JSON request body; malformed JSON is a 400 :class:`RequestError`."""
    if not body:
        raise RequestError(400, "empty request body; send JSON such as {\"inputs\": \"some text\"}")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"request body is not valid JSON: {exc}") from None


class Handler(ABC):
    """Loads a model once and answers requests; see the module docstring for the contract.

    ``batchable`` handlers accept a *list* of items from :meth:`decode` and their :meth:`predict`
    maps a list of items to a list of predictions of the same length, so the server may merge
    the items of concurrent requests into one model call. Others are called one request at a time.
    """

    batchable: bool = False

    def __init__(self, model_dir: str | os.PathLike[str]) -> None:
        self.model_dir = Path(model_dir)

    @abstractmethod
    def load(self) -> None:
        """Load the model (called once, before the server reports ready)."""

    @abstractmethod
    def decode(self, body: bytes, content_type: str) -> Any:
        """Request bytes -> the data :meth:`predict` takes; raise :class:`RequestError` if bad."""

    @abstractmethod
    def predict(self, data: Any) -> Any:
        """Run the model on decoded data."""

    def encode(self, prediction: Any, accept: str) -> tuple[bytes, str]:
        """The reply body and its content type (JSON by default)."""
        accepted = media_type(accept)
        if accepted not in ("", "*/*", JSON_TYPE, "application/*"):
            raise RequestError(406, f"cannot reply with {accept!r}; this endpoint replies with {JSON_TYPE}")
        return json.dumps(prediction).encode("utf-8"), JSON_TYPE

    def describe(self) -> dict[str, Any]:
        """What the server logs and reports about this handler."""
        return {"handler": type(self).__name__, "model_dir": str(self.model_dir)}


def _load_module(path: Path) -> ModuleType:
    """Import ``path`` as a fresh module; its directory goes on ``sys.path`` for sibling imports."""
    directory = str(path.parent.resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    name = f"cloudbridge_user_inference_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidSpec("cannot import this file as Python", source=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise InvalidSpec(f"syntax error: {exc.msg}", source=str(path), line=exc.lineno) from exc
    except Exception as exc:
        raise InvalidSpec(f"importing the handler failed: {type(exc).__name__}: {exc}", source=str(path)) from exc
    return module


class CustomHandler(Handler):
    """A user's ``inference.py``: ``model_fn(model_dir)``, ``predict_fn(data, model)``,
    and optionally ``input_fn(body, content_type)`` / ``output_fn(prediction, accept)``.

    Without ``input_fn`` the body is decoded as JSON; without ``output_fn`` the prediction is
    encoded as JSON. ``output_fn`` may return ``bytes``, ``str`` or ``(body, content_type)``.
    ``predict_fn`` calls are serialized (one at a time), so the model needs no thread safety.
    """

    def __init__(self, model_dir: str | os.PathLike[str], script: str | os.PathLike[str]) -> None:
        super().__init__(model_dir)
        self.script = Path(script)
        self.module = _load_module(self.script)
        for required in ("model_fn", "predict_fn"):
            if not callable(getattr(self.module, required, None)):
                raise InvalidSpec(
                    f"defines no {required}(); a handler needs model_fn(model_dir) and predict_fn(data, model)",
                    source=str(self.script),
                )
        self.model: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Call ``model_fn(model_dir)``."""
        self.model = self.module.model_fn(str(self.model_dir))

    def decode(self, body: bytes, content_type: str) -> Any:
        """``input_fn(body, content_type)``, else JSON."""
        input_fn = getattr(self.module, "input_fn", None)
        if input_fn is None:
            if media_type(content_type) not in ("", JSON_TYPE):
                raise RequestError(415, f"unsupported content type {content_type!r}; send {JSON_TYPE}")
            return decode_json(body)
        return _user_call("input_fn", input_fn, body, content_type)

    def predict(self, data: Any) -> Any:
        """``predict_fn(data, model)``, one call at a time."""
        with self._lock:
            return _user_call("predict_fn", self.module.predict_fn, data, self.model)

    def encode(self, prediction: Any, accept: str) -> tuple[bytes, str]:
        """``output_fn(prediction, accept)``, else JSON."""
        output_fn = getattr(self.module, "output_fn", None)
        if output_fn is None:
            try:
                return super().encode(prediction, accept)
            except TypeError as exc:
                raise RequestError(500, f"predict_fn returned something JSON cannot encode: {exc}") from None
        accepted = media_type(accept)
        result = _user_call("output_fn", output_fn, prediction, accepted if accepted not in ("", "*/*") else JSON_TYPE)
        content_type = JSON_TYPE
        if isinstance(result, tuple) and len(result) == 2:
            result, content_type = result
        if isinstance(result, str):
            result = result.encode("utf-8")
        if not isinstance(result, (bytes, bytearray)):
            raise RequestError(500, f"output_fn returned {type(result).__name__}; it must return bytes or str")
        return bytes(result), str(content_type)

    def describe(self) -> dict[str, Any]:
        """Handler kind, script and model dir."""
        return {**super().describe(), "script": str(self.script)}


def _user_call(what: str, fn: Any, *args: Any) -> Any:
    """Call user code, mapping ``ValueError``/``KeyError`` to 400 and anything else to 500."""
    try:
        return fn(*args)
    except RequestError:
        raise
    except (ValueError, KeyError) as exc:
        raise RequestError(400, f"{what} refused the request: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise RequestError(500, f"{what} failed: {type(exc).__name__}: {exc}") from exc


def find_inference_script(model_dir: str | os.PathLike[str]) -> Path | None:
    """The ``inference.py`` inside ``model_dir`` (or its ``code/`` folder), if any."""
    for place in INFERENCE_SCRIPT_PLACES:
        candidate = Path(model_dir) / place
        if candidate.is_file():
            return candidate
    return None


def load_handler(
    model_dir: str | os.PathLike[str],
    handler: str | os.PathLike[str] | None = None,
    task: str = "auto",
    **options: Any,
) -> Handler:
    """The handler for ``model_dir``: ``handler`` if given, else its ``inference.py``, else
    the default Hugging Face handler for ``task`` (``auto`` reads the config's architectures).

    Nothing is loaded yet; call :meth:`Handler.load`. ``options`` go to the default handler.
    """
    model_path = Path(model_dir)
    if not model_path.is_dir():
        raise NotFound(f"model directory does not exist: {model_path}")
    script = Path(handler) if handler else find_inference_script(model_path)
    if script is not None:
        if not script.is_file():
            raise NotFound(f"handler file does not exist: {script}")
        return CustomHandler(model_path, script)
    from cloudbridge.serving.hf import HFHandler

    return HFHandler(model_path, task=task, **options)
