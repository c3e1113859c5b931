"""ReliableChannel over the in-process LoopbackBus: convergence under loss, typed errors,
close, malformed payloads, failing transports, concurrent senders."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

import sdskit
from sdskit.reliable import EventRouter, LoopbackBus, PublishError, ReliableChannel

FAST: dict[str, object] = {
    "resend_interval_ms": 100,
    "max_resend_interval_ms": 400,
    "max_resend_attempts": 50,
    "sync_interval_ms": 200,
    "sweep_interval_ms": 20,
    "repair_t_min_ms": 50,
    "repair_t_max_ms": 300,
    "bloom_capacity": 1000,
    "max_repair_attempts": 100,
}


async def wait_for(cond: object, what: str, timeout: float = 30.0) -> None:
    assert callable(cond)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_three_channels_converge_under_loss() -> None:
    async def main() -> None:
        rng = random.Random(7)
        dropped = [0]

        def drop(_from: int, _to: int, _p: bytes) -> bool:
            if rng.random() < 0.3:
                dropped[0] += 1
                return True
            return False

        bus = LoopbackBus(drop)
        names = ["alice", "bob", "carol"]
        got: dict[str, dict[str, bytes]] = {n: {} for n in names}
        acked: set[str] = set()
        chans = []
        for n in names:

            def on_message(m: sdskit.MessageReady, n: str = n) -> None:
                assert m.message_id not in got[n], "delivered twice"
                got[n][m.message_id] = m.content

            ack = acked.add if n == "alice" else None
            chans.append(
                await ReliableChannel.open(n, "room", bus.transport(), config=FAST, persistence="memory",
                                           on_message=on_message, on_acknowledged=ack)
            )
        want = set()
        for k in range(10):
            for n, ch in zip(names, chans):
                mid = f"{n}-{k}"
                assert await ch.send(f"hello {mid}".encode(), mid) == mid
                got[n][mid] = f"hello {mid}".encode()
                want.add(mid)
        try:
            await wait_for(lambda: all(set(g) == want for g in got.values()), "convergence")
        except AssertionError:
            snaps = [(await ch.manager.get_snapshot("room")).unwrap().snapshot for ch in chans]
            detail = {n: (sorted(want - set(got[n])), [m.message.message_id for m in s.incoming],
                          [u.message.message_id for u in s.outgoing], len(s.incoming_repair), len(s.outgoing_repair))
                      for n, s in zip(names, snaps)}
            raise AssertionError(f"no convergence (missing, incoming, outgoing, repairs in/out): {detail}") from None
        await wait_for(lambda: len(acked) > 0, "an acknowledgement of alice's messages")
        assert dropped[0] > 0, "the bus dropped nothing: no repair was exercised"
        assert got["carol"]["bob-3"] == b"hello bob-3"
        for ch in chans:
            await ch.close()

    asyncio.run(main())


def test_close_is_idempotent_and_send_after_close_is_closed() -> None:
    async def main() -> None:
        ch = await ReliableChannel.open("alice", "room", LoopbackBus().transport(), persistence="memory")
        await ch.close()
        await ch.close()
        with pytest.raises(sdskit.SdsError) as exc:
            await ch.send(b"late")
        assert exc.value.code == sdskit.ErrorCode.CLOSED

    asyncio.run(main())


def test_bad_input_is_invalid_argument() -> None:
    async def main() -> None:
        bus = LoopbackBus()
        with pytest.raises(sdskit.SdsError) as exc:
            await ReliableChannel.open("a", "", bus.transport())
        assert exc.value.code == sdskit.ErrorCode.INVALID_ARGUMENT
        with pytest.raises(sdskit.SdsError) as exc:
            await ReliableChannel.open("a", "room", bus.transport(), config={"bloom_error_rate": 2.0})
        assert exc.value.code == sdskit.ErrorCode.INVALID_ARGUMENT
        with pytest.raises(TypeError):
            ReliableChannel()

    asyncio.run(main())


def test_malformed_payload_is_reported_and_changes_nothing() -> None:
    async def main() -> None:
        bus = LoopbackBus()
        errors: list[Exception] = []
        ch = await ReliableChannel.open("alice", "room", bus.transport(), persistence="memory", on_error=errors.append)
        await bus.transport().publish(b"\xff\xff\xff")
        await wait_for(lambda: errors, "the error report", 5)
        err = errors[0]
        assert isinstance(err, sdskit.SdsError) and err.code == sdskit.ErrorCode.DESERIALIZATION
        snap = (await ch.manager.get_snapshot("room")).unwrap().snapshot
        assert len(snap.log) == 0 and len(snap.incoming) == 0
        await ch.close()

    asyncio.run(main())


class FailingTransport:
    def __init__(self) -> None:
        self.inner = LoopbackBus().transport()

    async def publish(self, payload: bytes) -> None:
        raise ConnectionError("network down")

    async def subscribe(self, handler: sdskit.reliable.Handler) -> sdskit.reliable.Unsubscribe:
        return await self.inner.subscribe(handler)


def test_publish_failures_are_raised_then_reported_and_the_message_kept() -> None:
    async def main() -> None:
        errors: list[Exception] = []
        ch = await ReliableChannel.open("alice", "room", FailingTransport(), config=FAST, persistence="memory",
                                        on_error=errors.append)
        with pytest.raises(PublishError) as exc:
            await ch.send(b"x", "m1")
        assert exc.value.persisted and exc.value.message_id == "m1" and exc.value.what == "message"
        assert isinstance(exc.value.__cause__, ConnectionError)
        with pytest.raises(PublishError) as exc:
            await ch.send_ephemeral(b"typing")
        assert not exc.value.persisted and exc.value.what == "ephemeral"
        await wait_for(lambda: errors, "a background publish failure", 10)
        err = errors[0]
        assert isinstance(err, PublishError) and err.what in ("resend", "sync") and err.persisted
        assert "network down" in str(err)
        snap = (await ch.manager.get_snapshot("room")).unwrap().snapshot
        assert [u.message.message_id for u in snap.outgoing] == ["m1"]
        await ch.close()

    asyncio.run(main())


def test_concurrent_senders() -> None:
    async def main() -> None:
        bus = LoopbackBus()
        got: dict[str, bytes] = {}
        a = await ReliableChannel.open("alice", "room", bus.transport(), persistence="memory")
        b = await ReliableChannel.open("bob", "room", bus.transport(), persistence="memory",
                                       on_message=lambda m: got.__setitem__(m.message_id, m.content))
        ids = await asyncio.gather(*(a.send(f"m{i}".encode()) for i in range(30)))
        assert len(set(ids)) == 30
        await wait_for(lambda: len(got) == 30, "bob to receive all 30")
        await a.close()
        await b.close()

    asyncio.run(main())


def test_ephemeral() -> None:
    async def main() -> None:
        bus = LoopbackBus()
        got: dict[str, bytes] = {}
        a = await ReliableChannel.open("alice", "room", bus.transport(), persistence="memory")
        b = await ReliableChannel.open("bob", "room", bus.transport(), persistence="memory",
                                       on_message=lambda m: got.__setitem__(m.message_id, m.content))
        mid = await a.send_ephemeral(b"typing")
        await wait_for(lambda: got.get(mid) == b"typing", "the ephemeral message", 5)
        snap = (await a.manager.get_snapshot("room")).unwrap().snapshot
        assert len(snap.log) == 0 and len(snap.outgoing) == 0
        await a.close()
        await b.close()

    asyncio.run(main())


def test_async_iterator_ends_at_close() -> None:
    async def main() -> None:
        bus = LoopbackBus()
        a = await ReliableChannel.open("alice", "room", bus.transport(), persistence="memory")
        b = await ReliableChannel.open("bob", "room", bus.transport(), persistence="memory")
        got: list[tuple[str, bytes]] = []

        async def consume() -> None:
            async for m in b:
                got.append((m.message_id, m.content))
                if len(got) == 3:
                    await b.close()

        consumer = asyncio.get_running_loop().create_task(consume())
        for i in range(3):
            await a.send(f"m{i}".encode(), f"a-{i}")
        await asyncio.wait_for(consumer, 10)  # ends only because close() ends the iteration
        assert got == [("a-0", b"m0"), ("a-1", b"m1"), ("a-2", b"m2")]
        await a.close()
        with_cb = await ReliableChannel.open("carol", "room", bus.transport(), persistence="memory",
                                             on_message=lambda m: None)
        with pytest.raises(TypeError):
            aiter(with_cb)
        await with_cb.close()

    asyncio.run(main())


def test_async_callbacks_and_acknowledgements() -> None:
    async def main() -> None:
        bus = LoopbackBus()
        acked: list[str] = []
        got: list[str] = []

        async def on_ack(mid: str) -> None:
            await asyncio.sleep(0)
            acked.append(mid)

        async def on_message(m: sdskit.MessageReady) -> None:
            await asyncio.sleep(0)
            got.append(m.message_id)

        a = await ReliableChannel.open("alice", "room", bus.transport(), config=FAST, persistence="memory",
                                       on_acknowledged=on_ack)
        b = await ReliableChannel.open("bob", "room", bus.transport(), config=FAST, persistence="memory",
                                       on_message=on_message)
        await a.send(b"x", "a-1")
        # bob's sync messages carry his bloom filter: alice learns that he holds a-1.
        await wait_for(lambda: "a-1" in acked, "alice's acknowledgement of a-1", 10)
        assert got == ["a-1"]
        snap = (await a.manager.get_snapshot("room")).unwrap().snapshot
        assert len(snap.outgoing) == 0
        await a.close()
        await b.close()

    asyncio.run(main())


def test_errors_without_on_error_go_to_the_loop_exception_handler() -> None:
    async def main() -> None:
        reported: list[dict[str, object]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: reported.append(ctx))
        bus = LoopbackBus()

        def broken(_m: sdskit.MessageReady) -> None:
            raise ValueError("callback bug")

        a = await ReliableChannel.open("alice", "room", bus.transport(), persistence="memory")
        b = await ReliableChannel.open("bob", "room", bus.transport(), persistence="memory", on_message=broken)
        await a.send(b"x")
        await bus.transport().publish(b"not sds")
        await wait_for(lambda: len(reported) >= 2, "two reports", 5)
        excs = [r["exception"] for r in reported]
        assert any(isinstance(e, ValueError) and str(e) == "callback bug" for e in excs)
        assert any(isinstance(e, sdskit.SdsError) and e.code == sdskit.ErrorCode.DESERIALIZATION for e in excs)
        # the channel survived its callback's bug
        await a.send(b"y", "a-2")
        await a.close()
        await b.close()

    asyncio.run(main())


def test_attach_two_channels_to_one_manager() -> None:
    async def main() -> None:
        room1, room2 = LoopbackBus(), LoopbackBus()
        router_a, router_b = EventRouter(), EventRouter()
        ma = sdskit.AsyncReliabilityManager("alice", persistence="memory", events=router_a)
        mb = sdskit.AsyncReliabilityManager("bob", persistence="memory", events=router_b)
        got: dict[str, list[str]] = {"r1": [], "r2": []}
        a1 = await ReliableChannel.attach(ma, router_a, "r1", room1.transport())
        a2 = await ReliableChannel.attach(ma, router_a, "r2", room2.transport())
        b1 = await ReliableChannel.attach(mb, router_b, "r1", room1.transport(),
                                          on_message=lambda m: got["r1"].append(m.message_id))
        b2 = await ReliableChannel.attach(mb, router_b, "r2", room2.transport(),
                                          on_message=lambda m: got["r2"].append(m.message_id))
        with pytest.raises(sdskit.SdsError) as exc:
            await ReliableChannel.attach(ma, router_a, "r1", LoopbackBus().transport())
        assert exc.value.code == sdskit.ErrorCode.INVALID_ARGUMENT
        await a1.send(b"one", "x1")
        await a2.send(b"two", "x2")
        await wait_for(lambda: got == {"r1": ["x1"], "r2": ["x2"]}, "one message per room", 5)
        await a1.close()
        # the manager stays open for the other channel; the closed one refuses sends
        await a2.send(b"three", "x3")
        await wait_for(lambda: got["r2"] == ["x2", "x3"], "x3 in r2", 5)
        with pytest.raises(sdskit.SdsError) as exc:
            await a1.send(b"late")
        assert exc.value.code == sdskit.ErrorCode.CLOSED
        for ch in (a2, b1, b2):
            await ch.close()
        await ma.close()
        await mb.close()

    asyncio.run(main())


def test_restart_from_core_sqlite_continues(tmp_path: Path) -> None:
    db = str(tmp_path / "alice.db")

    async def main() -> None:
        bus = LoopbackBus()
        got: list[str] = []
        b = await ReliableChannel.open("bob", "room", bus.transport(), config=FAST, persistence="memory",
                                       on_message=lambda m: got.append(m.message_id))
        a = await ReliableChannel.open("alice", "room", bus.transport(), config=FAST,
                                       persistence=sdskit.CoreSQLite(db))
        await a.send(b"1", "a-1")
        await a.close()
        a = await ReliableChannel.open("alice", "room", bus.transport(), config=FAST,
                                       persistence=sdskit.CoreSQLite(db))
        snap = (await a.manager.get_snapshot("room")).unwrap().snapshot
        assert [m.message_id for m in snap.log] == ["a-1"]
        with pytest.raises(sdskit.SdsError) as exc:
            await a.send(b"again", "a-1")  # the reloaded state knows the id
        assert exc.value.code == sdskit.ErrorCode.INVALID_ARGUMENT
        await a.send(b"2", "a-2")
        await wait_for(lambda: got == ["a-1", "a-2"], "bob to get both", 5)
        await a.close()
        await b.close()

    asyncio.run(main())
