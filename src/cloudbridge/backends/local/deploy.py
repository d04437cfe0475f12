"""Local endpoints: ``python -m cloudbridge.serving.serve`` as a detached process per endpoint.

:meth:`LocalDeploy.deploy` claims the name in the endpoint registry (SQLite, see
:mod:`cloudbridge.serving.registry`), starts the server in its own session (so it outlives the
CLI that started it), waits for ``GET /ping`` to answer 200 and records the port and PID.
If the server dies while starting, the error carries the tail of its log; the record is removed.

``get``/``list`` check each server honestly: a dead process is reported as ``Stopped``, a live
one that does not answer ``/ping`` as ``Unhealthy``. :meth:`LocalDeploy.delete` stops the whole
process group (SIGTERM, then SIGKILL after the grace period) and forgets the endpoint.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudbridge.backends.local.compute_process import kill_group
from cloudbridge.errors import ConflictError, NotFound, ProviderError, StageTimeout
from cloudbridge.interfaces import Deploy, Endpoint
from cloudbridge.serving.client import invoke_url, ping_url
from cloudbridge.serving.registry import EndpointRecord, EndpointRegistry
from cloudbridge.settings import private_dir, private_file

if TYPE_CHECKING:
    from cloudbridge.specs import EndpointSpec

__all__ = ["IN_SERVICE", "STOPPED", "UNHEALTHY", "LocalDeploy"]

PROVIDER = "local"
CREATING, IN_SERVICE, UNHEALTHY, STOPPED = "Creating", "InService", "Unhealthy", "Stopped"
_SERVER_MARK = "cloudbridge.serving.serve"
#: Popen objects of servers this process started, so they are reaped (never zombies) and never
#: garbage-collected while running.
_children: dict[int, subprocess.Popen[bytes]] = {}


def _log_tail(path: str | None, lines: int = 8) -> str:
    if not path or not os.path.exists(path):
        return "(no log)"
    with open(path, "rb") as stream:
        stream.seek(0, os.SEEK_END)
        stream.seek(max(0, stream.tell() - 16384))
        text = stream.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _alive(pid: int | None) -> bool:
    """True when ``pid`` is a running (not zombie) server process group leader started by us."""
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process reuses the PID
    try:
        if os.getpgid(pid) != pid:
            return False
        if not os.path.isdir("/proc/self"):
            return True  # no /proc (macOS): the group-leader check above has to do
        with open(f"/proc/{pid}/stat", "rb") as stream:
            if stream.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            return _SERVER_MARK.encode() in stream.read()
    except OSError:  # the process ended between the checks
        return False


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ConflictError(f"port {port} on 127.0.0.1 is already in use ({exc.strerror})",
                                hint="choose another --port, or leave it out to pick a free one") from exc


class LocalDeploy(Deploy):
    """Endpoints served on ``127.0.0.1`` by detached ``cloudbridge.serving.serve`` processes.

    ``settings`` is the local provider's settings (``kill_grace`` is used when present) or ``None``.
    ``start_timeout`` bounds the wait for ``/ping`` (loading a large model takes a while).
    """

    def __init__(self, settings: Any = None, *, start_timeout: float = 180.0, registry: EndpointRegistry | None = None):
        self.settings = settings
        self.start_timeout = start_timeout
        self.kill_grace = float(getattr(settings, "kill_grace", 5.0) or 5.0)
        self._registry = registry

    @property
    def registry(self) -> EndpointRegistry:
        """The endpoint registry (default: under ``CLOUDBRIDGE_HOME``); server logs live beside it."""
        if self._registry is None:
            self._registry = EndpointRegistry()
        return self._registry

    # ---- records --------------------------------------------------------------------------------
    def _endpoint(self, record: EndpointRecord) -> Endpoint:
        state = record.state
        if state == IN_SERVICE:
            if not _alive(record.pid):
                state = STOPPED
            elif record.url and not ping_url(record.url, timeout=2.0):
                state = UNHEALTHY
        elif state == CREATING and not _alive(record.pid):
            state = STOPPED
        extra = {"port": record.port, "pid": record.pid, "log": record.log_path, "task": record.task,
                 "handler": record.handler, "created_at": record.created_at, **record.extra}
        return Endpoint(name=record.name, provider=PROVIDER, state=state, url=record.url, model=record.model,
                        native_id=str(record.pid) if record.pid else None, extra=extra)

    def _record(self, name: str) -> EndpointRecord:
        record = self.registry.get(PROVIDER, name)
        if record is None:
            known = ", ".join(r.name for r in self.registry.list(PROVIDER)) or "none"
            raise NotFound(f"no local endpoint named {name!r} (known: {known})")
        return record

    # ---- Deploy ---------------------------------------------------------------------------------
    def deploy(self, spec: EndpointSpec) -> Endpoint:
        """Start a server for ``spec`` and return the endpoint once ``/ping`` answers 200."""
        model = self._check_model(spec.model)
        handler = str(Path(spec.handler).expanduser().resolve()) if spec.handler else None
        if handler and not os.path.isfile(handler):
            raise NotFound(f"handler file does not exist: {spec.handler}")
        if spec.port:
            _check_port_free(spec.port)
        folder = self.registry.path.parent / "endpoints" / spec.name
        record = EndpointRecord(PROVIDER, spec.name, CREATING, model=model, handler=handler, task=spec.task,
                                log_path=str(folder / "server.log"))
        self.registry.reserve(record)  # ConflictError when the name is taken
        try:
            return self._start(spec, record, folder)
        except BaseException:
            self.registry.remove(PROVIDER, spec.name)  # the name is free again; the log stays to read
            raise

    @staticmethod
    def _check_model(model: str) -> str:
        if "://" in model and not model.startswith("file://"):
            return model  # a storage URI: the server downloads it through cloudbridge.transfers
        path = Path(model.removeprefix("file://")).expanduser().resolve()
        if not path.exists():
            raise NotFound(f"model directory does not exist: {model}")
        if not (path.is_dir() or path.name.endswith((".tar.gz", ".tgz", ".tar"))):
            raise NotFound(f"{model} is not a model directory or a .tar.gz archive")
        return str(path)

    def _start(self, spec: EndpointSpec, record: EndpointRecord, folder: Path) -> Endpoint:
        shutil.rmtree(folder, ignore_errors=True)
        private_dir(folder.parent)  # mkdir(parents=True) would leave a new 'endpoints' folder 0755
        private_dir(folder)  # the server's log may quote requests: for this user only
        port_file = folder / "port"
        command = [sys.executable, "-m", _SERVER_MARK, "--model-dir", str(record.model),
                   "--port", str(spec.port or 0), "--port-file", str(port_file), "--host", "127.0.0.1"]
        if record.handler:
            command += ["--handler", record.handler]
        if spec.task != "auto":
            command += ["--task", spec.task]
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        env.pop("CLOUDBRIDGE_SERVE_TOKEN", None)
        token = self._auth_token(spec)
        if token:  # the server gets the token's hash only, through its environment (never its command line)
            env["CLOUDBRIDGE_SERVE_TOKEN_SHA256"] = hashlib.sha256(token.encode("utf-8")).hexdigest()
            self.registry.update(PROVIDER, spec.name, extra={"auth": "bearer"})
        with open(private_file(folder / "server.log"), "ab") as log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env=env, cwd=str(folder), start_new_session=True, close_fds=True)
        _children[process.pid] = process
        self.registry.update(PROVIDER, spec.name, pid=process.pid)
        try:
            port = self._wait_ready(process, port_file, record)
        except BaseException:
            self._kill(process.pid)
            raise
        url = f"http://127.0.0.1:{port}"
        updated = self.registry.update(PROVIDER, spec.name, state=IN_SERVICE, port=port, url=url)
        assert updated is not None
        endpoint = self._endpoint(updated)
        if token and spec.auth_token is not None and spec.auth_token.get_secret_value() == "generate":
            endpoint.extra["auth_token"] = token  # generated: handed back once, stored nowhere
        return endpoint

    @staticmethod
    def _auth_token(spec: EndpointSpec) -> str | None:
        if spec.auth_token is None or not spec.auth_token.get_secret_value():
            return None
        value = spec.auth_token.get_secret_value()
        return secrets.token_urlsafe(32) if value == "generate" else value

    def _wait_ready(self, process: subprocess.Popen[bytes], port_file: Path, record: EndpointRecord) -> int:
        deadline = time.monotonic() + self.start_timeout
        port: int | None = None
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                raise ProviderError(
                    f"the server for endpoint {record.name!r} exited with status {code} while starting; "
                    f"its log ends with:\n{_log_tail(record.log_path)}\n(full log: {record.log_path})",
                    provider=PROVIDER,
                )
            if port is None and port_file.exists():
                text = port_file.read_text(encoding="utf-8").strip()
                port = int(text) if text.isdigit() else None
            if port is not None and ping_url(f"http://127.0.0.1:{port}", timeout=1.0):
                return port
            time.sleep(0.1)
        raise StageTimeout(
            f"endpoint {record.name!r} was not ready after {self.start_timeout:g}s; "
            f"its log ends with:\n{_log_tail(record.log_path)}",
            stage="deploy",
        )

    def get(self, name: str) -> Endpoint:
        """The endpoint with its live state; :class:`NotFound` when unknown."""
        return self._endpoint(self._record(name))

    def list(self) -> list[Endpoint]:
        """Every local endpoint, oldest first, with dead servers shown as ``Stopped``."""
        return [self._endpoint(r) for r in self.registry.list(PROVIDER)]

    def invoke(self, name: str, payload: Any, *, timeout: float = 60.0, auth_token: str | None = None) -> Any:
        """POST ``payload`` as JSON to the endpoint's ``/invocations`` and return the JSON reply.

        An endpoint deployed with a bearer token needs it: ``auth_token``, else ``CLOUDBRIDGE_ENDPOINT_TOKEN``.
        """
        record = self._record(name)
        if record.state != IN_SERVICE or not record.url or not _alive(record.pid):
            raise ProviderError(
                f"endpoint {name!r} is not running (its server process is gone); "
                f"last lines of {record.log_path}:\n{_log_tail(record.log_path, 5)}",
                provider=PROVIDER,
                hint=f"cloudbridge undeploy {name} and deploy it again",
            )
        token = auth_token or os.environ.get("CLOUDBRIDGE_ENDPOINT_TOKEN") or None
        return invoke_url(record.url, payload, name=name, provider=PROVIDER, timeout=timeout, auth_token=token)

    def delete(self, name: str) -> None:
        """Stop the endpoint's server (its whole process group) and forget it."""
        record = self._record(name)
        if record.pid:
            self._kill(record.pid)
        self.registry.remove(PROVIDER, name)
        if record.log_path:
            shutil.rmtree(Path(record.log_path).parent, ignore_errors=True)

    def _kill(self, pid: int) -> None:
        """SIGTERM the process group, then SIGKILL after ``kill_grace`` seconds; reap our child."""
        if _alive(pid):
            kill_group(pid, self.kill_grace)
        child = _children.pop(pid, None)
        if child is not None:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
