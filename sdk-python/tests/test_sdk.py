"""The Python SDK over the core library: typed results, host backends (plain and
asyncio), failures and rollback, restart from the Python sqlite3 backend, threads, bad
input, events, and the library check."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

import sdskit
from sdskit import Err, ErrorCode, MessageReady, Ok, SdsError
from sdskit.backends import MemoryPersistence, SQLitePersistence
from sdskit.v1 import api_pb2, state_pb2


def wrap(m: sdskit.ReliabilityManager, channel: str, mid: str, content: bytes = b"hi") -> bytes:
    return m.wrap_outgoing_message(channel, mid, content).unwrap().wire_bytes


def test_library_facts() -> None:
    lib = sdskit.load_library()
    assert lib.abi_version == sdskit.ABI_VERSION
    assert lib.idl_hash == sdskit.IDL_HASH


def test_wrap_unwrap_events(clock: sdskit.ManualClock) -> None:
    got: list[sdskit.Event] = []
    with sdskit.ReliabilityManager("alice", clock=clock) as a, sdskit.ReliabilityManager(
        "bob", clock=clock, events=got.append
    ) as b:
        data = wrap(a, "ch", "m1", b"hello")
        res = b.unwrap_received_message(data=data)
        assert isinstance(res, Ok)
        assert res.value.kind == api_pb2.MESSAGE_KIND_CONTENT and res.value.delivered
        assert got == [MessageReady("ch", "m1", "alice", res.value.lamport_timestamp, b"hello")]
        dup = b.unwrap_received_message(data=data).unwrap()
        assert dup.kind == api_pb2.MESSAGE_KIND_DUPLICATE
        assert b.list_channels().unwrap().channel_ids == ["ch"]


def test_bad_input_is_typed() -> None:
    with sdskit.ReliabilityManager("alice") as m:
        res = m.unwrap_received_message(data=b"\xff\xff garbage")
        assert isinstance(res, Err) and res.error.code == ErrorCode.DESERIALIZATION
        res2 = m.wrap_outgoing_message("ch", "m1", b"")
        assert isinstance(res2, Err) and res2.error.code == ErrorCode.INVALID_ARGUMENT
        bad = m.wrap_outgoing_message(123, "m1", b"x")  # type: ignore[arg-type]
        assert isinstance(bad, Err) and bad.error.code == ErrorCode.INVALID_ARGUMENT
        with pytest.raises(SdsError) as ei:
            m.get_snapshot("nope").unwrap()
        assert ei.value.code in (ErrorCode.NOT_FOUND, ErrorCode.INVALID_ARGUMENT)
        raw = m._session.lib.call(m.handle, 9999, b"")
        assert "unknown method id 9999" in str(sdskit.v1.sdk.decode_empty_result(raw, "x"))
    with pytest.raises(SdsError) as e:
        sdskit.ReliabilityManager("alice", config={"bloom_error_rate": 7.0})
    assert e.value.code == ErrorCode.INVALID_ARGUMENT
    with pytest.raises(SdsError):
        sdskit.ReliabilityManager("alice", config={"no_such_field": 1})


def test_result_decoding() -> None:
    """decode_result reads a value-only Result in place and everything else through the
    envelope: both give the same answers, and malformed bytes are typed errors."""
    from sdskit.v1.sdk import decode_empty_result, decode_result, encode_error, encode_value

    W = api_pb2.WrapOutgoingMessageResponse
    # Value lengths with varints of 1, 2, 3 and 4 bytes.
    for wire in (b"", b"x", bytes(range(256)) * 2, bytes(range(256)) * 80, bytes(2_100_000)):
        resp = W(wire_bytes=wire)
        data = encode_value(resp)
        assert decode_result(data, W, "op") == Ok(resp)
        assert decode_empty_result(data, "op") == Ok(None)
        # The same Result with its value field followed by an unknown field takes the
        # envelope path and must agree.
        assert decode_result(data + b"\x18\x01", W, "op") == Ok(resp)
    err = SdsError(ErrorCode.CLOSED, "closed", "op")
    assert decode_result(encode_error(err), W, "op") == Err(err)
    assert decode_empty_result(encode_error(err), "op") == Err(err)
    bad = [
        b"",  # neither value nor error
        b"\x0a",  # tag without length
        b"\x0a\x05ab",  # value shorter than its length
        b"\x0a\x80\x01" + bytes(127),  # ... with a 2-byte length
        b"\x0a\x80\x80\x01" + bytes(100),  # ... with a 3-byte length
        b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # overlong varint
        b"\x0a\x02\xff\xff",  # a value that is not a response
        b"\xff\xff\xff",
    ]
    for data in bad:
        res = decode_result(data, W, "op")
        assert isinstance(res, Err) and res.error.code == ErrorCode.DESERIALIZATION, (data, res)


def test_double_close_and_use_after_close() -> None:
    m = sdskit.ReliabilityManager("alice")
    assert isinstance(m.close(), Ok)
    assert isinstance(m.close(), Ok)  # Close is idempotent
    after = m.wrap_outgoing_message("ch", "m1", b"x")
    assert isinstance(after, Err) and after.error.code == ErrorCode.CLOSED
    assert after.error.op == "WrapOutgoingMessage"


def test_failing_backend_rolls_back() -> None:
    mp = MemoryPersistence()
    with sdskit.ReliabilityManager("alice", persistence=mp) as m:
        wrap(m, "ch", "m1")
        before = m.get_snapshot("ch").unwrap().snapshot
        mp.fail_nth("SaveOutgoing", 1)
        res = m.wrap_outgoing_message("ch", "m2", b"x")
        assert isinstance(res, Err) and res.error.code == ErrorCode.PERSISTENCE
        assert "injected failure: SaveOutgoing" in res.error.message
        assert mp.calls("Rollback") == 1
        assert m.get_snapshot("ch").unwrap().snapshot == before  # memory unchanged
        assert [o.message.message_id for o in mp.snapshot("ch").outgoing] == ["m1"]
        wrap(m, "ch", "m2")  # a retry succeeds
        assert [o.message.message_id for o in mp.snapshot("ch").outgoing] == ["m1", "m2"]


class Exploding(MemoryPersistence):
    def save_lamport(self, req: state_pb2.SaveLamportRequest) -> sdskit.Result[None]:
        raise RuntimeError("disk on fire")


def test_backend_exception_is_persistence_error() -> None:
    with sdskit.ReliabilityManager("alice", persistence=Exploding()) as m:
        res = m.wrap_outgoing_message("ch", "m1", b"x")
        assert isinstance(res, Err) and res.error.code == ErrorCode.PERSISTENCE
        assert "RuntimeError: disk on fire" in res.error.message


def test_handler_exception_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def boom(ev: sdskit.Event) -> None:
        raise ValueError("handler bug")

    with sdskit.ReliabilityManager("alice") as a, sdskit.ReliabilityManager("bob", events=boom) as b:
        with caplog.at_level(logging.ERROR, logger="sdskit"):
            assert b.unwrap_received_message(data=wrap(a, "ch", "m1")).unwrap().delivered
        assert "handler bug" in caplog.text
        assert b.unwrap_received_message(data=wrap(a, "ch", "m2")).unwrap().delivered


def test_handler_may_call_the_manager() -> None:
    replies: list[bytes] = []

    class Echo(sdskit.EventHandler):
        def __init__(self) -> None:
            self.m: sdskit.ReliabilityManager | None = None

        def on_message_ready(self, event: MessageReady) -> None:
            assert self.m is not None
            if not event.message_id.startswith("re-"):
                replies.append(wrap(self.m, event.channel_id, "re-" + event.message_id))

    h = Echo()
    with sdskit.ReliabilityManager("alice") as a, sdskit.ReliabilityManager("bob", events=h) as b:
        h.m = b
        b.unwrap_received_message(data=wrap(a, "ch", "m1")).unwrap()
        assert len(replies) == 1
        assert a.unwrap_received_message(data=replies[0]).unwrap().message_id == "re-m1"


def test_restart_with_sqlite3_backend(tmp_path: Path) -> None:
    path = str(tmp_path / "alice.db")
    db = SQLitePersistence(path)
    m = sdskit.ReliabilityManager("alice", persistence=db)
    for i in range(5):
        wrap(m, "ch", f"m{i}")
    snap = m.get_snapshot("ch").unwrap().snapshot
    m.close()
    db.close()

    db2 = SQLitePersistence(path)
    with sdskit.ReliabilityManager("alice", persistence=db2) as m2:
        m2.ensure_channel("ch").unwrap()
        again = m2.get_snapshot("ch").unwrap().snapshot
        assert [o.message.message_id for o in again.outgoing] == [f"m{i}" for i in range(5)]
        assert again.lamport_timestamp == snap.lamport_timestamp
        wrap(m2, "ch", "m5")
        m2.remove_channel("ch").unwrap()
        assert db2.load_all_for_channel(state_pb2.LoadAllForChannelRequest(channel_id="ch")).unwrap().outgoing == []
    db2.close()


def test_core_sqlite_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "core.db")
    with sdskit.ReliabilityManager("alice", persistence=sdskit.CoreSQLite(path)) as m:
        wrap(m, "ch", "m1")
    with sdskit.ReliabilityManager("alice", persistence=sdskit.CoreSQLite(path)) as m2:
        m2.ensure_channel("ch").unwrap()
        assert [o.message.message_id for o in m2.get_snapshot("ch").unwrap().snapshot.outgoing] == ["m1"]


def test_threads_on_several_channels() -> None:
    db = MemoryPersistence()
    with sdskit.ReliabilityManager("alice", persistence=db) as a, sdskit.ReliabilityManager("bob") as b:
        errors: list[BaseException] = []

        def work(ch: str) -> None:
            try:
                for i in range(100):
                    data = wrap(a, ch, f"m{i}")
                    assert b.unwrap_received_message(data=data).unwrap().delivered
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(f"ch{n}",)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert sorted(db.channels()) == [f"ch{n}" for n in range(6)]
        assert all(len(db.snapshot(f"ch{n}").outgoing) == 100 for n in range(6))


class AsyncMemory(MemoryPersistence):
    """Every method an async def that yields to the loop first."""

    def __getattribute__(self, name: str) -> object:
        attr = object.__getattribute__(self, name)
        if name.startswith("_") or name in ("fail_op", "fail_nth", "heal", "calls", "channels", "snapshot") or not callable(attr):
            return attr

        async def call(req: object) -> object:
            await asyncio.sleep(0)
            return attr(req)

        return call


def test_asyncio_manager_with_async_backend() -> None:
    async def main() -> None:
        db = AsyncMemory()
        got: list[str] = []

        class Handler(sdskit.EventHandler):
            async def on_message_ready(self, event: MessageReady) -> None:
                await asyncio.sleep(0)
                got.append(event.message_id)

        async with sdskit.AsyncReliabilityManager("alice", persistence=db) as a, sdskit.AsyncReliabilityManager(
            "bob", events=Handler()
        ) as b:

            async def chan(n: int) -> None:
                for i in range(20):
                    w = (await a.wrap_outgoing_message(f"ch{n}", f"m{n}-{i}", b"x")).unwrap().wire_bytes
                    (await b.unwrap_received_message(data=w)).unwrap()

            await asyncio.gather(*(chan(n) for n in range(5)))
            assert len(got) == 100
            db.fail_op("SaveOutgoing")
            res = await a.wrap_outgoing_message("ch0", "bad", b"x")
            assert isinstance(res, Err) and res.error.code == ErrorCode.PERSISTENCE
            assert db.calls("Rollback") == 1

    asyncio.run(main())


def test_sync_manager_with_async_backend() -> None:
    db = AsyncMemory()
    with sdskit.ReliabilityManager("alice", persistence=db) as m:
        wrap(m, "ch", "m1")
        assert db.calls("Commit") == 1


def test_retrieval_hints_and_sweeps(clock: sdskit.ManualClock) -> None:
    with sdskit.ReliabilityManager(
        "alice", clock=clock, hints=lambda ch, mid: b"hint-" + mid.encode(), persistence="memory"
    ) as m:
        wrap(m, "ch", "m1")
        clock.advance(60_000)
        m.run_sweeps().unwrap()


def test_periodic_events_from_go_threads() -> None:
    got = threading.Event()

    def on(ev: sdskit.Event) -> None:
        if isinstance(ev, sdskit.SyncDue):
            got.set()

    with sdskit.ReliabilityManager("alice", config={"sync_interval_ms": 20, "sweep_interval_ms": 10}, events=on) as m:
        m.ensure_channel("ch").unwrap()
        m.start_periodic_tasks().unwrap()
        assert got.wait(5), "no SyncDue from the background sweep"


def test_library_mismatch(tmp_path: Path) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    src = tmp_path / "fake.c"
    src.write_text(
        '#include <stdint.h>\nuint32_t sdskit_abi_version(void){return 99;}\n'
        'const char* sdskit_idl_hash(void){return "0000";}\n'
    )
    lib = tmp_path / "libfake.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    with pytest.raises(sdskit.LibraryMismatchError, match="does not match this SDK"):
        sdskit.load_library(str(lib))
    with pytest.raises(sdskit.LibraryNotFoundError):
        sdskit.load_library(str(tmp_path / "missing.so"))


def test_fork_caveat_documented() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "python.md"
    if doc.exists():
        assert "forkserver" in doc.read_text()
    assert "forkserver" in (sdskit.__doc__ or "")
    assert os.name == "posix"
