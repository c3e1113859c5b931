from sdskit.v1 import wire_pb2 as _wire_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageReady(_message.Message):
    __slots__ = ("channel_id", "message_id", "sender_id", "lamport_timestamp", "content")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    LAMPORT_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    sender_id: str
    lamport_timestamp: int
    content: bytes
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ..., sender_id: _Optional[str] = ..., lamport_timestamp: _Optional[int] = ..., content: _Optional[bytes] = ...) -> None: ...

class MessageAcknowledged(_message.Message):
    __slots__ = ("channel_id", "message_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class MessagePossiblyAcknowledged(_message.Message):
    __slots__ = ("channel_id", "message_id", "count")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    count: int
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class MessageUnacknowledged(_message.Message):
    __slots__ = ("channel_id", "message_id", "resend_attempts")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RESEND_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    resend_attempts: int
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ..., resend_attempts: _Optional[int] = ...) -> None: ...

class ResendRequested(_message.Message):
    __slots__ = ("channel_id", "message_id", "wire_bytes", "attempt")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    WIRE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    wire_bytes: bytes
    attempt: int
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ..., wire_bytes: _Optional[bytes] = ..., attempt: _Optional[int] = ...) -> None: ...

class MissingDependencies(_message.Message):
    __slots__ = ("channel_id", "message_id", "missing")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    missing: _containers.RepeatedCompositeFieldContainer[_wire_pb2.HistoryEntry]
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ..., missing: _Optional[_Iterable[_Union[_wire_pb2.HistoryEntry, _Mapping]]] = ...) -> None: ...

class MessageLost(_message.Message):
    __slots__ = ("channel_id", "message_id", "missing", "delivered")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    missing: _containers.RepeatedCompositeFieldContainer[_wire_pb2.HistoryEntry]
    delivered: bool
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ..., missing: _Optional[_Iterable[_Union[_wire_pb2.HistoryEntry, _Mapping]]] = ..., delivered: _Optional[bool] = ...) -> None: ...

class SyncDue(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    def __init__(self, channel_id: _Optional[str] = ...) -> None: ...

class RepairReady(_message.Message):
    __slots__ = ("channel_id", "message_id", "wire_bytes")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    WIRE_BYTES_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    wire_bytes: bytes
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ..., wire_bytes: _Optional[bytes] = ...) -> None: ...

class PersistenceFailed(_message.Message):
    __slots__ = ("channel_id", "operation", "detail")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    operation: str
    detail: str
    def __init__(self, channel_id: _Optional[str] = ..., operation: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("message_ready", "message_acknowledged", "message_possibly_acknowledged", "message_unacknowledged", "resend_requested", "missing_dependencies", "message_lost", "sync_due", "repair_ready", "persistence_failed")
    MESSAGE_READY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_POSSIBLY_ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_UNACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    RESEND_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    MISSING_DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_LOST_FIELD_NUMBER: _ClassVar[int]
    SYNC_DUE_FIELD_NUMBER: _ClassVar[int]
    REPAIR_READY_FIELD_NUMBER: _ClassVar[int]
    PERSISTENCE_FAILED_FIELD_NUMBER: _ClassVar[int]
    message_ready: MessageReady
    message_acknowledged: MessageAcknowledged
    message_possibly_acknowledged: MessagePossiblyAcknowledged
    message_unacknowledged: MessageUnacknowledged
    resend_requested: ResendRequested
    missing_dependencies: MissingDependencies
    message_lost: MessageLost
    sync_due: SyncDue
    repair_ready: RepairReady
    persistence_failed: PersistenceFailed
    def __init__(self, message_ready: _Optional[_Union[MessageReady, _Mapping]] = ..., message_acknowledged: _Optional[_Union[MessageAcknowledged, _Mapping]] = ..., message_possibly_acknowledged: _Optional[_Union[MessagePossiblyAcknowledged, _Mapping]] = ..., message_unacknowledged: _Optional[_Union[MessageUnacknowledged, _Mapping]] = ..., resend_requested: _Optional[_Union[ResendRequested, _Mapping]] = ..., missing_dependencies: _Optional[_Union[MissingDependencies, _Mapping]] = ..., message_lost: _Optional[_Union[MessageLost, _Mapping]] = ..., sync_due: _Optional[_Union[SyncDue, _Mapping]] = ..., repair_ready: _Optional[_Union[RepairReady, _Mapping]] = ..., persistence_failed: _Optional[_Union[PersistenceFailed, _Mapping]] = ...) -> None: ...
