"""ReliableChannel: one SDS channel over one broadcast transport, with the protocol's
chores done for you (asyncio).

    bus = LoopbackBus()
    async with await ReliableChannel.open("alice", "room", bus.transport(),
                                          on_message=lambda m: print(m.content)) as ch:
        await ch.send(b"hello")

It wraps and publishes what you send, unwraps what arrives, rebroadcasts on
ResendRequested and RepairReady, publishes a sync message on SyncDue and runs the
manager's periodic tasks. Callbacks run in event order on one task of the event loop.
Several channels can share one manager through an EventRouter (ReliableChannel.attach).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

from sdskit._manager import AsyncReliabilityManager, ConfigArg, HintsArg, ManualClock, PersistenceArg
from sdskit.v1.sdk import (
    ErrorCode,
    Event,
    MessageAcknowledged,
    MessageReady,
    MissingDependencies,
    RepairReady,
    ResendRequested,
    Result,
    SdsError,
    SyncDue,
)

__all__ = [
    "EventRouter",
    "Handler",
    "LoopbackBus",
    "LoopbackTransport",
    "PublishError",
    "ReliableChannel",
    "Transport",
    "Unsubscribe",
]

Handler = Callable[[bytes], Awaitable[None]]
"""What a Transport calls with every received payload."""

Unsubscribe = Callable[[], Awaitable[None]]
"""What Transport.subscribe returns: awaiting it stops the deliveries."""

Callback = Callable[[Event], object]
_T = TypeVar("_T")


class Transport(Protocol):
    """A broadcast medium: publish bytes to every other participant, hand over what they
    publish. It may lose, duplicate, delay and reorder; the channel repairs that."""

    async def publish(self, payload: bytes) -> None:
        """Broadcasts payload to the other participants (raises when it cannot)."""

    async def subscribe(self, handler: Handler) -> Unsubscribe:
        """Calls handler for every payload received until the returned function is awaited."""


class PublishError(Exception):
    """A payload was made but the transport could not publish it (the transport's
    exception is __cause__). what is "message", "ephemeral", "resend", "repair" or "sync".
    persisted tells that the message is in the channel's state already: the resend timer
    publishes it again until a peer acknowledges it, so the application treats it as sent."""

    def __init__(self, what: str, message_id: str, persisted: bool, cause: BaseException) -> None:
        super().__init__(what, message_id, persisted)
        self.what = what
        self.message_id = message_id
        self.persisted = persisted
        self.__cause__ = cause

    def __str__(self) -> str:
        subject = f"{self.what} {self.message_id}" if self.message_id else self.what
        return f"publish {subject}: {self.__cause__}"


class EventRouter:
    """Fans the events of one manager out to the ReliableChannels attached to it, by
    channel id. Create the manager with ``events=router``; events of a channel no
    ReliableChannel is attached to (or of no channel) go to fallback, if any."""

    def __init__(self, fallback: Callback | None = None) -> None:
        self._fallback = fallback
        self._sinks: dict[str, Callable[[Event], None]] = {}

    def __call__(self, ev: Event) -> object:
        sink = self._sinks.get(ev.channel_id)
        if sink is not None:
            sink(ev)
            return None
        if ev.channel_id == "":
            for s in list(self._sinks.values()):
                s(ev)
        if self._fallback is not None:
            return self._fallback(ev)
        return None

    def _attach(self, channel_id: str, sink: Callable[[Event], None]) -> None:
        if channel_id in self._sinks:
            raise SdsError(ErrorCode.INVALID_ARGUMENT, f"a ReliableChannel is already attached to {channel_id!r}",
                           "ReliableChannel.attach")
        self._sinks[channel_id] = sink

    def _detach(self, channel_id: str, sink: Callable[[Event], None]) -> None:
        if self._sinks.get(channel_id) is sink:
            del self._sinks[channel_id]


def _raise_err(res: Result[_T]) -> None:
    if not res.is_ok():
        res.unwrap()  # raises the SdsError


async def _call(cb: Callable[[_T], object] | None, arg: _T) -> None:
    if cb is None:
        return
    out = cb(arg)
    if inspect.isawaitable(out):
        await out


class ReliableChannel:
    """One channel of an AsyncReliabilityManager on one Transport. Create it with
    ``await ReliableChannel.open(...)`` (which also creates the manager) or
    ``await ReliableChannel.attach(manager, router, ...)``; close it with
    ``await ch.close()`` or ``async with``.

    Callbacks (each optional; plain functions or coroutines, run in event order):
    on_message gets the other participants' messages in causal order (without it they
    queue up for ``async for m in ch``); on_acknowledged the ids of our messages a peer is
    known to hold; on_missing the dependencies a received message waits for (the channel
    already asks for their repair); on_event every event; on_error what the channel cannot
    raise to a caller: a PublishError of a rebroadcast or sync message, an SdsError of a
    received payload, a callback's exception. Without on_error those go to the event
    loop's exception handler (logged): nothing is swallowed."""

    _channel_id: str
    _transport: Transport
    _on_message: Callable[[MessageReady], object] | None
    _on_acknowledged: Callable[[str], object] | None
    _on_missing: Callable[[MissingDependencies], object] | None
    _on_event: Callback | None
    _on_error: Callable[[Exception], object] | None
    _events: asyncio.Queue[Event | None]
    _inbox: asyncio.Queue[MessageReady | None] | None
    _closed: bool
    _close_task: asyncio.Task[None] | None
    _unsubscribe: Unsubscribe | None
    _manager: AsyncReliabilityManager
    _router: EventRouter
    _owned: bool
    _runner: asyncio.Task[None]
    _loop: asyncio.AbstractEventLoop

    def __init__(self) -> None:
        raise TypeError("use: await ReliableChannel.open(...) or await ReliableChannel.attach(...)")

    @classmethod
    async def open(
        cls,
        participant_id: str,
        channel_id: str,
        transport: Transport,
        *,
        config: ConfigArg = None,
        persistence: PersistenceArg = None,
        hints: HintsArg = None,
        clock: ManualClock | None = None,
        library: str | os.PathLike[str] | None = None,
        on_message: Callable[[MessageReady], object] | None = None,
        on_acknowledged: Callable[[str], object] | None = None,
        on_missing: Callable[[MissingDependencies], object] | None = None,
        on_event: Callback | None = None,
        on_error: Callable[[Exception], object] | None = None,
    ) -> ReliableChannel:
        """Creates a manager for participant_id (config, persistence, hints, clock and
        library as for AsyncReliabilityManager), loads channel_id from its persistence,
        subscribes to the transport and starts the periodic tasks; close() closes the
        manager too. Raises SdsError (INVALID_ARGUMENT for an empty channel id or a bad
        config, PERSISTENCE when the state cannot be opened)."""
        _check_args(channel_id, transport, "ReliableChannel.open")
        router = EventRouter()
        manager = AsyncReliabilityManager(participant_id, config=config, persistence=persistence, events=router,
                                          hints=hints, clock=clock, library=library)
        try:
            return await cls._start(manager, router, True, channel_id, transport, on_message, on_acknowledged,
                                    on_missing, on_event, on_error)
        except BaseException:
            await manager.close()
            raise

    @classmethod
    async def attach(
        cls,
        manager: AsyncReliabilityManager,
        router: EventRouter,
        channel_id: str,
        transport: Transport,
        *,
        on_message: Callable[[MessageReady], object] | None = None,
        on_acknowledged: Callable[[str], object] | None = None,
        on_missing: Callable[[MissingDependencies], object] | None = None,
        on_event: Callback | None = None,
        on_error: Callable[[Exception], object] | None = None,
    ) -> ReliableChannel:
        """A channel on an existing manager, which must have been created with
        ``events=router``; one ReliableChannel per channel id. Loads the channel, subscribes
        and starts the manager's periodic tasks; close() leaves the manager open."""
        _check_args(channel_id, transport, "ReliableChannel.attach")
        return await cls._start(manager, router, False, channel_id, transport, on_message, on_acknowledged,
                                on_missing, on_event, on_error)

    @classmethod
    async def _start(
        cls,
        manager: AsyncReliabilityManager,
        router: EventRouter,
        owned: bool,
        channel_id: str,
        transport: Transport,
        on_message: Callable[[MessageReady], object] | None,
        on_acknowledged: Callable[[str], object] | None,
        on_missing: Callable[[MissingDependencies], object] | None,
        on_event: Callback | None,
        on_error: Callable[[Exception], object] | None,
    ) -> ReliableChannel:
        self = object.__new__(cls)
        self._channel_id = channel_id
        self._transport = transport
        self._on_message = on_message
        self._on_acknowledged = on_acknowledged
        self._on_missing = on_missing
        self._on_event = on_event
        self._on_error = on_error
        self._events = asyncio.Queue()
        self._inbox = asyncio.Queue() if on_message is None else None
        self._closed = False
        self._close_task = None
        self._unsubscribe = None
        self._manager = manager
        self._router = router
        self._owned = owned
        self._loop = asyncio.get_running_loop()
        router._attach(channel_id, self._events.put_nowait)
        self._runner = self._loop.create_task(self._run())
        try:
            _raise_err(await manager.ensure_channel(channel_id))
            self._unsubscribe = await transport.subscribe(self._receive)
            _raise_err(await manager.start_periodic_tasks())
        except BaseException:
            await self._shutdown(close_manager=False)
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

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    async def send(self, content: bytes, message_id: str | None = None) -> str:
        """Wraps content under message_id (default: 16 random bytes in hex), publishes it
        and returns the id. Raises SdsError when the message does not exist (CLOSED,
        INVALID_ARGUMENT for a duplicate or empty id, MESSAGE_TOO_LARGE, PERSISTENCE), or
        PublishError (persisted=True) when the transport failed: the message is ours
        already and the resend timer publishes it again until a peer acknowledges it."""
        self._check_open("ReliableChannel.send")
        mid = secrets.token_hex(16) if message_id is None else message_id
        wire = (await self._manager.wrap_outgoing_message(self._channel_id, mid, content)).unwrap().wire_bytes
        try:
            await self._transport.publish(wire)
        except Exception as exc:
            raise PublishError("message", mid, True, exc) from exc
        return mid

    async def send_ephemeral(self, content: bytes) -> str:
        """Publishes content as an ephemeral message (delivered at once, never buffered,
        acknowledged or repaired) and returns its id. Raises SdsError, or PublishError
        (persisted=False: an ephemeral message is never sent again)."""
        self._check_open("ReliableChannel.send_ephemeral")
        mid = secrets.token_hex(16)
        wire = (await self._manager.wrap_ephemeral(self._channel_id, mid, content)).unwrap().wire_bytes
        try:
            await self._transport.publish(wire)
        except Exception as exc:
            raise PublishError("ephemeral", mid, False, exc) from exc
        return mid

    async def close(self) -> None:
        """Unsubscribes, closes the manager (if open() created it) and waits until every
        queued event was handled. Idempotent: later calls wait for the first one and raise
        what it raised (an unsubscribe or close failure, after finishing the rest)."""
        if self._close_task is None:
            self._close_task = self._loop.create_task(self._shutdown(close_manager=self._owned))
        if asyncio.current_task() is self._runner:
            return  # called from a callback: the runner cannot wait for itself
        await asyncio.shield(self._close_task)

    async def _shutdown(self, close_manager: bool) -> None:
        self._closed = True
        errors: list[BaseException] = []
        if self._unsubscribe is not None:
            try:
                await self._unsubscribe()
            except Exception as exc:
                errors.append(exc)
        if close_manager:
            res = await self._manager.close()
            if not res.is_ok():
                try:
                    res.unwrap()
                except SdsError as err:
                    errors.append(err)
        self._router._detach(self._channel_id, self._events.put_nowait)
        self._events.put_nowait(None)
        if asyncio.current_task() is not self._runner:
            await self._runner
        if self._inbox is not None:
            self._inbox.put_nowait(None)
        if errors:
            raise errors[0]

    async def __aenter__(self) -> ReliableChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[MessageReady]:
        """The other participants' messages in causal order, until the channel is closed
        (only without on_message)."""
        if self._inbox is None:
            raise TypeError("messages go to on_message: iterate a channel opened without it")
        return self._messages(self._inbox)

    async def _messages(self, inbox: asyncio.Queue[MessageReady | None]) -> AsyncIterator[MessageReady]:
        while True:
            m = await inbox.get()
            if m is None:
                inbox.put_nowait(None)  # ends every other iterator too
                return
            yield m

    def _check_open(self, op: str) -> None:
        if self._closed:
            raise SdsError(ErrorCode.CLOSED, "the channel is closed", op)

    async def _receive(self, payload: bytes) -> None:
        if self._closed:
            return
        res = await self._manager.unwrap_received_message(data=payload)
        if not res.is_ok():
            try:
                res.unwrap()
            except SdsError as err:
                if err.code != ErrorCode.CLOSED:
                    await self._report(err)

    async def _report(self, err: Exception) -> None:
        if self._on_error is not None:
            try:
                await _call(self._on_error, err)
                return
            except Exception as exc:
                err = exc
        self._loop.call_exception_handler(
            {"message": f"sdskit ReliableChannel {self._channel_id!r}: {err}", "exception": err}
        )

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
                await self._report(exc)

    async def _handle(self, ev: Event) -> None:
        if isinstance(ev, MessageReady):
            if self._on_message is not None:
                await _call(self._on_message, ev)
            elif self._inbox is not None:
                self._inbox.put_nowait(ev)
        elif isinstance(ev, MessageAcknowledged):
            await _call(self._on_acknowledged, ev.message_id)
        elif isinstance(ev, MissingDependencies):
            await _call(self._on_missing, ev)
        elif isinstance(ev, ResendRequested):
            await self._publish("resend", ev.message_id, ev.wire_bytes)
        elif isinstance(ev, RepairReady):
            await self._publish("repair", ev.message_id, ev.wire_bytes)
        elif isinstance(ev, SyncDue) and not self._closed:
            res = await self._manager.build_sync_message(self._channel_id)
            if res.is_ok():
                await self._publish("sync", "", res.unwrap().wire_bytes)
            else:
                try:
                    res.unwrap()
                except SdsError as err:
                    if err.code != ErrorCode.CLOSED:
                        await self._report(err)
        await _call(self._on_event, ev)

    async def _publish(self, what: str, message_id: str, wire: bytes) -> None:
        if not wire or (self._closed and what == "sync"):
            return
        try:
            await self._transport.publish(wire)
        except Exception as exc:
            await self._report(PublishError(what, message_id, True, exc))


def _check_args(channel_id: str, transport: object, op: str) -> None:
    if not isinstance(channel_id, str) or not channel_id:
        raise SdsError(ErrorCode.INVALID_ARGUMENT, "empty channel id", op)
    if not callable(getattr(transport, "publish", None)) or not callable(getattr(transport, "subscribe", None)):
        raise SdsError(ErrorCode.INVALID_ARGUMENT, "the transport has no publish/subscribe", op)


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
