"""The HTTP server over real sockets: concurrency, bad requests, readiness, connection limits,
and ``python -m cloudbridge.serving.serve`` under SageMaker's and Vertex AI's environment."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fixtures_deploy import direct_classify, same_predictions, write_custom_model

from cloudbridge.serving.handler import load_handler
from cloudbridge.serving.hf import HFHandler
from cloudbridge.serving.serve import resolve_model_source, resolve_port
from cloudbridge.serving.server import InferenceServer, InferenceService, make_server
from cloudbridge.testing.deploy import build_tiny_model

JSON = {"Content-Type": "application/json"}


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """One HTTP request on a fresh connection; returns (status, decoded JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        raw = reply.read()
        assert reply.getheader("Content-Type") == "application/json"
        return reply.status, json.loads(raw)
    finally:
        conn.close()


def raw_exchange(port: int, data: bytes) -> tuple[int, dict[str, Any]]:
    """Send raw bytes, read until the server closes; returns (status, JSON body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def serve_in_thread(service: InferenceService, **options: Any) -> InferenceServer:
    server = make_server(service, "127.0.0.1", 0, **options)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def stop(server: InferenceServer) -> None:
    server.shutdown()
    server.server_close()
    server.service.close()


@pytest.fixture(scope="module")
def cls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("cls") / "model")


@pytest.fixture(scope="module")
def hf_server(cls_dir: Path) -> Iterator[InferenceServer]:
    service = InferenceService(HFHandler(cls_dir), max_batch_size=32)
    service.load()
    server = serve_in_thread(service, max_body_bytes=64 * 1024)
    yield server
    stop(server)


@pytest.fixture
def custom_server(tmp_path: Path) -> Iterator[InferenceServer]:
    service = InferenceService(load_handler(write_custom_model(tmp_path / "m")))
    service.load()
    server = serve_in_thread(service)
    yield server
    stop(server)


def healthy(port: int) -> bool:
    status, body = request(port, "GET", "/ping")
    good, _ = request(port, "POST", "/invocations", json.dumps({"inputs": "still here"}).encode(), JSON)
    return status == 200 and body == {"status": "ok"} and good == 200


def test_sixteen_concurrent_clients_all_get_their_own_answers(hf_server: InferenceServer, cls_dir: Path) -> None:
    words = ["good", "bad", "great", "awful", "movie", "film", "paris", "london"]
    payloads = [[f"the {words[i % 8]} {words[(i * 3) % 8]} {i}", f"{words[(i + 5) % 8]} {i}"] for i in range(16)]
    expected = [direct_classify(cls_dir, texts) for texts in payloads]
    barrier = threading.Barrier(16)

    def client(i: int) -> tuple[int, Any]:
        barrier.wait()
        return request(hf_server.port, "POST", "/invocations", json.dumps({"inputs": payloads[i]}).encode(), JSON)

    before = hf_server.service.batcher.calls
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(client, range(16)))
    for (status, body), want in zip(replies, expected, strict=True):
        assert status == 200
        assert same_predictions(body["predictions"], want)
    # 16 requests shared fewer model calls than one each: concurrent requests were batched
    assert hf_server.service.batcher.calls - before < 16


@pytest.mark.parametrize(
    ("body", "headers", "status", "fragment"),
    [
        (b'{"inputs": "x"', JSON, 400, "not valid JSON"),
        (b"", JSON, 400, "empty request body"),
        (b'{"inputs": 12}', JSON, 400, "non-empty list of strings"),
        (b'{"inputs": ["a", {"b": 1}]}', JSON, 400, '"inputs[1]"'),
        (b'{"texts": ["a"]}', JSON, 400, "unknown field 'texts'"),
        (b"\xff\xfe", {"Content-Type": "text/plain"}, 400, "not UTF-8"),
        (b"a,b", {"Content-Type": "text/csv"}, 415, "unsupported content type"),
        (b'{"inputs": "x"}', {**JSON, "Accept": "text/csv"}, 406, "cannot reply"),
        (b'{"inputs": "' + b"x" * 70000 + b'"}', JSON, 413, "limit is 65536 bytes"),
    ],
)
def test_bad_requests_get_json_errors_and_the_server_keeps_serving(
    hf_server: InferenceServer, body: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    got, reply = request(hf_server.port, "POST", "/invocations", body, headers)
    assert got == status
    assert fragment in reply["error"]
    assert healthy(hf_server.port)


def test_wrong_routes_methods_and_framing(hf_server: InferenceServer) -> None:
    port = hf_server.port
    assert request(port, "GET", "/nope")[0] == 404
    assert request(port, "GET", "/invocations")[0] == 405
    assert request(port, "POST", "/ping", b"{}", JSON)[0] == 405
    assert request(port, "DELETE", "/invocations")[0] == 405
    status, body = raw_exchange(port, b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 411 and "Content-Length" in body["error"]
    status, body = raw_exchange(port, b"POST /invocations HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert status == 411
    status, body = raw_exchange(port, b"POST /invocations HTTP/1.1\r\nContent-Length: -5\r\n\r\n")
    assert status == 400 and "Content-Length" in body["error"]
    status, body = raw_exchange(port, b"GARBAGE\r\n\r\n")
    assert status == 400 and body["error"]
    status, body = raw_exchange(port, b"BREW /pot HTTP/1.1\r\n\r\n")
    assert status == 501
    assert healthy(port)


def test_keep_alive_serves_many_requests_on_one_connection(hf_server: InferenceServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", hf_server.port, timeout=30)
    try:
        for i in range(5):
            conn.request("POST", "/invocations", json.dumps({"inputs": f"text {i}"}), JSON)
            reply = conn.getresponse()
            assert reply.status == 200 and len(json.loads(reply.read())["predictions"]) == 1
        conn.request("POST", "/invocations", b"{bad", JSON)  # an error keeps the connection usable too
        reply = conn.getresponse()
        assert reply.status == 400 and json.loads(reply.read())["error"]
        conn.request("GET", "/ping")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_custom_handler_errors_become_4xx_and_5xx(custom_server: InferenceServer) -> None:
    port = custom_server.port
    status, body = request(port, "POST", "/invocations", b'{"text": "great film"}', JSON)
    assert status == 200 and body == {"predictions": [{"label": "positive", "score": 2}], "accept": "application/json"}
    status, body = request(port, "POST", "/invocations", b'{"words": "x"}', JSON)
    assert status == 400 and "KeyError" in body["error"]
    status, body = request(port, "POST", "/invocations", b'{"text": "crash"}', JSON)
    assert status == 500 and "model exploded" in body["error"]
    status, body = request(port, "POST", "/invocations", b"text", {"Content-Type": "text/plain"})
    assert status == 400 and "unsupported content type" in body["error"]
    status, body = request(port, "POST", "/invocations", b'{"text": "bad awful"}', JSON)
    assert status == 200 and body["predictions"] == [{"label": "negative", "score": -3}]


def test_stats_count_requests_errors_and_latency(custom_server: InferenceServer) -> None:
    port = custom_server.port
    _, before = request(port, "GET", "/stats")
    for text in ("great film", "bad awful", "great"):
        assert request(port, "POST", "/invocations", json.dumps({"text": text}).encode(), JSON)[0] == 200
    assert request(port, "POST", "/invocations", b'{"words": "x"}', JSON)[0] == 400
    status, stats = request(port, "GET", "/stats")
    assert status == 200
    assert stats["requests"] - before["requests"] == 4 and stats["errors"] - before["errors"] == 1
    assert 0 < stats["p50_ms"] <= stats["p99_ms"] < 10_000 and stats["rate"] > 0


def test_ping_is_503_until_the_model_has_loaded(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    script = tmp_path / "slow.py"
    script.write_text(
        "import os, time\n"
        f"def model_fn(d):\n    while not os.path.exists({str(gate)!r}):\n        time.sleep(0.02)\n    return 1\n"
        "def predict_fn(data, model):\n    return {'echo': data}\n"
    )
    service = InferenceService(load_handler(tmp_path, script))
    server = serve_in_thread(service)
    loader = threading.Thread(target=service.load)
    loader.start()
    try:
        assert request(server.port, "GET", "/ping") == (503, {"status": "loading"})
        status, body = request(server.port, "POST", "/invocations", b"{}", JSON)
        assert status == 503 and "still loading" in body["error"]
        gate.write_text("go")
        loader.join(10)
        assert request(server.port, "GET", "/ping") == (200, {"status": "ok"})
        assert request(server.port, "POST", "/invocations", b"[1]", JSON) == (200, {"echo": [1]})
    finally:
        gate.write_text("go")
        stop(server)


def test_connections_beyond_the_limit_get_an_immediate_503(custom_server: InferenceServer, tmp_path: Path) -> None:
    service = custom_server.service
    server = serve_in_thread(service, max_connections=1)
    try:
        holder = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        holder.request("GET", "/ping")
        assert holder.getresponse().read()  # the keep-alive connection now holds the only slot
        status, body = raw_exchange(server.port, b"GET /stats HTTP/1.1\r\n\r\n")
        assert status == 503 and "too many" in body["error"]
        status, body = raw_exchange(server.port, b"GET /ping HTTP/1.1\r\n\r\n")  # health checks still answered
        assert status == 200 and body == {"status": "ok"}
        holder.close()
        freed = False  # once the holder hangs up, its slot is released and new clients get in
        deadline = time.monotonic() + 5
        while not freed and time.monotonic() < deadline:
            try:
                freed = request(server.port, "GET", "/ping")[0] == 200
            except (ConnectionError, http.client.RemoteDisconnected):
                pass
            time.sleep(0.05)
        assert freed
    finally:
        server.shutdown()
        server.server_close()


# ---- the entrypoint, as a cloud container runs it ---------------------------------------------------------
def test_platform_environment_is_read() -> None:
    assert resolve_model_source(None, {"SM_MODEL_DIR": "/opt/ml/model"}) == "/opt/ml/model"
    assert resolve_model_source(None, {"AZUREML_MODEL_DIR": "/var/azureml-app/m"}) == "/var/azureml-app/m"
    assert resolve_model_source(None, {"AIP_STORAGE_URI": "gs://b/m"}) == "gs://b/m"
    assert resolve_model_source(None, {}) == "/opt/ml/model"
    assert resolve_model_source("./here", {"SM_MODEL_DIR": "/x"}) == "./here"
    assert resolve_port(None, {"SAGEMAKER_BIND_TO_PORT": "9000"}) == 9000
    assert resolve_port(None, {"AIP_HTTP_PORT": "7080"}) == 7080
    assert resolve_port(None, {}) == 8080
    assert resolve_port(5, {"AIP_HTTP_PORT": "7080"}) == 5


def test_serve_entrypoint_under_sagemaker_and_vertex_env(cls_dir: Path, tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(cls_dir),
        "SAGEMAKER_BIND_TO_PORT": "0",
        "AIP_HEALTH_ROUTE": "/health",
        "AIP_PREDICT_ROUTE": "/v1/endpoints/e1/deployedModels/m1:predict",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cloudbridge.serving.serve", "serve", "--port-file", str(port_file)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if port_file.exists():
                try:
                    if request(int(port_file.read_text()), "GET", "/health")[0] == 200:
                        break
                except (ConnectionError, OSError):
                    pass
            time.sleep(0.1)
        port = int(port_file.read_text())
        assert request(port, "GET", "/ping") == (200, {"status": "ok"})
        vertex = json.dumps({"instances": ["great movie", {"text": "awful film"}]}).encode()
        status, body = request(port, "POST", "/v1/endpoints/e1/deployedModels/m1:predict", vertex, JSON)
        assert status == 200
        assert same_predictions(body["predictions"], direct_classify(cls_dir, ["great movie", "awful film"]))
        status, body = request(port, "POST", "/invocations", b'{"inputs": "good"}', JSON)
        assert status == 200 and len(body["predictions"]) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert "model loaded" in output and "shutting down" in output


def test_serve_entrypoint_exit_statuses(tmp_path: Path) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "cloudbridge.serving.serve", "--model-dir", str(tmp_path / "none"), "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert missing.returncode == 2 and "model directory does not exist" in missing.stderr
    broken = "def model_fn(d):\n    raise RuntimeError('weights are corrupt')\ndef predict_fn(x, m):\n    return x\n"
    model_dir = write_custom_model(tmp_path / "m", handler=broken)
    failing = subprocess.run(
        [sys.executable, "-m", "cloudbridge.serving.serve", "--model-dir", str(model_dir), "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert failing.returncode == 1 and "weights are corrupt" in failing.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run(
            [sys.executable, "-m", "cloudbridge.serving.serve", "--model-dir", str(model_dir),
             "--port", str(taken.getsockname()[1])],
            capture_output=True, text=True, timeout=60,
        )
    assert busy.returncode == 3 and "cannot listen" in busy.stderr


def test_a_client_that_hangs_up_leaves_no_traceback(custom_server: InferenceServer, capfd: pytest.CaptureFixture[str],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A client reset mid-body is routine for a server: no traceback on stderr, and it keeps serving."""
    import socket
    import struct

    caplog.set_level("DEBUG", logger="cloudbridge.serving.server")
    for _ in range(3):
        conn = socket.create_connection(("127.0.0.1", custom_server.port))
        conn.sendall(b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n" + b"x" * 1000)
        time.sleep(0.1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        conn.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "went away" not in caplog.text:
        time.sleep(0.05)
    assert "went away" in caplog.text
    assert request(custom_server.port, "GET", "/ping") == (200, {"status": "ok"})
    assert "Traceback" not in capfd.readouterr().err
