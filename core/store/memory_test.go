package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

const (
	chA = "channel-a"
	chB = "channel-b"
	chC = "channel-c"
)

// writeOps are the 13 write operations of the contract, in contract order.
var writeOps = store.AllOps[:13]

// --- entities ---------------------------------------------------------------------

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

func inEntry(id string, receivedAt int64) *pb.IncomingMessage {
	return &pb.IncomingMessage{Message: sdsMsg(id, 1), MissingDependencies: []string{"dep-" + id}, ReceivedAtUnixMs: receivedAt}
}

func outRepairEntry(id string, at int64) *pb.OutgoingRepairEntry {
	return &pb.OutgoingRepairEntry{Entry: &pb.HistoryEntry{MessageId: id, SenderId: proto.String("bob")}, RequestAtUnixMs: at}
}

func inRepairEntry(id string, at int64) *pb.IncomingRepairEntry {
	return &pb.IncomingRepairEntry{Entry: &pb.HistoryEntry{MessageId: id}, CachedMessage: []byte("cached-" + id), RespondAtUnixMs: at}
}

// --- ops --------------------------------------------------------------------------

func saveLamport(ch string, v uint64) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveLamport{SaveLamport: &pb.SaveLamportRequest{ChannelId: ch, LamportTimestamp: v}}}
}

func appendLog(ch string, m *pb.SdsMessage) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_AppendLogEntry{AppendLogEntry: &pb.AppendLogEntryRequest{ChannelId: ch, Message: m}}}
}

func removeLog(ch, id string) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveLogEntry{RemoveLogEntry: &pb.RemoveLogEntryRequest{ChannelId: ch, MessageId: id}}}
}

func setHint(ch, id, hint string) *pb.PersistenceOp {
	return &pb.PersistenceOp{Op: &pb.PersistenceOp_SetRetrievalHint{SetRetrievalHint: &pb.SetRetrievalHintRequest{ChannelId: ch, MessageId: id, RetrievalHint: []byte(hint)}}}
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

// opOf returns a representative write op of the given name about message id.
func opOf(name, ch, id string) *pb.PersistenceOp {
	switch name {
	case store.OpSaveLamport:
		return saveLamport(ch, 42)
	case store.OpAppendLogEntry:
		return appendLog(ch, sdsMsg(id, 5))
	case store.OpRemoveLogEntry:
		return removeLog(ch, id)
	case store.OpSetRetrievalHint:
		return setHint(ch, id, "hint-"+id)
	case store.OpSaveOutgoing:
		return saveOut(ch, outEntry(id, 1))
	case store.OpRemoveOutgoing:
		return removeOut(ch, id)
	case store.OpSaveIncoming:
		return saveIn(ch, inEntry(id, 1))
	case store.OpRemoveIncoming:
		return removeIn(ch, id)
	case store.OpSaveOutgoingRepair:
		return saveOutRepair(ch, outRepairEntry(id, 1))
	case store.OpRemoveOutgoingRepair:
		return removeOutRepair(ch, id)
	case store.OpSaveIncomingRepair:
		return saveInRepair(ch, inRepairEntry(id, 1))
	case store.OpRemoveIncomingRepair:
		return removeInRepair(ch, id)
	case store.OpDropChannel:
		return dropChannel(ch)
	}
	panic("unknown op " + name)
}

func batchOf(ch string, ops ...*pb.PersistenceOp) *pb.PersistenceBatch {
	return &pb.PersistenceBatch{ChannelId: ch, Ops: ops, Operation: "Test"}
}

// populate fills every table of the channel.
func populate(t *testing.T, b store.Backend, ch string) {
	t.Helper()
	mustApply(t, b, batchOf(ch,
		saveLamport(ch, 10),
		appendLog(ch, sdsMsg("m1", 1)), appendLog(ch, sdsMsg("m2", 2)),
		setHint(ch, "m1", "h1"),
		saveOut(ch, outEntry("o1", 0)), saveOut(ch, outEntry("o2", 0)),
		saveIn(ch, inEntry("i1", 100)),
		saveOutRepair(ch, outRepairEntry("r1", 200)),
		saveInRepair(ch, inRepairEntry("q1", 300)),
	))
}

func mustApply(t *testing.T, b store.Backend, batch *pb.PersistenceBatch) {
	t.Helper()
	if err := b.Apply(context.Background(), batch); err != nil {
		t.Fatalf("Apply(%s): %v", batch.GetOperation(), err)
	}
}

func assertSnapshot(t *testing.T, got, want *pb.ChannelSnapshot) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Fatalf("snapshot mismatch\n got: %s\nwant: %s", prototext.Format(got), prototext.Format(want))
	}
}

// snapshotBytes serializes a snapshot deterministically, for byte-identity checks.
func snapshotBytes(t *testing.T, s *pb.ChannelSnapshot) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func logIDs(s *pb.ChannelSnapshot) []string {
	var ids []string
	for _, m := range s.GetLog() {
		ids = append(ids, m.GetMessageId())
	}
	return ids
}

// --- tests ------------------------------------------------------------------------

func TestMemoryOps(t *testing.T) {
	tests := []struct {
		name  string
		setup []*pb.PersistenceOp // applied first, as one batch
		ops   []*pb.PersistenceOp // the batch under test
		want  *pb.ChannelSnapshot
	}{
		{
			name: "SaveLamport creates the row",
			ops:  []*pb.PersistenceOp{saveLamport(chA, 7)},
			want: &pb.ChannelSnapshot{ChannelId: chA, LamportTimestamp: 7},
		},
		{
			name:  "SaveLamport overwrites",
			setup: []*pb.PersistenceOp{saveLamport(chA, 7)},
			ops:   []*pb.PersistenceOp{saveLamport(chA, 3)},
			want:  &pb.ChannelSnapshot{ChannelId: chA, LamportTimestamp: 3},
		},
		{
			name: "AppendLogEntry adds",
			ops:  []*pb.PersistenceOp{appendLog(chA, sdsMsg("m1", 1))},
			want: &pb.ChannelSnapshot{ChannelId: chA, Log: []*pb.SdsMessage{sdsMsg("m1", 1)}},
		},
		{
			name:  "AppendLogEntry upserts by id",
			setup: []*pb.PersistenceOp{appendLog(chA, sdsMsg("m1", 1))},
			ops:   []*pb.PersistenceOp{appendLog(chA, sdsMsg("m1", 9))},
			want:  &pb.ChannelSnapshot{ChannelId: chA, Log: []*pb.SdsMessage{sdsMsg("m1", 9)}},
		},
		{
			name:  "RemoveLogEntry removes and ignores absent ids",
			setup: []*pb.PersistenceOp{appendLog(chA, sdsMsg("m1", 1)), appendLog(chA, sdsMsg("m2", 2))},
			ops:   []*pb.PersistenceOp{removeLog(chA, "m1"), removeLog(chA, "absent"), removeLog(chA, "m1")},
			want:  &pb.ChannelSnapshot{ChannelId: chA, Log: []*pb.SdsMessage{sdsMsg("m2", 2)}},
		},
		{
			name:  "RemoveLogEntry deletes the message's retrieval hint",
			setup: []*pb.PersistenceOp{appendLog(chA, sdsMsg("m1", 1)), setHint(chA, "m1", "h1"), setHint(chA, "m2", "h2"), setHint(chA, "orphan", "h3")},
			ops:   []*pb.PersistenceOp{removeLog(chA, "m1"), removeLog(chA, "orphan")},
			want:  &pb.ChannelSnapshot{ChannelId: chA, RetrievalHints: []*pb.RetrievalHint{{MessageId: "m2", RetrievalHint: []byte("h2")}}},
		},
		{
			name: "SetRetrievalHint upserts, sorted by id",
			ops:  []*pb.PersistenceOp{setHint(chA, "b", "hb"), setHint(chA, "a", "old"), setHint(chA, "a", "ha")},
			want: &pb.ChannelSnapshot{ChannelId: chA, RetrievalHints: []*pb.RetrievalHint{
				{MessageId: "a", RetrievalHint: []byte("ha")}, {MessageId: "b", RetrievalHint: []byte("hb")},
			}},
		},
		{
			name: "SaveOutgoing keeps insertion order",
			ops:  []*pb.PersistenceOp{saveOut(chA, outEntry("z", 0)), saveOut(chA, outEntry("a", 0))},
			want: &pb.ChannelSnapshot{ChannelId: chA, Outgoing: []*pb.UnacknowledgedMessage{outEntry("z", 0), outEntry("a", 0)}},
		},
		{
			name:  "RemoveOutgoing removes and ignores absent ids",
			setup: []*pb.PersistenceOp{saveOut(chA, outEntry("z", 0)), saveOut(chA, outEntry("a", 0))},
			ops:   []*pb.PersistenceOp{removeOut(chA, "z"), removeOut(chA, "absent")},
			want:  &pb.ChannelSnapshot{ChannelId: chA, Outgoing: []*pb.UnacknowledgedMessage{outEntry("a", 0)}},
		},
		{
			name: "SaveIncoming keeps insertion order",
			ops:  []*pb.PersistenceOp{saveIn(chA, inEntry("z", 1)), saveIn(chA, inEntry("a", 2))},
			want: &pb.ChannelSnapshot{ChannelId: chA, Incoming: []*pb.IncomingMessage{inEntry("z", 1), inEntry("a", 2)}},
		},
		{
			name:  "RemoveIncoming removes and ignores absent ids",
			setup: []*pb.PersistenceOp{saveIn(chA, inEntry("z", 1)), saveIn(chA, inEntry("a", 2))},
			ops:   []*pb.PersistenceOp{removeIn(chA, "a"), removeIn(chA, "absent")},
			want:  &pb.ChannelSnapshot{ChannelId: chA, Incoming: []*pb.IncomingMessage{inEntry("z", 1)}},
		},
		{
			name: "SaveOutgoingRepair keyed by entry id, insertion order",
			ops:  []*pb.PersistenceOp{saveOutRepair(chA, outRepairEntry("z", 1)), saveOutRepair(chA, outRepairEntry("a", 2)), saveOutRepair(chA, outRepairEntry("z", 3))},
			want: &pb.ChannelSnapshot{ChannelId: chA, OutgoingRepair: []*pb.OutgoingRepairEntry{outRepairEntry("z", 3), outRepairEntry("a", 2)}},
		},
		{
			name:  "RemoveOutgoingRepair removes and ignores absent ids",
			setup: []*pb.PersistenceOp{saveOutRepair(chA, outRepairEntry("z", 1)), saveOutRepair(chA, outRepairEntry("a", 2))},
			ops:   []*pb.PersistenceOp{removeOutRepair(chA, "z"), removeOutRepair(chA, "absent")},
			want:  &pb.ChannelSnapshot{ChannelId: chA, OutgoingRepair: []*pb.OutgoingRepairEntry{outRepairEntry("a", 2)}},
		},
		{
			name: "SaveIncomingRepair keyed by entry id, insertion order",
			ops:  []*pb.PersistenceOp{saveInRepair(chA, inRepairEntry("z", 1)), saveInRepair(chA, inRepairEntry("a", 2)), saveInRepair(chA, inRepairEntry("z", 3))},
			want: &pb.ChannelSnapshot{ChannelId: chA, IncomingRepair: []*pb.IncomingRepairEntry{inRepairEntry("z", 3), inRepairEntry("a", 2)}},
		},
		{
			name:  "RemoveIncomingRepair removes and ignores absent ids",
			setup: []*pb.PersistenceOp{saveInRepair(chA, inRepairEntry("z", 1)), saveInRepair(chA, inRepairEntry("a", 2))},
			ops:   []*pb.PersistenceOp{removeInRepair(chA, "z"), removeInRepair(chA, "absent")},
			want:  &pb.ChannelSnapshot{ChannelId: chA, IncomingRepair: []*pb.IncomingRepairEntry{inRepairEntry("a", 2)}},
		},
		{
			name:  "DropChannel then writes in the same batch",
			setup: []*pb.PersistenceOp{saveLamport(chA, 9), appendLog(chA, sdsMsg("old", 1)), setHint(chA, "old", "h")},
			ops:   []*pb.PersistenceOp{dropChannel(chA), appendLog(chA, sdsMsg("new", 2))},
			want:  &pb.ChannelSnapshot{ChannelId: chA, Log: []*pb.SdsMessage{sdsMsg("new", 2)}},
		},
		{
			name: "removals on an unknown channel succeed",
			ops: []*pb.PersistenceOp{removeLog(chA, "x"), removeOut(chA, "x"), removeIn(chA, "x"),
				removeOutRepair(chA, "x"), removeInRepair(chA, "x"), dropChannel(chA)},
			want: &pb.ChannelSnapshot{ChannelId: chA},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := store.NewMemory()
			if tt.setup != nil {
				mustApply(t, m, batchOf(chA, tt.setup...))
			}
			mustApply(t, m, batchOf(chA, tt.ops...))
			assertSnapshot(t, m.Snapshot(chA), tt.want)
			loaded, err := m.Load(context.Background(), chA)
			if err != nil {
				t.Fatal(err)
			}
			assertSnapshot(t, loaded, tt.want)
			empty := proto.Equal(tt.want, &pb.ChannelSnapshot{ChannelId: chA})
			if got := m.Channels(); (len(got) == 0) != empty {
				t.Errorf("Channels() = %v, want channel listed: %v", got, !empty)
			}
		})
	}
}

func TestMemoryHasLamport(t *testing.T) {
	m := store.NewMemory()
	mustApply(t, m, batchOf(chA, appendLog(chA, sdsMsg("m", 1))))
	if m.HasLamport(chA) {
		t.Fatal("HasLamport before SaveLamport")
	}
	mustApply(t, m, batchOf(chA, saveLamport(chA, 0)))
	if !m.HasLamport(chA) {
		t.Fatal("a saved zero clock must still be a row")
	}
	if m.HasLamport(chB) {
		t.Fatal("HasLamport of another channel")
	}
}

func TestMemoryLogOrder(t *testing.T) {
	ephemeral := &pb.SdsMessage{MessageId: "z-unset"} // lamport unset sorts as 0
	msgs := []*pb.SdsMessage{sdsMsg("b", 2), sdsMsg("a", 2), ephemeral, sdsMsg("c", 1), sdsMsg("y-zero", 0), sdsMsg("d", 10)}
	want := []string{"y-zero", "z-unset", "c", "a", "b", "d"}

	perms := permutations(len(msgs))
	for _, oneBatch := range []bool{true, false} {
		for _, perm := range perms {
			m := store.NewMemory()
			var ops []*pb.PersistenceOp
			for _, i := range perm {
				ops = append(ops, appendLog(chA, msgs[i]))
			}
			if oneBatch {
				mustApply(t, m, batchOf(chA, ops...))
			} else {
				for _, op := range ops {
					mustApply(t, m, batchOf(chA, op))
				}
			}
			snap, err := m.Load(context.Background(), chA)
			if err != nil {
				t.Fatal(err)
			}
			if got := logIDs(snap); !slices.Equal(got, want) {
				t.Fatalf("insertion order %v (one batch %v): log = %v, want %v", perm, oneBatch, got, want)
			}
		}
	}
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

func TestMemoryUpsertKeepsPosition(t *testing.T) {
	// Each table: a save op whose value is v, a remove op, and the (id:value) rows of a snapshot.
	tests := []struct {
		name   string
		save   func(id string, v int) *pb.PersistenceOp
		remove func(id string) *pb.PersistenceOp
		rows   func(*pb.ChannelSnapshot) []string
	}{
		{
			name:   "outgoing",
			save:   func(id string, v int) *pb.PersistenceOp { return saveOut(chA, outEntry(id, uint32(v))) },
			remove: func(id string) *pb.PersistenceOp { return removeOut(chA, id) },
			rows: func(s *pb.ChannelSnapshot) (r []string) {
				for _, e := range s.GetOutgoing() {
					r = append(r, fmt.Sprintf("%s:%d", e.GetMessage().GetMessageId(), e.GetResendAttempts()))
				}
				return r
			},
		},
		{
			name:   "incoming",
			save:   func(id string, v int) *pb.PersistenceOp { return saveIn(chA, inEntry(id, int64(v))) },
			remove: func(id string) *pb.PersistenceOp { return removeIn(chA, id) },
			rows: func(s *pb.ChannelSnapshot) (r []string) {
				for _, e := range s.GetIncoming() {
					r = append(r, fmt.Sprintf("%s:%d", e.GetMessage().GetMessageId(), e.GetReceivedAtUnixMs()))
				}
				return r
			},
		},
		{
			name:   "outgoing repair",
			save:   func(id string, v int) *pb.PersistenceOp { return saveOutRepair(chA, outRepairEntry(id, int64(v))) },
			remove: func(id string) *pb.PersistenceOp { return removeOutRepair(chA, id) },
			rows: func(s *pb.ChannelSnapshot) (r []string) {
				for _, e := range s.GetOutgoingRepair() {
					r = append(r, fmt.Sprintf("%s:%d", e.GetEntry().GetMessageId(), e.GetRequestAtUnixMs()))
				}
				return r
			},
		},
		{
			name:   "incoming repair",
			save:   func(id string, v int) *pb.PersistenceOp { return saveInRepair(chA, inRepairEntry(id, int64(v))) },
			remove: func(id string) *pb.PersistenceOp { return removeInRepair(chA, id) },
			rows: func(s *pb.ChannelSnapshot) (r []string) {
				for _, e := range s.GetIncomingRepair() {
					r = append(r, fmt.Sprintf("%s:%d", e.GetEntry().GetMessageId(), e.GetRespondAtUnixMs()))
				}
				return r
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := store.NewMemory()
			steps := []struct {
				ops  []*pb.PersistenceOp
				want []string
			}{
				{[]*pb.PersistenceOp{tt.save("c", 0), tt.save("a", 0), tt.save("b", 0)}, []string{"c:0", "a:0", "b:0"}},
				{[]*pb.PersistenceOp{tt.save("a", 1)}, []string{"c:0", "a:1", "b:0"}},
				{[]*pb.PersistenceOp{tt.save("c", 2), tt.save("b", 3)}, []string{"c:2", "a:1", "b:3"}},
				{[]*pb.PersistenceOp{tt.remove("c"), tt.save("c", 4)}, []string{"a:1", "b:3", "c:4"}},
				{[]*pb.PersistenceOp{tt.save("d", 5), tt.save("a", 6)}, []string{"a:6", "b:3", "c:4", "d:5"}},
			}
			for i, step := range steps {
				mustApply(t, m, batchOf(chA, step.ops...))
				if got := tt.rows(m.Snapshot(chA)); !slices.Equal(got, step.want) {
					t.Fatalf("step %d: rows = %v, want %v", i, got, step.want)
				}
			}
		})
	}
}

// stateOf captures everything observable about a Memory's stored state.
type stateOf struct {
	channels []string
	lamport  map[string]bool
	snaps    map[string][]byte
}

func captureState(t *testing.T, m *store.Memory, channels ...string) stateOf {
	t.Helper()
	s := stateOf{channels: m.Channels(), lamport: map[string]bool{}, snaps: map[string][]byte{}}
	for _, ch := range channels {
		s.lamport[ch] = m.HasLamport(ch)
		s.snaps[ch] = snapshotBytes(t, m.Snapshot(ch))
	}
	return s
}

func assertSameState(t *testing.T, m *store.Memory, before stateOf, channels ...string) {
	t.Helper()
	after := captureState(t, m, channels...)
	if !slices.Equal(before.channels, after.channels) {
		t.Fatalf("Channels() changed: %v -> %v", before.channels, after.channels)
	}
	for _, ch := range channels {
		if before.lamport[ch] != after.lamport[ch] {
			t.Fatalf("HasLamport(%s) changed: %v -> %v", ch, before.lamport[ch], after.lamport[ch])
		}
		if string(before.snaps[ch]) != string(after.snaps[ch]) {
			t.Fatalf("snapshot of %s changed", ch)
		}
	}
}

func TestMemoryAtomicity(t *testing.T) {
	prefixes := map[string]func(ch string) []*pb.PersistenceOp{
		"upserts": func(ch string) []*pb.PersistenceOp {
			return []*pb.PersistenceOp{appendLog(ch, sdsMsg("new", 3)), saveOut(ch, outEntry("o1", 7))}
		},
		"drop then write": func(ch string) []*pb.PersistenceOp {
			return []*pb.PersistenceOp{dropChannel(ch), saveLamport(ch, 99)}
		},
		"removals": func(ch string) []*pb.PersistenceOp {
			return []*pb.PersistenceOp{removeLog(ch, "m1"), removeOut(ch, "o2")}
		},
	}
	for prefixName, prefix := range prefixes {
		for _, failing := range writeOps {
			for _, ch := range []string{chA, chC} { // chC has no state yet
				t.Run(prefixName+"/"+failing+"/"+ch, func(t *testing.T) {
					m := store.NewMemory()
					populate(t, m, chA)
					populate(t, m, chB)
					before := captureState(t, m, chA, chB, chC)
					beforeSnap := m.Snapshot(chA)

					ops := append(prefix(ch), opOf(failing, ch, "o1"), saveIn(ch, inEntry("after", 1)), removeLog(ch, "m2"))
					nth := 1 // the 3rd op is the nth attempt of its name within the batch
					for _, op := range ops[:2] {
						if store.OpName(op) == failing {
							nth++
						}
					}
					m.FailNth(failing, nth)
					m.ResetCounters()

					err := m.Apply(context.Background(), batchOf(ch, ops...))
					var inj *store.InjectedError
					if !errors.As(err, &inj) || inj.Op != failing {
						t.Fatalf("Apply error = %v, want *InjectedError{%s}", err, failing)
					}
					if got, want := err.Error(), "injected failure: "+failing; got != want {
						t.Fatalf("error text = %q, want %q", got, want)
					}
					assertSameState(t, m, before, chA, chB, chC)
					assertSnapshot(t, m.Snapshot(chA), beforeSnap)
					// Ops after the failing one were not attempted.
					if got := m.Calls(store.OpSaveIncoming); failing != store.OpSaveIncoming && got != 0 {
						t.Fatalf("Calls(SaveIncoming) = %d, want 0", got)
					}

					// The same batch is valid: it applies once the failure is spent.
					mustApply(t, m, batchOf(ch, ops...))
					if proto.Equal(m.Snapshot(ch), &pb.ChannelSnapshot{ChannelId: ch}) {
						t.Fatal("retried batch applied nothing")
					}
				})
			}
		}
	}
}

func TestMemoryInvalidBatch(t *testing.T) {
	tests := []struct {
		name  string
		batch *pb.PersistenceBatch
	}{
		{"nil batch", nil},
		{"nil op", batchOf(chA, saveLamport(chA, 1), nil)},
		{"empty op", batchOf(chA, saveLamport(chA, 1), &pb.PersistenceOp{})},
		{"nil request", batchOf(chA, saveLamport(chA, 1), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoing{}})},
		{"channel mismatch at op 4", batchOf(chA, saveLamport(chA, 1), appendLog(chA, sdsMsg("x", 1)), dropChannel(chA), removeLog(chB, "m1"))},
		{"channel mismatch, empty op channel", batchOf(chA, saveLamport("", 1))},
		{"AppendLogEntry without message", batchOf(chA, appendLog(chA, nil))},
		{"SaveOutgoing without message", batchOf(chA, saveOut(chA, &pb.UnacknowledgedMessage{WireBytes: []byte("w")}))},
		{"SaveIncoming without entry", batchOf(chA, saveIn(chA, nil))},
		{"SaveOutgoingRepair without entry", batchOf(chA, saveOutRepair(chA, &pb.OutgoingRepairEntry{RequestAtUnixMs: 1}))},
		{"SaveIncomingRepair without entry", batchOf(chA, saveInRepair(chA, &pb.IncomingRepairEntry{}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := store.NewMemory()
			populate(t, m, chA)
			before := captureState(t, m, chA, chB)
			m.ResetCounters()
			err := m.Apply(context.Background(), tt.batch)
			if !errors.Is(err, store.ErrInvalidBatch) {
				t.Fatalf("Apply error = %v, want ErrInvalidBatch", err)
			}
			assertSameState(t, m, before, chA, chB)
			for _, op := range store.AllOps {
				if n := m.Calls(op); n != 0 {
					t.Errorf("Calls(%s) = %d, want 0 for a rejected batch", op, n)
				}
			}
			if m.Batches() != 1 {
				t.Errorf("Batches() = %d, want 1", m.Batches())
			}
		})
	}
}

func TestMemoryEmptyBatch(t *testing.T) {
	m := store.NewMemory()
	mustApply(t, m, batchOf(chA))
	if got := m.Channels(); len(got) != 0 {
		t.Fatalf("Channels() = %v after an empty batch", got)
	}
	if m.Batches() != 1 {
		t.Fatalf("Batches() = %d, want 1", m.Batches())
	}
}

func TestMemoryFailNth(t *testing.T) {
	for n := 1; n <= 4; n++ {
		t.Run(fmt.Sprint("n=", n), func(t *testing.T) {
			m := store.NewMemory()
			// Earlier calls do not count: n is relative to FailNth.
			mustApply(t, m, batchOf(chA, saveOut(chA, outEntry("early", 0))))
			m.FailNth(store.OpSaveOutgoing, n)
			var failed []int
			for call := 1; call <= 6; call++ {
				err := m.Apply(context.Background(), batchOf(chA, saveLamport(chA, uint64(call)), saveOut(chA, outEntry(fmt.Sprint("o", call), 0))))
				if err != nil {
					var inj *store.InjectedError
					if !errors.As(err, &inj) || inj.Op != store.OpSaveOutgoing {
						t.Fatalf("call %d: error %v, want injected SaveOutgoing", call, err)
					}
					failed = append(failed, call)
				}
			}
			if !slices.Equal(failed, []int{n}) {
				t.Fatalf("failed calls = %v, want [%d]", failed, n)
			}
			if got := len(m.Snapshot(chA).GetOutgoing()); got != 6 {
				t.Fatalf("outgoing entries = %d, want 6 (one failed batch of 6)", got)
			}
			if m.Calls(store.OpSaveOutgoing) != 7 {
				t.Fatalf("Calls(SaveOutgoing) = %d, want 7", m.Calls(store.OpSaveOutgoing))
			}
		})
	}

	t.Run("counts ops within one batch", func(t *testing.T) {
		m := store.NewMemory()
		m.FailNth(store.OpAppendLogEntry, 2)
		err := m.Apply(context.Background(), batchOf(chA, appendLog(chA, sdsMsg("a", 1)), appendLog(chA, sdsMsg("b", 2))))
		if err == nil || err.Error() != "injected failure: AppendLogEntry" {
			t.Fatalf("Apply error = %v", err)
		}
		if got := logIDs(m.Snapshot(chA)); len(got) != 0 {
			t.Fatalf("log = %v after a failed batch", got)
		}
		mustApply(t, m, batchOf(chA, appendLog(chA, sdsMsg("a", 1)), appendLog(chA, sdsMsg("b", 2))))
	})

	t.Run("Load", func(t *testing.T) {
		m := store.NewMemory()
		m.FailNth(store.OpLoadAllForChannel, 2)
		for call := 1; call <= 3; call++ {
			_, err := m.Load(context.Background(), chA)
			if (err != nil) != (call == 2) {
				t.Fatalf("Load call %d: err = %v", call, err)
			}
			if err != nil && err.Error() != "injected failure: LoadAllForChannel" {
				t.Fatalf("Load error text = %q", err.Error())
			}
		}
	})

	t.Run("HealOp cancels a pending failure", func(t *testing.T) {
		m := store.NewMemory()
		m.FailNth(store.OpSaveLamport, 1)
		m.HealOp(store.OpSaveLamport)
		mustApply(t, m, batchOf(chA, saveLamport(chA, 1)))
	})

	t.Run("a later FailNth replaces an earlier one", func(t *testing.T) {
		m := store.NewMemory()
		m.FailNth(store.OpSaveLamport, 1)
		m.FailNth(store.OpSaveLamport, 2)
		mustApply(t, m, batchOf(chA, saveLamport(chA, 1)))
		if err := m.Apply(context.Background(), batchOf(chA, saveLamport(chA, 2))); err == nil {
			t.Fatal("second call should fail")
		}
	})
}

func TestMemoryFailOp(t *testing.T) {
	m := store.NewMemory()
	m.FailOp(store.OpSaveLamport)
	for i := 0; i < 3; i++ {
		err := m.Apply(context.Background(), batchOf(chA, appendLog(chA, sdsMsg("m", 1)), saveLamport(chA, 1)))
		if err == nil || err.Error() != "injected failure: SaveLamport" {
			t.Fatalf("attempt %d: err = %v", i, err)
		}
	}
	mustApply(t, m, batchOf(chA, appendLog(chA, sdsMsg("m", 1)))) // other ops still work
	m.HealOp(store.OpSaveLamport)
	mustApply(t, m, batchOf(chA, saveLamport(chA, 1)))

	m.FailOp(store.OpLoadAllForChannel)
	m.FailOp(store.OpDropChannel)
	if _, err := m.Load(context.Background(), chA); err == nil || err.Error() != "injected failure: LoadAllForChannel" {
		t.Fatalf("Load err = %v", err)
	}
	m.ClearFailures()
	if _, err := m.Load(context.Background(), chA); err != nil {
		t.Fatalf("Load after ClearFailures: %v", err)
	}
	mustApply(t, m, batchOf(chA, dropChannel(chA)))
}

func TestMemoryFailAll(t *testing.T) {
	dead := errors.New("disk on fire")
	m := store.NewMemory()
	populate(t, m, chA)
	before := captureState(t, m, chA)
	m.FailAll(dead)
	if err := m.Apply(context.Background(), batchOf(chA, saveLamport(chA, 1))); !errors.Is(err, dead) {
		t.Fatalf("Apply err = %v, want %v", err, dead)
	}
	if _, err := m.Load(context.Background(), chA); !errors.Is(err, dead) {
		t.Fatalf("Load err = %v, want %v", err, dead)
	}
	assertSameState(t, m, before, chA)
	m.FailAll(nil)
	mustApply(t, m, batchOf(chA, saveLamport(chA, 1)))
	m.FailAll(dead)
	m.ClearFailures()
	if _, err := m.Load(context.Background(), chA); err != nil {
		t.Fatalf("Load after ClearFailures: %v", err)
	}
}

func TestMemoryFailurePanics(t *testing.T) {
	m := store.NewMemory()
	for name, f := range map[string]func(){
		"FailOp unknown":  func() { m.FailOp("SaveLamprot") },
		"FailNth unknown": func() { m.FailNth("Nope", 1) },
		"FailNth zero":    func() { m.FailNth(store.OpSaveLamport, 0) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

func TestMemoryCounters(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory()
	mustApply(t, m, batchOf(chA, saveLamport(chA, 1), appendLog(chA, sdsMsg("a", 1)), appendLog(chA, sdsMsg("b", 1))))
	mustApply(t, m, batchOf(chB, dropChannel(chB)))
	m.FailOp(store.OpSaveOutgoing)
	// Failed batch: SaveLamport and SaveOutgoing attempted, AppendLogEntry and DropChannel not.
	_ = m.Apply(ctx, batchOf(chA, saveLamport(chA, 2), saveOut(chA, outEntry("o", 0)), appendLog(chA, sdsMsg("c", 1)), dropChannel(chA)))
	m.ClearFailures()
	mustApply(t, m, batchOf(chA, dropChannel(chA), dropChannel(chA)))
	_, _ = m.Load(ctx, chA)
	_, _ = m.Load(ctx, chC)
	m.FailOp(store.OpLoadAllForChannel)
	_, _ = m.Load(ctx, chA)
	m.FailAll(errors.New("dead")) // stops calls before any op is attempted
	_ = m.Apply(ctx, batchOf(chA, saveLamport(chA, 3)))
	_, _ = m.Load(ctx, chA)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	m.ClearFailures()
	_ = m.Apply(cancelled, batchOf(chA, saveLamport(chA, 3)))
	_, _ = m.Load(cancelled, chA)
	_ = m.Apply(ctx, batchOf(chA, removeLog(chB, "x"))) // rejected: wrong channel

	wantCalls := map[string]int{
		store.OpSaveLamport:       2,
		store.OpAppendLogEntry:    2,
		store.OpSaveOutgoing:      1,
		store.OpDropChannel:       3,
		store.OpLoadAllForChannel: 3,
		store.OpRemoveLogEntry:    0,
	}
	for _, op := range store.AllOps {
		if got := m.Calls(op); got != wantCalls[op] {
			t.Errorf("Calls(%s) = %d, want %d", op, got, wantCalls[op])
		}
	}
	if got := m.Batches(); got != 7 {
		t.Errorf("Batches() = %d, want 7", got)
	}
	if got := m.Loads(); got != 5 {
		t.Errorf("Loads() = %d, want 5", got)
	}
	if got := m.DropChannelCalls(chA); got != 2 {
		t.Errorf("DropChannelCalls(A) = %d, want 2", got)
	}
	if got := m.DropChannelCalls(chB); got != 1 {
		t.Errorf("DropChannelCalls(B) = %d, want 1", got)
	}
	if got := m.Calls("NotAnOp"); got != 0 {
		t.Errorf("Calls(NotAnOp) = %d", got)
	}

	_ = m.Snapshot(chA) // introspection is not counted
	_ = m.Channels()
	m.ResetCounters()
	for _, op := range store.AllOps {
		if m.Calls(op) != 0 {
			t.Errorf("Calls(%s) = %d after ResetCounters", op, m.Calls(op))
		}
	}
	if m.Batches() != 0 || m.Loads() != 0 || m.DropChannelCalls(chA) != 0 || m.DropChannelCalls(chB) != 0 {
		t.Error("counters not reset")
	}
}

func TestMemoryDropChannel(t *testing.T) {
	m := store.NewMemory()
	populate(t, m, chA)
	populate(t, m, chB)
	mustApply(t, m, batchOf(chA, setHint(chA, "not-in-log", "h")))
	wantB := m.Snapshot(chB)
	if got := m.Channels(); !slices.Equal(got, []string{chA, chB}) {
		t.Fatalf("Channels() = %v", got)
	}

	mustApply(t, m, batchOf(chA, dropChannel(chA)))

	assertSnapshot(t, m.Snapshot(chA), &pb.ChannelSnapshot{ChannelId: chA})
	loaded, err := m.Load(context.Background(), chA)
	if err != nil {
		t.Fatal(err)
	}
	assertSnapshot(t, loaded, &pb.ChannelSnapshot{ChannelId: chA})
	if m.HasLamport(chA) {
		t.Error("lamport row survived DropChannel")
	}
	if got := m.Channels(); !slices.Equal(got, []string{chB}) {
		t.Errorf("Channels() = %v, want [%s]", got, chB)
	}
	assertSnapshot(t, m.Snapshot(chB), wantB)
	if !m.HasLamport(chB) {
		t.Error("other channel's lamport row dropped")
	}
	if m.DropChannelCalls(chA) != 1 || m.DropChannelCalls(chB) != 0 {
		t.Errorf("DropChannelCalls = %d/%d, want 1/0", m.DropChannelCalls(chA), m.DropChannelCalls(chB))
	}

	// A dropped channel starts afresh: new outgoing entries are not ordered after ghosts.
	mustApply(t, m, batchOf(chA, saveOut(chA, outEntry("o2", 0)), saveOut(chA, outEntry("o1", 0))))
	if got := m.Snapshot(chA).GetOutgoing(); len(got) != 2 || got[0].GetMessage().GetMessageId() != "o2" {
		t.Errorf("outgoing after drop = %v", got)
	}
}

func TestMemoryClonesMessages(t *testing.T) {
	m := store.NewMemory()
	msg := sdsMsg("m", 1)
	out := outEntry("o", 0)
	hint := []byte("hint")
	mustApply(t, m, batchOf(chA, appendLog(chA, msg), saveOut(chA, out),
		&pb.PersistenceOp{Op: &pb.PersistenceOp_SetRetrievalHint{SetRetrievalHint: &pb.SetRetrievalHintRequest{ChannelId: chA, MessageId: "m", RetrievalHint: hint}}}))
	want := m.Snapshot(chA)

	// The caller reuses its messages.
	msg.Content[0] = 'X'
	msg.MessageId = "changed"
	out.ResendAttempts = 99
	out.Message.SenderId = "mallory"
	hint[0] = 'X'
	assertSnapshot(t, m.Snapshot(chA), want)

	// The caller mutates what Load returned.
	loaded, err := m.Load(context.Background(), chA)
	if err != nil {
		t.Fatal(err)
	}
	loaded.Log[0].Content[0] = 'Y'
	loaded.Outgoing[0].WireBytes[0] = 'Y'
	loaded.RetrievalHints[0].RetrievalHint[0] = 'Y'
	loaded.Log = nil
	assertSnapshot(t, m.Snapshot(chA), want)
}

func TestMemoryClone(t *testing.T) {
	m := store.NewMemory()
	populate(t, m, chA)
	populate(t, m, chB)
	m.FailOp(store.OpSaveLamport)
	wantA, wantB := m.Snapshot(chA), m.Snapshot(chB)

	c := m.Clone()
	if c.Batches() != 0 || c.Calls(store.OpSaveLamport) != 0 {
		t.Error("Clone copied counters")
	}
	mustApply(t, c, batchOf(chA, saveLamport(chA, 1))) // no failures in the clone
	assertSnapshot(t, c.Snapshot(chB), wantB)

	// Writes to the clone do not reach the original, and vice versa.
	mustApply(t, c, batchOf(chA, appendLog(chA, sdsMsg("clone-only", 9)), saveOut(chA, outEntry("o1", 5)), saveOut(chA, outEntry("o3", 0))))
	mustApply(t, c, batchOf(chB, dropChannel(chB)))
	m.ClearFailures()
	mustApply(t, m, batchOf(chA, removeOut(chA, "o1"), setHint(chA, "m2", "orig-only")))
	assertSnapshot(t, m.Snapshot(chB), wantB)
	if slices.Contains(logIDs(m.Snapshot(chA)), "clone-only") {
		t.Error("clone write reached the original")
	}
	if len(m.Snapshot(chA).GetRetrievalHints()) != len(wantA.GetRetrievalHints())+1 {
		t.Error("original write lost")
	}
	if got := c.Channels(); !slices.Equal(got, []string{chA}) {
		t.Errorf("clone Channels() = %v", got)
	}
	// The clone kept the insertion order: o1 updated in place, o3 appended.
	var ids []string
	for _, e := range c.Snapshot(chA).GetOutgoing() {
		ids = append(ids, e.GetMessage().GetMessageId())
	}
	if !slices.Equal(ids, []string{"o1", "o2", "o3"}) {
		t.Errorf("clone outgoing order = %v", ids)
	}
	if len(c.Snapshot(chA).GetRetrievalHints()) != len(wantA.GetRetrievalHints()) {
		t.Error("original write reached the clone")
	}
}

func TestMemoryContextCancelled(t *testing.T) {
	m := store.NewMemory()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Apply(ctx, batchOf(chA, saveLamport(chA, 1))); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply err = %v, want context.Canceled", err)
	}
	if _, err := m.Load(ctx, chA); !errors.Is(err, context.Canceled) {
		t.Fatalf("Load err = %v, want context.Canceled", err)
	}
	if got := m.Channels(); len(got) != 0 {
		t.Fatalf("cancelled Apply stored %v", got)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	const channels, rounds = 16, 200
	m := store.NewMemory()
	var wg sync.WaitGroup
	for c := range channels {
		ch := fmt.Sprintf("ch-%02d", c)
		wg.Go(func() {
			ctx := context.Background()
			for i := range rounds {
				id := fmt.Sprint("m", i)
				b := batchOf(ch, saveLamport(ch, uint64(i+1)), appendLog(ch, sdsMsg(id, uint64(i+1))),
					saveOut(ch, outEntry(id, 0)), setHint(ch, id, "h"))
				if i%2 == 1 {
					b.Ops = append(b.Ops, removeOut(ch, fmt.Sprint("m", i-1)))
				}
				if err := m.Apply(ctx, b); err != nil {
					t.Error(err)
					return
				}
				if i%20 != 0 {
					continue
				}
				if _, err := m.Load(ctx, ch); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// Readers and failure toggles that touch no channel's data.
	wg.Go(func() {
		for i := range rounds {
			_ = m.Channels()
			_ = m.Snapshot("ch-00")
			if i%20 == 0 {
				_ = m.Clone()
			}
			_ = m.Calls(store.OpSaveLamport)
			m.HealOp(store.OpRemoveLogEntry)
		}
	})
	wg.Wait()

	for c := range channels {
		ch := fmt.Sprintf("ch-%02d", c)
		s := m.Snapshot(ch)
		if s.GetLamportTimestamp() != rounds || len(s.GetLog()) != rounds || len(s.GetRetrievalHints()) != rounds || len(s.GetOutgoing()) != rounds/2 {
			t.Errorf("%s: lamport %d, log %d, hints %d, outgoing %d", ch, s.GetLamportTimestamp(), len(s.GetLog()), len(s.GetRetrievalHints()), len(s.GetOutgoing()))
		}
	}
	if got := m.Batches(); got != channels*rounds {
		t.Errorf("Batches() = %d, want %d", got, channels*rounds)
	}
	if got := m.Calls(store.OpLoadAllForChannel); got != channels*rounds/20 {
		t.Errorf("Calls(LoadAllForChannel) = %d, want %d", got, channels*rounds/20)
	}
}

func TestInjectedErrorText(t *testing.T) {
	for _, op := range store.AllOps {
		if got := (&store.InjectedError{Op: op}).Error(); got != "injected failure: "+op || !strings.HasSuffix(got, op) {
			t.Errorf("InjectedError{%s}.Error() = %q", op, got)
		}
	}
}
