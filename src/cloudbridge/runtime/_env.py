"""Small helpers shared by the platform readers: typed environment lookups and path remapping.

Every reader receives the environment as a plain mapping, so tests hand in fixtures and nothing
here touches ``os.environ`` directly. A malformed value raises
:class:`~cloudbridge.errors.UserError` naming the variable, because a job cannot run on a
contract it cannot read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from cloudbridge.errors import UserError

__all__ = ["Env", "RuntimeContractError", "env_int", "env_json", "gcs_to_fuse", "remap"]

Env = Mapping[str, str]

#: Set by ``cloudbridge emulate``: fixed platform paths (``/opt/ml/...``, ``/gcs/...``) live below it.
EMULATE_ROOT = "CB_EMULATE_ROOT"


class RuntimeContractError(UserError):
    """The platform's environment is malformed (a variable that should be JSON or a number is not)."""


def env_int(environ: Env, name: str, default: int | None = None) -> int | None:
    """``environ[name]`` as an int, ``default`` when unset or empty."""
    raw = environ.get(name, "")
    if raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeContractError(f"environment variable {name}={raw!r} is not an integer") from exc


def env_json(environ: Env, name: str) -> Any:
    """``environ[name]`` decoded as JSON, ``None`` when unset or empty."""
    raw = environ.get(name, "")
    if raw.strip() == "":
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RuntimeContractError(f"environment variable {name} is not valid JSON: {exc.msg}") from exc


def remap(path: str, environ: Env) -> str:
    """A fixed platform path (``/opt/ml/checkpoints``) placed under ``CB_EMULATE_ROOT`` when emulating."""
    root = environ.get(EMULATE_ROOT, "")
    if not root or not os.path.isabs(path):
        return path
    if path == root or path.startswith(root.rstrip("/") + "/"):
        return path
    return os.path.join(root, path.lstrip("/"))


def gcs_to_fuse(uri: str, environ: Env) -> str:
    """``gs://bucket/key`` -> ``/gcs/bucket/key`` (Vertex AI mounts Cloud Storage there with FUSE).

    Other values are returned unchanged (already a path). The ``/gcs`` root is remapped when emulating.
    """
    if uri.startswith("gs://"):
        return remap("/gcs/" + uri[len("gs://") :].rstrip("/"), environ)
    return uri


def split_host_port(value: str, default_port: int) -> tuple[str, int]:
    """``"host:2222"`` -> ``("host", 2222)``; a bare host gets ``default_port``."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        return value, default_port
    return host, int(port)
