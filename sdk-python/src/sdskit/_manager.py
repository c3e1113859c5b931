"""The managers applications create: the generated typed clients bound to a manager of
the core library, with its persistence, events, retrieval hints and clock."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union

from google.protobuf import json_format

from sdskit._native import EventsArg, Library, Session, load_library
from sdskit.v1 import api_pb2, sdk
from sdskit.v1.sdk import (
    PERSISTENCE_SERVICE,
    RETRIEVAL_HINT_PROVIDER_SERVICE,
    Capability,
    Err,
    ErrorCode,
    HostResult,
    Ok,
    Persistence,
    Result,
    RetrievalHintProvider,
    SdsError,
    decode_result,
    host_capabilities,
)

__all__ = [
    "AsyncReliabilityManager",
    "CoreMemory",
    "CoreSQLite",
    "ManualClock",
    "ReliabilityManager",
]


@dataclasses.dataclass(frozen=True)
class CoreMemory:
    """The core's in-memory backend (tests; state is lost on close)."""


@dataclasses.dataclass(frozen=True)
class CoreSQLite:
    """The core's embedded SQLite backend (Go, WAL, one transaction per batch) at path;
    synchronous is "NORMAL" (default) or "FULL" (survives power loss)."""

    path: str
    synchronous: str = ""


PersistenceArg = Union[None, Literal["none", "memory"], CoreMemory, CoreSQLite, Persistence]
"""None / "none" (state in memory only), "memory" / CoreMemory(), CoreSQLite(path), or a
host backend implementing the Persistence protocol (e.g. sdskit.backends.SQLitePersistence)."""

HintsArg = Union[RetrievalHintProvider, Callable[[str, str], Union[bytes, None]], None]
"""A RetrievalHintProvider, or a function (channel_id, message_id) -> hint bytes or None."""

ConfigArg = Union[api_pb2.Config, Mapping[str, Any], None]
"""An sdskit.v1.Config, or a dict of its fields (proto names, protojson values)."""


class ManualClock:
    """A clock of the core that moves only when told to (tests, simulations); give it to
    several managers to share one time. It must outlive the managers that use it."""

    def __init__(self, start_unix_ms: int = 1_700_000_000_000, *, library: str | os.PathLike[str] | None = None) -> None:
        self._lib = load_library(library)
        self.handle = self._lib.clock_new(start_unix_ms)

    def now_ms(self) -> int:
        """The clock's time in Unix milliseconds."""
        return self._lib.clock_now(self.handle)

    def advance(self, ms: int) -> None:
        """Moves the clock forward by ms milliseconds."""
        if self._lib.clock_advance(self.handle, ms) != 0:
            raise ValueError(f"cannot advance the clock by {ms} ms")

    def set(self, unix_ms: int) -> None:
        """Moves the clock to unix_ms if that is later than now."""
        if self._lib.clock_set(self.handle, unix_ms) != 0:
            raise ValueError("the clock is closed")

    def close(self) -> None:
        """Releases the clock."""
        self._lib.clock_free(self.handle)


class _HintFunc:
    def __init__(self, f: Callable[[str, str], bytes | None]) -> None:
        self._f = f

    def get_retrieval_hint(self, req: api_pb2.GetRetrievalHintRequest) -> HostResult[api_pb2.GetRetrievalHintResponse]:
        return Ok(api_pb2.GetRetrievalHintResponse(retrieval_hint=self._f(req.channel_id, req.message_id) or b""))


def _setup(
    participant_id: str,
    config: ConfigArg,
    persistence: PersistenceArg,
    hints: HintsArg,
) -> tuple[bytes, dict[str, object | None]]:
    req = api_pb2.CreateRequest(participant_id=participant_id)
    if isinstance(config, api_pb2.Config):
        req.config.CopyFrom(config)
    elif config is not None:
        try:
            json_format.ParseDict(dict(config), req.config)
        except json_format.ParseError as exc:
            raise SdsError(ErrorCode.INVALID_ARGUMENT, f"config: {exc}", "Create") from exc
    impls: dict[str, object | None] = {}
    if persistence is None or persistence == "none":
        pass
    elif persistence == "memory" or isinstance(persistence, CoreMemory):
        req.persistence.memory.SetInParent()
    elif isinstance(persistence, CoreSQLite):
        req.persistence.sqlite.path = persistence.path
        req.persistence.sqlite.synchronous = persistence.synchronous
    elif isinstance(persistence, str):
        raise SdsError(ErrorCode.INVALID_ARGUMENT, f"unknown persistence {persistence!r}", "Create")
    else:
        req.persistence.host.SetInParent()
        req.host_persistence_batches = True  # one crossing of the C boundary per batch
        impls[PERSISTENCE_SERVICE] = persistence
    if hints is not None:
        req.host_hint_provider = True
        impls[RETRIEVAL_HINT_PROVIDER_SERVICE] = hints if hasattr(hints, "get_retrieval_hint") else _HintFunc(hints)
    return req.SerializeToString(), impls


def _open(
    mode: Literal["sync", "async"],
    participant_id: str,
    config: ConfigArg,
    persistence: PersistenceArg,
    events: EventsArg,
    hints: HintsArg,
    clock: ManualClock | None,
    library: str | os.PathLike[str] | None,
    loop: asyncio.AbstractEventLoop | None,
) -> Session:
    lib: Library = load_library(library)
    req, impls = _setup(participant_id, config, persistence, hints)
    try:
        caps = host_capabilities(impls)
    except TypeError as exc:
        raise SdsError(ErrorCode.INVALID_ARGUMENT, str(exc), "Create") from exc
    if events is not None:
        caps |= Capability.EVENT_SINK
    session = Session(lib, mode=mode, impls=impls, events=events, loop=loop)
    res = decode_result(session.create(req, int(caps), clock.handle if clock else 0), api_pb2.CreateResponse, "Create")
    if isinstance(res, Err):
        raise res.error
    return session


class ReliabilityManager(sdk.ReliabilityManager):
    """A multi-channel reliability manager of the core, with the synchronous typed API:
    every method returns a Result (Ok(response) or Err(SdsError)) and never raises for a
    failure of the call. Safe to use from several threads; channels proceed in parallel.

    persistence: None (memory only), "memory", CoreSQLite(path), or a Persistence
    implementation (plain or async def methods; one transaction per batch when it also
    implements begin/commit/rollback). events: an EventHandler or a function of an Event,
    called after the operation that produced the events returned, on its thread (on a
    dispatcher thread for the background sweeps). hints: retrieval hints of our own
    messages. clock: a ManualClock instead of the wall clock.

    Raises SdsError when the manager cannot be created (bad config, backend). Close it
    (or use it as a context manager) to release it."""

    def __init__(
        self,
        participant_id: str = "",
        *,
        config: ConfigArg = None,
        persistence: PersistenceArg = None,
        events: EventsArg = None,
        hints: HintsArg = None,
        clock: ManualClock | None = None,
        library: str | os.PathLike[str] | None = None,
    ) -> None:
        self._session = _open("sync", participant_id, config, persistence, events, hints, clock, library, None)
        super().__init__(self._session.call)

    @property
    def handle(self) -> int:
        """The manager's handle in the core library."""
        return self._session.handle

    def close(self) -> Result[api_pb2.CloseResponse]:
        """Closes the manager and releases it; closing again succeeds, any other call on a
        closed manager is a CLOSED error."""
        res = super().close()
        self._session.release()
        return res

    def __enter__(self) -> ReliabilityManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncReliabilityManager(sdk.AsyncReliabilityManager):
    """The asyncio variant of ReliabilityManager: every method is a coroutine returning a
    Result. Create it inside a running event loop; the core's blocking work runs on a
    thread pool, async host methods and event handlers on this loop, so the loop is
    never blocked by the core."""

    def __init__(
        self,
        participant_id: str = "",
        *,
        config: ConfigArg = None,
        persistence: PersistenceArg = None,
        events: EventsArg = None,
        hints: HintsArg = None,
        clock: ManualClock | None = None,
        library: str | os.PathLike[str] | None = None,
    ) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError as exc:
            raise RuntimeError("create AsyncReliabilityManager inside a running event loop (from async code)") from exc
        self._session = _open("async", participant_id, config, persistence, events, hints, clock, library, loop)
        super().__init__(self._session.acall)

    @property
    def handle(self) -> int:
        """The manager's handle in the core library."""
        return self._session.handle

    async def close(self) -> Result[api_pb2.CloseResponse]:
        """Closes the manager and releases it."""
        res = await super().close()
        self._session.release()
        return res

    async def __aenter__(self) -> AsyncReliabilityManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

