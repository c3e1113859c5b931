package gentest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"

	"github.com/sdskit/sdskit/core/sdserr"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

func TestABIFacts(t *testing.T) {
	if pb.ABIVersion != 1 {
		t.Errorf("ABIVersion = %d", pb.ABIVersion)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(pb.IDLHash) {
		t.Errorf("IDLHash = %q, want 64 hex digits", pb.IDLHash)
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *pb.Error
		want string
	}{
		{&pb.Error{Code: sdserr.Persistence, Op: "SaveOutgoing", Message: "disk full"}, "SaveOutgoing: PERSISTENCE: disk full"},
		{&pb.Error{Code: sdserr.Closed, Op: "WrapOutgoingMessage"}, "WrapOutgoingMessage: CLOSED"},
		{&pb.Error{Code: sdserr.InvalidArgument, Message: "empty id"}, "INVALID_ARGUMENT: empty id"},
		{&pb.Error{}, "UNSPECIFIED"},
		{&pb.Error{Code: 42, Op: "X"}, "X: 42"},
		{nil, "UNSPECIFIED"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	// The generated *Error and the core's *sdserr.Error print alike.
	s := sdserr.New(sdserr.Persistence, "SaveOutgoing", "disk full")
	if s.Error() != s.Proto().Error() {
		t.Errorf("sdserr %q vs generated %q", s.Error(), s.Proto().Error())
	}
}

func TestErrorIsCode(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &pb.Error{Code: sdserr.NotFound, Op: "GetSnapshot", Message: "no channel"})
	if !errors.Is(err, &pb.Error{Code: sdserr.NotFound}) {
		t.Error("errors.Is by code failed")
	}
	if errors.Is(err, &pb.Error{Code: sdserr.Closed}) {
		t.Error("errors.Is matched another code")
	}
	if errors.Is(err, (*pb.Error)(nil)) {
		t.Error("errors.Is matched a nil target")
	}
}

func TestErrorFrom(t *testing.T) {
	typed := &pb.Error{Code: sdserr.NotFound, Op: "GetSnapshot", Message: "no channel"}
	tests := []struct {
		name string
		err  error
		want *pb.Error // nil: want nil
		same bool      // the very *Error in the chain is returned
	}{
		{name: "nil", err: nil},
		{name: "sdserr", err: sdserr.New(sdserr.Persistence, "Apply", "disk full"),
			want: &pb.Error{Code: sdserr.Persistence, Op: "Apply", Message: "disk full"}},
		{name: "wrapped sdserr", err: fmt.Errorf("ctx: %w", sdserr.New(sdserr.MessageTooLarge, "Wrap", "too big")),
			want: &pb.Error{Code: sdserr.MessageTooLarge, Op: "Wrap", Message: "too big"}},
		{name: "generated Error", err: typed, want: typed, same: true},
		{name: "wrapped generated Error", err: fmt.Errorf("client: %w", typed), want: typed, same: true},
		{name: "first typed error of a join wins", err: errors.Join(errors.New("plain"), typed, sdserr.New(sdserr.Closed, "", "x")), want: typed, same: true},
		{name: "canceled", err: context.Canceled,
			want: &pb.Error{Code: sdserr.Cancelled, Message: "context canceled"}},
		{name: "wrapped deadline", err: fmt.Errorf("load: %w", context.DeadlineExceeded),
			want: &pb.Error{Code: sdserr.Cancelled, Message: "load: context deadline exceeded"}},
		{name: "plain", err: errors.New("boom"),
			want: &pb.Error{Code: sdserr.Internal, Message: "boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pb.ErrorFrom(tt.err)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("got %v, want nil", got)
				}
				return
			}
			if got.GetCode() != tt.want.GetCode() || got.GetOp() != tt.want.GetOp() || got.GetMessage() != tt.want.GetMessage() {
				t.Fatalf("got {%v %q %q}, want {%v %q %q}", got.GetCode(), got.GetOp(), got.GetMessage(), tt.want.GetCode(), tt.want.GetOp(), tt.want.GetMessage())
			}
			if tt.same && got != tt.want {
				t.Fatal("a new *Error was made instead of returning the one in the chain")
			}
		})
	}
}

func TestPanicError(t *testing.T) {
	boom := errors.New("boom")
	var err error = &pb.PanicError{Op: "Commit", Value: boom}
	if err.Error() != "backend panicked in Commit: boom" || !errors.Is(err, boom) {
		t.Fatalf("%v", err)
	}
	if errors.Unwrap(&pb.PanicError{Op: "X", Value: 42}) != nil {
		t.Fatal("a non-error panic value unwraps")
	}
}
