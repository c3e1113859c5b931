"""The ctypes binding of the core library (libsdskit.so, core/cabi) and the host side of
its begin-style calls.

One process loads the library once (the Go runtime cannot be unloaded, nor survive
fork()). The core calls the host through one C callback, _on_begin, which this module
keeps alive for the life of the process; the callback finds the manager's Session by its
user data and answers with sdskit_complete, at once for plain host methods and from an
event loop for async ones. Events are queued and delivered after the call that produced
them returned, outside every lock of the core (see Session).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import ctypes
import inspect
import itertools
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Literal

from sdskit._batch import BATCH_METHOD_ID, apply_batch
from sdskit.v1 import events_pb2
from sdskit.v1.sdk import (
    EVENT_SINK_SERVICE,
    PERSISTENCE_SERVICE,
    ErrorCode,
    Event,
    EventHandler,
    SdsError,
    check_library,
    dispatch_event,
    encode_error,
    encode_value,
    event_from_proto,
    host_call,
)

log = logging.getLogger("sdskit")

ENV_LIBRARY = "SDSKIT_LIBRARY"
"""Environment variable naming the core library to load instead of the bundled one."""


class LibraryNotFoundError(ImportError):
    """The core library is neither bundled with the package nor named by SDSKIT_LIBRARY."""


class _Buf(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint8)), ("len", ctypes.c_size_t)]


_byref = ctypes.byref
_string_at = ctypes.string_at

_BEGIN = ctypes.CFUNCTYPE(
    None,
    ctypes.c_void_p,
    ctypes.c_uint64,
    ctypes.c_char_p,
    ctypes.c_uint32,
    ctypes.POINTER(ctypes.c_uint8),
    ctypes.c_size_t,
)


def _default_path() -> Path:
    return Path(__file__).resolve().parent / "_lib" / "libsdskit.so"


class Library:
    """The loaded core library with its function signatures; checked against the ABI
    version and IDL hash this package was generated with (LibraryMismatchError)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        if not Path(self.path).exists():
            raise LibraryNotFoundError(
                f"the sdskit core library is missing at {self.path}: reinstall the package, "
                f"build it with `make lib` and set {ENV_LIBRARY}, or run `make test-python`"
            )
        lib = ctypes.CDLL(self.path)
        self._lib = lib
        u8p = ctypes.POINTER(ctypes.c_uint8)
        bufp = ctypes.POINTER(_Buf)
        lib.sdskit_abi_version.argtypes = []
        lib.sdskit_abi_version.restype = ctypes.c_uint32
        lib.sdskit_idl_hash.argtypes = []
        lib.sdskit_idl_hash.restype = ctypes.c_char_p
        check_library(int(lib.sdskit_abi_version()), (lib.sdskit_idl_hash() or b"").decode("ascii", "replace"), self.path)
        lib.sdskit_create.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            _BEGIN,
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_uint64,
            ctypes.POINTER(ctypes.c_uint64),
            bufp,
        ]
        lib.sdskit_create.restype = ctypes.c_int32
        lib.sdskit_call.argtypes = [ctypes.c_uint64, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t, bufp]
        lib.sdskit_call.restype = ctypes.c_int32
        self._call_fn = lib.sdskit_call
        lib.sdskit_close.argtypes = [ctypes.c_uint64, bufp]
        lib.sdskit_close.restype = ctypes.c_int32
        lib.sdskit_complete.argtypes = [ctypes.c_uint64, ctypes.c_char_p, ctypes.c_size_t]
        lib.sdskit_complete.restype = ctypes.c_int32
        lib.sdskit_free.argtypes = [u8p]
        lib.sdskit_free.restype = None
        lib.sdskit_clock_new.argtypes = [ctypes.c_int64]
        lib.sdskit_clock_new.restype = ctypes.c_uint64
        for name in ("sdskit_clock_advance", "sdskit_clock_set"):
            fn = getattr(lib, name)
            fn.argtypes = [ctypes.c_uint64, ctypes.c_int64]
            fn.restype = ctypes.c_int32
        lib.sdskit_clock_now.argtypes = [ctypes.c_uint64]
        lib.sdskit_clock_now.restype = ctypes.c_int64
        lib.sdskit_clock_free.argtypes = [ctypes.c_uint64]
        lib.sdskit_clock_free.restype = ctypes.c_int32
        lib.sdskit_testing_bloom.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32, ctypes.c_double, bufp]
        lib.sdskit_testing_bloom.restype = ctypes.c_int32
        lib.sdskit_testing_bloom_contains.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint32,
            ctypes.c_double,
            ctypes.POINTER(ctypes.c_int32),
        ]
        lib.sdskit_testing_bloom_contains.restype = ctypes.c_int32

    @property
    def abi_version(self) -> int:
        return int(self._lib.sdskit_abi_version())

    @property
    def idl_hash(self) -> str:
        raw: bytes = self._lib.sdskit_idl_hash()
        return raw.decode("ascii")

    def _take(self, buf: _Buf) -> bytes:
        p = buf.data
        if not p:
            raise SdsError(ErrorCode.INTERNAL, "the core returned no result buffer", "Call")
        try:
            return _string_at(p, buf.len)
        finally:
            self._lib.sdskit_free(p)

    def create(self, req: bytes, user_data: int, caps: int, clock: int) -> tuple[int, bytes]:
        handle = ctypes.c_uint64(0)
        buf = _Buf()
        self._lib.sdskit_create(req, len(req), _begin_thunk, user_data, caps, clock, ctypes.byref(handle), ctypes.byref(buf))
        return int(handle.value), self._take(buf)

    def call(self, handle: int, method_id: int, req: bytes) -> bytes:
        buf = _Buf()
        self._call_fn(handle, method_id, req, len(req), _byref(buf))
        return self._take(buf)

    def close(self, handle: int) -> bytes:
        buf = _Buf()
        self._lib.sdskit_close(handle, ctypes.byref(buf))
        return self._take(buf)

    def complete(self, token: int, result: bytes) -> int:
        return int(self._lib.sdskit_complete(token, result, len(result)))

    def clock_new(self, start_unix_ms: int) -> int:
        return int(self._lib.sdskit_clock_new(start_unix_ms))

    def clock_advance(self, clock: int, ms: int) -> int:
        return int(self._lib.sdskit_clock_advance(clock, ms))

    def clock_set(self, clock: int, unix_ms: int) -> int:
        return int(self._lib.sdskit_clock_set(clock, unix_ms))

    def clock_now(self, clock: int) -> int:
        return int(self._lib.sdskit_clock_now(clock))

    def clock_free(self, clock: int) -> int:
        return int(self._lib.sdskit_clock_free(clock))

    def testing_bloom(self, ids_json: bytes, capacity: int, error_rate: float) -> bytes:
        buf = _Buf()
        self._lib.sdskit_testing_bloom(ids_json, len(ids_json), capacity, error_rate, ctypes.byref(buf))
        return self._take(buf)

    def testing_bloom_contains(self, bloom: bytes, message_id: str, capacity: int, error_rate: float) -> bool:
        out = ctypes.c_int32(-1)
        raw = message_id.encode("utf-8")
        rc = self._lib.sdskit_testing_bloom_contains(bloom, len(bloom), raw, len(raw), capacity, error_rate, ctypes.byref(out))
        if rc != 0:
            raise SdsError(int(rc), "cannot test the bloom filter", "TestingBloomContains")
        return out.value == 1


_lock = threading.Lock()
_library: Library | None = None


def load_library(path: str | os.PathLike[str] | None = None) -> Library:
    """Loads (once per process) and checks the core library: path, else $SDSKIT_LIBRARY,
    else the library bundled in the package. Raises LibraryMismatchError when its ABI
    version or IDL hash differ from this package's, LibraryNotFoundError when absent."""
    global _library
    with _lock:
        if path is None and _library is not None:
            return _library
        want = Path(path or os.environ.get(ENV_LIBRARY) or _default_path()).resolve()
        if _library is not None and Path(_library.path) == want:
            return _library
        lib = Library(want)
        if _library is None:
            _library = lib
        return lib


# --- host calls ------------------------------------------------------------------------

_sessions: dict[int, Session] = {}
_session_ids = itertools.count(1)
_tls = threading.local()
_draining: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar("sdskit_draining", default=frozenset())


def _in_call() -> set[int]:
    s: set[int] | None = getattr(_tls, "in_call", None)
    if s is None:
        s = set()
        _tls.in_call = s
    return s


def _on_begin(user_data: int | None, token: int, service: bytes | None, method_id: int, req: Any, req_len: int) -> None:
    """The C callback of every host call (runs on the calling or a Go thread)."""
    try:
        data = ctypes.string_at(req, req_len) if req_len else b""
        session = _sessions.get(user_data or 0)
        name = (service or b"").decode("utf-8", "replace")
        if session is None:
            raise SdsError(ErrorCode.INTERNAL, "the manager of this host call is closed", name)
        session.begin(token, name, int(method_id), data)
    except BaseException as exc:  # noqa: BLE001 - nothing may propagate into C
        try:
            err = exc if isinstance(exc, SdsError) else SdsError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}", "begin")
            lib = _library
            if lib is not None:
                lib.complete(token, encode_error(err))
        except BaseException:  # noqa: BLE001
            log.exception("sdskit: cannot answer a host call")


_begin_thunk = _BEGIN(_on_begin)  # alive for the life of the process

_OK_EMPTY = encode_value(None)

EventsArg = EventHandler | Callable[[Event], object] | None


class _LoopThread:
    """A private event loop on a daemon thread, for async host methods and handlers of a
    synchronous manager."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="sdskit-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


async def _await(aw: Awaitable[Any]) -> Any:
    return await aw


_executor: concurrent.futures.ThreadPoolExecutor | None = None


def executor() -> concurrent.futures.ThreadPoolExecutor:
    """The threads that run the blocking core calls of asyncio managers."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="sdskit-call")
        return _executor


class Session:
    """One manager's connection to the core: its handle, its host implementations and
    its event delivery.

    Host methods run on the thread that performs the core call (a Go thread for the
    background sweeps); an async host method runs on the manager's event loop (the
    running loop of an AsyncReliabilityManager, a private loop thread otherwise).

    Events are queued when the core reports them and delivered, in order and outside
    every lock of the core, on the thread (or task) whose call produced them right after
    that call returned, so that an event handler may call the manager again. Events of
    background work are delivered by a dispatcher thread (synchronous managers) or a
    task on the loop (asyncio managers)."""

    def __init__(
        self,
        lib: Library,
        *,
        mode: Literal["sync", "async"],
        impls: Mapping[str, object | None],
        events: EventsArg,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.lib = lib
        self.mode = mode
        self.impls = {k: v for k, v in impls.items() if v is not None}
        self.events = events
        self.loop = loop
        self.handle = 0
        self.id = next(_session_ids)
        self._pending: collections.deque[Event] = collections.deque()
        self._drain_lock = threading.RLock()
        self._adrain_lock: asyncio.Lock | None = None
        self._loop_thread: _LoopThread | None = None
        self._dispatcher: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = False
        self._state_lock = threading.Lock()

    # -- lifecycle

    def create(self, req: bytes, caps: int, clock: int) -> bytes:
        _sessions[self.id] = self
        handle, res = self.lib.create(req, self.id, caps, clock)
        if handle == 0:
            _sessions.pop(self.id, None)
        self.handle = handle
        return res

    def release(self) -> None:
        """Forgets the session after its manager closed: stops its threads."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
        if self.mode == "sync":
            self.drain()
        _sessions.pop(self.id, None)
        self._wake.set()
        if self._dispatcher is not None and self._dispatcher is not threading.current_thread():
            self._dispatcher.join(timeout=5)
        if self._loop_thread is not None:
            self._loop_thread.stop()

    # -- calls into the core

    def call(self, method_id: int, req: bytes) -> bytes:
        """A blocking core call on this thread, then delivery of its events (sync mode)."""
        if self.events is None:  # nothing to queue or deliver: no bookkeeping
            return self.lib.call(self.handle, method_id, req)
        mine = _in_call()
        nested = self.id in mine
        mine.add(self.id)
        try:
            out = self.lib.call(self.handle, method_id, req)
        finally:
            if not nested:
                mine.discard(self.id)
        if self.mode == "sync":
            self.drain()
        return out

    def call_in_thread(self, method_id: int, req: bytes) -> bytes:
        """The blocking part of an asyncio call (runs on an executor thread)."""
        mine = _in_call()
        mine.add(self.id)
        try:
            return self.lib.call(self.handle, method_id, req)
        finally:
            mine.discard(self.id)

    async def acall(self, method_id: int, req: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(executor(), self.call_in_thread, method_id, req)
        await self.adrain()
        return out

    # -- calls from the core

    def begin(self, token: int, service: str, method_id: int, data: bytes) -> None:
        if service == EVENT_SINK_SERVICE:
            self._queue_event(data)
            self.lib.complete(token, _OK_EMPTY)
            return
        impl = self.impls.get(service)
        if impl is None:
            self.lib.complete(token, encode_error(SdsError(ErrorCode.INVALID_ARGUMENT, f"no {service} implementation", service)))
            return
        if service == PERSISTENCE_SERVICE and method_id == BATCH_METHOD_ID:
            out = apply_batch(impl, data)
        else:
            out = host_call(impl, service, method_id, data)
        if isinstance(out, bytes):
            self.lib.complete(token, out)
            return
        self._complete_later(token, out)

    def _host_loop(self) -> asyncio.AbstractEventLoop:
        if self.mode == "async" and self.loop is not None:
            return self.loop
        with self._state_lock:
            if self._loop_thread is None:
                self._loop_thread = _LoopThread()
            return self._loop_thread.loop

    def _complete_later(self, token: int, pending: Awaitable[bytes]) -> None:
        loop = self._host_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            if inspect.iscoroutine(pending):
                pending.close()
            raise SdsError(
                ErrorCode.INTERNAL,
                "an async host method was called on its own event loop's thread: call the asyncio manager's methods with await",
                "begin",
            )
        fut = asyncio.run_coroutine_threadsafe(_await(pending), loop)

        def done(f: concurrent.futures.Future[Any]) -> None:
            try:
                res = f.result()
                data = res if isinstance(res, bytes) else encode_error(SdsError(ErrorCode.INTERNAL, "host call answered no bytes", "begin"))
            except BaseException as exc:  # noqa: BLE001
                data = encode_error(SdsError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}", "begin"))
            self.lib.complete(token, data)

        fut.add_done_callback(done)

    # -- events

    def _queue_event(self, data: bytes) -> None:
        if self.events is None:
            return
        try:
            ev = event_from_proto(events_pb2.Event.FromString(data))
        except Exception:  # noqa: BLE001
            log.exception("sdskit: cannot decode an event")
            return
        if ev is None:
            return
        self._pending.append(ev)
        if self.id in _in_call():
            return  # delivered by the caller once its call returned
        if self.mode == "sync":
            self._ensure_dispatcher()
            self._wake.set()
        elif self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._spawn_adrain)

    def _handle(self, ev: Event) -> object:
        h = self.events
        if isinstance(h, EventHandler):
            return dispatch_event(h, ev)
        if h is not None:
            return h(ev)
        return None

    def drain(self) -> None:
        """Delivers the queued events on this thread (sync mode)."""
        if not self._pending:
            return
        if self.id in getattr(_tls, "draining", ()):
            return  # a handler called the manager: the outer drain goes on
        with self._drain_lock:
            draining: set[int] = getattr(_tls, "draining", set())
            _tls.draining = draining
            draining.add(self.id)
            try:
                while True:
                    try:
                        ev = self._pending.popleft()
                    except IndexError:
                        return
                    try:
                        out = self._handle(ev)
                        if inspect.isawaitable(out):
                            asyncio.run_coroutine_threadsafe(_await(out), self._host_loop()).result()
                    except Exception:  # noqa: BLE001 - a handler never breaks the core
                        log.exception("sdskit: event handler failed on %s", type(ev).__name__)
            finally:
                draining.discard(self.id)

    def _ensure_dispatcher(self) -> None:
        with self._state_lock:
            if self._dispatcher is not None or self._closed:
                return
            self._dispatcher = threading.Thread(target=self._dispatch_loop, name="sdskit-events", daemon=True)
            self._dispatcher.start()

    def _dispatch_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            self.drain()
            if self._closed:
                return

    async def adrain(self) -> None:
        """Delivers the queued events on the running loop (async mode)."""
        if not self._pending:
            return
        if self.id in _draining.get():
            asyncio.get_running_loop().call_soon(self._spawn_adrain)
            return
        if self._adrain_lock is None:
            self._adrain_lock = asyncio.Lock()
        async with self._adrain_lock:
            token = _draining.set(_draining.get() | {self.id})
            try:
                while True:
                    try:
                        ev = self._pending.popleft()
                    except IndexError:
                        return
                    try:
                        out = self._handle(ev)
                        if inspect.isawaitable(out):
                            await out
                    except Exception:  # noqa: BLE001 - a handler never breaks the core
                        log.exception("sdskit: event handler failed on %s", type(ev).__name__)
            finally:
                _draining.reset(token)

    def _spawn_adrain(self) -> None:
        coro: Coroutine[Any, Any, None] = self.adrain()
        task = asyncio.ensure_future(coro)
        _background.add(task)
        task.add_done_callback(_background.discard)


_background: set[asyncio.Future[None]] = set()
