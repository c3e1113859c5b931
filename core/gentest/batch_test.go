package gentest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// host is a Persistence with transactions that records each call as "<Method>" with its
// request, and can fail or panic on a chosen method. (core/store's tests cover the
// adapter through store.FromPersistence in more detail.)
type host struct {
	calls   []string
	reqs    []proto.Message
	failOn  map[string]error
	panicOn map[string]any
	snap    *pb.ChannelSnapshot
}

func (h *host) hit(name string, req proto.Message) error {
	h.calls = append(h.calls, name)
	h.reqs = append(h.reqs, req)
	if v, ok := h.panicOn[name]; ok {
		panic(v)
	}
	return h.failOn[name]
}

func (h *host) SaveLamport(_ context.Context, r *pb.SaveLamportRequest) error {
	return h.hit("SaveLamport", r)
}
func (h *host) AppendLogEntry(_ context.Context, r *pb.AppendLogEntryRequest) error {
	return h.hit("AppendLogEntry", r)
}
func (h *host) RemoveLogEntry(_ context.Context, r *pb.RemoveLogEntryRequest) error {
	return h.hit("RemoveLogEntry", r)
}
func (h *host) SetRetrievalHint(_ context.Context, r *pb.SetRetrievalHintRequest) error {
	return h.hit("SetRetrievalHint", r)
}
func (h *host) SaveOutgoing(_ context.Context, r *pb.SaveOutgoingRequest) error {
	return h.hit("SaveOutgoing", r)
}
func (h *host) RemoveOutgoing(_ context.Context, r *pb.RemoveOutgoingRequest) error {
	return h.hit("RemoveOutgoing", r)
}
func (h *host) SaveIncoming(_ context.Context, r *pb.SaveIncomingRequest) error {
	return h.hit("SaveIncoming", r)
}
func (h *host) RemoveIncoming(_ context.Context, r *pb.RemoveIncomingRequest) error {
	return h.hit("RemoveIncoming", r)
}
func (h *host) SaveOutgoingRepair(_ context.Context, r *pb.SaveOutgoingRepairRequest) error {
	return h.hit("SaveOutgoingRepair", r)
}
func (h *host) RemoveOutgoingRepair(_ context.Context, r *pb.RemoveOutgoingRepairRequest) error {
	return h.hit("RemoveOutgoingRepair", r)
}
func (h *host) SaveIncomingRepair(_ context.Context, r *pb.SaveIncomingRepairRequest) error {
	return h.hit("SaveIncomingRepair", r)
}
func (h *host) RemoveIncomingRepair(_ context.Context, r *pb.RemoveIncomingRepairRequest) error {
	return h.hit("RemoveIncomingRepair", r)
}
func (h *host) DropChannel(_ context.Context, r *pb.DropChannelRequest) error {
	return h.hit("DropChannel", r)
}
func (h *host) LoadAllForChannel(_ context.Context, r *pb.LoadAllForChannelRequest) (*pb.ChannelSnapshot, error) {
	if err := h.hit("LoadAllForChannel", r); err != nil {
		return nil, err
	}
	return h.snap, nil
}
func (h *host) Begin(_ context.Context, r *pb.BeginRequest) error { return h.hit("Begin", r) }
func (h *host) Commit(_ context.Context, r *pb.CommitRequest) error {
	return h.hit("Commit", r)
}
func (h *host) Rollback(_ context.Context, r *pb.RollbackRequest) error {
	return h.hit("Rollback", r)
}

var _ interface {
	pb.Persistence
	pb.PersistenceTransactions
} = (*host)(nil)

// plain hides the transactions of a host.
type plain struct{ pb.Persistence }

// opCases returns, from the IDL's descriptors alone, every case of PersistenceOp's
// oneof with the Persistence rpc whose request type it carries.
func opCases(t *testing.T) (fields []protoreflect.FieldDescriptor, methods []string) {
	t.Helper()
	oneof := (&pb.PersistenceOp{}).ProtoReflect().Descriptor().Oneofs().ByName("op")
	svc := pb.File_sdskit_v1_api_proto.Services().ByName("Persistence")
	for i := range oneof.Fields().Len() {
		fd := oneof.Fields().Get(i)
		var found []string
		for j := range svc.Methods().Len() {
			if md := svc.Methods().Get(j); md.Input().FullName() == fd.Message().FullName() {
				found = append(found, string(md.Name()))
			}
		}
		if len(found) != 1 {
			t.Fatalf("op case %s maps to rpcs %v", fd.Name(), found)
		}
		fields, methods = append(fields, fd), append(methods, found[0])
	}
	return fields, methods
}

// opOf builds an op of the given case whose request belongs to channel ch.
func opOf(fd protoreflect.FieldDescriptor, ch string) (*pb.PersistenceOp, proto.Message) {
	op := &pb.PersistenceOp{}
	req := op.ProtoReflect().Mutable(fd).Message()
	req.Set(req.Descriptor().Fields().ByName("channel_id"), protoreflect.ValueOfString(ch))
	return op, req.Interface()
}

// TestAdapterMappingFromIDL: every op case of the IDL reaches the rpc the IDL says, with
// the batch's own request message, in order, inside Begin/Commit.
func TestAdapterMappingFromIDL(t *testing.T) {
	fields, methods := opCases(t)
	if len(fields) != 13 {
		t.Fatalf("%d op cases, want the 13 writes of the contract", len(fields))
	}
	batch := &pb.PersistenceBatch{ChannelId: "ch"}
	var reqs []proto.Message
	for _, fd := range fields {
		op, req := opOf(fd, "ch")
		batch.Ops = append(batch.Ops, op)
		reqs = append(reqs, req)
	}
	h := &host{}
	if err := pb.NewPersistenceBatchAdapter(h).Apply(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	want := append(append([]string{"Begin"}, methods...), "Commit")
	if !slices.Equal(h.calls, want) {
		t.Fatalf("calls %v, want %v", h.calls, want)
	}
	for i, req := range reqs {
		if h.reqs[i+1] != req {
			t.Errorf("%s got a copy, not the batch's request", methods[i])
		}
	}
	if got := h.reqs[0].(*pb.BeginRequest).GetChannelId(); got != "ch" {
		t.Errorf("Begin channel %q", got)
	}
	for i, fd := range fields {
		op, _ := opOf(fd, "ch")
		if got := pb.PersistenceOpName(op); got != methods[i] {
			t.Errorf("PersistenceOpName(%s) = %q, want %q", fd.Name(), got, methods[i])
		}
	}
}

func batchOf(ch string, ops ...*pb.PersistenceOp) *pb.PersistenceBatch {
	return &pb.PersistenceBatch{ChannelId: ch, Ops: ops, Operation: "Test"}
}

func saveLamport(ch string, v uint64) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveLamport{SaveLamport: &pb.SaveLamportRequest{ChannelId: ch, LamportTimestamp: v}}}
}

func dropChannel(ch string) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_DropChannel{DropChannel: &pb.DropChannelRequest{ChannelId: ch}}}
}

func TestAdapterFailures(t *testing.T) {
	boom, rb := errors.New("boom"), errors.New("rb broke")
	tests := []struct {
		name      string
		tx        bool
		failOn    map[string]error
		panicOn   map[string]any
		wantCalls string
		wantText  string
		wantPanic string
	}{
		{name: "rollback on the first error", tx: true, failOn: map[string]error{"DropChannel": boom},
			wantCalls: "Begin SaveLamport DropChannel Rollback", wantText: "DropChannel: boom"},
		{name: "failed rollback joined", tx: true, failOn: map[string]error{"SaveLamport": boom, "Rollback": rb},
			wantCalls: "Begin SaveLamport Rollback", wantText: "SaveLamport: boom\nRollback: rb broke"},
		{name: "panic recovered and rolled back", tx: true, panicOn: map[string]any{"DropChannel": "kaboom"},
			wantCalls: "Begin SaveLamport DropChannel Rollback", wantText: "backend panicked in DropChannel: kaboom", wantPanic: "DropChannel"},
		{name: "commit fails: no rollback", tx: true, failOn: map[string]error{"Commit": boom},
			wantCalls: "Begin SaveLamport DropChannel SaveLamport Commit", wantText: "Commit: boom"},
		{name: "begin panics: nothing else", tx: true, panicOn: map[string]any{"Begin": 7},
			wantCalls: "Begin", wantText: "backend panicked in Begin: 7", wantPanic: "Begin"},
		{name: "no transactions: stops at the error", failOn: map[string]error{"DropChannel": boom},
			wantCalls: "SaveLamport DropChannel", wantText: "DropChannel: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &host{failOn: tt.failOn, panicOn: tt.panicOn}
			var p pb.Persistence = h
			if !tt.tx {
				p = plain{h}
			}
			err := pb.NewPersistenceBatchAdapter(p).Apply(context.Background(), batchOf("c", saveLamport("c", 1), dropChannel("c"), saveLamport("c", 2)))
			if err == nil || err.Error() != tt.wantText {
				t.Fatalf("err = %v, want %q", err, tt.wantText)
			}
			if got := strings.Join(h.calls, " "); got != tt.wantCalls {
				t.Fatalf("calls %q, want %q", got, tt.wantCalls)
			}
			var pe *pb.PanicError
			if errors.As(err, &pe) != (tt.wantPanic != "") || (pe != nil && pe.Op != tt.wantPanic) {
				t.Fatalf("PanicError = %v, want op %q", pe, tt.wantPanic)
			}
		})
	}
}

func TestAdapterRollbackOutlivesCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := &host{}
	var rbCtxErr error
	a := pb.NewPersistenceBatchAdapter(struct {
		pb.Persistence
		pb.PersistenceTransactions
	}{cancelling{h, cancel}, rollbackSpy{h, &rbCtxErr}})
	err := a.Apply(ctx, batchOf("c", saveLamport("c", 1)))
	if !errors.Is(err, context.Canceled) || err.Error() != "SaveLamport: context canceled" {
		t.Fatalf("err = %v", err)
	}
	if got := strings.Join(h.calls, " "); got != "Begin SaveLamport Rollback" {
		t.Fatalf("calls %q", got)
	}
	if rbCtxErr != nil {
		t.Fatalf("Rollback ran with a done context: %v", rbCtxErr)
	}
}

// cancelling cancels the batch's context in SaveLamport and fails with it.
type cancelling struct {
	*host
	cancel context.CancelFunc
}

func (c cancelling) SaveLamport(ctx context.Context, r *pb.SaveLamportRequest) error {
	c.cancel()
	_ = c.hit("SaveLamport", r)
	return ctx.Err()
}

// rollbackSpy records the context error Rollback sees.
type rollbackSpy struct {
	*host
	ctxErr *error
}

func (r rollbackSpy) Rollback(ctx context.Context, req *pb.RollbackRequest) error {
	*r.ctxErr = ctx.Err()
	return r.host.Rollback(ctx, req)
}

func TestAdapterRejectsBeforeAnyCall(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		batch *pb.PersistenceBatch
		want  error
		text  string
	}{
		{"nil batch", context.Background(), nil, pb.ErrInvalidPersistenceBatch, "invalid persistence batch: nil batch"},
		{"empty op", context.Background(), batchOf("c", saveLamport("c", 1), &pb.PersistenceOp{}), pb.ErrInvalidPersistenceBatch, "invalid persistence batch: op 1: empty op (no operation set)"},
		{"nil op", context.Background(), batchOf("c", nil), pb.ErrInvalidPersistenceBatch, "invalid persistence batch: op 0: empty op (no operation set)"},
		{"nil request", context.Background(), batchOf("c", &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoing{}}), pb.ErrInvalidPersistenceBatch, "invalid persistence batch: op 0: SaveOutgoing: nil request"},
		{"other channel", context.Background(), batchOf("c", saveLamport("c", 1), dropChannel("d")), pb.ErrInvalidPersistenceBatch,
			`invalid persistence batch: op 1: DropChannel: channel_id "d" does not match the batch's channel_id "c"`},
		{"cancelled", cancelled, batchOf("c", saveLamport("c", 1)), context.Canceled, "persistence: apply: context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &host{}
			err := pb.NewPersistenceBatchAdapter(h).Apply(tt.ctx, tt.batch)
			if !errors.Is(err, tt.want) || err.Error() != tt.text {
				t.Fatalf("err = %v, want %q wrapping %v", err, tt.text, tt.want)
			}
			if len(h.calls) != 0 {
				t.Fatalf("calls %v", h.calls)
			}
		})
	}
	// An empty batch is valid and makes no call, not even Begin.
	h := &host{}
	if err := pb.NewPersistenceBatchAdapter(h).Apply(context.Background(), batchOf("c")); err != nil || len(h.calls) != 0 {
		t.Fatalf("empty batch: %v, calls %v", err, h.calls)
	}
}

func TestAdapterHooks(t *testing.T) {
	h := &host{snap: &pb.ChannelSnapshot{LamportTimestamp: 4}}
	base := pb.NewPersistenceBatchAdapter(h)
	veto := errors.New("veto")
	var seen *pb.ChannelSnapshot
	hooked := base.WithHooks(func(*pb.PersistenceBatch) error { return veto }, func(s *pb.ChannelSnapshot) error {
		seen = s
		s.LamportTimestamp++
		return nil
	})
	if err := hooked.Apply(context.Background(), batchOf("c", saveLamport("c", 1))); err != veto || len(h.calls) != 0 {
		t.Fatalf("beforeApply: err %v, calls %v", err, h.calls)
	}
	s, err := hooked.Load(context.Background(), "c")
	if err != nil || s != seen || s.GetLamportTimestamp() != 5 || s.GetChannelId() != "c" {
		t.Fatalf("afterLoad: %v, %v", s, err)
	}
	// The original adapter has no hooks.
	h.calls = nil
	if err := base.Apply(context.Background(), batchOf("c", saveLamport("c", 1))); err != nil || len(h.calls) != 3 {
		t.Fatalf("base: err %v, calls %v", err, h.calls)
	}
}

func TestAdapterLoad(t *testing.T) {
	h := &host{snap: &pb.ChannelSnapshot{ChannelId: "other"}}
	_, err := pb.NewPersistenceBatchAdapter(h).Load(context.Background(), "c")
	if err == nil || err.Error() != `LoadAllForChannel: returned the snapshot of channel "other" instead of "c"` {
		t.Fatalf("err = %v", err)
	}
	h = &host{}
	s, err := pb.NewPersistenceBatchAdapter(h).Load(context.Background(), "c")
	if err != nil || s.GetChannelId() != "c" || !slices.Equal(h.calls, []string{"LoadAllForChannel"}) {
		t.Fatalf("nil snapshot: %v, %v, calls %v", s, err, h.calls)
	}
}

// TestAdapterOverTheWire runs the adapter the way a host backend behind the C or wasm
// glue is reached: adapter → generated clients → CallFunc → DispatchPersistence → host.
func TestAdapterOverTheWire(t *testing.T) {
	ctx := context.Background()
	h := &host{failOn: map[string]error{}, panicOn: map[string]any{}}
	var ids []uint32
	call := func(ctx context.Context, id uint32, req []byte) ([]byte, error) {
		ids = append(ids, id)
		return pb.DispatchPersistence(ctx, h, id, req), nil
	}
	remote := struct {
		pb.Persistence
		pb.PersistenceTransactions
	}{pb.NewPersistenceClient(call), pb.NewPersistenceTransactionsClient(call)}
	a := pb.NewPersistenceBatchAdapter(remote)

	if err := a.Apply(ctx, batchOf("c", saveLamport("c", 9), dropChannel("c"))); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(h.calls, " "); got != "Begin SaveLamport DropChannel Commit" {
		t.Fatalf("calls %q", got)
	}
	wantIDs := []uint32{pb.Persistence_Begin_MethodID, pb.Persistence_SaveLamport_MethodID, pb.Persistence_DropChannel_MethodID, pb.Persistence_Commit_MethodID}
	if !slices.Equal(ids, wantIDs) {
		t.Fatalf("method ids %v, want %v", ids, wantIDs)
	}
	if got := h.reqs[1].(*pb.SaveLamportRequest); got.GetLamportTimestamp() != 9 || got.GetChannelId() != "c" {
		t.Fatalf("host got %v", got)
	}

	// A host error comes back typed; a host panic is contained by the dispatcher.
	h.calls = nil
	h.failOn["DropChannel"] = errors.New("disk full")
	err := a.Apply(ctx, batchOf("c", saveLamport("c", 1), dropChannel("c")))
	var e *pb.Error
	if !errors.As(err, &e) || e.GetOp() != "DropChannel" || err.Error() != "DropChannel: DropChannel: INTERNAL: disk full" {
		t.Fatalf("err = %v", err)
	}
	if got := strings.Join(h.calls, " "); got != "Begin SaveLamport DropChannel Rollback" {
		t.Fatalf("calls %q", got)
	}
	h.calls, h.failOn = nil, map[string]error{}
	h.panicOn["SaveLamport"] = "kaboom"
	err = a.Apply(ctx, batchOf("c", saveLamport("c", 1)))
	if !errors.As(err, &e) || e.GetCode() != pb.ErrorCode_ERROR_CODE_INTERNAL || !strings.Contains(err.Error(), "panic: kaboom") {
		t.Fatalf("err = %v", err)
	}

	// Load through the wire.
	h.calls, h.panicOn = nil, map[string]any{}
	h.snap = &pb.ChannelSnapshot{ChannelId: "c", LamportTimestamp: 3}
	s, err := a.Load(ctx, "c")
	if err != nil || s.GetLamportTimestamp() != 3 {
		t.Fatalf("Load = %v, %v", s, err)
	}

	// A host without transactions: the optional rpcs answer INVALID_ARGUMENT.
	r := decodeResult(t, pb.DispatchPersistence(ctx, plain{h}, pb.Persistence_Begin_MethodID, mustMarshal(&pb.BeginRequest{ChannelId: "c"})))
	if e := r.GetError(); e.GetCode() != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT || !strings.Contains(e.GetMessage(), "Transactions") {
		t.Fatalf("Begin on a plain host: %v", r)
	}
}
