from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class ServiceRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVICE_ROLE_UNSPECIFIED: _ClassVar[ServiceRole]
    SERVICE_ROLE_CORE: _ClassVar[ServiceRole]
    SERVICE_ROLE_HOST: _ClassVar[ServiceRole]
SERVICE_ROLE_UNSPECIFIED: ServiceRole
SERVICE_ROLE_CORE: ServiceRole
SERVICE_ROLE_HOST: ServiceRole
ROLE_FIELD_NUMBER: _ClassVar[int]
role: _descriptor.FieldDescriptor
METHOD_ID_FIELD_NUMBER: _ClassVar[int]
method_id: _descriptor.FieldDescriptor
OPTIONAL_METHOD_FIELD_NUMBER: _ClassVar[int]
optional_method: _descriptor.FieldDescriptor
OPTIONAL_GROUP_FIELD_NUMBER: _ClassVar[int]
optional_group: _descriptor.FieldDescriptor
