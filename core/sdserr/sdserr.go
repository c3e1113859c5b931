// Package sdserr holds the typed error every sdskit operation returns: an ErrorCode
// from the IDL, the failing operation and a human-readable message, wrapping the cause.
package sdserr

import (
	"context"
	"errors"
	"fmt"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Code is the IDL's ErrorCode.
type Code = pb.ErrorCode

// The error codes, re-exported for readability at call sites.
const (
	InvalidArgument = pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT
	MessageTooLarge = pb.ErrorCode_ERROR_CODE_MESSAGE_TOO_LARGE
	Serialization   = pb.ErrorCode_ERROR_CODE_SERIALIZATION
	Deserialization = pb.ErrorCode_ERROR_CODE_DESERIALIZATION
	Persistence     = pb.ErrorCode_ERROR_CODE_PERSISTENCE
	NotFound        = pb.ErrorCode_ERROR_CODE_NOT_FOUND
	Closed          = pb.ErrorCode_ERROR_CODE_CLOSED
	Internal        = pb.ErrorCode_ERROR_CODE_INTERNAL
	Cancelled       = pb.ErrorCode_ERROR_CODE_CANCELLED
)

// Error is a typed sdskit error. errors.Is(err, sdserr.Persistence) reports whether err
// (or anything it wraps) is an *Error with that code.
type Error struct {
	Code Code   // classification
	Op   string // the operation that failed, e.g. "WrapOutgoingMessage"
	Msg  string // human-readable detail
	Err  error  // the cause, if any
}

// New returns an *Error with a formatted message.
func New(code Code, op, format string, args ...any) *Error {
	return &Error{Code: code, Op: op, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the given code whose message is the cause's text; a nil
// cause yields nil.
func Wrap(code Code, op string, cause error) *Error {
	if cause == nil {
		return nil
	}
	return &Error{Code: code, Op: op, Msg: cause.Error(), Err: cause}
}

// Error formats the error as "op: CODE: message".
func (e *Error) Error() string {
	name := codeName(e.Code)
	switch {
	case e.Op != "" && e.Msg != "":
		return e.Op + ": " + name + ": " + e.Msg
	case e.Op != "":
		return e.Op + ": " + name
	case e.Msg != "":
		return name + ": " + e.Msg
	}
	return name
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, code) work for a bare Code target, and compares codes for an
// *Error target.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case codeError:
		return e.Code == Code(t)
	case *Error:
		return e.Code == t.Code
	}
	return false
}

// Proto converts the error to the IDL's Error message.
func (e *Error) Proto() *pb.Error {
	return &pb.Error{Code: e.Code, Message: e.Msg, Op: e.Op}
}

// FromProto converts the IDL's Error message to an *Error (nil for nil).
func FromProto(p *pb.Error) *Error {
	if p == nil {
		return nil
	}
	return &Error{Code: p.GetCode(), Op: p.GetOp(), Msg: p.GetMessage()}
}

// codeError lets a bare code be an errors.Is target: errors.Is(err, sdserr.Is(Persistence)).
type codeError Code

func (c codeError) Error() string { return codeName(Code(c)) }

// Is returns a sentinel for errors.Is: errors.Is(err, sdserr.Is(sdserr.Persistence)).
func Is(code Code) error { return codeError(code) }

// CodeOf returns the code of the first *Error in err's chain; context cancellation maps
// to Cancelled, anything else (non-nil) to Internal, and nil to the unspecified code.
func CodeOf(err error) Code {
	if err == nil {
		return pb.ErrorCode_ERROR_CODE_UNSPECIFIED
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Cancelled
	}
	return Internal
}

// From converts any error into an *Error for op: an *Error is returned as is, context
// errors become Cancelled and anything else gets the fallback code.
func From(op string, fallback Code, err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Wrap(Cancelled, op, err)
	}
	return Wrap(fallback, op, err)
}

func codeName(c Code) string {
	if name, ok := pb.ErrorCode_name[int32(c)]; ok {
		return name[len("ERROR_CODE_"):]
	}
	return fmt.Sprintf("ERROR_CODE(%d)", int32(c))
}
