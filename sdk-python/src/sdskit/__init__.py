"""sdskit: reliable, causally ordered group messaging — the Scalable Data Sync (SDS)
protocol with SDS-R repair — over any lossy broadcast transport. The Python SDK of the
sdskit Go core, which it loads as a C shared library (bundled; no compiler needed).

    import sdskit

    with sdskit.ReliabilityManager("alice", persistence=sdskit.CoreSQLite("alice.db"),
                                   events=handler) as m:
        wire = m.wrap_outgoing_message("chat", "msg-1", b"hello").unwrap().wire_bytes
        ...
        received = m.unwrap_received_message(data=payload)   # Ok(...) or Err(SdsError)

Every method returns a Result: Ok(response) or Err(SdsError). AsyncReliabilityManager is
the asyncio variant. Backends: the core's ("memory", CoreSQLite(path)) or one written in
Python against the Persistence protocol (sdskit.backends.SQLitePersistence,
MemoryPersistence). See docs/python.md.

After the library is loaded a fork() child hangs (the Go runtime does not survive
fork): start child processes with the "spawn" or "forkserver" multiprocessing methods.
"""

from sdskit._manager import (
    AsyncReliabilityManager,
    ConfigArg,
    CoreMemory,
    CoreSQLite,
    HintsArg,
    ManualClock,
    PersistenceArg,
    ReliabilityManager,
)
from sdskit._native import ENV_LIBRARY, Library, LibraryNotFoundError, load_library
from sdskit.v1.api_pb2 import Config, CreateRequest, MessageKind, UnwrapReceivedMessageResponse
from sdskit.v1.sdk import (
    ABI_VERSION,
    IDL_HASH,
    Capability,
    Err,
    ErrorCode,
    Event,
    EventHandler,
    HostResult,
    LibraryMismatchError,
    MessageAcknowledged,
    MessageLost,
    MessagePossiblyAcknowledged,
    MessageReady,
    MessageUnacknowledged,
    MissingDependencies,
    Ok,
    Persistence,
    PersistenceFailed,
    PersistenceTransactions,
    RepairReady,
    ResendRequested,
    Result,
    RetrievalHintProvider,
    SdsError,
    SyncDue,
)
from sdskit.v1.state_pb2 import ChannelSnapshot
from sdskit.v1.wire_pb2 import HistoryEntry, SdsMessage

__all__ = [
    "ABI_VERSION",
    "ENV_LIBRARY",
    "IDL_HASH",
    "AsyncReliabilityManager",
    "Capability",
    "ChannelSnapshot",
    "Config",
    "ConfigArg",
    "CoreMemory",
    "CoreSQLite",
    "CreateRequest",
    "Err",
    "ErrorCode",
    "Event",
    "EventHandler",
    "HintsArg",
    "HistoryEntry",
    "HostResult",
    "Library",
    "LibraryMismatchError",
    "LibraryNotFoundError",
    "ManualClock",
    "MessageAcknowledged",
    "MessageKind",
    "MessageLost",
    "MessagePossiblyAcknowledged",
    "MessageReady",
    "MessageUnacknowledged",
    "MissingDependencies",
    "Ok",
    "Persistence",
    "PersistenceArg",
    "PersistenceFailed",
    "PersistenceTransactions",
    "ReliabilityManager",
    "RepairReady",
    "ResendRequested",
    "Result",
    "RetrievalHintProvider",
    "SdsError",
    "SdsMessage",
    "SyncDue",
    "UnwrapReceivedMessageResponse",
    "load_library",
]
