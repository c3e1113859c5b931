"""The Python participant of `make demo` (docs/demo.md): a group-chat peer on NATS, its SDS
state in the core's SQLite (by path, through the C library), its chat log in DB.chat.

Run from the repository root after `make lib py-venv` (or `make py-install`):

    build/venv/bin/python demo/python/peer.py --nats nats://127.0.0.1:4222 --id python-1 --db x.db

It prints JSON lines (ready, stats, error) on stdout, logs on stderr, and stops on stdin
EOF, SIGTERM or SIGINT. The flags and lines are the contract of docs/demo.md, shared with
the Go (`sdskit peer`) and TypeScript (demo/ts/peer.ts) participants.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import json
import logging
import os
import random
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any


def _find_sdk() -> None:
    # The venv of `make py-install` has the package with its library bundled; right
    # after `make lib py-venv` we use the source tree and the library of `make lib`.
    root = Path(__file__).resolve().parents[2]
    if importlib.util.find_spec("sdskit") is None:
        sys.path.insert(0, str(root / "sdk-python" / "src"))
    spec = importlib.util.find_spec("sdskit")
    if spec is None or spec.origin is None or os.environ.get("SDSKIT_LIBRARY"):
        return
    if not (Path(spec.origin).parent / "_lib" / "libsdskit.so").exists():
        built = root / "build" / "libsdskit.so"
        if built.exists():
            os.environ["SDSKIT_LIBRARY"] = str(built)


_find_sdk()

import sdskit  # noqa: E402
from sdskit.reliable import Handler, PublishError, ReliableChannel, Unsubscribe  # noqa: E402
from sdskit.transports.nats import NatsTransport  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="The Python participant of `make demo`.")
    p.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS server URL")
    p.add_argument("--subject", default="sdskit.demo.chat", help="NATS subject of the channel")
    p.add_argument("--channel", default="demo", help="SDS channel id")
    p.add_argument("--id", default="python-1", help="participant id")
    p.add_argument("--db", default="", help="SQLite database of the SDS state (app log in DB.chat)")
    p.add_argument("--messages", type=int, default=20, help="content messages to post in total")
    p.add_argument("--interval-ms", type=int, default=1000, help="mean time between posts")
    p.add_argument("--loss", type=float, default=0.2, help="probability a received payload is dropped")
    p.add_argument("--dup", type=float, default=0.05, help="probability a received payload is handled twice")
    p.add_argument("--delay-ms", type=int, default=200, help="received payloads are delayed up to this")
    p.add_argument("--seed", type=int, default=1, help="seed of the impairments and post timing")
    p.add_argument("--sync-ms", type=int, default=3000, help="SDS sync interval")
    p.add_argument("--resend-ms", type=int, default=2000, help="SDS resend interval")
    p.add_argument("--stats-ms", type=int, default=500, help="period of the stats lines")
    a = p.parse_args(argv)
    if not a.id:
        p.error("--id must not be empty")
    if not a.db:
        a.db = f"{a.id}.db"
    if not 0 <= a.loss <= 1 or not 0 <= a.dup <= 1:
        p.error("--loss and --dup are probabilities in [0, 1]")
    if a.messages < 0 or a.interval_ms < 0 or a.delay_ms < 0:
        p.error("--messages, --interval-ms and --delay-ms must be >= 0")
    if a.stats_ms <= 0 or a.sync_ms <= 0 or a.resend_ms <= 0:
        p.error("--stats-ms, --sync-ms and --resend-ms must be > 0")
    return a


def demo_config(args: argparse.Namespace) -> dict[str, int]:
    """The SDS config of every demo participant (docs/demo.md): SDK defaults except the
    intervals from the flags, repair T_min/T_max 500/3000 ms and 100 repair attempts."""
    return {
        "sync_interval_ms": args.sync_ms,
        "resend_interval_ms": args.resend_ms,
        "repair_t_min_ms": 500,
        "repair_t_max_ms": 3000,
        "max_repair_attempts": 100,
    }


class Output:
    """The JSON lines on stdout: one object per line, flushed at once."""

    def __init__(self, ident: str) -> None:
        self.id = ident

    def emit(self, obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def error(self, message: str) -> None:
        self.emit({"event": "error", "id": self.id, "message": message})


class AppLog:
    """The application's durable chat log (DB.chat)."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS chat_log(message_id TEXT PRIMARY KEY, sender_id TEXT NOT NULL,"
            " lamport INTEGER NOT NULL, content BLOB NOT NULL, own INTEGER NOT NULL)"
        )

    def insert(self, mid: str, sender: str, lamport: int, content: bytes, own: bool) -> None:
        self.db.execute("INSERT OR IGNORE INTO chat_log VALUES (?, ?, ?, ?, ?)",
                        (mid, sender, lamport, content, int(own)))

    def summary(self) -> tuple[int, int, str]:
        """(own messages, distinct messages, SHA-256 of the sorted ids joined by newlines)."""
        rows = self.db.execute("SELECT message_id, own FROM chat_log").fetchall()
        ids = sorted(r[0] for r in rows)
        own = sum(1 for r in rows if r[1])
        return own, len(ids), hashlib.sha256("\n".join(ids).encode()).hexdigest()

    def close(self) -> None:
        self.db.close()


class ImpairedTransport:
    """Drops, duplicates and delays received payloads so the demo has gaps to repair;
    publishing is untouched."""

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


class Stats:
    """The process-lifetime counters of the stats lines."""

    def __init__(self) -> None:
        self.delivered = 0
        self.acked = 0
        self.resent = 0
        self.repair_answered = 0
        self.repair_requested: set[str] = set()
        self.missing: set[str] = set()


def watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Sets stop when stdin reaches EOF (the orchestrator closes it to end the peer). A
    daemon thread, since a pipe, a file and /dev/null cannot all be polled by the loop."""

    def read() -> None:
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=read, name="stdin-eof", daemon=True).start()


async def run(args: argparse.Namespace) -> int:
    out = Output(args.id)
    log = AppLog(args.db + ".chat")
    sent_before, recovered, _ = log.summary()
    st = Stats()

    def on_message(m: sdskit.MessageReady) -> None:
        log.insert(m.message_id, m.sender_id, m.lamport_timestamp, m.content, False)
        st.delivered += 1
        st.missing.discard(m.message_id)

    def on_acknowledged(_mid: str) -> None:
        st.acked += 1

    def on_missing(e: sdskit.MissingDependencies) -> None:
        for h in e.missing:
            st.repair_requested.add(h.message_id)
            st.missing.add(h.message_id)

    def on_event(ev: sdskit.Event) -> None:
        if isinstance(ev, sdskit.ResendRequested):
            st.resent += 1
        elif isinstance(ev, sdskit.RepairReady):
            st.repair_answered += 1
        elif isinstance(ev, sdskit.MessageLost):
            out.error(f"gave up on {ev.message_id}: dependencies lost")

    def on_error(err: Exception) -> None:
        out.error(str(err))

    try:
        # Reconnect for ever once connected, but give up on a server that is not there.
        nats_t = await asyncio.wait_for(
            NatsTransport.connect(args.nats, args.subject, name=args.id, max_reconnect_attempts=-1,
                                  reconnect_time_wait=0.5), 15)
    except Exception as exc:
        out.error(f"cannot connect to NATS at {args.nats}: {exc!r}")
        log.close()
        return 1
    transport = ImpairedTransport(nats_t, args)
    try:
        ch = await ReliableChannel.open(
            args.id, args.channel, transport, config=demo_config(args), persistence=sdskit.CoreSQLite(args.db),
            on_message=on_message, on_acknowledged=on_acknowledged, on_missing=on_missing,
            on_event=on_event, on_error=on_error,
        )
    except Exception as exc:
        out.error(f"cannot open the channel: {exc}")
        await nats_t.close()
        log.close()
        return 1
    # Events fire after the SDS state committed: a kill between a commit and our insert
    # leaves a message in the SDS log only. The SDS log is the source of truth.
    snap = (await ch.manager.get_snapshot(args.channel)).unwrap().snapshot
    for m in snap.log:
        log.insert(m.message_id, m.sender_id, m.lamport_timestamp, m.content, m.sender_id == args.id)
    sent_before, _, _ = log.summary()
    out.emit({"event": "ready", "id": args.id, "lang": "python", "recovered": recovered, "sent_before": sent_before})

    def stats_line() -> None:
        own, count, digest = log.summary()
        out.emit({"event": "stats", "id": args.id, "sent": own, "delivered": st.delivered, "acked": st.acked,
                  "resent": st.resent, "repair_requested": len(st.repair_requested),
                  "repair_answered": st.repair_answered, "missing": len(st.missing), "count": count,
                  "digest": digest, "done_sending": own >= args.messages})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch_stdin(loop, stop)

    async def poster() -> None:
        rng = random.Random(args.seed * 104729 + 3)
        sent = sent_before
        while sent < args.messages:
            try:
                await asyncio.wait_for(stop.wait(), rng.uniform(args.interval_ms / 2, 3 * args.interval_ms / 2) / 1000)
                return
            except asyncio.TimeoutError:
                pass
            n = sent + 1
            mid = f"{args.id}-{n}"
            content = f"hello {n} from {args.id}".encode()
            try:
                await ch.send(content, mid)
            except PublishError as exc:
                # Persisted: the message is ours and the resend timer publishes it again.
                out.error(f"post {mid}: {exc}")
            except Exception as exc:  # the wrap was refused: n stays unused, retried later
                out.error(f"post {mid}: {exc}")
                continue
            log.insert(mid, args.id, 0, content, True)
            st.delivered += 1  # own posts are delivered locally and count (peer contract)
            sent = n

    async def ticker() -> None:
        while True:
            await asyncio.sleep(args.stats_ms / 1000)
            stats_line()

    # The poster is not cancelled: a post in flight completes, so the app log keeps up
    # with the SDS state.
    posting = loop.create_task(poster())
    ticking = loop.create_task(ticker())
    await stop.wait()
    await posting
    ticking.cancel()
    await asyncio.gather(ticking, return_exceptions=True)
    status = 0
    try:
        await ch.close()
    except Exception as exc:
        out.error(f"close: {exc}")
        status = 1
    await nats_t.close()
    stats_line()
    log.close()
    return status


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    sys.exit(asyncio.run(run(parse_args(sys.argv[1:]))))


if __name__ == "__main__":
    main()
