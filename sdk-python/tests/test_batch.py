"""A Python Persistence receives one call per batch (CreateRequest.host_persistence_batches):
Begin, the ops and Commit run on the Python side, so a wrap crosses the C boundary once."""

from __future__ import annotations

import pytest

import sdskit
from sdskit import _native
from sdskit._batch import BATCH_METHOD_ID, apply_batch
from sdskit.backends import MemoryPersistence
from sdskit.v1 import api_pb2, state_pb2
from sdskit.v1.sdk import PERSISTENCE_SERVICE


def test_one_host_call_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int]] = []
    orig = _native.Session.begin

    def spy(self: _native.Session, token: int, service: str, method_id: int, data: bytes) -> None:
        seen.append((service, method_id))
        orig(self, token, service, method_id, data)

    monkeypatch.setattr(_native.Session, "begin", spy)
    mp = MemoryPersistence()
    with sdskit.ReliabilityManager("alice", persistence=mp) as m:
        m.wrap_outgoing_message("ch", "m1", b"x").unwrap()
        before = len(seen)
        for i in range(2, 12):
            m.wrap_outgoing_message("ch", f"m{i}", b"x").unwrap()
        wraps = [c for c in seen[before:] if c[0] == PERSISTENCE_SERVICE]
    assert wraps == [(PERSISTENCE_SERVICE, BATCH_METHOD_ID)] * 10, wraps
    assert mp.calls("Begin") == mp.calls("Commit") == 11
    assert [o.message.message_id for o in mp.snapshot("ch").outgoing] == [f"m{i}" for i in range(1, 12)]


def test_apply_batch_rolls_back_on_the_first_failure() -> None:
    mp = MemoryPersistence()
    mp.fail_nth("SaveOutgoing", 1)
    batch = state_pb2.PersistenceBatch(
        channel_id="ch",
        ops=[
            state_pb2.PersistenceOp(save_lamport=state_pb2.SaveLamportRequest(channel_id="ch", lamport_timestamp=7)),
            state_pb2.PersistenceOp(save_outgoing=state_pb2.SaveOutgoingRequest(channel_id="ch")),
            state_pb2.PersistenceOp(save_lamport=state_pb2.SaveLamportRequest(channel_id="ch", lamport_timestamp=9)),
        ],
    )
    out = apply_batch(mp, batch.SerializeToString())
    assert isinstance(out, bytes)
    r = api_pb2.Result.FromString(out)
    assert r.WhichOneof("result") == "error" and "SaveOutgoing" in r.error.message
    assert mp.calls("Rollback") == 1 and mp.calls("Commit") == 0
    assert mp.calls("SaveLamport") == 1  # the op after the failure never ran


def test_apply_batch_rejects_malformed_bytes() -> None:
    for data in (b"\xff\xff", state_pb2.PersistenceBatch(channel_id="c", ops=[state_pb2.PersistenceOp()]).SerializeToString()):
        out = apply_batch(MemoryPersistence(), data)
        assert isinstance(out, bytes)
        r = api_pb2.Result.FromString(out)
        assert r.WhichOneof("result") == "error" and int(r.error.code) == int(sdskit.ErrorCode.INVALID_ARGUMENT)
