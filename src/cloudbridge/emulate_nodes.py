"""The processes of an emulated job: start them, pass their output through, and say who failed first.

Each node's (or, on Azure ML, each rank's) output is copied line by line to this process's stdout and
the last :data:`TAIL_LINES` lines are kept. A waiter thread records the moment each process exits,
so when several fail (a peer dying takes the others' collectives down with it) the one that failed
**first** is known, not merely the one polled first. On failure the others are stopped, as a platform
would, and :func:`report_failure` prints that node's last lines and its name on stderr.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

__all__ = ["NodeProcess", "TAIL_LINES", "report_failure", "start_node", "stop_all", "wait_all"]

#: Lines of a failed node's output repeated in the failure report.
TAIL_LINES = 30


@dataclass
class NodeProcess:
    """One started node: its process, its last output lines, and when it exited."""

    name: str
    index: int
    process: subprocess.Popen[bytes]
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    exited_at: float | None = None
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def returncode(self) -> int | None:
        """The exit status once the waiter has seen the process end."""
        return self.process.returncode if self.exited_at is not None else None


def _pump(node: NodeProcess, stream: IO[bytes], out: IO[str]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        node.tail.append(line.rstrip("\n"))
        try:
            out.write(line)
            out.flush()
        except (OSError, ValueError):  # our stdout closed: keep draining so the child never blocks
            pass
    stream.close()


def _wait(node: NodeProcess) -> None:
    node.process.wait()
    node.exited_at = time.monotonic()


def start_node(name: str, index: int, argv: Sequence[str], *, cwd: str, env: dict[str, str],
               out: IO[str] | None = None) -> NodeProcess:
    """Start ``argv`` as node ``name`` in its own session, its output passed to ``out`` (stdout)."""
    process = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    node = NodeProcess(name, index, process)
    assert process.stdout is not None
    node.threads = [threading.Thread(target=_pump, args=(node, process.stdout, out or sys.stdout), daemon=True),
                    threading.Thread(target=_wait, args=(node,), daemon=True)]
    for thread in node.threads:
        thread.start()
    return node


def stop_all(processes: Sequence[subprocess.Popen[bytes]], grace: float = 10.0) -> None:
    """SIGTERM every running process group, SIGKILL what is left after ``grace`` seconds."""
    for child in processes:
        if child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for child in processes:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()


def _join(nodes: Sequence[NodeProcess]) -> None:
    for node in nodes:
        for thread in node.threads:
            thread.join(timeout=5)


def wait_all(nodes: Sequence[NodeProcess], timeout: float | None) -> tuple[int, NodeProcess | None]:
    """Wait for every node; ``(exit status, the node that failed first or None)``.

    On the first failure the others are stopped; the status is that node's. ``124`` after ``timeout``.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            ended = [n for n in nodes if n.exited_at is not None]
            failed = [n for n in ended if n.process.returncode != 0]
            if failed:
                first = min(failed, key=lambda n: (n.exited_at or 0.0, n.index))
                stop_all([n.process for n in nodes])
                _join(nodes)
                return first.process.returncode or 1, first
            if len(ended) == len(nodes):
                _join(nodes)
                return 0, None
            if deadline is not None and time.monotonic() > deadline:
                stop_all([n.process for n in nodes])
                _join(nodes)
                return 124, None
            time.sleep(0.05)
    except BaseException:
        stop_all([n.process for n in nodes])
        raise


def report_failure(node: NodeProcess, total: int, what: str = "node", out: IO[str] | None = None) -> str:
    """Print (stderr) and return which node failed first, with its exit status and last lines."""
    code = node.process.returncode
    status = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
    lines = [f"emulate: {what} {node.name} ({what} {node.index + 1} of {total}) failed first, with {status}; "
             f"its last {len(node.tail)} line(s):"]
    lines += [f"  {node.name}| {line}" for line in node.tail]
    text = "\n".join(lines)
    print(text, file=out or sys.stderr, flush=True)
    return text
