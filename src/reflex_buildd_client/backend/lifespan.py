"""The ASGI lifespan protocol, both ways.

Starlette and FastAPI never send ``lifespan`` to mounted apps, and Reflex
starts its event processor (and the app's ``register_lifespan_task`` tasks)
only from its lifespan: :class:`LifespanDriver` speaks the protocol to an app
on behalf of a host. :func:`serve_lifespan` is the other side, for our own
apps mounted where a host does send ``lifespan``.
"""

from __future__ import annotations

import asyncio
import contextlib

from ..errors import ReflexBuilddError
from ..types import ASGIApp, Message, Receive, Send

__all__ = ["LifespanDriver", "failure_line", "serve_lifespan"]


def failure_line(exc: BaseException, where: str) -> str:
    """The startup error ``exc`` of ``where`` as the server should print it.

    One line for the fact (the CLI prints the same one), plus the cause when
    the message does not already carry it; a failed build's message brings
    its log's tail along.
    """
    line = f"reflex-buildd: {where} did not start: {type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is not None and str(cause) not in str(exc):
        line += f" (cause: {type(cause).__name__}: {cause})"
    return line


class LifespanDriver:
    """Speak the ASGI lifespan protocol to an app on behalf of a host.

    Starlette and FastAPI never send ``lifespan`` to mounted apps, and Reflex
    starts its event processor (and the app's ``register_lifespan_task``
    tasks) only from its lifespan. The host's own lifespan calls
    :meth:`startup` and :meth:`shutdown`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _receive(self) -> Message:
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        await self._outbox.put(message)

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        try:
            await self._app(scope, self._receive, self._send)
        finally:
            # Unblock a waiter if the app returned or raised without answering.
            await self._outbox.put({"type": "lifespan.app-exited"})

    async def _expect(self, done: str, failed: str) -> None:
        message = await self._outbox.get()
        if message["type"] == failed:
            raise ReflexBuilddError(f"Reflex lifespan failed: {message.get('message', '')}")
        if message["type"] != done:
            task = self._task
            if task is not None and task.done() and task.exception() is not None:
                raise ReflexBuilddError("Reflex lifespan crashed") from task.exception()
            raise ReflexBuilddError(f"Reflex lifespan sent {message['type']!r}, not {done!r}")

    async def startup(self) -> None:
        """Start the app's lifespan and wait until it reports started."""
        self._task = asyncio.create_task(self._run(), name="reflex-buildd lifespan")
        await self._inbox.put({"type": "lifespan.startup"})
        await self._expect("lifespan.startup.complete", "lifespan.startup.failed")

    async def shutdown(self) -> None:
        """Ask the app to stop its lifespan tasks and wait for it."""
        if self._task is None:
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        try:
            await self._expect("lifespan.shutdown.complete", "lifespan.shutdown.failed")
        finally:
            task, self._task = self._task, None
            await asyncio.wait({task}, timeout=10)
            if not task.done():
                task.cancel()


async def serve_lifespan(
    lifespan: contextlib.AbstractAsyncContextManager[None], receive: Receive, send: Send
) -> None:
    """Answer the ASGI lifespan protocol for ``lifespan`` (the other side of
    :class:`LifespanDriver`): enter it on startup, exit it on shutdown."""
    message = await receive()
    if message["type"] != "lifespan.startup":
        return
    try:
        await lifespan.__aenter__()
    except ReflexBuilddError as exc:
        # Ours reads alone, as one line; reported, the protocol ends here (the
        # ASGI spec allows it), so granian does not print a traceback as well.
        await send(
            {"type": "lifespan.startup.failed", "message": failure_line(exc, "the Reflex app")}
        )
        return
    except Exception as exc:
        await send({"type": "lifespan.startup.failed", "message": str(exc)})
        raise
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    try:
        await lifespan.__aexit__(None, None, None)
    finally:
        if message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
