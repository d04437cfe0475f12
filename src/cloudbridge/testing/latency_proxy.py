"""A TCP proxy on 127.0.0.1 that adds round-trip latency and can cut requests mid-flight.

Real object stores answer in tens of milliseconds; an emulator on loopback answers in one. Put this
proxy between a client and a fast local server (``rclone serve s3``, Azurite, gcp-storage-emulator)
to measure what a user on a real network would see, or to prove that a transfer survives connections
cut halfway through a request.

Model (per TCP connection, no knowledge of HTTP needed):

* a new connection pays one ``rtt`` before its first byte is forwarded (the TCP handshake);
* every *exchange* pays one more ``rtt``: half when the client starts sending after the server
  last spoke (a new request on a kept-alive connection), half when the server starts answering;
* with probability ``cut``, a new request is cut: part of its bytes are forwarded, then both sides
  are closed, so the server sees a truncated request and the client a reset connection.

Decisions use a seeded RNG, so a fault test is repeatable. The proxy runs its own asyncio loop in a
daemon thread and stops with :meth:`LatencyProxy.close` (or the ``with`` block).
"""

from __future__ import annotations

import asyncio
import random
import threading
from types import TracebackType

__all__ = ["LatencyProxy"]

_CHUNK = 256 * 1024


class LatencyProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream_host:upstream_port`` with latency and cuts.

    ``rtt`` is in seconds (default 0.030). ``cut`` is the share of requests cut mid-flight
    (0.0-1.0). ``counts`` tells how many connections, exchanges and cuts the proxy saw.
    """

    def __init__(
        self, upstream_host: str, upstream_port: int, *, rtt: float = 0.030, cut: float = 0.0, seed: int = 1234
    ) -> None:
        if not 0.0 <= cut <= 1.0 or rtt < 0:
            raise ValueError("rtt must be >= 0 and cut between 0 and 1")
        self.upstream = (upstream_host, upstream_port)
        self.rtt = rtt
        self.cut = cut
        self.rng = random.Random(seed)
        self.counts = {"connections": 0, "exchanges": 0, "cut": 0}
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._run, name="cb-latency-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the latency proxy did not start")

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    # ---- lifecycle -------------------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        """Stop accepting, drop every connection and end the loop's thread."""
        if self._loop.is_closed():
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> LatencyProxy:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    # ---- forwarding ------------------------------------------------------------------------------
    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.counts["connections"] += 1
        await asyncio.sleep(self.rtt)  # the handshake
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.close()
            return
        # who spoke last: a change of speaker starts a new half of an exchange and pays rtt / 2
        state = {"last": "server"}
        cut_now = asyncio.Event()

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, side: str) -> None:
            try:
                while True:
                    data = await reader.read(_CHUNK)
                    if not data:
                        break
                    if state["last"] != side:
                        state["last"] = side
                        if side == "client":
                            self.counts["exchanges"] += 1
                            if self.cut and self.rng.random() < self.cut:
                                self.counts["cut"] += 1
                                writer.write(data[: max(1, len(data) // 2)])
                                await writer.drain()
                                cut_now.set()
                                return
                        await asyncio.sleep(self.rtt / 2)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError, asyncio.CancelledError):
                pass
            finally:
                cut_now.set()

        tasks = [
            asyncio.ensure_future(pump(client_r, server_w, "client")),
            asyncio.ensure_future(pump(server_r, client_w, "server")),
        ]
        try:
            await cut_now.wait()
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_w, server_w):
                try:
                    writer.close()
                except (ConnectionError, OSError, RuntimeError):
                    pass
