"""ReliableChannel over NATS core publish/subscribe (nats-py; ``pip install sdskit[nats]``).

NATS core delivers at most once: a slow or disconnected subscriber loses messages, which
is exactly what SDS repairs."""

from __future__ import annotations

from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from sdskit.reliable import Handler, Unsubscribe


class NatsTransport:
    """Publishes to and subscribes to one NATS subject (a sdskit.reliable.Transport)."""

    def __init__(self, nc: Client, subject: str, *, owned: bool = False) -> None:
        if not subject:
            raise ValueError("empty subject")
        self._nc = nc
        self._subject = subject
        self._owned = owned

    @classmethod
    async def connect(cls, url: str, subject: str, **options: Any) -> NatsTransport:
        """Connects with echo disabled (a participant must not receive its own messages);
        close() closes the connection."""
        if not subject:
            raise ValueError("empty subject")
        nc = await nats.connect(url, no_echo=True, **options)
        return cls(nc, subject, owned=True)

    async def publish(self, payload: bytes) -> None:
        """Sends payload to the subject (buffered by the client; NATS gives no guarantee)."""
        await self._nc.publish(self._subject, payload)

    async def subscribe(self, handler: Handler) -> Unsubscribe:
        """Delivers every payload of the subject to handler until unsubscribed; flushed to
        the server before it returns, so nothing published afterwards is missed."""

        async def cb(msg: Msg) -> None:
            await handler(msg.data)

        sub = await self._nc.subscribe(self._subject, cb=cb)
        await self._nc.flush()

        async def unsubscribe() -> None:
            if not self._nc.is_closed:
                await sub.unsubscribe()

        return unsubscribe

    async def close(self) -> None:
        """Closes the connection if connect() opened it."""
        if self._owned and not self._nc.is_closed:
            await self._nc.close()
