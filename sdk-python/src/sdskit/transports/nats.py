"""ReliableChannel over NATS core publish/subscribe (nats-py; ``pip install sdskit[nats]``).

    async with await NatsTransport.connect("nats://127.0.0.1:4222", "chat.room") as t:
        async with await ReliableChannel.open("alice", "room", t, on_message=show) as ch:
            await ch.send(b"hello")

NATS core delivers at most once: a slow or disconnected subscriber loses messages, which
is exactly what SDS repairs. Every participant of a channel uses the same subject.
"""

from __future__ import annotations

from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from sdskit.reliable import Handler, Unsubscribe

__all__ = ["NatsTransport"]


class NatsTransport:
    """Publishes to and subscribes to one NATS subject (a sdskit.reliable.Transport).
    Build it on a connection of your own (made with ``no_echo=True``, or the channel
    receives its own messages back, which is harmless but wasteful), or with connect()."""

    def __init__(self, nc: Client, subject: str, *, owned: bool = False) -> None:
        _check_subject(subject)
        self._nc = nc
        self._subject = subject
        self._owned = owned

    @classmethod
    async def connect(cls, url: str | list[str], subject: str, **options: Any) -> NatsTransport:
        """Connects to url (a server URL or a list of them; options go to nats.connect)
        with echo disabled, since a participant must not receive its own messages;
        close() closes the connection. Raises ValueError for a bad subject and the
        client's exception when no server can be reached."""
        _check_subject(subject)
        options.setdefault("no_echo", True)
        nc = await nats.connect(url, **options)
        return cls(nc, subject, owned=True)

    @property
    def client(self) -> Client:
        """The underlying nats-py connection."""
        return self._nc

    @property
    def subject(self) -> str:
        """The subject of the channel."""
        return self._subject

    async def publish(self, payload: bytes) -> None:
        """Sends payload to the subject. Raises the client's error when the connection is
        closed or its outgoing buffer is full; delivery itself is not guaranteed."""
        await self._nc.publish(self._subject, payload)

    async def subscribe(self, handler: Handler) -> Unsubscribe:
        """Delivers every payload of the subject to handler, one at a time in arrival
        order, until unsubscribed. The subscription reached the server when this returns,
        so nothing published afterwards is missed."""

        async def cb(msg: Msg) -> None:
            await handler(msg.data)

        sub = await self._nc.subscribe(self._subject, cb=cb)
        # Twice: a PONG still owed for an earlier PING (the connect handshake's) can end
        # the first flush before the server processed the SUB; the second one's PONG comes
        # after it. Publications right after subscribe() were lost otherwise, now and then.
        await self._nc.flush()
        await self._nc.flush()

        async def unsubscribe() -> None:
            if not self._nc.is_closed:
                await sub.unsubscribe()

        return unsubscribe

    async def close(self) -> None:
        """Flushes and closes the connection if connect() opened it; idempotent."""
        if self._owned and not self._nc.is_closed:
            await self._nc.close()

    async def __aenter__(self) -> NatsTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _check_subject(subject: str) -> None:
    # A publish subject is a dot-separated token list without wildcards or whitespace.
    if not subject or any(c in subject for c in " \t\r\n*>") or "" in subject.split("."):
        raise ValueError(f"invalid NATS subject {subject!r}")
