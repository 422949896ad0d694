"""A minimal Socket.IO client that speaks to a Reflex backend as its frontend does.

Engine.IO 4 over a websocket only (Reflex's default transport): open, connect
to the backend's namespace (the path of its event URL, ``/_event``), then
``event`` packets whose payload is a Reflex event, answered by ``event``
packets carrying the state delta. Used by the process-pool tests and by the
load mode of ``benchmarks/bench_backend.py``: cheap enough to run 50 clients
in one process, where 50 browsers would measure the browsers.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

__all__ = ["SHOWCASE_STATE", "ReflexSocket"]

# The showcase's State (examples/showcase/showcase/showcase.py), as Reflex names it.
SHOWCASE_STATE = "reflex___state____state.showcase___showcase____state"
_NAMESPACE = "/_event"


class ReflexSocket:
    """One tab's socket.io session: ``await ReflexSocket.open(url)``, then :meth:`event`."""

    def __init__(self, ws: ClientConnection, token: str) -> None:
        self.ws = ws
        self.token = token

    @classmethod
    async def open(cls, base: str, token: str | None = None, timeout: float = 20) -> ReflexSocket:
        """Connect to ``base`` (``ws://host:port/admin``) with ``token`` (a new one by default)."""
        token = token or str(uuid.uuid4())
        url = f"{base}/_event/?EIO=4&transport=websocket&token={token}"
        ws = await connect(url, open_timeout=timeout, max_size=None, compression=None)
        opened = await ws.recv()
        assert str(opened).startswith("0"), opened
        await ws.send(f"40{_NAMESPACE},")
        while True:
            packet = str(await ws.recv())
            if packet.startswith(f"40{_NAMESPACE}"):
                return cls(ws, token)
            if packet.startswith(f"44{_NAMESPACE}"):
                raise ConnectionError(f"socket.io connect refused: {packet}")

    async def event(self, handler: str, state: str = SHOWCASE_STATE) -> dict[str, Any]:
        """Send ``state.handler`` and return the first delta that answers it."""
        event = {
            "name": f"{state}.{handler}",
            "payload": {},
            "token": self.token,
            "router_data": {"pathname": "/", "query": {}, "asPath": "/"},
        }
        await self.ws.send(f"42{_NAMESPACE}," + json.dumps(["event", event]))
        while True:
            packet = str(await self.ws.recv())
            if packet == "2":  # Engine.IO ping: answer, as the browser does
                await self.ws.send("3")
                continue
            if packet.startswith(f"42{_NAMESPACE},"):
                name, data = json.loads(packet[len(_NAMESPACE) + 3 :])[:2]
                if name == "new_token":  # taken for a duplicate tab: Reflex gave a new one
                    self.token = str(data)
                if name == "event":
                    update = json.loads(data) if isinstance(data, str) else data
                    return dict(update.get("delta", {}))

    async def count(self, handler: str = "increment") -> int:
        """Send the showcase's ``increment`` and return the count the delta carries."""
        delta = await self.event(handler)
        return int(delta[SHOWCASE_STATE]["count_rx_state_"])

    async def close(self) -> None:
        """Close the websocket."""
        await self.ws.close()
