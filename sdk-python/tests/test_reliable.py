"""ReliableChannel over the in-process LoopbackBus: convergence under loss, typed errors,
close, malformed payloads, failing transports, concurrent senders."""

from __future__ import annotations

import asyncio
import random

import pytest

import sdskit
from sdskit.reliable import LoopbackBus, ReliableChannel

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
        await wait_for(lambda: all(set(g) == want for g in got.values()), "convergence")
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
        with pytest.raises(ConnectionError):
            await ch.send(b"x", "m1")
        await wait_for(lambda: errors, "a background publish failure", 10)
        assert "network down" in str(errors[0])
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
