"""ReliableChannel: one SDS channel over one broadcast transport, with the protocol's
chores done for you (asyncio).

    bus = LoopbackBus()
    async with await ReliableChannel.open("alice", "room", bus.transport(),
                                          on_message=lambda m: print(m.content)) as ch:
        await ch.send(b"hello")

It wraps and publishes what you send, unwraps what arrives, rebroadcasts on
ResendRequested and RepairReady, publishes a sync message on SyncDue and runs the
manager's periodic tasks. Callbacks run in event order on one task of the event loop.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Protocol

from sdskit._manager import AsyncReliabilityManager, ConfigArg, PersistenceArg
from sdskit.v1.sdk import (
    ErrorCode,
    Event,
    MessageAcknowledged,
    MessageReady,
    MissingDependencies,
    RepairReady,
    ResendRequested,
    SdsError,
    SyncDue,
)

Handler = Callable[[bytes], Awaitable[None]]
Unsubscribe = Callable[[], Awaitable[None]]


class Transport(Protocol):
    """A broadcast medium: publish bytes to every other participant, hand over what they
    publish. It may lose, duplicate, delay and reorder; the channel repairs that."""

    async def publish(self, payload: bytes) -> None:
        """Broadcasts payload to the other participants."""

    async def subscribe(self, handler: Handler) -> Unsubscribe:
        """Calls handler for every payload received until the returned function is awaited."""


class ReliableChannel:
    """One channel of an AsyncReliabilityManager on one Transport. Create it with
    ``await ReliableChannel.open(...)``; close it with ``await ch.close()`` or ``async with``."""

    _channel_id: str
    _transport: Transport
    _on_message: Callable[[MessageReady], object] | None
    _on_acknowledged: Callable[[str], object] | None
    _on_missing: Callable[[MissingDependencies], object] | None
    _on_event: Callable[[Event], object] | None
    _on_error: Callable[[Exception], object] | None
    _events: asyncio.Queue[Event | None]
    _closed: bool
    _close_task: asyncio.Task[None] | None
    _unsubscribe: Unsubscribe | None
    _manager: AsyncReliabilityManager
    _runner: asyncio.Task[None]

    def __init__(self) -> None:
        raise TypeError("use: await ReliableChannel.open(...)")

    @classmethod
    async def open(
        cls,
        participant_id: str,
        channel_id: str,
        transport: Transport,
        *,
        config: ConfigArg = None,
        persistence: PersistenceArg = None,
        on_message: Callable[[MessageReady], object] | None = None,
        on_acknowledged: Callable[[str], object] | None = None,
        on_missing: Callable[[MissingDependencies], object] | None = None,
        on_event: Callable[[Event], object] | None = None,
        on_error: Callable[[Exception], object] | None = None,
        library: str | os.PathLike[str] | None = None,
    ) -> ReliableChannel:
        """Creates the manager, loads channel_id from its persistence, subscribes to the
        transport and starts the periodic tasks. on_message receives the other
        participants' messages in causal order; on_error what the channel cannot raise to
        a caller (a rebroadcast that could not be published, a payload that is not SDS).
        Raises SdsError (INVALID_ARGUMENT for an empty channel id or a bad config)."""
        if not channel_id:
            raise SdsError(ErrorCode.INVALID_ARGUMENT, "empty channel id", "ReliableChannel.open")
        self = object.__new__(cls)
        self._channel_id = channel_id
        self._transport = transport
        self._on_message = on_message
        self._on_acknowledged = on_acknowledged
        self._on_missing = on_missing
        self._on_event = on_event
        self._on_error = on_error
        self._events = asyncio.Queue()
        self._closed = False
        self._close_task = None
        self._unsubscribe = None
        self._manager = AsyncReliabilityManager(
            participant_id, config=config, persistence=persistence, events=self._events.put_nowait, library=library
        )
        self._runner = asyncio.get_running_loop().create_task(self._run())
        try:
            (await self._manager.ensure_channel(channel_id)).unwrap()
            self._unsubscribe = await transport.subscribe(self._receive)
            (await self._manager.start_periodic_tasks()).unwrap()
        except BaseException:
            await self.close()
            raise
        return self

    @property
    def manager(self) -> AsyncReliabilityManager:
        """The underlying manager, for everything this layer does not cover."""
        return self._manager

    @property
    def channel_id(self) -> str:
        """The channel's id."""
        return self._channel_id

    async def send(self, content: bytes, message_id: str | None = None) -> str:
        """Wraps content (under message_id, or a new random id), publishes it and returns
        the id. Raises SdsError when the core refuses it (CLOSED, MESSAGE_TOO_LARGE, ...);
        a transport exception propagates, but the message is persisted first, so the
        resend timer publishes it again until a peer acknowledges it."""
        mid = message_id if message_id is not None else secrets.token_hex(16)
        wire = (await self._manager.wrap_outgoing_message(self._channel_id, mid, content)).unwrap().wire_bytes
        await self._transport.publish(wire)
        return mid

    async def send_ephemeral(self, content: bytes) -> str:
        """Publishes content as an ephemeral message (delivered at once, never buffered,
        acknowledged or repaired) and returns its id."""
        mid = secrets.token_hex(16)
        wire = (await self._manager.wrap_ephemeral(self._channel_id, mid, content)).unwrap().wire_bytes
        await self._transport.publish(wire)
        return mid

    async def close(self) -> None:
        """Unsubscribes, closes the manager and waits until every queued event was handled.
        Idempotent: later calls wait for the first one."""
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._close_task)

    async def _close(self) -> None:
        self._closed = True
        try:
            if self._unsubscribe is not None:
                await self._unsubscribe()
        finally:
            await self._manager.close()
            self._events.put_nowait(None)
            await self._runner

    async def __aenter__(self) -> ReliableChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _receive(self, payload: bytes) -> None:
        if self._closed:
            return
        res = await self._manager.unwrap_received_message(data=payload)
        if not res.is_ok():
            try:
                res.unwrap()
            except SdsError as err:
                if err.code != ErrorCode.CLOSED:
                    self._report(err)

    def _report(self, err: Exception) -> None:
        if self._on_error is not None:
            self._on_error(err)

    async def _run(self) -> None:
        # One consumer: publishing never happens inside a manager call, and callbacks
        # see the events in commit order.
        while True:
            ev = await self._events.get()
            if ev is None:
                return
            try:
                await self._handle(ev)
            except Exception as exc:  # a callback's bug must not stop the channel
                self._report(exc)

    async def _handle(self, ev: Event) -> None:
        mine = getattr(ev, "channel_id", self._channel_id) == self._channel_id
        if isinstance(ev, MessageReady):
            if mine and self._on_message is not None:
                self._on_message(ev)
        elif isinstance(ev, MessageAcknowledged):
            if mine and self._on_acknowledged is not None:
                self._on_acknowledged(ev.message_id)
        elif isinstance(ev, MissingDependencies):
            if mine and self._on_missing is not None:
                self._on_missing(ev)
        elif isinstance(ev, (ResendRequested, RepairReady)):
            await self._publish(ev.wire_bytes, f"{type(ev).__name__} {ev.message_id}")
        elif isinstance(ev, SyncDue) and mine and not self._closed:
            res = await self._manager.build_sync_message(self._channel_id)
            if res.is_ok():
                await self._publish(res.unwrap().wire_bytes, "sync")
            else:
                try:
                    res.unwrap()
                except SdsError as err:
                    if err.code != ErrorCode.CLOSED:
                        self._report(err)
        if self._on_event is not None:
            self._on_event(ev)

    async def _publish(self, wire: bytes, what: str) -> None:
        if not wire:
            return
        try:
            await self._transport.publish(wire)
        except Exception as exc:
            self._report(RuntimeError(f"publish {what}: {exc}"))


class LoopbackBus:
    """An in-process broadcast medium for tests and examples: what one of its transports
    publishes reaches every other subscribed transport, in order, on the event loop.
    drop, when set, is asked per (sender, receiver, payload); True loses the payload."""

    def __init__(self, drop: Callable[[int, int, bytes], bool] | None = None) -> None:
        self.drop = drop
        self._subs: dict[int, asyncio.Queue[bytes | None]] = {}
        self._next = 0

    def transport(self) -> LoopbackTransport:
        """A new endpoint of the bus, numbered from 0 in creation order."""
        t = LoopbackTransport(self, self._next)
        self._next += 1
        return t


class LoopbackTransport:
    """One endpoint of a LoopbackBus (a Transport)."""

    def __init__(self, bus: LoopbackBus, ident: int) -> None:
        self._bus = bus
        self.id = ident

    async def publish(self, payload: bytes) -> None:
        """Queues a copy of payload for every other subscribed endpoint."""
        for ident, q in list(self._bus._subs.items()):
            if ident == self.id or (self._bus.drop is not None and self._bus.drop(self.id, ident, payload)):
                continue
            q.put_nowait(bytes(payload))

    async def subscribe(self, handler: Handler) -> Unsubscribe:
        """Delivers the other endpoints' payloads to handler until unsubscribed."""
        if self.id in self._bus._subs:
            raise RuntimeError("loopback endpoint already subscribed")
        q: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._bus._subs[self.id] = q

        async def pump() -> None:
            while (p := await q.get()) is not None:
                await handler(p)

        task = asyncio.get_running_loop().create_task(pump())

        async def unsubscribe() -> None:
            if self._bus._subs.get(self.id) is q:
                del self._bus._subs[self.id]
                q.put_nowait(None)
            await task

        return unsubscribe
