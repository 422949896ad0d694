"""Child side: a dead child's sessions keep their tokens (and so their state) in Redis.

With several backend processes Reflex's Redis token manager records, per
client token, which process holds its socket (``SocketRecord``, expiring after
``redis_token_expiration``, an hour by default). A process killed without its
shutdown leaves those records behind, and a session that reconnects to
another process is then taken for a duplicate tab: it gets a new token, so a
fresh state, although its state is still in Redis. That is also what
``reflex run`` with several workers does when a worker is killed.

Process mode knows when a child dies, so it does better: every child's token
manager gets a stable identity, the slot's (:func:`adopt_instance`, host name
and slot, so two machines sharing a Redis never share one), and when a child
dies a live child is asked to drop that identity's records
(:func:`forget_instance`): by the host worker that passes a dead child's close
(1011) on to a browser, before the browser sees it (its reconnect is
immediate), and by the supervisor; the slot's next child does it too when it
starts. The reconnecting session then keeps its token and its state.
"""

from __future__ import annotations

import pickle
from typing import Any

__all__ = ["adopt_instance", "forget_instance"]


def _token_manager() -> Any:
    try:
        from reflex.utils import token_manager
    except ImportError:  # pragma: no cover - a Reflex without it: nothing to do
        return None
    cls = getattr(token_manager, "RedisTokenManager", None)
    return cls if cls is not None and hasattr(cls, "_reset_instance_id") else None


def adopt_instance(instance: str) -> None:
    """Make every Redis token manager of this process use ``instance`` as its identity."""
    cls = _token_manager()
    if cls is None or not instance:
        return

    def _reset_instance_id(self: Any) -> None:
        self.instance_id = instance

    cls._reset_instance_id = _reset_instance_id


async def forget_instance(instance: str) -> int:
    """Remove the socket records of ``instance`` (a dead child's) from Redis; how many."""
    cls = _token_manager()
    if cls is None or not instance:
        return 0
    from reflex.utils import prerequisites

    redis = prerequisites.get_redis()
    if redis is None:
        return 0
    prefix = str(cls._token_socket_record_prefix)
    removed = 0
    try:
        async for key in redis.scan_iter(match=prefix + "*", count=1000):
            raw = await redis.get(key)
            try:
                # Reflex's own records, which Reflex itself unpickles.
                record = pickle.loads(raw) if raw else None
            except Exception:
                continue
            if getattr(record, "instance_id", None) == instance:
                removed += int(await redis.delete(key))
    finally:
        await redis.aclose()
    return removed
