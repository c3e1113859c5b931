"""Helpers for tests and conformance runners (spec-profile bloom filters)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sdskit._native import load_library
from sdskit.v1.sdk import Err, decode_empty_result

__all__ = ["bloom", "bloom_contains"]


def bloom(ids: Iterable[str], capacity: int = 0, error_rate: float = 0.0) -> bytes:
    """The encoded spec-profile bloom filter holding ids (0: the default sizing)."""
    lib = load_library()
    raw = lib.testing_bloom(json.dumps(list(ids)).encode("utf-8"), capacity, error_rate)
    res = decode_empty_result(raw, "TestingBloom")
    if isinstance(res, Err):
        res.unwrap()
    from sdskit.v1 import api_pb2

    return bytes(api_pb2.Result.FromString(raw).value)


def bloom_contains(data: bytes, message_id: str, capacity: int = 0, error_rate: float = 0.0) -> bool:
    """Whether an encoded spec-profile bloom filter holds message_id."""
    return load_library().testing_bloom_contains(data, message_id, capacity, error_rate)
