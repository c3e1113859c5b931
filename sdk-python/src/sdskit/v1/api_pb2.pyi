from sdskit.v1 import errors_pb2 as _errors_pb2
from sdskit.v1 import events_pb2 as _events_pb2
from sdskit.v1 import options_pb2 as _options_pb2
from sdskit.v1 import state_pb2 as _state_pb2
from sdskit.v1 import wire_pb2 as _wire_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WireProfile(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WIRE_PROFILE_UNSPECIFIED: _ClassVar[WireProfile]
    WIRE_PROFILE_SPEC: _ClassVar[WireProfile]
    WIRE_PROFILE_NIM: _ClassVar[WireProfile]

class LostMessagePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOST_MESSAGE_POLICY_UNSPECIFIED: _ClassVar[LostMessagePolicy]
    LOST_MESSAGE_POLICY_DELIVER: _ClassVar[LostMessagePolicy]
    LOST_MESSAGE_POLICY_DROP: _ClassVar[LostMessagePolicy]

class MessageKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_KIND_UNSPECIFIED: _ClassVar[MessageKind]
    MESSAGE_KIND_CONTENT: _ClassVar[MessageKind]
    MESSAGE_KIND_SYNC: _ClassVar[MessageKind]
    MESSAGE_KIND_EPHEMERAL: _ClassVar[MessageKind]
    MESSAGE_KIND_DUPLICATE: _ClassVar[MessageKind]
WIRE_PROFILE_UNSPECIFIED: WireProfile
WIRE_PROFILE_SPEC: WireProfile
WIRE_PROFILE_NIM: WireProfile
LOST_MESSAGE_POLICY_UNSPECIFIED: LostMessagePolicy
LOST_MESSAGE_POLICY_DELIVER: LostMessagePolicy
LOST_MESSAGE_POLICY_DROP: LostMessagePolicy
MESSAGE_KIND_UNSPECIFIED: MessageKind
MESSAGE_KIND_CONTENT: MessageKind
MESSAGE_KIND_SYNC: MessageKind
MESSAGE_KIND_EPHEMERAL: MessageKind
MESSAGE_KIND_DUPLICATE: MessageKind

class Result(_message.Message):
    __slots__ = ("value", "error")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    value: bytes
    error: _errors_pb2.Error
    def __init__(self, value: _Optional[bytes] = ..., error: _Optional[_Union[_errors_pb2.Error, _Mapping]] = ...) -> None: ...

class Config(_message.Message):
    __slots__ = ("profile", "bloom_capacity", "bloom_error_rate", "max_message_history", "max_causal_history", "max_message_size", "resend_interval_ms", "resend_backoff", "max_resend_interval_ms", "max_resend_attempts", "possible_acks_threshold", "sync_interval_ms", "sync_jitter", "sweep_interval_ms", "incoming_timeout_ms", "lost_message_policy", "repair_t_min_ms", "repair_t_max_ms", "num_response_groups", "max_repair_requests", "max_repair_attempts", "sync_causal_history", "max_incoming_buffer", "max_repair_buffer", "repair_retry_max_interval_ms", "sync_unreferenced_rounds", "bloom_repair_after_ms")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    BLOOM_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    BLOOM_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    MAX_CAUSAL_HISTORY_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESEND_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    RESEND_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    MAX_RESEND_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESEND_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    POSSIBLE_ACKS_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SYNC_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    SYNC_JITTER_FIELD_NUMBER: _ClassVar[int]
    SWEEP_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    INCOMING_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    LOST_MESSAGE_POLICY_FIELD_NUMBER: _ClassVar[int]
    REPAIR_T_MIN_MS_FIELD_NUMBER: _ClassVar[int]
    REPAIR_T_MAX_MS_FIELD_NUMBER: _ClassVar[int]
    NUM_RESPONSE_GROUPS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPAIR_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPAIR_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    SYNC_CAUSAL_HISTORY_FIELD_NUMBER: _ClassVar[int]
    MAX_INCOMING_BUFFER_FIELD_NUMBER: _ClassVar[int]
    MAX_REPAIR_BUFFER_FIELD_NUMBER: _ClassVar[int]
    REPAIR_RETRY_MAX_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    SYNC_UNREFERENCED_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    BLOOM_REPAIR_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    profile: WireProfile
    bloom_capacity: int
    bloom_error_rate: float
    max_message_history: int
    max_causal_history: int
    max_message_size: int
    resend_interval_ms: int
    resend_backoff: float
    max_resend_interval_ms: int
    max_resend_attempts: int
    possible_acks_threshold: int
    sync_interval_ms: int
    sync_jitter: float
    sweep_interval_ms: int
    incoming_timeout_ms: int
    lost_message_policy: LostMessagePolicy
    repair_t_min_ms: int
    repair_t_max_ms: int
    num_response_groups: int
    max_repair_requests: int
    max_repair_attempts: int
    sync_causal_history: int
    max_incoming_buffer: int
    max_repair_buffer: int
    repair_retry_max_interval_ms: int
    sync_unreferenced_rounds: int
    bloom_repair_after_ms: int
    def __init__(self, profile: _Optional[_Union[WireProfile, str]] = ..., bloom_capacity: _Optional[int] = ..., bloom_error_rate: _Optional[float] = ..., max_message_history: _Optional[int] = ..., max_causal_history: _Optional[int] = ..., max_message_size: _Optional[int] = ..., resend_interval_ms: _Optional[int] = ..., resend_backoff: _Optional[float] = ..., max_resend_interval_ms: _Optional[int] = ..., max_resend_attempts: _Optional[int] = ..., possible_acks_threshold: _Optional[int] = ..., sync_interval_ms: _Optional[int] = ..., sync_jitter: _Optional[float] = ..., sweep_interval_ms: _Optional[int] = ..., incoming_timeout_ms: _Optional[int] = ..., lost_message_policy: _Optional[_Union[LostMessagePolicy, str]] = ..., repair_t_min_ms: _Optional[int] = ..., repair_t_max_ms: _Optional[int] = ..., num_response_groups: _Optional[int] = ..., max_repair_requests: _Optional[int] = ..., max_repair_attempts: _Optional[int] = ..., sync_causal_history: _Optional[int] = ..., max_incoming_buffer: _Optional[int] = ..., max_repair_buffer: _Optional[int] = ..., repair_retry_max_interval_ms: _Optional[int] = ..., sync_unreferenced_rounds: _Optional[int] = ..., bloom_repair_after_ms: _Optional[int] = ...) -> None: ...

class PersistenceChoice(_message.Message):
    __slots__ = ("none", "memory", "sqlite", "host")
    class None_(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class Memory(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class Sqlite(_message.Message):
        __slots__ = ("path", "synchronous")
        PATH_FIELD_NUMBER: _ClassVar[int]
        SYNCHRONOUS_FIELD_NUMBER: _ClassVar[int]
        path: str
        synchronous: str
        def __init__(self, path: _Optional[str] = ..., synchronous: _Optional[str] = ...) -> None: ...
    class Host(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    NONE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    SQLITE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    none: PersistenceChoice.None_
    memory: PersistenceChoice.Memory
    sqlite: PersistenceChoice.Sqlite
    host: PersistenceChoice.Host
    def __init__(self, none: _Optional[_Union[PersistenceChoice.None_, _Mapping]] = ..., memory: _Optional[_Union[PersistenceChoice.Memory, _Mapping]] = ..., sqlite: _Optional[_Union[PersistenceChoice.Sqlite, _Mapping]] = ..., host: _Optional[_Union[PersistenceChoice.Host, _Mapping]] = ...) -> None: ...

class CreateRequest(_message.Message):
    __slots__ = ("participant_id", "config", "persistence", "host_hint_provider", "host_persistence_batches")
    PARTICIPANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    PERSISTENCE_FIELD_NUMBER: _ClassVar[int]
    HOST_HINT_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    HOST_PERSISTENCE_BATCHES_FIELD_NUMBER: _ClassVar[int]
    participant_id: str
    config: Config
    persistence: PersistenceChoice
    host_hint_provider: bool
    host_persistence_batches: bool
    def __init__(self, participant_id: _Optional[str] = ..., config: _Optional[_Union[Config, _Mapping]] = ..., persistence: _Optional[_Union[PersistenceChoice, _Mapping]] = ..., host_hint_provider: _Optional[bool] = ..., host_persistence_batches: _Optional[bool] = ...) -> None: ...

class CreateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EnsureChannelRequest(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    def __init__(self, channel_id: _Optional[str] = ...) -> None: ...

class EnsureChannelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveChannelRequest(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    def __init__(self, channel_id: _Optional[str] = ...) -> None: ...

class RemoveChannelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WrapOutgoingMessageRequest(_message.Message):
    __slots__ = ("channel_id", "message_id", "content")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    content: bytes
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class WrapOutgoingMessageResponse(_message.Message):
    __slots__ = ("wire_bytes",)
    WIRE_BYTES_FIELD_NUMBER: _ClassVar[int]
    wire_bytes: bytes
    def __init__(self, wire_bytes: _Optional[bytes] = ...) -> None: ...

class WrapEphemeralRequest(_message.Message):
    __slots__ = ("channel_id", "message_id", "content")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    content: bytes
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class WrapEphemeralResponse(_message.Message):
    __slots__ = ("wire_bytes",)
    WIRE_BYTES_FIELD_NUMBER: _ClassVar[int]
    wire_bytes: bytes
    def __init__(self, wire_bytes: _Optional[bytes] = ...) -> None: ...

class BuildSyncMessageRequest(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    def __init__(self, channel_id: _Optional[str] = ...) -> None: ...

class BuildSyncMessageResponse(_message.Message):
    __slots__ = ("wire_bytes",)
    WIRE_BYTES_FIELD_NUMBER: _ClassVar[int]
    wire_bytes: bytes
    def __init__(self, wire_bytes: _Optional[bytes] = ...) -> None: ...

class UnwrapReceivedMessageRequest(_message.Message):
    __slots__ = ("data", "retrieval_hint")
    DATA_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_HINT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    retrieval_hint: bytes
    def __init__(self, data: _Optional[bytes] = ..., retrieval_hint: _Optional[bytes] = ...) -> None: ...

class UnwrapReceivedMessageResponse(_message.Message):
    __slots__ = ("channel_id", "message_id", "sender_id", "kind", "lamport_timestamp", "content", "delivered", "missing")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LAMPORT_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    sender_id: str
    kind: MessageKind
    lamport_timestamp: int
    content: bytes
    delivered: bool
    missing: _containers.RepeatedCompositeFieldContainer[_wire_pb2.HistoryEntry]
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ..., sender_id: _Optional[str] = ..., kind: _Optional[_Union[MessageKind, str]] = ..., lamport_timestamp: _Optional[int] = ..., content: _Optional[bytes] = ..., delivered: _Optional[bool] = ..., missing: _Optional[_Iterable[_Union[_wire_pb2.HistoryEntry, _Mapping]]] = ...) -> None: ...

class MarkDependenciesMetRequest(_message.Message):
    __slots__ = ("channel_id", "message_ids")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, channel_id: _Optional[str] = ..., message_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class MarkDependenciesMetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunSweepsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunSweepsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StartPeriodicTasksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StartPeriodicTasksResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResetRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CloseRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CloseResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    def __init__(self, channel_id: _Optional[str] = ...) -> None: ...

class GetSnapshotResponse(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: _state_pb2.ChannelSnapshot
    def __init__(self, snapshot: _Optional[_Union[_state_pb2.ChannelSnapshot, _Mapping]] = ...) -> None: ...

class ListChannelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListChannelsResponse(_message.Message):
    __slots__ = ("channel_ids",)
    CHANNEL_IDS_FIELD_NUMBER: _ClassVar[int]
    channel_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, channel_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BeginRequest(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    def __init__(self, channel_id: _Optional[str] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    def __init__(self, channel_id: _Optional[str] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("channel_id",)
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    def __init__(self, channel_id: _Optional[str] = ...) -> None: ...

class GetRetrievalHintRequest(_message.Message):
    __slots__ = ("channel_id", "message_id")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    message_id: str
    def __init__(self, channel_id: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class GetRetrievalHintResponse(_message.Message):
    __slots__ = ("retrieval_hint",)
    RETRIEVAL_HINT_FIELD_NUMBER: _ClassVar[int]
    retrieval_hint: bytes
    def __init__(self, retrieval_hint: _Optional[bytes] = ...) -> None: ...
