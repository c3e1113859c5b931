"""Applies a PersistenceBatch (one call of the core per batch, CreateRequest
.host_persistence_batches) against a typed Persistence implementation: Begin, every op in
order, Commit — Rollback when one fails. The ops are handed to the typed methods as the
already-decoded messages, so a batch costs one crossing of the C boundary and one decode,
and fails exactly as the per-operation calls it replaces would."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Iterator
from typing import Final

from google.protobuf.message import DecodeError, Message

from sdskit.v1 import api_pb2, state_pb2
from sdskit.v1.sdk import (
    PERSISTENCE_METHODS,
    Err,
    ErrorCode,
    HostMethod,
    Ok,
    SdsError,
    encode_error,
    encode_value,
)

BATCH_METHOD_ID: Final = 0
"""The method id of the Persistence service that carries a whole batch (no IDL method has id 0)."""

_METHODS: Final[dict[str, HostMethod]] = {m.attr: m for m in PERSISTENCE_METHODS.values()}
_OK: Final = encode_value(None)

Step = tuple[HostMethod, Message]


def _failure(meth: HostMethod, out: object) -> bytes | None:
    """The Result bytes of a failed call, None for success (the ops' values are Empty)."""
    if isinstance(out, Err):
        e = out.error
        return encode_error(SdsError(e.code, e.message, e.op or meth.name))
    if isinstance(out, SdsError):
        return encode_error(SdsError(out.code, out.message, out.op or meth.name))
    return None


def _steps(impl: object, data: bytes) -> tuple[list[Step], str]:
    batch = state_pb2.PersistenceBatch.FromString(data)
    tx = callable(getattr(impl, "begin", None)) and callable(getattr(impl, "commit", None)) and callable(getattr(impl, "rollback", None))
    steps: list[Step] = []
    if tx:
        steps.append((_METHODS["begin"], api_pb2.BeginRequest(channel_id=batch.channel_id)))
    for op in batch.ops:
        kind = op.WhichOneof("op")
        if kind is None:
            raise SdsError(ErrorCode.INVALID_ARGUMENT, "an empty PersistenceOp in the batch", "ApplyBatch")
        steps.append((_METHODS[kind], getattr(op, kind)))
    if tx:
        steps.append((_METHODS["commit"], api_pb2.CommitRequest(channel_id=batch.channel_id)))
    return steps, batch.channel_id if tx else ""


def _call(impl: object, meth: HostMethod, req: Message) -> object:
    fn = getattr(impl, meth.attr, None)
    if not callable(fn):
        return SdsError(ErrorCode.INVALID_ARGUMENT, f"this Persistence implementation does not offer {meth.name}", meth.name)
    try:
        return fn(req)
    except Exception as exc:  # noqa: BLE001 - the boundary: nothing may escape
        return exc if isinstance(exc, SdsError) else SdsError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {str(exc) or repr(exc)}", meth.name)


def apply_batch(impl: object, data: bytes) -> bytes | Awaitable[bytes]:
    """Returns the Result bytes of the batch (the first failure's, after Rollback), or an
    awaitable of them as soon as one of impl's methods is async."""
    try:
        steps, tx_channel = _steps(impl, data)
    except DecodeError as exc:
        return encode_error(SdsError(ErrorCode.INVALID_ARGUMENT, f"cannot decode the batch: {exc}", "ApplyBatch"))
    except SdsError as err:
        return encode_error(err)
    it = iter(steps)
    for meth, req in it:
        out = _call(impl, meth, req)
        if out.__class__ is Ok:  # the common case, before the costlier generic checks
            continue
        if inspect.isawaitable(out):
            return _finish_async(impl, meth, out, it, tx_channel)
        if (failed := _failure(meth, out)) is not None:
            return _rollback_sync(impl, meth, failed, tx_channel)
    return _OK


def _rollback_sync(impl: object, failed_at: HostMethod, failure: bytes, tx_channel: str) -> bytes | Awaitable[bytes]:
    if not tx_channel or failed_at.attr == "begin":
        return failure
    out = _call(impl, _METHODS["rollback"], api_pb2.RollbackRequest(channel_id=tx_channel))
    if not inspect.isawaitable(out):
        return failure

    async def wait() -> bytes:
        try:
            await out
        except Exception:  # noqa: BLE001 - the op's failure is what the core must see
            pass
        return failure

    return wait()


async def _settle(meth: HostMethod, pending: Awaitable[object]) -> object:
    try:
        return await pending
    except Exception as exc:  # noqa: BLE001 - the boundary: nothing may escape
        return exc if isinstance(exc, SdsError) else SdsError(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}", meth.name)


async def _finish_async(impl: object, meth: HostMethod, pending: Awaitable[object], it: Iterator[Step], tx_channel: str) -> bytes:
    out = await _settle(meth, pending)
    while True:
        if (failed := _failure(meth, out)) is not None:
            rb = _rollback_sync(impl, meth, failed, tx_channel)
            return rb if isinstance(rb, bytes) else await rb
        nxt = next(it, None)
        if nxt is None:
            return _OK
        meth, req = nxt
        out = _call(impl, meth, req)
        if inspect.isawaitable(out):
            out = await _settle(meth, out)
