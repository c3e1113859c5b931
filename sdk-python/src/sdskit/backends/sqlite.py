"""A Persistence backend on the standard library's sqlite3: the template application
teams copy to write their own backend against the generated Persistence protocol."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sdskit.v1 import api_pb2, state_pb2, wire_pb2
from sdskit.v1.sdk import Err, ErrorCode, Ok, Result, SdsError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
  channel_id TEXT PRIMARY KEY,
  lamport    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
  channel_id TEXT NOT NULL,
  message_id TEXT NOT NULL,
  lamport    INTEGER NOT NULL,
  data       BLOB NOT NULL,
  PRIMARY KEY (channel_id, message_id)
);
CREATE TABLE IF NOT EXISTS hints (
  channel_id TEXT NOT NULL,
  message_id TEXT NOT NULL,
  hint       BLOB NOT NULL,
  PRIMARY KEY (channel_id, message_id)
);
-- outgoing, incoming, outgoing_repair, incoming_repair: one table, keyed by kind;
-- seq keeps the insertion order an upsert must preserve.
CREATE TABLE IF NOT EXISTS buffers (
  channel_id TEXT NOT NULL,
  kind       TEXT NOT NULL,
  message_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  data       BLOB NOT NULL,
  PRIMARY KEY (channel_id, kind, message_id)
);
-- MAX(seq) of an upsert and the ordered load read this index, not the rows.
CREATE INDEX IF NOT EXISTS buffers_seq ON buffers (channel_id, kind, seq);
"""

_OUTGOING, _INCOMING, _OUT_REPAIR, _IN_REPAIR = "outgoing", "incoming", "outgoing_repair", "incoming_repair"


class SQLitePersistence:
    """Persistence on an SQLite database file (WAL), implementing the Transactions
    capability: the core wraps every batch of writes of one operation in begin/commit,
    so memory and disk change together or not at all (the core rolls its memory back
    when a batch fails). One instance serves one manager; the core calls it one method
    at a time, from whichever thread performs the operation. A sqlite3 error becomes an
    Err(PERSISTENCE) carrying its text.

    synchronous: "NORMAL" (default; survives a crash of the process) or "FULL" (also a
    power loss)."""

    def __init__(self, path: str, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "OFF"):
            raise ValueError(f"synchronous must be NORMAL, FULL or OFF, not {synchronous!r}")
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.executescript(_SCHEMA)
        self._in_tx = False

    def close(self) -> None:
        """Closes the database."""
        with self._lock:
            self._db.close()

    def _exec(self, op: str, sql: str, *args: Any) -> Result[None]:
        with self._lock:
            try:
                self._db.execute(sql, args)
            except sqlite3.Error as exc:
                return Err(SdsError(ErrorCode.PERSISTENCE, f"sqlite3: {exc}", op))
        return Ok(None)

    def _put(self, op: str, channel_id: str, kind: str, message_id: str, data: bytes) -> Result[None]:
        return self._exec(
            op,
            "INSERT INTO buffers(channel_id, kind, message_id, seq, data) VALUES (?, ?, ?, "
            "(SELECT COALESCE(MAX(seq), 0) + 1 FROM buffers WHERE channel_id = ? AND kind = ?), ?) "
            "ON CONFLICT(channel_id, kind, message_id) DO UPDATE SET data = excluded.data",
            channel_id,
            kind,
            message_id,
            channel_id,
            kind,
            data,
        )

    def _remove(self, op: str, channel_id: str, kind: str, message_id: str) -> Result[None]:
        return self._exec(
            op, "DELETE FROM buffers WHERE channel_id = ? AND kind = ? AND message_id = ?", channel_id, kind, message_id
        )

    # -- the Persistence protocol

    def save_lamport(self, req: state_pb2.SaveLamportRequest) -> Result[None]:
        return self._exec(
            "SaveLamport",
            "INSERT INTO channels(channel_id, lamport) VALUES (?, ?) "
            "ON CONFLICT(channel_id) DO UPDATE SET lamport = excluded.lamport",
            req.channel_id,
            req.lamport_timestamp,
        )

    def append_log_entry(self, req: state_pb2.AppendLogEntryRequest) -> Result[None]:
        m = req.message
        return self._exec(
            "AppendLogEntry",
            "INSERT INTO log(channel_id, message_id, lamport, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(channel_id, message_id) DO UPDATE SET lamport = excluded.lamport, data = excluded.data",
            req.channel_id,
            m.message_id,
            m.lamport_timestamp,
            m.SerializeToString(),
        )

    def remove_log_entry(self, req: state_pb2.RemoveLogEntryRequest) -> Result[None]:
        res = self._exec(
            "RemoveLogEntry", "DELETE FROM log WHERE channel_id = ? AND message_id = ?", req.channel_id, req.message_id
        )
        if isinstance(res, Err):
            return res
        return self._exec(
            "RemoveLogEntry", "DELETE FROM hints WHERE channel_id = ? AND message_id = ?", req.channel_id, req.message_id
        )

    def set_retrieval_hint(self, req: state_pb2.SetRetrievalHintRequest) -> Result[None]:
        return self._exec(
            "SetRetrievalHint",
            "INSERT INTO hints(channel_id, message_id, hint) VALUES (?, ?, ?) "
            "ON CONFLICT(channel_id, message_id) DO UPDATE SET hint = excluded.hint",
            req.channel_id,
            req.message_id,
            req.retrieval_hint,
        )

    def save_outgoing(self, req: state_pb2.SaveOutgoingRequest) -> Result[None]:
        return self._put(
            "SaveOutgoing", req.channel_id, _OUTGOING, req.message.message.message_id, req.message.SerializeToString()
        )

    def remove_outgoing(self, req: state_pb2.RemoveOutgoingRequest) -> Result[None]:
        return self._remove("RemoveOutgoing", req.channel_id, _OUTGOING, req.message_id)

    def save_incoming(self, req: state_pb2.SaveIncomingRequest) -> Result[None]:
        return self._put(
            "SaveIncoming", req.channel_id, _INCOMING, req.message.message.message_id, req.message.SerializeToString()
        )

    def remove_incoming(self, req: state_pb2.RemoveIncomingRequest) -> Result[None]:
        return self._remove("RemoveIncoming", req.channel_id, _INCOMING, req.message_id)

    def save_outgoing_repair(self, req: state_pb2.SaveOutgoingRepairRequest) -> Result[None]:
        return self._put(
            "SaveOutgoingRepair", req.channel_id, _OUT_REPAIR, req.entry.entry.message_id, req.entry.SerializeToString()
        )

    def remove_outgoing_repair(self, req: state_pb2.RemoveOutgoingRepairRequest) -> Result[None]:
        return self._remove("RemoveOutgoingRepair", req.channel_id, _OUT_REPAIR, req.message_id)

    def save_incoming_repair(self, req: state_pb2.SaveIncomingRepairRequest) -> Result[None]:
        return self._put(
            "SaveIncomingRepair", req.channel_id, _IN_REPAIR, req.entry.entry.message_id, req.entry.SerializeToString()
        )

    def remove_incoming_repair(self, req: state_pb2.RemoveIncomingRepairRequest) -> Result[None]:
        return self._remove("RemoveIncomingRepair", req.channel_id, _IN_REPAIR, req.message_id)

    def drop_channel(self, req: state_pb2.DropChannelRequest) -> Result[None]:
        for table in ("channels", "log", "hints", "buffers"):
            res = self._exec("DropChannel", f"DELETE FROM {table} WHERE channel_id = ?", req.channel_id)
            if isinstance(res, Err):
                return res
        return Ok(None)

    def load_all_for_channel(self, req: state_pb2.LoadAllForChannelRequest) -> Result[state_pb2.ChannelSnapshot]:
        cid = req.channel_id
        snap = state_pb2.ChannelSnapshot(channel_id=cid)
        with self._lock:
            try:
                db = self._db
                row = db.execute("SELECT lamport FROM channels WHERE channel_id = ?", (cid,)).fetchone()
                if row is not None:
                    snap.lamport_timestamp = row[0]
                for (data,) in db.execute(
                    "SELECT data FROM log WHERE channel_id = ? ORDER BY lamport, message_id", (cid,)
                ):
                    snap.log.append(wire_pb2.SdsMessage.FromString(data))
                for kind, data in db.execute(
                    "SELECT kind, data FROM buffers WHERE channel_id = ? ORDER BY kind, seq", (cid,)
                ):
                    if kind == _OUTGOING:
                        snap.outgoing.append(state_pb2.UnacknowledgedMessage.FromString(data))
                    elif kind == _INCOMING:
                        snap.incoming.append(state_pb2.IncomingMessage.FromString(data))
                    elif kind == _OUT_REPAIR:
                        snap.outgoing_repair.append(state_pb2.OutgoingRepairEntry.FromString(data))
                    elif kind == _IN_REPAIR:
                        snap.incoming_repair.append(state_pb2.IncomingRepairEntry.FromString(data))
                for mid, hint in db.execute(
                    "SELECT message_id, hint FROM hints WHERE channel_id = ? ORDER BY message_id", (cid,)
                ):
                    snap.retrieval_hints.add(message_id=mid, retrieval_hint=hint)
            except (sqlite3.Error, ValueError) as exc:
                return Err(SdsError(ErrorCode.PERSISTENCE, f"sqlite3: {exc}", "LoadAllForChannel"))
        return Ok(snap)

    # -- the Transactions capability: one transaction per batch

    def begin(self, req: api_pb2.BeginRequest) -> Result[None]:
        with self._lock:
            res = self._exec("Begin", "BEGIN IMMEDIATE")
            self._in_tx = isinstance(res, Ok)
            return res

    def commit(self, req: api_pb2.CommitRequest) -> Result[None]:
        with self._lock:
            self._in_tx = False
            res = self._exec("Commit", "COMMIT")
            if isinstance(res, Err) and self._db.in_transaction:
                self._db.execute("ROLLBACK")
            return res

    def rollback(self, req: api_pb2.RollbackRequest) -> Result[None]:
        with self._lock:
            self._in_tx = False
            if not self._db.in_transaction:
                return Ok(None)
            return self._exec("Rollback", "ROLLBACK")
