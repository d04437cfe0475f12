"""``python -m cloudbridge.serving.serve``: the serving entrypoint, locally and in every cloud.

Locally::

    python -m cloudbridge.serving.serve --model-dir ./model --port 8080 [--handler inference.py]

In a container the same module runs with no arguments (or SageMaker's ``serve``) and reads each
platform's contract from the environment:

* model: ``--model-dir``, else ``SM_MODEL_DIR`` (SageMaker), ``AZUREML_MODEL_DIR`` (Azure ML),
  ``AIP_STORAGE_URI`` (Vertex AI, a ``gs://`` URI fetched on start), else ``/opt/ml/model``;
* port: ``--port``, else ``SAGEMAKER_BIND_TO_PORT``, ``AIP_HTTP_PORT``, else ``8080``;
* routes: ``/ping`` and ``/invocations``, plus ``AIP_HEALTH_ROUTE`` / ``AIP_PREDICT_ROUTE``;
* host: ``--host``, else ``CLOUDBRIDGE_SERVE_HOST``, else ``127.0.0.1`` (container images set
  ``CLOUDBRIDGE_SERVE_HOST=0.0.0.0``);
* batching: ``--max-batch-size``, else ``CLOUDBRIDGE_SERVE_MAX_BATCH``, else 32 (1 turns it off);
* bearer token: ``CLOUDBRIDGE_SERVE_TOKEN_SHA256`` (the token's sha256; or ``CLOUDBRIDGE_SERVE_TOKEN``,
  hashed at start and dropped from the environment). Never a flag: other users can read command lines;
* extra ``Host`` names a loopback-bound server answers: ``CLOUDBRIDGE_SERVE_ALLOWED_HOSTS`` (comma-separated).

A model that had to be extracted or downloaded is put in a ``cb-model-*`` folder in the temp
directory, logged, and removed on exit unless ``--keep``.

Exit status: 0 after SIGTERM/SIGINT, 1 when the model fails to load, 2 for bad arguments
(missing model, bad handler), 3 when the port cannot be bound.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

__all__ = ["main", "resolve_model_source", "resolve_port"]

log = logging.getLogger("cloudbridge.serving.serve")


def resolve_model_source(explicit: str | None, env: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """The model location from the flag or the platform's environment (see module docstring)."""
    if explicit:
        return explicit
    for name in ("SM_MODEL_DIR", "AZUREML_MODEL_DIR", "AIP_STORAGE_URI"):
        if env.get(name):
            return env[name]
    return "/opt/ml/model"


def resolve_port(explicit: int | None, env: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """The port from the flag or the platform's environment, else 8080."""
    if explicit is not None:
        return explicit
    for name in ("SAGEMAKER_BIND_TO_PORT", "AIP_HTTP_PORT"):
        if env.get(name, "").isdigit():
            return int(env[name])
    return 8080


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"error: {name}={value!r} is not a positive integer")
    return int(value)


def _parser() -> argparse.ArgumentParser:
    from cloudbridge.serving.server import DEFAULT_MAX_BODY

    parser = argparse.ArgumentParser(
        prog="python -m cloudbridge.serving.serve",
        description="Serve a model over HTTP with SageMaker's container contract (GET /ping, POST /invocations).",
    )
    parser.add_argument(
        "command", nargs="?", choices=["serve"], help="accepted for SageMaker's 'docker run IMAGE serve'"
    )
    parser.add_argument("--model-dir", help="model directory, .tar.gz or storage URI (default: from the platform env)")
    parser.add_argument("--port", type=int, help="port to listen on; 0 picks a free one (default 8080)")
    parser.add_argument("--host", default=os.environ.get("CLOUDBRIDGE_SERVE_HOST", "127.0.0.1"))
    parser.add_argument("--handler", help="inference.py with model_fn/predict_fn (default: the model dir's own)")
    parser.add_argument("--task", default="auto", choices=["auto", "text-classification", "token-classification"])
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY)
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=_env_int("CLOUDBRIDGE_SERVE_MAX_BATCH", 32),
        help="texts per forward pass of the default handler; 1 turns batching off (env CLOUDBRIDGE_SERVE_MAX_BATCH)",
    )
    parser.add_argument("--max-connections", type=int, default=64)
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument("--request-timeout", type=float, default=30.0,
                        help="seconds a request (line, headers, body) may take to arrive whole")
    parser.add_argument("--keep", action="store_true", help="keep the extracted/downloaded model copy on exit")
    return parser


def _token_sha256() -> str | None:
    token = os.environ.pop("CLOUDBRIDGE_SERVE_TOKEN", "")
    if token:
        import hashlib

        return hashlib.sha256(token.encode("utf-8")).hexdigest()
    return os.environ.get("CLOUDBRIDGE_SERVE_TOKEN_SHA256") or None


def _write_port_file(path: str, port: int) -> None:
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # beside the endpoint's private records
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(str(port))
    os.replace(tmp, target)


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGTERM/SIGINT; see the module docstring for exit statuses."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    import shutil
    import tempfile

    source = resolve_model_source(args.model_dir)
    scratch = tempfile.mkdtemp(prefix="cb-model-")
    try:
        return _serve(args, source, scratch)
    finally:
        if args.keep and any(Path(scratch).iterdir()):
            log.info("kept the model copy in %s (--keep)", scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _serve(args: argparse.Namespace, source: str, scratch: str) -> int:
    from cloudbridge.errors import CloudbridgeError
    from cloudbridge.serving.artifacts import materialize_model
    from cloudbridge.serving.handler import load_handler
    from cloudbridge.serving.server import InferenceService, make_server

    try:
        model_dir = materialize_model(source, scratch)
        if Path(scratch) in (Path(model_dir), *Path(model_dir).parents):
            log.info("model copied to %s (removed on exit unless --keep)", model_dir)
        handler = load_handler(model_dir, args.handler, args.task, max_batch_size=args.max_batch_size)
    except CloudbridgeError as exc:
        log.error("%s", exc)
        return 2
    service = InferenceService(handler, max_batch_size=args.max_batch_size)
    health = tuple(dict.fromkeys(["/ping", os.environ.get("AIP_HEALTH_ROUTE") or "/ping"]))
    predict = tuple(dict.fromkeys(["/invocations", os.environ.get("AIP_PREDICT_ROUTE") or "/invocations"]))
    port = resolve_port(args.port)
    try:
        server = make_server(
            service,
            args.host,
            port,
            max_body_bytes=args.max_body_bytes,
            max_connections=args.max_connections,
            health_routes=health,
            predict_routes=predict,
            access_log=args.access_log,
            request_timeout=args.request_timeout,
            allowed_hosts=tuple(h.strip() for h in os.environ.get("CLOUDBRIDGE_SERVE_ALLOWED_HOSTS", "").split(",")
                                if h.strip()),
            auth_token_sha256=_token_sha256(),
        )
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", args.host, port, exc.strerror or exc)
        return 3
    if args.port_file:
        _write_port_file(args.port_file, server.port)
    log.info("listening on http://%s:%d (%s); loading the model", args.host, server.port, handler.describe())

    failed = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        log.info("received signal %d, shutting down", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    def load() -> None:
        try:
            service.load()
        except BaseException:
            log.exception("the model failed to load from %s", model_dir)
            failed.set()
            server.shutdown()
            return
        log.info("model loaded in %.1fs; ready: %s", service.load_seconds or 0.0, handler.describe())

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=load, name="cloudbridge-model-loader", daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        service.close()
    return 1 if failed.is_set() else 0


if __name__ == "__main__":  # pragma: no cover - the module is the entrypoint
    sys.exit(main())
