"""A raw socket.io client of Reflex's event websocket, for benchmarks.

It speaks what Reflex's frontend speaks (engine.io 4 over a websocket,
socket.io 5 packets in the ``/_event`` namespace) and nothing more, so that an
event's round trip is measured in microseconds, without a browser's frames
(``bench_backend.py``'s click round-trip cannot see below one 60 Hz frame):

- :meth:`EventClient.event` sends one event and waits for the final state
  update it causes;
- :meth:`EventClient.drop` ends the TCP connection without a close frame (a
  browser tab killed, a network gone), for the hostile-client benchmarks.

Used by ``bench_backend.py --http`` and ``bench_hostile_ws.py``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

NAMESPACE = "/_event"


class EventClient:
    """One Reflex tab's socket, without the page.

    Args:
        base: The app's URL (``ws://127.0.0.1:8000/admin``).
        timeout: Seconds any single wait may take.
    """

    def __init__(self, base: str, timeout: float = 30.0) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.token = str(uuid.uuid4())
        self._ws: Any = None

    async def connect(self) -> None:
        """Open the socket and join the event namespace, as the frontend does."""
        from websockets.asyncio.client import connect

        url = f"{self.base}{NAMESPACE}/?EIO=4&transport=websocket&token={self.token}"
        self._ws = await connect(
            url, open_timeout=self.timeout, max_size=None, compression=None, ping_interval=None
        )
        opened = await self._recv()
        if not opened.startswith("0"):
            raise ConnectionError(f"not an engine.io open packet: {opened[:80]!r}")
        await self._ws.send(f"40{NAMESPACE},")
        while not (await self._recv()).startswith(f"40{NAMESPACE},"):
            pass

    async def event(self, name: str, payload: dict[str, Any] | None = None) -> float:
        """Send the event ``name``; seconds until its final state update arrived."""
        message = {
            "name": name,
            "payload": payload or {},
            "router_data": {"pathname": "/", "query": {}, "asPath": "/"},
        }
        packet = f"42{NAMESPACE}," + json.dumps(["event", message])
        started = time.perf_counter()
        await self._ws.send(packet)
        prefix = f"42{NAMESPACE},"
        while True:
            data = await self._recv()
            if data.startswith(prefix):
                kind, update = json.loads(data[len(prefix) :])[:2]
                if kind == "event" and update.get("final", True):
                    return time.perf_counter() - started

    async def close(self) -> None:
        """Leave politely: a close frame with 1000."""
        if self._ws is not None:
            await self._ws.close()

    def drop(self) -> None:
        """End the TCP connection without a close frame."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def _recv(self) -> str:
        import asyncio

        while True:
            data = await asyncio.wait_for(self._ws.recv(), self.timeout)
            if data == "2":  # engine.io ping: answer, or the server drops us
                await self._ws.send("3")
                continue
            return str(data)
