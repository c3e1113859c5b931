package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

// recorder is a typed Persistence that records every call and can fail or panic on
// chosen methods.
type recorder struct {
	calls   []string
	reqs    []proto.Message
	failOn  map[string]error
	panicOn map[string]any
	snap    *pb.ChannelSnapshot
}

func (r *recorder) hit(name string, req proto.Message) error {
	r.calls = append(r.calls, name)
	r.reqs = append(r.reqs, req)
	if v, ok := r.panicOn[name]; ok {
		panic(v)
	}
	return r.failOn[name]
}

func (r *recorder) SaveLamport(_ context.Context, req *pb.SaveLamportRequest) error {
	return r.hit(store.OpSaveLamport, req)
}

func (r *recorder) AppendLogEntry(_ context.Context, req *pb.AppendLogEntryRequest) error {
	return r.hit(store.OpAppendLogEntry, req)
}

func (r *recorder) RemoveLogEntry(_ context.Context, req *pb.RemoveLogEntryRequest) error {
	return r.hit(store.OpRemoveLogEntry, req)
}

func (r *recorder) SetRetrievalHint(_ context.Context, req *pb.SetRetrievalHintRequest) error {
	return r.hit(store.OpSetRetrievalHint, req)
}

func (r *recorder) SaveOutgoing(_ context.Context, req *pb.SaveOutgoingRequest) error {
	return r.hit(store.OpSaveOutgoing, req)
}

func (r *recorder) RemoveOutgoing(_ context.Context, req *pb.RemoveOutgoingRequest) error {
	return r.hit(store.OpRemoveOutgoing, req)
}

func (r *recorder) SaveIncoming(_ context.Context, req *pb.SaveIncomingRequest) error {
	return r.hit(store.OpSaveIncoming, req)
}

func (r *recorder) RemoveIncoming(_ context.Context, req *pb.RemoveIncomingRequest) error {
	return r.hit(store.OpRemoveIncoming, req)
}

func (r *recorder) SaveOutgoingRepair(_ context.Context, req *pb.SaveOutgoingRepairRequest) error {
	return r.hit(store.OpSaveOutgoingRepair, req)
}

func (r *recorder) RemoveOutgoingRepair(_ context.Context, req *pb.RemoveOutgoingRepairRequest) error {
	return r.hit(store.OpRemoveOutgoingRepair, req)
}

func (r *recorder) SaveIncomingRepair(_ context.Context, req *pb.SaveIncomingRepairRequest) error {
	return r.hit(store.OpSaveIncomingRepair, req)
}

func (r *recorder) RemoveIncomingRepair(_ context.Context, req *pb.RemoveIncomingRepairRequest) error {
	return r.hit(store.OpRemoveIncomingRepair, req)
}

func (r *recorder) DropChannel(_ context.Context, req *pb.DropChannelRequest) error {
	return r.hit(store.OpDropChannel, req)
}

func (r *recorder) LoadAllForChannel(_ context.Context, req *pb.LoadAllForChannelRequest) (*pb.ChannelSnapshot, error) {
	if err := r.hit(store.OpLoadAllForChannel, req); err != nil {
		return nil, err
	}
	return r.snap, nil
}

// txRecorder adds transactions to recorder; calls are recorded as "Begin(<channel>)" etc.
type txRecorder struct{ *recorder }

func (r txRecorder) Begin(_ context.Context, req *pb.BeginRequest) error {
	return r.hit("Begin("+req.GetChannelId()+")", nil)
}

func (r txRecorder) Commit(_ context.Context, req *pb.CommitRequest) error {
	return r.hit("Commit("+req.GetChannelId()+")", nil)
}

func (r txRecorder) Rollback(_ context.Context, req *pb.RollbackRequest) error {
	return r.hit("Rollback("+req.GetChannelId()+")", nil)
}

// allWrites is a batch with one op of each of the 13 write operations, in contract order.
func allWrites(ch string) *pb.PersistenceBatch {
	var ops []*pb.PersistenceOp
	for _, name := range writeOps {
		ops = append(ops, opOf(name, ch, "id"))
	}
	return batchOf(ch, ops...)
}

// requestOf returns the typed request inside a write op.
func requestOf(op *pb.PersistenceOp) proto.Message {
	m := op.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("op"))
	return m.Get(fd).Message().Interface()
}

func TestFromPersistenceCallOrder(t *testing.T) {
	rec := &recorder{}
	b := store.FromPersistence(rec)
	batch := allWrites(chA)
	mustApply(t, b, batch)
	if !slices.Equal(rec.calls, writeOps) {
		t.Fatalf("calls = %v, want %v", rec.calls, writeOps)
	}
	for i, op := range batch.GetOps() {
		if want := requestOf(op); rec.reqs[i] != want {
			t.Errorf("call %d got request %v, want the batch's own %v", i, rec.reqs[i], want)
		}
	}
}

func TestFromPersistenceTransaction(t *testing.T) {
	rec := &recorder{}
	b := store.FromPersistence(txRecorder{rec})
	mustApply(t, b, allWrites(chA))
	want := append(append([]string{"Begin(" + chA + ")"}, writeOps...), "Commit("+chA+")")
	if !slices.Equal(rec.calls, want) {
		t.Fatalf("calls = %v, want %v", rec.calls, want)
	}
}

func TestFromPersistenceFirstError(t *testing.T) {
	boom := errors.New("boom")
	for i, failing := range writeOps {
		for _, transactional := range []bool{true, false} {
			name := failing
			if transactional {
				name += "/tx"
			}
			t.Run(name, func(t *testing.T) {
				rec := &recorder{failOn: map[string]error{failing: boom}}
				var p store.Persistence = rec
				if transactional {
					p = txRecorder{rec}
				}
				err := store.FromPersistence(p).Apply(context.Background(), allWrites(chA))
				if !errors.Is(err, boom) {
					t.Fatalf("err = %v, want wrapping %v", err, boom)
				}
				if got, want := err.Error(), failing+": boom"; got != want {
					t.Fatalf("err text = %q, want %q", got, want)
				}
				want := slices.Clone(writeOps[:i+1]) // stops at the first error
				if transactional {
					want = append(append([]string{"Begin(" + chA + ")"}, want...), "Rollback("+chA+")")
				}
				if !slices.Equal(rec.calls, want) {
					t.Fatalf("calls = %v, want %v", rec.calls, want)
				}
			})
		}
	}
}

func TestFromPersistenceTransactionFailures(t *testing.T) {
	boom, rbErr := errors.New("boom"), errors.New("rollback broke")
	begin, commit, rollback := "Begin("+chA+")", "Commit("+chA+")", "Rollback("+chA+")"
	tests := []struct {
		name      string
		failOn    map[string]error
		panicOn   map[string]any
		wantCalls []string
		wantText  string  // exact error text
		wantIs    []error // errors.Is targets
		wantPanic string  // PanicError.Op, if any
	}{
		{
			name:      "Begin fails: no ops, no rollback",
			failOn:    map[string]error{begin: boom},
			wantCalls: []string{begin},
			wantText:  "Begin: boom",
			wantIs:    []error{boom},
		},
		{
			name:      "Commit fails",
			failOn:    map[string]error{commit: boom},
			wantCalls: []string{begin, store.OpSaveLamport, store.OpSaveOutgoing, commit},
			wantText:  "Commit: boom",
			wantIs:    []error{boom},
		},
		{
			name:      "Rollback fails too: both errors joined",
			failOn:    map[string]error{store.OpSaveLamport: boom, rollback: rbErr},
			wantCalls: []string{begin, store.OpSaveLamport, rollback},
			wantText:  "SaveLamport: boom\nRollback: rollback broke",
			wantIs:    []error{boom, rbErr},
		},
		{
			name:      "op panics: recovered, rolled back",
			panicOn:   map[string]any{store.OpSaveOutgoing: "kaboom"},
			wantCalls: []string{begin, store.OpSaveLamport, store.OpSaveOutgoing, rollback},
			wantText:  "backend panicked in SaveOutgoing: kaboom",
			wantPanic: store.OpSaveOutgoing,
		},
		{
			name:      "op panics with an error value",
			panicOn:   map[string]any{store.OpSaveLamport: boom},
			wantCalls: []string{begin, store.OpSaveLamport, rollback},
			wantText:  "backend panicked in SaveLamport: boom",
			wantIs:    []error{boom},
			wantPanic: store.OpSaveLamport,
		},
		{
			name:      "Begin panics",
			panicOn:   map[string]any{begin: 42},
			wantCalls: []string{begin},
			wantText:  "backend panicked in Begin: 42",
			wantPanic: "Begin",
		},
		{
			name:      "Commit panics",
			panicOn:   map[string]any{commit: "late"},
			wantCalls: []string{begin, store.OpSaveLamport, store.OpSaveOutgoing, commit},
			wantText:  "backend panicked in Commit: late",
			wantPanic: "Commit",
		},
		{
			name:      "Rollback panics after an op error",
			failOn:    map[string]error{store.OpSaveOutgoing: boom},
			panicOn:   map[string]any{rollback: "rb"},
			wantCalls: []string{begin, store.OpSaveLamport, store.OpSaveOutgoing, rollback},
			wantText:  "SaveOutgoing: boom\nbackend panicked in Rollback: rb",
			wantIs:    []error{boom},
			wantPanic: "Rollback",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{failOn: tt.failOn, panicOn: tt.panicOn}
			err := store.FromPersistence(txRecorder{rec}).Apply(context.Background(),
				batchOf(chA, saveLamport(chA, 1), saveOut(chA, outEntry("o", 0))))
			if err == nil {
				t.Fatal("Apply succeeded")
			}
			if err.Error() != tt.wantText {
				t.Errorf("err text = %q, want %q", err.Error(), tt.wantText)
			}
			for _, target := range tt.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(err, %v) = false", target)
				}
			}
			var pe *store.PanicError
			if got := errors.As(err, &pe); got != (tt.wantPanic != "") || (got && pe.Op != tt.wantPanic) {
				t.Errorf("PanicError = %v, want op %q", pe, tt.wantPanic)
			}
			if !slices.Equal(rec.calls, tt.wantCalls) {
				t.Errorf("calls = %v, want %v", rec.calls, tt.wantCalls)
			}
		})
	}
}

func TestFromPersistencePanicWithoutTransactions(t *testing.T) {
	rec := &recorder{panicOn: map[string]any{store.OpDropChannel: "gone"}}
	err := store.FromPersistence(rec).Apply(context.Background(), batchOf(chA, saveLamport(chA, 1), dropChannel(chA), saveLamport(chA, 2)))
	if err == nil || err.Error() != "backend panicked in DropChannel: gone" {
		t.Fatalf("err = %v", err)
	}
	if want := []string{store.OpSaveLamport, store.OpDropChannel}; !slices.Equal(rec.calls, want) {
		t.Fatalf("calls = %v, want %v", rec.calls, want)
	}
}

func TestFromPersistenceNoCalls(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		batch   *pb.PersistenceBatch
		wantErr func(error) bool
	}{
		{"empty batch", context.Background(), batchOf(chA), func(err error) bool { return err == nil }},
		{"nil batch", context.Background(), nil, func(err error) bool { return errors.Is(err, store.ErrInvalidBatch) }},
		{"empty op", context.Background(), batchOf(chA, saveLamport(chA, 1), &pb.PersistenceOp{}), func(err error) bool { return errors.Is(err, store.ErrInvalidBatch) }},
		{"channel mismatch", context.Background(), batchOf(chA, saveLamport(chA, 1), saveLamport(chB, 1)), func(err error) bool { return errors.Is(err, store.ErrInvalidBatch) }},
		{"cancelled context", cancelled, batchOf(chA, saveLamport(chA, 1)), func(err error) bool { return errors.Is(err, context.Canceled) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			err := store.FromPersistence(txRecorder{rec}).Apply(tt.ctx, tt.batch)
			if !tt.wantErr(err) {
				t.Fatalf("unexpected err %v", err)
			}
			if len(rec.calls) != 0 {
				t.Fatalf("calls = %v, want none", rec.calls)
			}
		})
	}
}

func TestFromPersistenceLoad(t *testing.T) {
	boom := errors.New("boom")
	unsorted := &pb.ChannelSnapshot{ChannelId: chA, LamportTimestamp: 5, Log: []*pb.SdsMessage{sdsMsg("b", 2), sdsMsg("a", 2), sdsMsg("c", 1)}}
	tests := []struct {
		name     string
		rec      *recorder
		want     *pb.ChannelSnapshot
		wantText string
	}{
		{
			name: "log sorted oldest-first",
			rec:  &recorder{snap: unsorted},
			want: &pb.ChannelSnapshot{ChannelId: chA, LamportTimestamp: 5, Log: []*pb.SdsMessage{sdsMsg("c", 1), sdsMsg("a", 2), sdsMsg("b", 2)}},
		},
		{
			name: "nil snapshot is empty",
			rec:  &recorder{},
			want: &pb.ChannelSnapshot{ChannelId: chA},
		},
		{
			name: "missing channel id filled in",
			rec:  &recorder{snap: &pb.ChannelSnapshot{LamportTimestamp: 3}},
			want: &pb.ChannelSnapshot{ChannelId: chA, LamportTimestamp: 3},
		},
		{
			name:     "another channel's snapshot",
			rec:      &recorder{snap: &pb.ChannelSnapshot{ChannelId: chB}},
			wantText: `LoadAllForChannel: returned the snapshot of channel "channel-b" instead of "channel-a"`,
		},
		{
			name:     "error wrapped",
			rec:      &recorder{failOn: map[string]error{store.OpLoadAllForChannel: boom}},
			wantText: "LoadAllForChannel: boom",
		},
		{
			name:     "panic recovered",
			rec:      &recorder{panicOn: map[string]any{store.OpLoadAllForChannel: "load"}},
			wantText: "backend panicked in LoadAllForChannel: load",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.FromPersistence(txRecorder{tt.rec}).Load(context.Background(), chA)
			if tt.wantText != "" {
				if err == nil || err.Error() != tt.wantText {
					t.Fatalf("err = %v, want %q", err, tt.wantText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertSnapshot(t, got, tt.want)
			if !slices.Equal(tt.rec.calls, []string{store.OpLoadAllForChannel}) {
				t.Fatalf("calls = %v (Load must not open a transaction)", tt.rec.calls)
			}
			if req := tt.rec.reqs[0].(*pb.LoadAllForChannelRequest); req.GetChannelId() != chA {
				t.Fatalf("request channel = %q", req.GetChannelId())
			}
		})
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	rec := &recorder{}
	if _, err := store.FromPersistence(rec).Load(cancelled, chA); !errors.Is(err, context.Canceled) || len(rec.calls) != 0 {
		t.Fatalf("cancelled Load: err %v, calls %v", err, rec.calls)
	}
}

func TestFromPersistenceNilPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("FromPersistence(nil) did not panic")
		}
	}()
	store.FromPersistence(nil)
}

// typedMemory exposes a Memory as the typed contract: each call becomes a single-op
// batch, or is handed to sink when set.
type typedMemory struct {
	m    *store.Memory
	sink func(ctx context.Context, ch string, op *pb.PersistenceOp) error
}

func (t typedMemory) apply(ctx context.Context, ch string, op *pb.PersistenceOp) error {
	if t.sink != nil {
		return t.sink(ctx, ch, op)
	}
	return t.m.Apply(ctx, &pb.PersistenceBatch{ChannelId: ch, Ops: []*pb.PersistenceOp{op}})
}

func (t typedMemory) SaveLamport(ctx context.Context, req *pb.SaveLamportRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveLamport{SaveLamport: req}})
}

func (t typedMemory) AppendLogEntry(ctx context.Context, req *pb.AppendLogEntryRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_AppendLogEntry{AppendLogEntry: req}})
}

func (t typedMemory) RemoveLogEntry(ctx context.Context, req *pb.RemoveLogEntryRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveLogEntry{RemoveLogEntry: req}})
}

func (t typedMemory) SetRetrievalHint(ctx context.Context, req *pb.SetRetrievalHintRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SetRetrievalHint{SetRetrievalHint: req}})
}

func (t typedMemory) SaveOutgoing(ctx context.Context, req *pb.SaveOutgoingRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoing{SaveOutgoing: req}})
}

func (t typedMemory) RemoveOutgoing(ctx context.Context, req *pb.RemoveOutgoingRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoing{RemoveOutgoing: req}})
}

func (t typedMemory) SaveIncoming(ctx context.Context, req *pb.SaveIncomingRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncoming{SaveIncoming: req}})
}

func (t typedMemory) RemoveIncoming(ctx context.Context, req *pb.RemoveIncomingRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncoming{RemoveIncoming: req}})
}

func (t typedMemory) SaveOutgoingRepair(ctx context.Context, req *pb.SaveOutgoingRepairRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoingRepair{SaveOutgoingRepair: req}})
}

func (t typedMemory) RemoveOutgoingRepair(ctx context.Context, req *pb.RemoveOutgoingRepairRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoingRepair{RemoveOutgoingRepair: req}})
}

func (t typedMemory) SaveIncomingRepair(ctx context.Context, req *pb.SaveIncomingRepairRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncomingRepair{SaveIncomingRepair: req}})
}

func (t typedMemory) RemoveIncomingRepair(ctx context.Context, req *pb.RemoveIncomingRepairRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncomingRepair{RemoveIncomingRepair: req}})
}

func (t typedMemory) DropChannel(ctx context.Context, req *pb.DropChannelRequest) error {
	return t.apply(ctx, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_DropChannel{DropChannel: req}})
}

func (t typedMemory) LoadAllForChannel(ctx context.Context, req *pb.LoadAllForChannelRequest) (*pb.ChannelSnapshot, error) {
	return t.m.Load(ctx, req.GetChannelId())
}

// txMemory makes typedMemory transactional by staging a channel's writes until Commit,
// which applies them to the Memory as one atomic batch.
type txMemory struct {
	typedMemory
	staged map[string][]*pb.PersistenceOp
}

func newTxMemory(m *store.Memory) *txMemory {
	tx := &txMemory{staged: map[string][]*pb.PersistenceOp{}}
	tx.typedMemory = typedMemory{m: m, sink: tx.stage}
	return tx
}

func (t *txMemory) Begin(_ context.Context, req *pb.BeginRequest) error {
	ch := req.GetChannelId()
	if _, open := t.staged[ch]; open {
		return errors.New("transaction already open")
	}
	t.staged[ch] = []*pb.PersistenceOp{}
	return nil
}

func (t *txMemory) Commit(ctx context.Context, req *pb.CommitRequest) error {
	ch := req.GetChannelId()
	ops := t.staged[ch]
	delete(t.staged, ch)
	return t.m.Apply(ctx, batchOf(ch, ops...))
}

func (t *txMemory) Rollback(_ context.Context, req *pb.RollbackRequest) error {
	delete(t.staged, req.GetChannelId())
	return nil
}

// stage records a write of an open transaction.
func (t *txMemory) stage(_ context.Context, ch string, op *pb.PersistenceOp) error {
	if _, open := t.staged[ch]; !open {
		return errors.New("no transaction")
	}
	t.staged[ch] = append(t.staged[ch], proto.Clone(op).(*pb.PersistenceOp))
	return nil
}

// scriptedBatches exercises every write op, in and across channels.
func scriptedBatches() []*pb.PersistenceBatch {
	var out []*pb.PersistenceBatch
	for _, ch := range []string{chA, chB} {
		out = append(out,
			batchOf(ch, saveLamport(ch, 3), appendLog(ch, sdsMsg("m3", 3)), appendLog(ch, sdsMsg("m1", 1)), setHint(ch, "m1", "h1"),
				saveOut(ch, outEntry("o1", 0)), saveOut(ch, outEntry("o2", 0)), saveIn(ch, inEntry("i1", 1)), saveIn(ch, inEntry("i2", 2)),
				saveOutRepair(ch, outRepairEntry("r1", 1)), saveOutRepair(ch, outRepairEntry("r2", 2)),
				saveInRepair(ch, inRepairEntry("q1", 1)), saveInRepair(ch, inRepairEntry("q2", 2))),
			batchOf(ch, saveOut(ch, outEntry("o1", 4)), removeOut(ch, "o2"), removeIn(ch, "i1"), removeOutRepair(ch, "r1"),
				removeInRepair(ch, "q2"), removeLog(ch, "m3"), appendLog(ch, sdsMsg("m2", 2)), setHint(ch, "m2", "h2"), saveLamport(ch, 4)),
		)
	}
	out = append(out, batchOf(chB, dropChannel(chB), saveLamport(chB, 1), appendLog(chB, sdsMsg("fresh", 1))))
	return out
}

func TestFromPersistenceRoundTrip(t *testing.T) {
	ctx := context.Background()
	ref := store.NewMemory()
	for _, b := range scriptedBatches() {
		mustApply(t, ref, b)
	}

	viaTyped := store.NewMemory()
	adapter := store.FromPersistence(typedMemory{m: viaTyped})
	for _, b := range scriptedBatches() {
		mustApply(t, adapter, b)
	}

	viaTx := store.NewMemory()
	txAdapter := store.FromPersistence(newTxMemory(viaTx))
	for _, b := range scriptedBatches() {
		mustApply(t, txAdapter, b)
	}

	for _, ch := range []string{chA, chB, chC} {
		want := ref.Snapshot(ch)
		for name, b := range map[string]store.Backend{"typed": adapter, "transactional": txAdapter} {
			got, err := b.Load(ctx, ch)
			if err != nil {
				t.Fatalf("%s Load(%s): %v", name, ch, err)
			}
			assertSnapshot(t, got, want)
		}
		assertSnapshot(t, viaTyped.Snapshot(ch), want)
		assertSnapshot(t, viaTx.Snapshot(ch), want)
	}
	if !slices.Equal(viaTyped.Channels(), ref.Channels()) || !slices.Equal(viaTx.Channels(), ref.Channels()) {
		t.Fatalf("channels differ: ref %v typed %v tx %v", ref.Channels(), viaTyped.Channels(), viaTx.Channels())
	}
	// The transactional wrapper turns each batch into one Memory batch; the plain one into one per op.
	if got, want := viaTx.Batches(), len(scriptedBatches()); got != want {
		t.Errorf("transactional Memory batches = %d, want %d", got, want)
	}
	ops := 0
	for _, b := range scriptedBatches() {
		ops += len(b.GetOps())
	}
	if got := viaTyped.Batches(); got != ops {
		t.Errorf("typed Memory batches = %d, want %d", got, ops)
	}
}

func TestFromPersistenceAtomicityDependsOnTransactions(t *testing.T) {
	ctx := context.Background()
	batch := batchOf(chA, saveLamport(chA, 7), appendLog(chA, sdsMsg("m", 7)), saveOut(chA, outEntry("m", 0)))

	t.Run("transactional: nothing applied", func(t *testing.T) {
		m := store.NewMemory()
		populate(t, m, chA)
		before := m.Snapshot(chA)
		m.FailOp(store.OpSaveOutgoing)
		err := store.FromPersistence(newTxMemory(m)).Apply(ctx, batch)
		var inj *store.InjectedError
		if !errors.As(err, &inj) || err.Error() != "Commit: injected failure: SaveOutgoing" {
			t.Fatalf("err = %v", err)
		}
		assertSnapshot(t, m.Snapshot(chA), before)
	})

	t.Run("plain: partially applied", func(t *testing.T) {
		m := store.NewMemory()
		populate(t, m, chA)
		m.FailOp(store.OpSaveOutgoing)
		err := store.FromPersistence(typedMemory{m: m}).Apply(ctx, batch)
		if err == nil || err.Error() != "SaveOutgoing: injected failure: SaveOutgoing" {
			t.Fatalf("err = %v", err)
		}
		s := m.Snapshot(chA)
		if s.GetLamportTimestamp() != 7 || !slices.Contains(logIDs(s), "m") {
			t.Fatal("writes before the failing op should have stayed (documented partial application)")
		}
		for _, e := range s.GetOutgoing() {
			if e.GetMessage().GetMessageId() == "m" {
				t.Fatal("the failing write was applied")
			}
		}
	})
}
