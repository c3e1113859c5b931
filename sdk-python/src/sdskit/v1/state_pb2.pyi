from sdskit.v1 import wire_pb2 as _wire_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UnacknowledgedMessage(_message.Message):
    __slots__ = ("message", "wire_bytes", "sent_at_unix_ms", "resend_attempts", "next_resend_at_unix_ms", "possible_ack_senders")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WIRE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    RESEND_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_RESEND_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    POSSIBLE_ACK_SENDERS_FIELD_NUMBER: _ClassVar[int]
    message: _wire_pb2.SdsMessage
    wire_bytes: bytes
    sent_at_unix_ms: int
    resend_attempts: int
    next_resend_at_unix_ms: int
    possible_ack_senders: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, message: _Optional[_Union[_wire_pb2.SdsMessage, _Mapping]] = ..., wire_bytes: _Optional[bytes] = ..., sent_at_unix_ms: _Optional[int] = ..., resend_attempts: _Optional[int] = ..., next_resend_at_unix_ms: _Optional[int] = ..., possible_ack_senders: _Optional[_Iterable[str]] = ...) -> None: ...

class IncomingMessage(_message.Message):
    __slots__ = ("message", "missing_dependencies", "received_at_unix_ms")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MISSING_DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    message: _wire_pb2.SdsMessage
    missing_dependencies: _containers.RepeatedScalarFieldContainer[str]
    received_at_unix_ms: int
    def __init__(self, message: _Optional[_Union[_wire_pb2.SdsMessage, _Mapping]] = ..., missing_dependencies: _Optional[_Iterable[str]] = ..., received_at_unix_ms: _Optional[int] = ...) -> None: ...

class OutgoingRepairEntry(_message.Message):
    __slots__ = ("entry", "request_at_unix_ms", "detected_at_unix_ms", "attempts")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DETECTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    entry: _wire_pb2.HistoryEntry
    request_at_unix_ms: int
    detected_at_unix_ms: int
    attempts: int
    def __init__(self, entry: _Optional[_Union[_wire_pb2.HistoryEntry, _Mapping]] = ..., request_at_unix_ms: _Optional[int] = ..., detected_at_unix_ms: _Optional[int] = ..., attempts: _Optional[int] = ...) -> None: ...

class IncomingRepairEntry(_message.Message):
    __slots__ = ("entry", "cached_message", "respond_at_unix_ms")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    CACHED_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESPOND_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    entry: _wire_pb2.HistoryEntry
    cached_message: bytes
    respond_at_unix_ms: int
    def __init__(self, entry: _Optional[_Union[_wire_pb2.HistoryEntry, _Mapping]] = ..., cached_message: _Optional[bytes] = ..., respond_at_unix_ms: _Optional[int] = ...) -> None: ...

class RetrievalHint(_message.Message):
    __slots__ = ("message_id", "retrieval_hint")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_HINT_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    retrieval_hint: bytes
    def __init__(self, message_id: _Optional[str] = ..., retrieval_hint: _Optional[bytes] = ...) -> None: ...

class ChannelSnapshot(_message.Message):
    __slots__ = ("channel_id", "lamport_timestamp", "log", "outgoing", "incoming", "outgoing_repair", "incoming_repair", "retrieval_hints")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    LAMPORT_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    INCOMING_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_REPAIR_FIELD_NUMBER: _ClassVar[int]
    INCOMING_REPAIR_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_HINTS_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    lamport_timestamp: int
    log: _containers.RepeatedCompositeFieldContainer[_wire_pb2.SdsMessage]
    outgoing: _containers.RepeatedCompositeFieldContainer[UnacknowledgedMessage]
    incoming: _containers.RepeatedCompositeFieldContainer[IncomingMessage]
    outgoing_repair: _containers.RepeatedCompositeFieldContainer[OutgoingRepairEntry]
    incoming_repair: _containers.RepeatedCompositeFieldContainer[IncomingRepairEntry]
    retrieval_hints: _containers.RepeatedCompositeFieldContainer[RetrievalHint]
    def __init__(self, channel_id: _Optional[str] = ..., lamport_timestamp: _Optional[int] = ..., log: _Optional[_Iterable[_Union[_wire_pb2.SdsMessage, _Mapping]]] = ..., outgoing: _Optional[_Iterable[_Union[UnacknowledgedMessage, _Mapping]]] = ..., incoming: _Optional[_Iterable[_Union[IncomingMessage, _Mapping]]] = ..., outgoing_repair: _Optional[_Iterable[_Union[OutgoingRepairEntry, _Mapping]]] = ..., incoming_repair: _Optional[_Iterable[_Union[IncomingRepairEntry, _Mapping]]] = ..., retrieval_hints: _Optional[_Iterable[_Union[RetrievalHint, _Mapping]]] = ...) -> None: ...

class SaveLamportRequest(_message.Message):
    __slots__ = ("channel_id", "lamport_timestamp")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    LAMPORT_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    lamport_timestamp: int
    def __init__(self, channel_id: _Optional[str] = ..., lamport_timestamp: _Optional[int] = ...) -> None: ...

class AppendLogEntryRequest(_message.Message):
    __slots__ = ("channel_id", "message")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message: _wire_pb2.SdsMessage
    def __init__(self, channel_id: _Optional[str] = ..., message: _Optional[_Union[_wire_pb2.SdsMessage, _Mapping]] = ...) -> None: ...

class RemoveLogEntryRequest(_message.Message):
    __slots__ = ("channel_id", "message_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class SetRetrievalHintRequest(_message.Message):
    __slots__ = ("channel_id", "message_id", "retrieval_hint")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_HINT_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    retrieval_hint: bytes
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ..., retrieval_hint: _Optional[bytes] = ...) -> None: ...

class SaveOutgoingRequest(_message.Message):
    __slots__ = ("channel_id", "message")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message: UnacknowledgedMessage
    def __init__(self, channel_id: _Optional[str] = ..., message: _Optional[_Union[UnacknowledgedMessage, _Mapping]] = ...) -> None: ...

class RemoveOutgoingRequest(_message.Message):
    __slots__ = ("channel_id", "message_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class SaveIncomingRequest(_message.Message):
    __slots__ = ("channel_id", "message")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message: IncomingMessage
    def __init__(self, channel_id: _Optional[str] = ..., message: _Optional[_Union[IncomingMessage, _Mapping]] = ...) -> None: ...

class RemoveIncomingRequest(_message.Message):
    __slots__ = ("channel_id", "message_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class SaveOutgoingRepairRequest(_message.Message):
    __slots__ = ("channel_id", "entry")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    entry: OutgoingRepairEntry
    def __init__(self, channel_id: _Optional[str] = ..., entry: _Optional[_Union[OutgoingRepairEntry, _Mapping]] = ...) -> None: ...

class RemoveOutgoingRepairRequest(_message.Message):
    __slots__ = ("channel_id", "message_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class SaveIncomingRepairRequest(_message.Message):
    __slots__ = ("channel_id", "entry")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    entry: IncomingRepairEntry
    def __init__(self, channel_id: _Optional[str] = ..., entry: _Optional[_Union[IncomingRepairEntry, _Mapping]] = ...) -> None: ...

class RemoveIncomingRepairRequest(_message.Message):
    __slots__ = ("channel_id", "message_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class DropChannelRequest(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    def __init__(self, channel_id: _Optional[str] = ...) -> None: ...

class LoadAllForChannelRequest(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    def __init__(self, channel_id: _Optional[str] = ...) -> None: ...

class PersistenceOp(_message.Message):
    __slots__ = ("save_lamport", "append_log_entry", "remove_log_entry", "set_retrieval_hint", "save_outgoing", "remove_outgoing", "save_incoming", "remove_incoming", "save_outgoing_repair", "remove_outgoing_repair", "save_incoming_repair", "remove_incoming_repair", "drop_channel")
    SAVE_LAMPORT_FIELD_NUMBER: _ClassVar[int]
    APPEND_LOG_ENTRY_FIELD_NUMBER: _ClassVar[int]
    REMOVE_LOG_ENTRY_FIELD_NUMBER: _ClassVar[int]
    SET_RETRIEVAL_HINT_FIELD_NUMBER: _ClassVar[int]
    SAVE_OUTGOING_FIELD_NUMBER: _ClassVar[int]
    REMOVE_OUTGOING_FIELD_NUMBER: _ClassVar[int]
    SAVE_INCOMING_FIELD_NUMBER: _ClassVar[int]
    REMOVE_INCOMING_FIELD_NUMBER: _ClassVar[int]
    SAVE_OUTGOING_REPAIR_FIELD_NUMBER: _ClassVar[int]
    REMOVE_OUTGOING_REPAIR_FIELD_NUMBER: _ClassVar[int]
    SAVE_INCOMING_REPAIR_FIELD_NUMBER: _ClassVar[int]
    REMOVE_INCOMING_REPAIR_FIELD_NUMBER: _ClassVar[int]
    DROP_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    save_lamport: SaveLamportRequest
    append_log_entry: AppendLogEntryRequest
    remove_log_entry: RemoveLogEntryRequest
    set_retrieval_hint: SetRetrievalHintRequest
    save_outgoing: SaveOutgoingRequest
    remove_outgoing: RemoveOutgoingRequest
    save_incoming: SaveIncomingRequest
    remove_incoming: RemoveIncomingRequest
    save_outgoing_repair: SaveOutgoingRepairRequest
    remove_outgoing_repair: RemoveOutgoingRepairRequest
    save_incoming_repair: SaveIncomingRepairRequest
    remove_incoming_repair: RemoveIncomingRepairRequest
    drop_channel: DropChannelRequest
    def __init__(self, save_lamport: _Optional[_Union[SaveLamportRequest, _Mapping]] = ..., append_log_entry: _Optional[_Union[AppendLogEntryRequest, _Mapping]] = ..., remove_log_entry: _Optional[_Union[RemoveLogEntryRequest, _Mapping]] = ..., set_retrieval_hint: _Optional[_Union[SetRetrievalHintRequest, _Mapping]] = ..., save_outgoing: _Optional[_Union[SaveOutgoingRequest, _Mapping]] = ..., remove_outgoing: _Optional[_Union[RemoveOutgoingRequest, _Mapping]] = ..., save_incoming: _Optional[_Union[SaveIncomingRequest, _Mapping]] = ..., remove_incoming: _Optional[_Union[RemoveIncomingRequest, _Mapping]] = ..., save_outgoing_repair: _Optional[_Union[SaveOutgoingRepairRequest, _Mapping]] = ..., remove_outgoing_repair: _Optional[_Union[RemoveOutgoingRepairRequest, _Mapping]] = ..., save_incoming_repair: _Optional[_Union[SaveIncomingRepairRequest, _Mapping]] = ..., remove_incoming_repair: _Optional[_Union[RemoveIncomingRepairRequest, _Mapping]] = ..., drop_channel: _Optional[_Union[DropChannelRequest, _Mapping]] = ...) -> None: ...

class PersistenceBatch(_message.Message):
    __slots__ = ("channel_id", "ops", "operation")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    ops: _containers.RepeatedCompositeFieldContainer[PersistenceOp]
    operation: str
    def __init__(self, channel_id: _Optional[str] = ..., ops: _Optional[_Iterable[_Union[PersistenceOp, _Mapping]]] = ..., operation: _Optional[str] = ...) -> None: ...
