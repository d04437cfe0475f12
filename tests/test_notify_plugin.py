"""The example plugin ``cloudbridge-notify`` posts a webhook for every state change of a real job."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fixtures_cli import run_cli
from fixtures_dirstore import NOTIFY_SRC, install_example


class _Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(  # type: ignore[attr-defined]
            {"content_type": self.headers["Content-Type"], "body": json.loads(body)}
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on 127.0.0.1 recording every POST."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", server.received  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


@pytest.fixture
def notify_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    from cloudbridge.plugins import reset_plugins

    paths = install_example(
        monkeypatch,
        tmp_path,
        dist="cloudbridge-notify",
        src=NOTIFY_SRC,
        entry="notify",
        target="cloudbridge_notify.plugin",
    )
    reset_plugins()
    return paths


def test_webhook_for_every_state_change(webhook, notify_paths, tmp_path: Path) -> None:
    url, received = webhook
    spec = tmp_path / "job.yaml"
    spec.write_text("name: notified\nprovider: local\nrun: echo working; sleep 0.3\n")
    env = {"CLOUDBRIDGE_NOTIFY_WEBHOOK": url}
    result = run_cli("run", str(spec), paths=notify_paths, env=env)
    assert result.returncode == 0, result.stderr
    job_id = result.stderr.split()[1]

    status = json.loads(run_cli("status", job_id, "--json", paths=notify_paths, env=env).stdout)
    recorded = [(e["previous"], e["state"]) for e in status["events"]]
    posted = [(r["body"]["previous"], r["body"]["state"]) for r in received]
    assert posted == recorded, (posted, recorded)
    assert posted[0][0] is None and posted[-1][1] == "SUCCEEDED" and ("RUNNING" in {s for _, s in posted})
    for request in received:
        assert request["content_type"] == "application/json"
        body = request["body"]
        assert body["job_id"] == job_id and body["name"] == "notified" and body["provider"] == "local"
        assert body["text"].startswith(f"cloudbridge job {job_id} (notified) on local:")


def test_state_filter_and_failure_reason(webhook, notify_paths, tmp_path: Path) -> None:
    url, received = webhook
    spec = tmp_path / "job.yaml"
    spec.write_text("name: failing\nprovider: local\nrun: echo bad; exit 4\n")
    env = {"CLOUDBRIDGE_NOTIFY_WEBHOOK": url, "CLOUDBRIDGE_NOTIFY_STATES": "failed"}
    result = run_cli("run", str(spec), paths=notify_paths, env=env)
    assert result.returncode == 1
    assert [r["body"]["state"] for r in received] == ["FAILED"]
    assert received[0]["body"]["reason"] and "4" in received[0]["body"]["reason"]


def test_unreachable_webhook_never_breaks_the_job(notify_paths, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    spec = tmp_path / "job.yaml"
    spec.write_text("name: quiet\nprovider: local\nrun: echo fine\n")
    env = {"CLOUDBRIDGE_NOTIFY_WEBHOOK": f"http://127.0.0.1:{port}/hook"}
    result = run_cli("run", str(spec), paths=notify_paths, env=env)
    assert result.returncode == 0, result.stderr
    assert "fine" in result.stdout


def test_payload_and_desktop_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notify_paths) -> None:
    from cloudbridge_notify.plugin import desktop_notify, payload

    from cloudbridge.hookspecs import JobEvent

    event = JobEvent("local-1", "local", "n", "FAILED", "RUNNING", 1.0, reason="out of memory")
    body = payload(event)
    assert body["text"] == "cloudbridge job local-1 (n) on local: RUNNING -> FAILED: out of memory"
    # notify-send is called with the job and state when present (a recording stand-in on PATH)
    log = tmp_path / "calls.txt"
    fake = tmp_path / "bin" / "notify-send"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    assert desktop_notify(event) is True
    assert "-u critical cloudbridge: local-1 FAILED out of memory" in log.read_text()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert desktop_notify(event) is False
