package sdserr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

func TestErrorFormatAndIs(t *testing.T) {
	e := New(Persistence, "WrapOutgoingMessage", "disk %s", "full")
	if got, want := e.Error(), "WrapOutgoingMessage: PERSISTENCE: disk full"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("outer: %w", e)
	if !errors.Is(wrapped, Is(Persistence)) {
		t.Fatal("errors.Is(code) failed through a wrap")
	}
	if errors.Is(wrapped, Is(Internal)) {
		t.Fatal("errors.Is matched the wrong code")
	}
	if !errors.Is(wrapped, &Error{Code: Persistence}) {
		t.Fatal("errors.Is(*Error) should compare codes")
	}
	if CodeOf(wrapped) != Persistence {
		t.Fatalf("CodeOf = %v", CodeOf(wrapped))
	}
}

func TestWrapKeepsCause(t *testing.T) {
	if Wrap(Internal, "op", nil) != nil {
		t.Fatal("Wrap(nil) must be nil")
	}
	e := Wrap(Deserialization, "Decode", io.ErrUnexpectedEOF)
	if !errors.Is(e, io.ErrUnexpectedEOF) {
		t.Fatal("cause lost")
	}
	if e.Msg != io.ErrUnexpectedEOF.Error() {
		t.Fatalf("message %q", e.Msg)
	}
}

func TestFromAndCodeOf(t *testing.T) {
	if From("op", Internal, nil) != nil || CodeOf(nil) != pb.ErrorCode_ERROR_CODE_UNSPECIFIED {
		t.Fatal("nil handling")
	}
	orig := New(NotFound, "Snapshot", "x")
	if From("other", Internal, fmt.Errorf("w: %w", orig)) != orig {
		t.Fatal("From must keep an existing *Error")
	}
	if got := From("op", Persistence, context.Canceled); got.Code != Cancelled {
		t.Fatalf("context error mapped to %v", got.Code)
	}
	if got := From("op", Persistence, io.EOF); got.Code != Persistence || got.Op != "op" {
		t.Fatalf("fallback: %+v", got)
	}
	if CodeOf(context.DeadlineExceeded) != Cancelled || CodeOf(io.EOF) != Internal {
		t.Fatal("CodeOf fallback mapping")
	}
}

func TestProtoRoundTripAndUnknownCode(t *testing.T) {
	e := New(Closed, "Close", "closed")
	back := FromProto(e.Proto())
	if back.Code != Closed || back.Op != "Close" || back.Msg != "closed" {
		t.Fatalf("round trip: %+v", back)
	}
	if FromProto(nil) != nil {
		t.Fatal("FromProto(nil)")
	}
	if got := (&Error{Code: 999}).Error(); got != "ERROR_CODE(999)" {
		t.Fatalf("unknown code formats as %q", got)
	}
}
