package glue

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// value decodes a Result into out, failing the test on an Error.
func value(t *testing.T, res []byte, out proto.Message) {
	t.Helper()
	var r pb.Result
	if err := proto.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	if e := r.GetError(); e != nil {
		t.Fatalf("unexpected error result: %v", e)
	}
	if err := proto.Unmarshal(r.GetValue(), out); err != nil {
		t.Fatal(err)
	}
}

func errorOf(t *testing.T, res []byte) *pb.Error {
	t.Helper()
	var r pb.Result
	if err := proto.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	if r.GetError() == nil {
		t.Fatal("expected an error result")
	}
	return r.GetError()
}

// typedMemory implements the typed Persistence contract over store.Memory, one batch
// per call, so that a host backend can be exercised through HostCall bytes.
type typedMemory struct {
	mem   *store.Memory
	calls int
}

func (p *typedMemory) one(ctx context.Context, op *pb.PersistenceOp, ch string) error {
	p.calls++
	return p.mem.Apply(ctx, &pb.PersistenceBatch{ChannelId: ch, Ops: []*pb.PersistenceOp{op}})
}
func (p *typedMemory) SaveLamport(ctx context.Context, r *pb.SaveLamportRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveLamport{SaveLamport: r}}, r.GetChannelId())
}
func (p *typedMemory) AppendLogEntry(ctx context.Context, r *pb.AppendLogEntryRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_AppendLogEntry{AppendLogEntry: r}}, r.GetChannelId())
}
func (p *typedMemory) RemoveLogEntry(ctx context.Context, r *pb.RemoveLogEntryRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveLogEntry{RemoveLogEntry: r}}, r.GetChannelId())
}
func (p *typedMemory) SetRetrievalHint(ctx context.Context, r *pb.SetRetrievalHintRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_SetRetrievalHint{SetRetrievalHint: r}}, r.GetChannelId())
}
func (p *typedMemory) SaveOutgoing(ctx context.Context, r *pb.SaveOutgoingRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoing{SaveOutgoing: r}}, r.GetChannelId())
}
func (p *typedMemory) RemoveOutgoing(ctx context.Context, r *pb.RemoveOutgoingRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoing{RemoveOutgoing: r}}, r.GetChannelId())
}
func (p *typedMemory) SaveIncoming(ctx context.Context, r *pb.SaveIncomingRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncoming{SaveIncoming: r}}, r.GetChannelId())
}
func (p *typedMemory) RemoveIncoming(ctx context.Context, r *pb.RemoveIncomingRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncoming{RemoveIncoming: r}}, r.GetChannelId())
}
func (p *typedMemory) SaveOutgoingRepair(ctx context.Context, r *pb.SaveOutgoingRepairRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoingRepair{SaveOutgoingRepair: r}}, r.GetChannelId())
}
func (p *typedMemory) RemoveOutgoingRepair(ctx context.Context, r *pb.RemoveOutgoingRepairRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoingRepair{RemoveOutgoingRepair: r}}, r.GetChannelId())
}
func (p *typedMemory) SaveIncomingRepair(ctx context.Context, r *pb.SaveIncomingRepairRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncomingRepair{SaveIncomingRepair: r}}, r.GetChannelId())
}
func (p *typedMemory) RemoveIncomingRepair(ctx context.Context, r *pb.RemoveIncomingRepairRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncomingRepair{RemoveIncomingRepair: r}}, r.GetChannelId())
}
func (p *typedMemory) DropChannel(ctx context.Context, r *pb.DropChannelRequest) error {
	return p.one(ctx, &pb.PersistenceOp{Op: &pb.PersistenceOp_DropChannel{DropChannel: r}}, r.GetChannelId())
}
func (p *typedMemory) LoadAllForChannel(ctx context.Context, r *pb.LoadAllForChannelRequest) (*pb.ChannelSnapshot, error) {
	return p.mem.Load(ctx, r.GetChannelId())
}

func TestCreateCallCloseWithHostServices(t *testing.T) {
	ctx := context.Background()
	reg := NewRegistry()
	backend := &typedMemory{mem: store.NewMemory()}
	var mu sync.Mutex
	var events []string
	host := func(ctx context.Context, service string, id uint32, req []byte) ([]byte, error) {
		switch service {
		case pb.Persistence_ServiceName:
			return pb.DispatchPersistence(ctx, backend, id, req), nil
		case pb.EventSink_ServiceName:
			var ev pb.Event
			if err := proto.Unmarshal(req, &ev); err != nil {
				return nil, err
			}
			mu.Lock()
			events = append(events, pb.EventName(&ev))
			mu.Unlock()
			return ValueResult(&pb.Empty{}), nil
		}
		return nil, errors.New("unexpected service " + service)
	}
	create := mustMarshal(t, &pb.CreateRequest{ParticipantId: "alice",
		Persistence: &pb.PersistenceChoice{Kind: &pb.PersistenceChoice_Host_{Host: &pb.PersistenceChoice_Host{}}}})
	h, res := reg.Create(ctx, create, Capabilities{Persistence: true, Events: true}, host)
	if h == 0 {
		t.Fatalf("create failed: %v", errorOf(t, res))
	}
	var wrapped pb.WrapOutgoingMessageResponse
	value(t, reg.Call(ctx, h, pb.ReliabilityManager_WrapOutgoingMessage_MethodID,
		mustMarshal(t, &pb.WrapOutgoingMessageRequest{ChannelId: "ch", MessageId: "m1", Content: []byte("hi")})), &wrapped)
	if len(wrapped.GetWireBytes()) == 0 {
		t.Fatal("no wire bytes")
	}
	if backend.calls == 0 || len(backend.mem.Snapshot("ch").GetLog()) != 1 {
		t.Fatalf("host persistence not used: %d calls", backend.calls)
	}
	// A second manager receives through the same registry and emits events via the host.
	h2, _ := reg.Create(ctx, mustMarshal(t, &pb.CreateRequest{ParticipantId: "bob"}), Capabilities{Events: true}, host)
	var got pb.UnwrapReceivedMessageResponse
	value(t, reg.Call(ctx, h2, pb.ReliabilityManager_UnwrapReceivedMessage_MethodID,
		mustMarshal(t, &pb.UnwrapReceivedMessageRequest{Data: wrapped.GetWireBytes()})), &got)
	if !got.GetDelivered() || string(got.GetContent()) != "hi" {
		t.Fatalf("unwrap: %v", &got)
	}
	mu.Lock()
	if len(events) != 1 || events[0] != "MessageReady" {
		t.Fatalf("events = %v", events)
	}
	mu.Unlock()
	if reg.Len() != 2 {
		t.Fatalf("Len = %d", reg.Len())
	}
	value(t, reg.Close(ctx, h), &pb.CloseResponse{})
	if e := errorOf(t, reg.Close(ctx, h)); e.GetCode() != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Fatalf("double close: %v", e)
	}
	if e := errorOf(t, reg.Call(ctx, h, pb.ReliabilityManager_WrapOutgoingMessage_MethodID, nil)); e.GetCode() != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Fatalf("call on closed handle: %v", e)
	}
}

func TestBadInputGivesTypedErrors(t *testing.T) {
	ctx := context.Background()
	reg := NewRegistry()
	if h, res := reg.Create(ctx, []byte{0xff, 0xff}, Capabilities{}, nil); h != 0 || errorOf(t, res).GetCode() != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Fatal("malformed CreateRequest accepted")
	}
	host := mustMarshal(t, &pb.CreateRequest{Persistence: &pb.PersistenceChoice{Kind: &pb.PersistenceChoice_Host_{Host: &pb.PersistenceChoice_Host{}}}})
	if h, res := reg.Create(ctx, host, Capabilities{}, nil); h != 0 || errorOf(t, res).GetCode() != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Fatal("host persistence without a host accepted")
	}
	h, _ := reg.Create(ctx, nil, Capabilities{}, nil) // an empty request is all defaults
	if h == 0 {
		t.Fatal("default create failed")
	}
	if e := errorOf(t, reg.Call(ctx, h, 999, nil)); e.GetCode() != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Fatalf("unknown method: %v", e)
	}
	if e := errorOf(t, reg.Call(ctx, h, pb.ReliabilityManager_UnwrapReceivedMessage_MethodID, []byte{0xff})); e.GetCode() != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Fatalf("undecodable request: %v", e)
	}
	if e := errorOf(t, reg.Call(ctx, h, pb.ReliabilityManager_UnwrapReceivedMessage_MethodID,
		mustMarshal(t, &pb.UnwrapReceivedMessageRequest{Data: []byte("garbage")}))); e.GetCode() != pb.ErrorCode_ERROR_CODE_DESERIALIZATION {
		t.Fatalf("garbage message: %v", e)
	}
}
