"""The NATS transport against a real nats-server on loopback: delivery without echo,
three ReliableChannels converging with loss, typed errors. Skipped without a server."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator

import pytest
from nats.errors import NoServersError
from natsserver import nats_url

import sdskit
from sdskit.reliable import Handler, PublishError, ReliableChannel, Unsubscribe
from sdskit.transports.nats import NatsTransport

FAST: dict[str, object] = {
    "resend_interval_ms": 100,
    "max_resend_interval_ms": 400,
    "sync_interval_ms": 200,
    "sweep_interval_ms": 20,
    "repair_t_min_ms": 50,
    "repair_t_max_ms": 300,
    "max_repair_attempts": 100,
}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    yield from nats_url()


async def wait_for(cond: object, what: str, timeout: float = 20.0) -> None:
    assert callable(cond)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_publish_reaches_others_not_self(url: str) -> None:
    async def main() -> None:
        a = await NatsTransport.connect(url, "t.echo")
        b = await NatsTransport.connect(url, "t.echo")
        got_a: list[bytes] = []
        got_b: list[bytes] = []

        async def ha(p: bytes) -> None:
            got_a.append(p)

        async def hb(p: bytes) -> None:
            got_b.append(p)

        ua = await a.subscribe(ha)
        ub = await b.subscribe(hb)
        for i in range(5):
            await a.publish(b"x%d" % i)
        await a.client.flush()  # the server has them (a PING/PONG after the publications)
        await wait_for(lambda: len(got_b) == 5, "b to receive 5")
        await b.client.flush()
        await a.client.flush()
        assert got_b == [b"x0", b"x1", b"x2", b"x3", b"x4"]  # in order
        assert got_a == []  # no echo of our own publications
        await ua()
        await ub()
        await a.close()
        await a.close()
        await b.close()
        with pytest.raises(Exception):
            await a.publish(b"after close")

    asyncio.run(main())


def test_bad_subject_and_unreachable_server() -> None:
    async def main() -> None:
        for bad in ("", "a b", "a.*", "a..b", ">"):
            with pytest.raises(ValueError):
                await NatsTransport.connect("nats://127.0.0.1:1", bad)
        with pytest.raises(NoServersError):
            await asyncio.wait_for(NatsTransport.connect("nats://127.0.0.1:1", "ok.subject", connect_timeout=1,
                                                         max_reconnect_attempts=1, reconnect_time_wait=0.1), 10)

    asyncio.run(main())


class Lossy:
    """Drops a share of the received payloads (a Transport decorator)."""

    def __init__(self, inner: NatsTransport, loss: float, seed: int) -> None:
        self.inner = inner
        self.loss = loss
        self.rng = random.Random(seed)
        self.dropped = 0

    async def publish(self, payload: bytes) -> None:
        await self.inner.publish(payload)

    async def subscribe(self, handler: Handler) -> Unsubscribe:
        async def h(p: bytes) -> None:
            if self.rng.random() < self.loss:
                self.dropped += 1
                return
            await handler(p)

        return await self.inner.subscribe(h)


def test_three_channels_converge_over_nats_with_loss(url: str) -> None:
    async def main() -> None:
        names = ["alice", "bob", "carol"]
        got: dict[str, set[str]] = {n: set() for n in names}
        errors: list[Exception] = []
        transports = [await NatsTransport.connect(url, "t.room") for _ in names]
        lossy = [Lossy(t, 0.3, i) for i, t in enumerate(transports)]
        def collector(n: str) -> Callable[[sdskit.MessageReady], None]:
            return lambda m: got[n].add(m.message_id)

        chans = [
            await ReliableChannel.open(n, "room", t, config=FAST, persistence="memory", on_error=errors.append,
                                       on_message=collector(n))
            for n, t in zip(names, lossy)
        ]
        want: set[str] = set()
        for k in range(8):
            for n, ch in zip(names, chans):
                want.add(await ch.send(f"{n} {k}".encode(), f"{n}-{k}"))
                got[n].add(f"{n}-{k}")
        await wait_for(lambda: all(g == want for g in got.values()), "convergence over NATS", 30)
        assert sum(t.dropped for t in lossy) > 0
        assert errors == []
        for ch in chans:
            await ch.close()
        await transports[0].close()
        # a closed connection: send raises a PublishError, the message is kept for resending
        errs: list[Exception] = []
        ch = await ReliableChannel.open("dave", "room", transports[1], persistence="memory", on_error=errs.append)
        await transports[1].close()
        with pytest.raises(PublishError) as exc:
            await ch.send(b"late", "d-1")
        assert exc.value.persisted
        snap = (await ch.manager.get_snapshot("room")).unwrap().snapshot
        assert [u.message.message_id for u in snap.outgoing] == ["d-1"]
        await ch.close()
        await transports[2].close()

    asyncio.run(main())
