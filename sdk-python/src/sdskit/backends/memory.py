"""An in-memory Persistence with transactions, call counters and failure injection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sdskit.v1 import api_pb2, state_pb2, wire_pb2
from sdskit.v1.sdk import PERSISTENCE_METHODS, Err, ErrorCode, Ok, Result, SdsError

PERSISTENCE_METHOD_NAMES: tuple[str, ...] = tuple(m.name for m in PERSISTENCE_METHODS.values())
"""Every method MemoryPersistence counts and can make fail, by IDL name (SaveLamport, …, Rollback)."""


@dataclass
class _Channel:
    has_lamport: bool = False
    lamport: int = 0
    log: dict[str, wire_pb2.SdsMessage] = field(default_factory=dict)
    hints: dict[str, bytes] = field(default_factory=dict)
    outgoing: dict[str, state_pb2.UnacknowledgedMessage] = field(default_factory=dict)
    incoming: dict[str, state_pb2.IncomingMessage] = field(default_factory=dict)
    outgoing_repair: dict[str, state_pb2.OutgoingRepairEntry] = field(default_factory=dict)
    incoming_repair: dict[str, state_pb2.IncomingRepairEntry] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (
            self.has_lamport
            or self.log
            or self.hints
            or self.outgoing
            or self.incoming
            or self.outgoing_repair
            or self.incoming_repair
        )


_Write = Callable[[dict[str, _Channel]], None]


class MemoryPersistence:
    """An in-memory backend implementing Persistence and PersistenceTransactions, for tests.

    The writes of a channel between begin and commit are staged and applied together at
    commit (rollback, or a failing commit, discards them); a write outside a transaction
    applies at once. Stored messages are copies; upserts keep the insertion position of
    the entry they replace; remove_log_entry also drops the message's retrieval hint; the
    log loads oldest-first. Pass the same instance to a new manager to simulate a restart.

    calls(name) counts every call of a method (failed ones too); fail_op(name) makes every
    call of it fail until heal; fail_nth(name, n) makes only the n-th call from now fail.
    A failing call returns Err(PERSISTENCE "injected failure: <name>") and has no effect.
    Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}
        self._tx: dict[str, list[_Write]] = {}
        self._calls: dict[str, int] = {}
        self._fail_ops: set[str] = set()
        self._fail_nth: dict[str, int] = {}

    # -- failure injection and inspection

    @staticmethod
    def _check(name: str) -> None:
        if name not in PERSISTENCE_METHOD_NAMES:
            raise ValueError(f"unknown persistence method {name!r} (one of {', '.join(PERSISTENCE_METHOD_NAMES)})")

    def fail_op(self, name: str) -> None:
        """Makes every later call of the method fail until heal."""
        self._check(name)
        with self._lock:
            self._fail_ops.add(name)

    def fail_nth(self, name: str, n: int) -> None:
        """Makes only the n-th call of the method from now fail (1 = the next), once."""
        self._check(name)
        if n < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            self._fail_nth[name] = n

    def heal(self, *names: str) -> None:
        """Removes the injected failures of the methods, or of every method."""
        with self._lock:
            if not names:
                self._fail_ops.clear()
                self._fail_nth.clear()
            for n in names:
                self._fail_ops.discard(n)
                self._fail_nth.pop(n, None)

    def calls(self, name: str) -> int:
        """How many times the method was called, failed calls included."""
        self._check(name)
        with self._lock:
            return self._calls.get(name, 0)

    def channels(self) -> list[str]:
        """The channels with any stored state, sorted."""
        with self._lock:
            return sorted(self._channels)

    def snapshot(self, channel_id: str) -> state_pb2.ChannelSnapshot:
        """What load_all_for_channel would return, without counting a call."""
        with self._lock:
            return self._snapshot(channel_id)

    # -- internals

    def _attempt(self, name: str) -> Err | None:
        self._calls[name] = self._calls.get(name, 0) + 1
        fail = name in self._fail_ops
        n = self._fail_nth.get(name)
        if n is not None:
            if n <= 1:
                del self._fail_nth[name]
                fail = True
            else:
                self._fail_nth[name] = n - 1
        if fail:
            return Err(SdsError(ErrorCode.PERSISTENCE, f"injected failure: {name}", name))
        return None

    def _write(self, name: str, channel_id: str, w: _Write) -> Result[None]:
        with self._lock:
            err = self._attempt(name)
            if err is not None:
                return err
            staged = self._tx.get(channel_id)
            if staged is not None:
                staged.append(w)
            else:
                self._apply(channel_id, [w])
        return Ok(None)

    def _apply(self, channel_id: str, writes: list[_Write]) -> None:
        for w in writes:
            w(self._channels)
        ch = self._channels.get(channel_id)
        if ch is not None and ch.empty():
            del self._channels[channel_id]

    def _snapshot(self, channel_id: str) -> state_pb2.ChannelSnapshot:
        s = state_pb2.ChannelSnapshot(channel_id=channel_id)
        ch = self._channels.get(channel_id)
        if ch is None:
            return s
        s.lamport_timestamp = ch.lamport
        for m in sorted(ch.log.values(), key=lambda m: (m.lamport_timestamp, m.message_id)):
            s.log.add().CopyFrom(m)
        for o in ch.outgoing.values():
            s.outgoing.add().CopyFrom(o)
        for i in ch.incoming.values():
            s.incoming.add().CopyFrom(i)
        for r in ch.outgoing_repair.values():
            s.outgoing_repair.add().CopyFrom(r)
        for q in ch.incoming_repair.values():
            s.incoming_repair.add().CopyFrom(q)
        for mid in sorted(ch.hints):
            s.retrieval_hints.add(message_id=mid, retrieval_hint=ch.hints[mid])
        return s

    # -- the Persistence protocol

    def save_lamport(self, req: state_pb2.SaveLamportRequest) -> Result[None]:
        cid, ts = req.channel_id, req.lamport_timestamp

        def w(chs: dict[str, _Channel]) -> None:
            ch = chs.setdefault(cid, _Channel())
            ch.has_lamport, ch.lamport = True, ts

        return self._write("SaveLamport", cid, w)

    def append_log_entry(self, req: state_pb2.AppendLogEntryRequest) -> Result[None]:
        cid, msg = req.channel_id, req.message

        def w(chs: dict[str, _Channel]) -> None:
            chs.setdefault(cid, _Channel()).log[msg.message_id] = msg

        return self._write("AppendLogEntry", cid, w)

    def remove_log_entry(self, req: state_pb2.RemoveLogEntryRequest) -> Result[None]:
        cid, mid = req.channel_id, req.message_id

        def w(chs: dict[str, _Channel]) -> None:
            ch = chs.get(cid)
            if ch is not None:
                ch.log.pop(mid, None)
                ch.hints.pop(mid, None)

        return self._write("RemoveLogEntry", cid, w)

    def set_retrieval_hint(self, req: state_pb2.SetRetrievalHintRequest) -> Result[None]:
        cid, mid, hint = req.channel_id, req.message_id, req.retrieval_hint

        def w(chs: dict[str, _Channel]) -> None:
            chs.setdefault(cid, _Channel()).hints[mid] = hint

        return self._write("SetRetrievalHint", cid, w)

    def save_outgoing(self, req: state_pb2.SaveOutgoingRequest) -> Result[None]:
        cid, e = req.channel_id, req.message

        def w(chs: dict[str, _Channel]) -> None:
            chs.setdefault(cid, _Channel()).outgoing[e.message.message_id] = e

        return self._write("SaveOutgoing", cid, w)

    def remove_outgoing(self, req: state_pb2.RemoveOutgoingRequest) -> Result[None]:
        cid, mid = req.channel_id, req.message_id

        def w(chs: dict[str, _Channel]) -> None:
            ch = chs.get(cid)
            if ch is not None:
                ch.outgoing.pop(mid, None)

        return self._write("RemoveOutgoing", cid, w)

    def save_incoming(self, req: state_pb2.SaveIncomingRequest) -> Result[None]:
        cid, e = req.channel_id, req.message

        def w(chs: dict[str, _Channel]) -> None:
            chs.setdefault(cid, _Channel()).incoming[e.message.message_id] = e

        return self._write("SaveIncoming", cid, w)

    def remove_incoming(self, req: state_pb2.RemoveIncomingRequest) -> Result[None]:
        cid, mid = req.channel_id, req.message_id

        def w(chs: dict[str, _Channel]) -> None:
            ch = chs.get(cid)
            if ch is not None:
                ch.incoming.pop(mid, None)

        return self._write("RemoveIncoming", cid, w)

    def save_outgoing_repair(self, req: state_pb2.SaveOutgoingRepairRequest) -> Result[None]:
        cid, e = req.channel_id, req.entry

        def w(chs: dict[str, _Channel]) -> None:
            chs.setdefault(cid, _Channel()).outgoing_repair[e.entry.message_id] = e

        return self._write("SaveOutgoingRepair", cid, w)

    def remove_outgoing_repair(self, req: state_pb2.RemoveOutgoingRepairRequest) -> Result[None]:
        cid, mid = req.channel_id, req.message_id

        def w(chs: dict[str, _Channel]) -> None:
            ch = chs.get(cid)
            if ch is not None:
                ch.outgoing_repair.pop(mid, None)

        return self._write("RemoveOutgoingRepair", cid, w)

    def save_incoming_repair(self, req: state_pb2.SaveIncomingRepairRequest) -> Result[None]:
        cid, e = req.channel_id, req.entry

        def w(chs: dict[str, _Channel]) -> None:
            chs.setdefault(cid, _Channel()).incoming_repair[e.entry.message_id] = e

        return self._write("SaveIncomingRepair", cid, w)

    def remove_incoming_repair(self, req: state_pb2.RemoveIncomingRepairRequest) -> Result[None]:
        cid, mid = req.channel_id, req.message_id

        def w(chs: dict[str, _Channel]) -> None:
            ch = chs.get(cid)
            if ch is not None:
                ch.incoming_repair.pop(mid, None)

        return self._write("RemoveIncomingRepair", cid, w)

    def drop_channel(self, req: state_pb2.DropChannelRequest) -> Result[None]:
        cid = req.channel_id

        def w(chs: dict[str, _Channel]) -> None:
            chs.pop(cid, None)

        return self._write("DropChannel", cid, w)

    def load_all_for_channel(self, req: state_pb2.LoadAllForChannelRequest) -> Result[state_pb2.ChannelSnapshot]:
        with self._lock:
            err = self._attempt("LoadAllForChannel")
            if err is not None:
                return err
            return Ok(self._snapshot(req.channel_id))

    # -- the Transactions capability

    def begin(self, req: api_pb2.BeginRequest) -> Result[None]:
        with self._lock:
            err = self._attempt("Begin")
            if err is not None:
                return err
            if req.channel_id in self._tx:
                return Err(SdsError(ErrorCode.PERSISTENCE, f"begin: a transaction is already open on {req.channel_id}", "Begin"))
            self._tx[req.channel_id] = []
        return Ok(None)

    def commit(self, req: api_pb2.CommitRequest) -> Result[None]:
        with self._lock:
            staged = self._tx.pop(req.channel_id, None)
            err = self._attempt("Commit")
            if err is not None:
                return err
            if staged is None:
                return Err(SdsError(ErrorCode.PERSISTENCE, f"commit without begin on {req.channel_id}", "Commit"))
            self._apply(req.channel_id, staged)
        return Ok(None)

    def rollback(self, req: api_pb2.RollbackRequest) -> Result[None]:
        with self._lock:
            self._tx.pop(req.channel_id, None)
            err = self._attempt("Rollback")
            if err is not None:
                return err
        return Ok(None)
