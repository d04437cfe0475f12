"""The inference server holds up against slow clients, browsers and strangers (issue 12, item 6)."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_deploy import write_custom_model
from test_deploy_server import raw_exchange, request, serve_in_thread

from cloudbridge.serving.handler import load_handler
from cloudbridge.serving.server import InferenceServer, InferenceService

BODY = json.dumps({"text": "good"}).encode()
TOKEN = "s3cret-bearer-token"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[InferenceService]:
    svc = InferenceService(load_handler(write_custom_model(tmp_path / "m")))
    svc.load()
    yield svc
    svc.close()


def _stop(server: InferenceServer) -> None:
    server.shutdown()
    server.server_close()


def test_slow_clients_cannot_starve_ping(service: InferenceService) -> None:
    """The reproduction: --max-connections 4, four sockets each sending a header line every so often."""
    server = serve_in_thread(service, max_connections=4, request_timeout=1.5)
    slow = []
    try:
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(sock)
        time.sleep(0.3)
        for sock in slow:
            sock.sendall(b"X-Slow: 1\r\n")
        started = time.monotonic()
        assert request(server.port, "GET", "/ping") == (200, {"status": "ok"})
        assert time.monotonic() - started < 1.0
        # the whole-request deadline closes the slow connections, freeing their slots
        for sock in slow:
            sock.settimeout(5)
            deadline = time.monotonic() + 5
            closed = False
            while not closed and time.monotonic() < deadline:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                    closed = sock.recv(1024) == b""
                except OSError:
                    closed = True
            assert closed, "a slow client kept its connection past the request deadline"
        status, _ = request(server.port, "POST", "/invocations", BODY, {"Content-Type": "application/json"})
        assert status == 200
    finally:
        for sock in slow:
            sock.close()
        _stop(server)


def test_dns_rebinding_and_foreign_pages_are_refused(service: InferenceService) -> None:
    server = serve_in_thread(service)
    try:
        port = server.port
        status, body = raw_exchange(port, f"GET /ping HTTP/1.1\r\nHost: evil.example:{port}\r\n\r\n".encode())
        assert status == 403 and "evil.example" in body["error"]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.1"):
            status, _ = raw_exchange(port, f"GET /ping HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            assert status == 200, host
        status, body = request(port, "POST", "/invocations", BODY,
                               {"Content-Type": "application/json", "Origin": "http://evil.example"})
        assert status == 403
        status, _ = request(port, "POST", "/invocations", BODY,
                            {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port}"})
        assert status == 200
    finally:
        _stop(server)


def test_bearer_token(service: InferenceService) -> None:
    server = serve_in_thread(service, auth_token_sha256=hashlib.sha256(TOKEN.encode()).hexdigest())
    try:
        port = server.port
        headers = {"Content-Type": "application/json"}
        assert request(port, "GET", "/ping")[0] == 200, "health checks need no token"
        assert request(port, "POST", "/invocations", BODY, headers)[0] == 401
        assert request(port, "GET", "/stats")[0] == 401
        assert request(port, "POST", "/invocations", BODY, {**headers, "Authorization": "Bearer wrong"})[0] == 401
        status, reply = request(port, "POST", "/invocations", BODY, {**headers, "Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and reply["predictions"][0]["label"] == "positive"
    finally:
        _stop(server)


def test_local_endpoint_with_a_generated_token_and_no_model_copy_left(tmp_path: Path, cb_home: Path) -> None:
    """``deploy --auth-token generate`` shows the token once; the extracted model copy (``cb-model-*``)
    is removed when the endpoint stops."""
    import tarfile

    from fixtures_cli import run_cli

    model = write_custom_model(tmp_path / "m")
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model.iterdir()):
            tar.add(path, arcname=path.name)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"TMPDIR": str(temp)}
    deployed = run_cli("deploy", str(archive), "--name", "tok", "--auth-token", "generate", env=env)
    try:
        assert deployed.returncode == 0, deployed.stderr
        line = next(x for x in deployed.stderr.splitlines() if "bearer token (shown once" in x)
        token = line.rsplit(" ", 1)[-1]
        assert len(token) >= 32
        assert [p.name[:9] for p in temp.iterdir()] == ["cb-model-"], "the archive is extracted in a cb-model-*"
        refused = run_cli("invoke", "tok", "--data", '{"text": "good"}', env=env)
        assert refused.returncode == 2 and "401" in refused.stderr, refused.stderr
        good = run_cli("invoke", "tok", "--data", '{"text": "good"}', env={**env, "CLOUDBRIDGE_ENDPOINT_TOKEN": token})
        assert good.returncode == 0 and "positive" in good.stdout, good.stderr
        for path in cb_home.rglob("*"):
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path
        # endpoint records, the endpoint's folder and its server.log are this user's only (issue 12.4)
        state = [cb_home, *cb_home.rglob("*")]
        assert any(p.name == "server.log" for p in state) and any("endpoint" in p.name for p in state), state
        loose = [f"{p} {oct(p.lstat().st_mode & 0o777)}" for p in state if p.lstat().st_mode & 0o077]
        assert not loose, loose
    finally:
        run_cli("undeploy", "tok", env=env)
    deadline = time.monotonic() + 10
    while any(temp.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(temp.iterdir()), "the extracted model copy was left behind"
