"""Transports for sdskit.reliable.ReliableChannel (optional dependencies)."""
