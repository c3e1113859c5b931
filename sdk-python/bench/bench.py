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


def rate(n: int, f: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(n):
        f(i)
    return n / (time.perf_counter() - start)


def run(name: str, n: int, make: Callable[[str], sdskit.PersistenceArg]) -> tuple[str, float, float]:
    config = {"bloom_capacity": 1000}
    a = sdskit.ReliabilityManager("alice", config=config, persistence=make("alice"))
    b = sdskit.ReliabilityManager("bob", config=config, persistence=make("bob"))
    wires: list[bytes] = []
    wrap_rate = rate(n, lambda i: wires.append(a.wrap_outgoing_message("bench", f"m{i}", b"payload-" + str(i).encode()).unwrap().wire_bytes))
    unwrap_rate = rate(n, lambda i: b.unwrap_received_message(data=wires[i]).unwrap())
    a.close()
    b.close()
    return name, wrap_rate, unwrap_rate


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    tmp = tempfile.mkdtemp(prefix="sdskit-bench-")
    rows = [
        run("none (core, state in memory only)", n, lambda p: None),
        run("core memory backend", n, lambda p: "memory"),
        run("Python no-op host backend (host calls only)", n, lambda p: NoopPersistence()),
        run("Python sqlite3 host backend (transaction per batch)", n, lambda p: SQLitePersistence(os.path.join(tmp, p + ".py.db"))),
        run("core SQLite backend (Go)", n, lambda p: sdskit.CoreSQLite(os.path.join(tmp, p + ".core.db"))),
    ]
    m = sdskit.ReliabilityManager("abi")
    lib, h = m._session.lib, m.handle
    req = api_pb2.ListChannelsRequest().SerializeToString()
    calls = 20000
    raw = rate(calls, lambda i: lib.call(h, sdskit.v1.sdk.ReliabilityManagerMethod.LIST_CHANNELS, req))
    typed = rate(calls, lambda i: m.list_channels().unwrap())
    m.close()
    print(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores; n = {n} messages of one channel")
    print()
    print("| backend | wrap/s | unwrap/s |")
    print("|---|---:|---:|")
    for name, w, u in rows:
        print(f"| {name} | {w:,.0f} | {u:,.0f} |")
    print()
    print("| ABI call (ListChannels, no host call) | calls/s | µs/call |")
    print("|---|---:|---:|")
    print(f"| raw ctypes sdskit_call | {raw:,.0f} | {1e6 / raw:.1f} |")
    print(f"| typed client (encode, call, decode Result) | {typed:,.0f} | {1e6 / typed:.1f} |")


if __name__ == "__main__":
    main()
