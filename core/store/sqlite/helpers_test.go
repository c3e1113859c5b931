package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// --- ops ------------------------------------------------------------------------------

func saveLamport(ch string, v uint64) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveLamport{SaveLamport: &pb.SaveLamportRequest{ChannelId: ch, LamportTimestamp: v}}}
}

func appendLog(ch string, m *pb.SdsMessage) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_AppendLogEntry{AppendLogEntry: &pb.AppendLogEntryRequest{ChannelId: ch, Message: m}}}
}

func removeLog(ch, id string) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveLogEntry{RemoveLogEntry: &pb.RemoveLogEntryRequest{ChannelId: ch, MessageId: id}}}
}

func setHint(ch, id string, hint []byte) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_SetRetrievalHint{SetRetrievalHint: &pb.SetRetrievalHintRequest{ChannelId: ch, MessageId: id, RetrievalHint: hint}}}
}

func saveOut(ch string, e *pb.UnacknowledgedMessage) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoing{SaveOutgoing: &pb.SaveOutgoingRequest{ChannelId: ch, Message: e}}}
}

func removeOut(ch, id string) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoing{RemoveOutgoing: &pb.RemoveOutgoingRequest{ChannelId: ch, MessageId: id}}}
}

func saveIn(ch string, e *pb.IncomingMessage) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncoming{SaveIncoming: &pb.SaveIncomingRequest{ChannelId: ch, Message: e}}}
}

func removeIn(ch, id string) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncoming{RemoveIncoming: &pb.RemoveIncomingRequest{ChannelId: ch, MessageId: id}}}
}

func saveOutRepair(ch string, e *pb.OutgoingRepairEntry) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoingRepair{SaveOutgoingRepair: &pb.SaveOutgoingRepairRequest{ChannelId: ch, Entry: e}}}
}

func removeOutRepair(ch, id string) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoingRepair{RemoveOutgoingRepair: &pb.RemoveOutgoingRepairRequest{ChannelId: ch, MessageId: id}}}
}

func saveInRepair(ch string, e *pb.IncomingRepairEntry) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncomingRepair{SaveIncomingRepair: &pb.SaveIncomingRepairRequest{ChannelId: ch, Entry: e}}}
}

func removeInRepair(ch, id string) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncomingRepair{RemoveIncomingRepair: &pb.RemoveIncomingRepairRequest{ChannelId: ch, MessageId: id}}}
}

func dropChannel(ch string) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_DropChannel{DropChannel: &pb.DropChannelRequest{ChannelId: ch}}}
}

func batchOf(ch string, ops ...*pb.PersistenceOp) *pb.PersistenceBatch {
	return &pb.PersistenceBatch{ChannelId: ch, Ops: ops, Operation: "Test"}
}

// --- entities -------------------------------------------------------------------------

func sdsMsg(id string, lamport uint64) *pb.SdsMessage {
	return &pb.SdsMessage{
		SenderId:         "alice",
		MessageId:        id,
		LamportTimestamp: proto.Uint64(lamport),
		CausalHistory:    []*pb.HistoryEntry{{MessageId: "parent-of-" + id}},
		Content:          []byte("content-" + id),
	}
}

func outEntry(id string, attempts uint32) *pb.UnacknowledgedMessage {
	return &pb.UnacknowledgedMessage{Message: sdsMsg(id, 1), WireBytes: []byte("wire-" + id), ResendAttempts: attempts}
}

// --- store helpers --------------------------------------------------------------------

// openTemp opens a store on a fresh file and closes it at the end of the test.
func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "sdskit.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustApply(t testing.TB, s *Store, b *pb.PersistenceBatch) {
	t.Helper()
	if err := s.Apply(context.Background(), b); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func mustLoad(t testing.TB, s *Store, ch string) *pb.ChannelSnapshot {
	t.Helper()
	snap, err := s.Load(context.Background(), ch)
	if err != nil {
		t.Fatalf("Load(%q): %v", ch, err)
	}
	return snap
}

func assertSnapshot(t testing.TB, got, want *pb.ChannelSnapshot) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Fatalf("snapshot mismatch\n--- got\n%s\n--- want\n%s", prototext.Format(got), prototext.Format(want))
	}
}

// execForTest runs SQL on the store's connection (test hooks: triggers, pragmas).
func (s *Store) execForTest(t testing.TB, query string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.conn.ExecContext(context.Background(), query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// queryIntForTest returns the integer result of a one-value query.
func (s *Store) queryIntForTest(t testing.TB, query string) int64 {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var v int64
	if err := s.conn.QueryRowContext(context.Background(), query).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}
