package glue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

// batchHost is a host whose Persistence receives whole batches (Options.BatchPersistence)
// and applies them to a store.Memory.
type batchHost struct {
	mu      sync.Mutex
	mem     *store.Memory
	batches []*pb.PersistenceBatch
	loads   int
	failing bool
}

func (h *batchHost) call(ctx context.Context, service string, id uint32, req []byte) ([]byte, error) {
	if service != pb.Persistence_ServiceName {
		return ValueResult(&pb.Empty{}), nil // events
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch id {
	case BatchMethodID:
		var b pb.PersistenceBatch
		if err := proto.Unmarshal(req, &b); err != nil {
			return nil, err
		}
		h.batches = append(h.batches, &b)
		if h.failing {
			return ErrorResult(errors.New("disk full")), nil
		}
		if err := h.mem.Apply(ctx, &b); err != nil {
			return ErrorResult(err), nil
		}
		return ValueResult(&pb.Empty{}), nil
	case pb.Persistence_LoadAllForChannel_MethodID:
		h.loads++
		var r pb.LoadAllForChannelRequest
		if err := proto.Unmarshal(req, &r); err != nil {
			return nil, err
		}
		snap, err := h.mem.Load(ctx, r.GetChannelId())
		if err != nil {
			return ErrorResult(err), nil
		}
		return ValueResult(snap), nil
	}
	return ErrorResult(errors.New("unexpected method")), nil
}

func TestBatchPersistenceSendsOneCallPerBatch(t *testing.T) {
	ctx := context.Background()
	reg := NewRegistry()
	host := &batchHost{mem: store.NewMemory()}
	create := mustMarshal(t, &pb.CreateRequest{ParticipantId: "alice",
		Persistence: &pb.PersistenceChoice{Kind: &pb.PersistenceChoice_Host_{Host: &pb.PersistenceChoice_Host{}}}})
	h, res := reg.CreateWithOptions(ctx, create, Capabilities{Persistence: true, Events: true}, host.call,
		Options{BatchPersistence: true, ConcurrentHost: true})
	if h == 0 {
		t.Fatalf("create: %v", errorOf(t, res))
	}
	wrap := func(id string) []byte {
		return reg.Call(ctx, h, pb.ReliabilityManager_WrapOutgoingMessage_MethodID,
			mustMarshal(t, &pb.WrapOutgoingMessageRequest{ChannelId: "ch", MessageId: id, Content: []byte(id)}))
	}
	value(t, wrap("m1"), &pb.WrapOutgoingMessageResponse{})
	value(t, wrap("m2"), &pb.WrapOutgoingMessageResponse{})
	if len(host.batches) != 2 || host.loads != 1 {
		t.Fatalf("%d batches, %d loads; want 2 and 1", len(host.batches), host.loads)
	}
	for _, b := range host.batches {
		if b.GetChannelId() != "ch" || len(b.GetOps()) < 2 {
			t.Fatalf("batch %v", b)
		}
	}
	if got := len(host.mem.Snapshot("ch").GetOutgoing()); got != 2 {
		t.Fatalf("stored outgoing = %d", got)
	}
	// A failing batch fails the operation with PERSISTENCE and leaves memory as it was.
	host.failing = true
	if e := errorOf(t, wrap("m3")); e.GetCode() != pb.ErrorCode_ERROR_CODE_PERSISTENCE {
		t.Fatalf("failing batch: %v", e)
	}
	var snap pb.GetSnapshotResponse
	value(t, reg.Call(ctx, h, pb.ReliabilityManager_GetSnapshot_MethodID, mustMarshal(t, &pb.GetSnapshotRequest{ChannelId: "ch"})), &snap)
	if n := len(snap.GetSnapshot().GetOutgoing()); n != 2 {
		t.Fatalf("outgoing after a failed batch = %d, want 2", n)
	}
	host.failing = false
	value(t, wrap("m3"), &pb.WrapOutgoingMessageResponse{})
}

func TestBatchingOutsideATransaction(t *testing.T) {
	host := &batchHost{mem: store.NewMemory()}
	b := newBatching(concurrent(host.call, pb.Persistence_ServiceName), nil)
	ctx := context.Background()
	if err := b.SaveLamport(ctx, &pb.SaveLamportRequest{ChannelId: "c", LamportTimestamp: 7}); err != nil {
		t.Fatal(err)
	}
	if len(host.batches) != 1 || len(host.batches[0].GetOps()) != 1 {
		t.Fatalf("batches %v", host.batches)
	}
	if err := b.Begin(ctx, &pb.BeginRequest{ChannelId: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Begin(ctx, &pb.BeginRequest{ChannelId: "c"}); err == nil {
		t.Fatal("a second Begin succeeded")
	}
	if err := b.DropChannel(ctx, &pb.DropChannelRequest{ChannelId: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Rollback(ctx, &pb.RollbackRequest{ChannelId: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx, &pb.CommitRequest{ChannelId: "c"}); err == nil {
		t.Fatal("Commit without Begin succeeded")
	}
	if len(host.batches) != 1 || host.mem.Snapshot("c").GetLamportTimestamp() != 7 {
		t.Fatal("a rolled-back batch reached the host")
	}
	// An empty batch makes no call.
	_ = b.Begin(ctx, &pb.BeginRequest{ChannelId: "c"})
	if err := b.Commit(ctx, &pb.CommitRequest{ChannelId: "c"}); err != nil || len(host.batches) != 1 {
		t.Fatalf("empty commit: %v, %d batches", err, len(host.batches))
	}
}

func TestClockOption(t *testing.T) {
	ctx := context.Background()
	reg := NewRegistry()
	clk := clock.NewManual(time.UnixMilli(1_700_000_000_000))
	h, res := reg.CreateWithOptions(ctx, nil, Capabilities{}, nil, Options{Clock: clk})
	if h == 0 {
		t.Fatalf("create: %v", errorOf(t, res))
	}
	var w pb.WrapOutgoingMessageResponse
	value(t, reg.Call(ctx, h, pb.ReliabilityManager_WrapOutgoingMessage_MethodID,
		mustMarshal(t, &pb.WrapOutgoingMessageRequest{ChannelId: "c", MessageId: "m", Content: []byte("x")})), &w)
	var m pb.SdsMessage
	if err := proto.Unmarshal(w.GetWireBytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.GetLamportTimestamp() != 1_700_000_000_000 {
		t.Fatalf("lamport %d: the manual clock was not used", m.GetLamportTimestamp())
	}
}

func TestConcurrentHostOverlapsCalls(t *testing.T) {
	// With ConcurrentHost, a host call for one channel that waits does not hold up a
	// call for another channel.
	ctx := context.Background()
	reg := NewRegistry()
	mem := &typedMemory{mem: store.NewMemory()}
	release := make(chan struct{})
	var once sync.Once
	host := func(ctx context.Context, service string, id uint32, req []byte) ([]byte, error) {
		if service == pb.Persistence_ServiceName && id == pb.Persistence_LoadAllForChannel_MethodID {
			var r pb.LoadAllForChannelRequest
			_ = proto.Unmarshal(req, &r)
			if r.GetChannelId() == "slow" {
				<-release
			}
		}
		if service == pb.Persistence_ServiceName {
			return pb.DispatchPersistence(ctx, mem, id, req), nil
		}
		return ValueResult(&pb.Empty{}), nil
	}
	create := mustMarshal(t, &pb.CreateRequest{Persistence: &pb.PersistenceChoice{Kind: &pb.PersistenceChoice_Host_{Host: &pb.PersistenceChoice_Host{}}}})
	h, _ := reg.CreateWithOptions(ctx, create, Capabilities{Persistence: true}, host, Options{ConcurrentHost: true})
	done := make(chan []byte)
	go func() {
		done <- reg.Call(ctx, h, pb.ReliabilityManager_EnsureChannel_MethodID, mustMarshal(t, &pb.EnsureChannelRequest{ChannelId: "slow"}))
	}()
	time.Sleep(10 * time.Millisecond) // let the slow load start
	value(t, reg.Call(ctx, h, pb.ReliabilityManager_EnsureChannel_MethodID, mustMarshal(t, &pb.EnsureChannelRequest{ChannelId: "fast"})), &pb.EnsureChannelResponse{})
	once.Do(func() { close(release) })
	value(t, <-done, &pb.EnsureChannelResponse{})
}
