"""The Python participant of `make demo` (docs/demo.md): a group-chat peer on NATS, its SDS
state in the core's SQLite (by path, through the C library), its chat log in DB.chat.

Run from the repository root: build/venv/bin/python demo/python/peer.py --id python-1 --db x.db
It prints JSON lines (ready, stats, error) on stdout and stops on stdin EOF or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import signal
import sqlite3
import sys
from typing import Any

import sdskit
from sdskit.reliable import Handler, ReliableChannel, Unsubscribe
from sdskit.transports.nats import NatsTransport


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nats", default="nats://127.0.0.1:4222")
    p.add_argument("--subject", default="sdskit.demo.chat")
    p.add_argument("--channel", default="demo")
    p.add_argument("--id", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--messages", type=int, default=20)
    p.add_argument("--interval-ms", type=int, default=1000)
    p.add_argument("--loss", type=float, default=0.2)
    p.add_argument("--dup", type=float, default=0.05)
    p.add_argument("--delay-ms", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sync-ms", type=int, default=3000)
    p.add_argument("--resend-ms", type=int, default=2000)
    p.add_argument("--stats-ms", type=int, default=500)
    a = p.parse_args(argv)
    if not 0 <= a.loss < 1 or not 0 <= a.dup <= 1:
        p.error("--loss must be in [0, 1) and --dup in [0, 1]")
    if a.messages < 0 or a.interval_ms <= 0 or a.delay_ms < 0 or a.stats_ms <= 0:
        p.error("counts must be >= 0 and periods > 0")
    return a


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class AppLog:
    """The application's durable chat log (DB.chat)."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS chat_log(message_id TEXT PRIMARY KEY, sender_id TEXT NOT NULL,"
            " lamport INTEGER NOT NULL, content BLOB NOT NULL, own INTEGER NOT NULL)"
        )

    def insert(self, mid: str, sender: str, lamport: int, content: bytes, own: bool) -> None:
        self.db.execute("INSERT OR IGNORE INTO chat_log VALUES (?, ?, ?, ?, ?)", (mid, sender, lamport, content, int(own)))

    def summary(self) -> tuple[int, int, str]:
        rows = self.db.execute("SELECT message_id, own FROM chat_log").fetchall()
        ids = sorted(r[0] for r in rows)
        own = sum(1 for r in rows if r[1])
        return own, len(ids), hashlib.sha256("\n".join(ids).encode()).hexdigest()


class ImpairedTransport:
    """Drops, duplicates and delays received payloads so the demo has gaps to repair."""

    def __init__(self, inner: NatsTransport, args: argparse.Namespace) -> None:
        self.inner = inner
        self.args = args
        self.rng = random.Random(args.seed * 7919 + 1)
        self.tasks: set[asyncio.Task[None]] = set()

    async def publish(self, payload: bytes) -> None:
        await self.inner.publish(payload)

    async def subscribe(self, handler: Handler) -> Unsubscribe:
        async def later(p: bytes, delay: float) -> None:
            await asyncio.sleep(delay)
            await handler(p)

        async def impaired(p: bytes) -> None:
            if self.rng.random() < self.args.loss:
                return
            copies = 2 if self.rng.random() < self.args.dup else 1
            for _ in range(copies):
                t = asyncio.get_running_loop().create_task(later(p, self.rng.uniform(0, self.args.delay_ms / 1000)))
                self.tasks.add(t)
                t.add_done_callback(self.tasks.discard)

        unsubscribe = await self.inner.subscribe(impaired)

        async def stop() -> None:
            await unsubscribe()
            for t in list(self.tasks):
                t.cancel()

        return stop


async def run(args: argparse.Namespace) -> None:
    log = AppLog(args.db + ".chat")
    sent_before, recovered, _ = log.summary()
    stats: dict[str, int] = {"delivered": 0, "acked": 0, "resent": 0, "repair_answered": 0}
    requested: set[str] = set()
    missing: set[str] = set()

    def on_message(m: sdskit.MessageReady) -> None:
        log.insert(m.message_id, m.sender_id, m.lamport_timestamp, m.content, False)
        stats["delivered"] += 1
        missing.discard(m.message_id)

    def on_acknowledged(_mid: str) -> None:
        stats["acked"] += 1

    def on_missing(e: sdskit.MissingDependencies) -> None:
        for h in e.missing:
            requested.add(h.message_id)
            missing.add(h.message_id)

    def on_event(ev: sdskit.Event) -> None:
        if isinstance(ev, sdskit.ResendRequested):
            stats["resent"] += 1
        elif isinstance(ev, sdskit.RepairReady):
            stats["repair_answered"] += 1

    def on_error(err: Exception) -> None:
        emit({"event": "error", "id": args.id, "message": str(err)})

    config = {
        "sync_interval_ms": args.sync_ms,
        "resend_interval_ms": args.resend_ms,
        "max_resend_interval_ms": 4 * args.resend_ms,
        "repair_t_min_ms": 500,
        "repair_t_max_ms": 3000,
        "max_repair_attempts": 100,
    }
    nats_t = await NatsTransport.connect(args.nats, args.subject)
    transport = ImpairedTransport(nats_t, args)
    ch = await ReliableChannel.open(
        args.id, args.channel, transport, config=config, persistence=sdskit.CoreSQLite(args.db),
        on_message=on_message, on_acknowledged=on_acknowledged, on_missing=on_missing,
        on_event=on_event, on_error=on_error,
    )
    # Events fire after the SDS state committed: a kill between a commit and our insert
    # leaves a message in the SDS log only. The SDS log is the source of truth.
    snap = (await ch.manager.get_snapshot(args.channel)).unwrap().snapshot
    for m in snap.log:
        log.insert(m.message_id, m.sender_id, m.lamport_timestamp, m.content, m.sender_id == args.id)
    sent_before, _, _ = log.summary()
    emit({"event": "ready", "id": args.id, "lang": "python", "recovered": recovered, "sent_before": sent_before})

    def stats_line() -> None:
        own, count, digest = log.summary()
        emit({"event": "stats", "id": args.id, "sent": own, "delivered": stats["delivered"], "acked": stats["acked"],
              "resent": stats["resent"], "repair_requested": len(requested), "repair_answered": stats["repair_answered"],
              "missing": len(missing), "count": count, "digest": digest, "done_sending": own >= args.messages})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stdin = sys.stdin.fileno()
    loop.add_reader(stdin, lambda: stop.set() if not os.read(stdin, 4096) else None)

    async def poster() -> None:
        rng = random.Random(args.seed * 104729 + 3)
        sent = sent_before
        while True:
            await asyncio.sleep(rng.uniform(args.interval_ms / 2, 3 * args.interval_ms / 2) / 1000)
            if sent >= args.messages:
                continue
            n = sent + 1
            mid = f"{args.id}-{n}"
            content = f"hello {n} from {args.id}".encode()
            try:
                await ch.send(content, mid)
            except Exception as exc:  # the demo reports and goes on; the SDS state resends
                on_error(exc)
                if not isinstance(exc, sdskit.SdsError):
                    log.insert(mid, args.id, 0, content, True)
                    sent = n
                continue
            log.insert(mid, args.id, 0, content, True)
            sent = n

    async def ticker() -> None:
        while True:
            await asyncio.sleep(args.stats_ms / 1000)
            stats_line()

    tasks = [loop.create_task(poster()), loop.create_task(ticker())]
    await stop.wait()
    for t in tasks:
        t.cancel()
    await ch.close()
    await nats_t.close()
    stats_line()


def main() -> None:
    asyncio.run(run(parse_args(sys.argv[1:])))


if __name__ == "__main__":
    main()
