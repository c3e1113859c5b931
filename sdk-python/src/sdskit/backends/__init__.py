"""Persistence backends written in Python against the generated Persistence protocol:
MemoryPersistence (tests, with failure injection) and SQLitePersistence (the standard
library's sqlite3, one transaction per batch) — the template for application backends."""

from sdskit.backends.memory import PERSISTENCE_METHOD_NAMES, MemoryPersistence
from sdskit.backends.sqlite import SQLitePersistence

__all__ = ["PERSISTENCE_METHOD_NAMES", "MemoryPersistence", "SQLitePersistence"]
