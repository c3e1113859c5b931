// Package model turns the protobuf descriptors of the sdskit IDL (as protogen presents
// them to a protoc plugin) into a language-neutral model of what crosses a language
// boundary: services with their role, methods with their stable ids, the optional
// capabilities of host services, the batch convention of the persistence contract, the
// event union, the error model, and the ABI facts (ABI version, IDL hash).
//
// The Go generator (cmd/protoc-gen-sdskit-go) renders this model with jennifer; the
// TypeScript and Python generators render the same model, so every SDK agrees on names,
// ids and conventions. Build validates the IDL and fails with a readable, positioned
// error for anything a generator could not render faithfully.
package model

import (
	"google.golang.org/protobuf/compiler/protogen"
)

// ABIVersion is the version of the handle-based ABI the generated code speaks: the
// Result envelope, the method-id dispatch and the CallFunc transport. It changes only
// when that shape changes, never when an rpc or a field is added (the IDL hash does).
const ABIVersion = 1

// Role says which side of the language boundary implements a service.
type Role int

const (
	// RoleCore marks a service implemented by the Go core and called by the SDKs.
	RoleCore Role = 1
	// RoleHost marks a service implemented by the host application and called by the core.
	RoleHost Role = 2
)

// String returns "core" or "host".
func (r Role) String() string {
	switch r {
	case RoleCore:
		return "core"
	case RoleHost:
		return "host"
	}
	return "unspecified"
}

// Model is everything the generators render for one plugin invocation.
type Model struct {
	// Files are the files to generate, in request order.
	Files []*File
	// Errors is the error model (nil when no file to generate declares Result/Error).
	Errors *ErrorModel
	// Events is the event union (nil when no file to generate declares it).
	Events *Events
	// IDLHash is the hex SHA-256 of the files to generate (see IDLHash).
	IDLHash string
	// ABIVersion is the ABI version the generated code speaks.
	ABIVersion int
}

// File is one .proto file to generate.
type File struct {
	// Path is the file's path in the IDL, e.g. "sdskit/v1/api.proto".
	Path string
	// Package is the proto package, e.g. "sdskit.v1".
	Package string
	// Services are the file's services, in declaration order.
	Services []*Service
	// DeclaresErrors is true for the file that declares the Result message: the
	// generators put the package's runtime helpers (error mapping, ABI facts) there.
	DeclaresErrors bool
	// DeclaresEvents is true for the file that declares the event union.
	DeclaresEvents bool
	// Proto is the protogen file.
	Proto *protogen.File
}

// Service is a service of the IDL.
type Service struct {
	// Name is the service's name, e.g. "Persistence".
	Name string
	// FullName is its fully qualified name, e.g. "sdskit.v1.Persistence".
	FullName string
	// Role says who implements it.
	Role Role
	// Comment is its leading comment, without comment markers.
	Comment string
	// Methods are all its methods, in declaration order.
	Methods []*Method
	// Required are the methods every implementation provides, in declaration order.
	Required []*Method
	// Groups are the optional capabilities, in order of first appearance.
	Groups []*Group
	// Batch is the batch convention of a host service (nil if it has none).
	Batch *Batch
	// File is the declaring file.
	File *File
	// Proto is the protogen service.
	Proto *protogen.Service
}

// Method is an rpc of a service.
type Method struct {
	// Name is the method's name, e.g. "SaveLamport".
	Name string
	// ID is its stable numeric id within the service (the method_id option).
	ID uint32
	// Input and Output are the request and response messages.
	Input, Output *Message
	// ReturnsEmpty is true when the response is the IDL's Empty message: the generated
	// method then returns only an error.
	ReturnsEmpty bool
	// Optional is true when a host implementation may omit the method.
	Optional bool
	// Group is the optional capability the method belongs to ("" for required methods).
	Group string
	// Comment is its leading comment, without comment markers.
	Comment string
	// Service is the declaring service.
	Service *Service
	// Proto is the protogen method.
	Proto *protogen.Method
}

// Group is a named optional capability of a host service: the optional methods that
// share an optional_group. A host implements all of them or none.
type Group struct {
	// Name is the capability name, e.g. "Transactions".
	Name string
	// Methods are its methods, in declaration order.
	Methods []*Method
}

// Message is a message type referenced by the model.
type Message struct {
	// Name is the message's (possibly nested, dot-separated) name, e.g. "ChannelSnapshot".
	Name string
	// FullName is its fully qualified name, e.g. "sdskit.v1.ChannelSnapshot".
	FullName string
	// Comment is its leading comment, without comment markers.
	Comment string
	// Proto is the protogen message.
	Proto *protogen.Message
}

// Field is a field of a message referenced by the model.
type Field struct {
	// Name is the field's proto name, e.g. "channel_id".
	Name string
	// Number is its field number.
	Number int32
	// Proto is the protogen field.
	Proto *protogen.Field
}

// Batch describes the batch convention of a host service S: a message SBatch with a
// repeated field of a message SOp that holds exactly one oneof, each case of which is
// the request of one required method of S returning Empty. See docs/idl.md.
type Batch struct {
	// Message is the batch message, e.g. PersistenceBatch.
	Message *Message
	// Ops is the batch's repeated op field, e.g. "ops".
	Ops *Field
	// Op is the op message, e.g. PersistenceOp.
	Op *Message
	// Oneof is the op's oneof name, e.g. "op".
	Oneof string
	// OneofProto is the protogen oneof.
	OneofProto *protogen.Oneof
	// Cases map each oneof case to the method it calls, in field order.
	Cases []*BatchCase
	// Scope is the string field of the batch that every op request repeats (e.g.
	// "channel_id"); nil when there is none. Every request of a batch must carry the
	// batch's scope value.
	Scope *Field
	// Load is the required method outside the batch whose request is just the scope
	// (e.g. LoadAllForChannel); nil when there is none.
	Load *Method
	// LoadScope is Load's request field that takes the scope value.
	LoadScope *Field
	// LoadOutputScope is the scope field of Load's response (nil if it has none).
	LoadOutputScope *Field
	// Transactions are the Begin/Commit/Rollback methods of the service's
	// "Transactions" capability; nil when it has none.
	Transactions *Transactions
}

// BatchCase is one case of a batch op's oneof.
type BatchCase struct {
	// Field is the oneof field, e.g. save_lamport.
	Field *Field
	// Method is the method its request is the input of, e.g. SaveLamport.
	Method *Method
	// Scope is the request's scope field (nil when the batch has no scope).
	Scope *Field
}

// Transactions are the methods the batch adapter wraps a batch in.
type Transactions struct {
	// Group is the capability, named "Transactions".
	Group *Group
	// Begin, Commit and Rollback are its methods.
	Begin, Commit, Rollback *Method
	// BeginScope, CommitScope and RollbackScope are their requests' scope fields (nil
	// when a request has none).
	BeginScope, CommitScope, RollbackScope *Field
}

// Events is the event union: the message named Event holding exactly one oneof whose
// cases are all messages.
type Events struct {
	// Message is the union, e.g. Event.
	Message *Message
	// Oneof is the union's oneof name, e.g. "event".
	Oneof string
	// OneofProto is the protogen oneof.
	OneofProto *protogen.Oneof
	// Cases are the event kinds, in field order.
	Cases []*EventCase
}

// EventCase is one kind of event.
type EventCase struct {
	// Name is the case's camel-case name, e.g. "MessageReady" (the handler method is
	// On<Name>).
	Name string
	// Field is the oneof field, e.g. message_ready.
	Field *Field
	// Message is the event's message, e.g. MessageReady.
	Message *Message
}

// ErrorModel is the error model every generated surface shares: a Result message
// (oneof of the encoded value and an Error) and the Error message {code, message, op}
// with its ErrorCode enum.
type ErrorModel struct {
	// Result is the Result message.
	Result *Message
	// ResultOneof is its oneof.
	ResultOneof *protogen.Oneof
	// Value is the result's bytes case; ErrorField its Error case.
	Value, ErrorField *Field
	// Error is the Error message.
	Error *Message
	// Code, Text and Op are Error's code, message and op fields.
	Code, Text, Op *Field
	// CodeEnum is the ErrorCode enum.
	CodeEnum *protogen.Enum
	// CodePrefix is the enum values' common prefix, e.g. "ERROR_CODE_".
	CodePrefix string
	// Codes are the codes the generated runtime itself produces, by suffix: the keys
	// are RequiredCodes.
	Codes map[string]*protogen.EnumValue
	// File is the file declaring Result.
	File *File
}

// RequiredCodes are the error codes the generated runtime produces itself.
var RequiredCodes = []string{
	"INVALID_ARGUMENT", // unknown method id, undecodable request, missing optional method
	"SERIALIZATION",    // a request or response could not be encoded
	"DESERIALIZATION",  // a result could not be decoded
	"INTERNAL",         // a panic, or a plain Go error
	"CANCELLED",        // context.Canceled / DeadlineExceeded
}
