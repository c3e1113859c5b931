from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    ERROR_CODE_INVALID_ARGUMENT: _ClassVar[ErrorCode]
    ERROR_CODE_MESSAGE_TOO_LARGE: _ClassVar[ErrorCode]
    ERROR_CODE_SERIALIZATION: _ClassVar[ErrorCode]
    ERROR_CODE_DESERIALIZATION: _ClassVar[ErrorCode]
    ERROR_CODE_PERSISTENCE: _ClassVar[ErrorCode]
    ERROR_CODE_NOT_FOUND: _ClassVar[ErrorCode]
    ERROR_CODE_CLOSED: _ClassVar[ErrorCode]
    ERROR_CODE_INTERNAL: _ClassVar[ErrorCode]
    ERROR_CODE_CANCELLED: _ClassVar[ErrorCode]
ERROR_CODE_UNSPECIFIED: ErrorCode
ERROR_CODE_INVALID_ARGUMENT: ErrorCode
ERROR_CODE_MESSAGE_TOO_LARGE: ErrorCode
ERROR_CODE_SERIALIZATION: ErrorCode
ERROR_CODE_DESERIALIZATION: ErrorCode
ERROR_CODE_PERSISTENCE: ErrorCode
ERROR_CODE_NOT_FOUND: ErrorCode
ERROR_CODE_CLOSED: ErrorCode
ERROR_CODE_INTERNAL: ErrorCode
ERROR_CODE_CANCELLED: ErrorCode

class Error(_message.Message):
    __slots__ = ("code", "message", "op")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    code: ErrorCode
    message: str
    op: str
    def __init__(self, code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ..., op: _Optional[str] = ...) -> None: ...
