"""The Python SDK's benchmark: wrap/unwrap per second through the C ABI with several
backends, and the per-call cost of the ABI. Prints a Markdown table (docs/benchmarks.md).

    make bench-python          # or: python bench/bench.py [N]
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable

import sdskit
from sdskit.backends import SQLitePersistence
from sdskit.v1 import api_pb2, state_pb2


class NoopPersistence:
    """A host backend whose every method succeeds at once: the cost of the host calls."""

    def _ok(self, req: object) -> sdskit.Result[None]:
        return sdskit.Ok(None)

    save_lamport = append_log_entry = remove_log_entry = set_retrieval_hint = _ok
    save_outgoing = remove_outgoing = save_incoming = remove_incoming = _ok
    save_outgoing_repair = remove_outgoing_repair = save_incoming_repair = remove_incoming_repair = _ok
    drop_channel = begin = commit = rollback = _ok

    def load_all_for_channel(self, req: state_pb2.LoadAllForChannelRequest) -> sdskit.Result[state_pb2.ChannelSnapshot]:
        return sdskit.Ok(state_pb2.ChannelSnapshot(channel_id=req.channel_id))


BATCH = 100
"""Messages wrapped before they are unwrapped: an application hands each message to its
transport and drops it. Keeping all of them (batch = n) measures the page faults of the
benchmark's own ~19 KB per kept message as well (a row of its own)."""


def rate(n: int, f: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(n):
        f(i)
    return n / (time.perf_counter() - start)


def run(name: str, n: int, make: Callable[[str], sdskit.PersistenceArg], config: dict[str, int], batch: int = BATCH) -> tuple[str, float, float]:
    """Alice wraps n messages and bob unwraps them, batch at a time (wrap a batch, unwrap
    it, drop it): the wrap/s and unwrap/s of the calls alone."""
    a = sdskit.ReliabilityManager("alice", config=config, persistence=make("alice"))
    b = sdskit.ReliabilityManager("bob", config=config, persistence=make("bob"))
    wrap_s = unwrap_s = 0.0
    for first in range(0, n, batch):
        ids = range(first, min(first + batch, n))
        wires: list[bytes] = []
        start = time.perf_counter()
        for i in ids:
            wires.append(a.wrap_outgoing_message("bench", f"m{i}", b"payload-" + str(i).encode()).unwrap().wire_bytes)
        wrap_s += time.perf_counter() - start
        start = time.perf_counter()
        for w in wires:
            b.unwrap_received_message(data=w).unwrap()
        unwrap_s += time.perf_counter() - start
    a.close()
    b.close()
    return name, n / wrap_s, n / unwrap_s


def _raw_message_calls(n: int) -> tuple[float, float]:
    """Wraps and unwraps per second through the C ABI alone: requests encoded beforehand,
    Result bytes not decoded (in batches of BATCH, timed as in run)."""
    WRAP = sdskit.v1.sdk.ReliabilityManagerMethod.WRAP_OUTGOING_MESSAGE
    UNWRAP = sdskit.v1.sdk.ReliabilityManagerMethod.UNWRAP_RECEIVED_MESSAGE
    a, b = sdskit.ReliabilityManager("alice"), sdskit.ReliabilityManager("bob")
    lib = a._session.lib
    wrap_s = unwrap_s = 0.0
    for first in range(0, n, BATCH):
        reqs = [
            api_pb2.WrapOutgoingMessageRequest(channel_id="bench", message_id=f"m{i}", content=b"payload").SerializeToString()
            for i in range(first, min(first + BATCH, n))
        ]
        start = time.perf_counter()
        results = [lib.call(a.handle, WRAP, r) for r in reqs]
        wrap_s += time.perf_counter() - start
        unwraps = [
            api_pb2.UnwrapReceivedMessageRequest(data=api_pb2.WrapOutgoingMessageResponse.FromString(api_pb2.Result.FromString(r).value).wire_bytes).SerializeToString()
            for r in results
        ]
        start = time.perf_counter()
        for r in unwraps:
            lib.call(b.handle, UNWRAP, r)
        unwrap_s += time.perf_counter() - start
    a.close()
    b.close()
    return n / wrap_s, n / unwrap_s


def _suffixed(make: Callable[[str], sdskit.PersistenceArg], suffix: str) -> Callable[[str], sdskit.PersistenceArg]:
    """make with suffix added to the participant's name (one database file per config)."""
    return lambda p: make(p + suffix)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    tmp = tempfile.mkdtemp(prefix="sdskit-bench-")
    backends: list[tuple[str, Callable[[str], sdskit.PersistenceArg]]] = [
        ("none (core, state in memory only)", lambda p: None),
        ("core memory backend", lambda p: "memory"),
        ("Python no-op host backend (host calls only)", lambda p: NoopPersistence()),
        ("Python sqlite3 host backend (transaction per batch)", lambda p: SQLitePersistence(os.path.join(tmp, p + ".py.db"))),
        ("core SQLite backend (Go)", lambda p: sdskit.CoreSQLite(os.path.join(tmp, p + ".core.db"))),
    ]
    # The default filter (10 000 ids at 0.1 %, ~18.8 KB on every message, as @waku/sds
    # sends) and a filter of 1 000 ids (~1.9 KB).
    configs: list[tuple[str, dict[str, int]]] = [("bloom 10 000 (default)", {}), ("bloom 1 000", {"bloom_capacity": 1000})]
    rows: list[tuple[str, str, float, float]] = []
    # Untimed: the first calls of a process also pay for loading and growing the heaps.
    run("warm-up", 500, lambda p: None, {}, batch=BATCH)
    for k, (cname, config) in enumerate(configs):
        for bname, make in backends:
            rows.append((cname, *run(bname, n, _suffixed(make, f".{k}"), config)))
        rows.append((cname, *run(f"none, all {n} wrapped before the first unwrap", n, lambda p: None, config, batch=n)))
    m = sdskit.ReliabilityManager("abi")
    lib, h = m._session.lib, m.handle
    req = api_pb2.ListChannelsRequest().SerializeToString()
    calls = 20000
    raw = rate(calls, lambda i: lib.call(h, sdskit.v1.sdk.ReliabilityManagerMethod.LIST_CHANNELS, req))
    typed = rate(calls, lambda i: m.list_channels().unwrap())
    m.close()
    raw_wrap, raw_unwrap = _raw_message_calls(n)
    print(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores; n = {n} messages of one channel, in batches of {BATCH}")
    print()
    print("| config | backend | wrap/s | unwrap/s | vs @waku/sds (~750 sends/s, ~900 receives/s) |")
    print("|---|---|---:|---:|---|")
    for cname, name, w, u in rows:
        print(f"| {cname} | {name} | {w:,.0f} | {u:,.0f} | {w / 750:.0f}× / {u / 900:.0f}× |")
    print()
    print("| ABI call (no host call) | calls/s | µs/call |")
    print("|---|---:|---:|")
    print(f"| raw ctypes `sdskit_call` of ListChannels | {raw:,.0f} | {1e6 / raw:.1f} |")
    print(f"| typed ListChannels (encode, call, decode Result) | {typed:,.0f} | {1e6 / typed:.1f} |")
    print(f"| raw `sdskit_call` of a wrap (request made beforehand; default filter) | {raw_wrap:,.0f} | {1e6 / raw_wrap:.1f} |")
    print(f"| raw `sdskit_call` of an unwrap of such a message | {raw_unwrap:,.0f} | {1e6 / raw_unwrap:.1f} |")


if __name__ == "__main__":
    main()
