package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/sdskit/sdskit/core/internal/race"
	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// opGen generates random ops of all 13 kinds over a small id space, so that upserts,
// removals of present and absent keys and order ties are frequent.
type opGen struct {
	r *rand.Rand
}

var (
	conformanceChannels = []string{"ch-1", "ch-2", "ch-3"}
	conformanceIDs      = []string{"a", "b", "c", "d", "e", "f", "g", "", "é-ü", "x\x00y"}
)

func (g *opGen) id() string { return conformanceIDs[g.r.IntN(len(conformanceIDs))] }

func (g *opGen) bytes(max int) []byte {
	if g.r.IntN(5) == 0 {
		return nil
	}
	b := make([]byte, g.r.IntN(max+1))
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return b
}

func (g *opGen) lamport() *uint64 {
	switch g.r.IntN(10) {
	case 0:
		return nil // a stub entry
	case 1:
		return proto.Uint64(1<<63 + g.r.Uint64N(3)) // beyond int64: SQLite must not reorder it
	case 2:
		return proto.Uint64(0)
	}
	return proto.Uint64(g.r.Uint64N(6))
}

func (g *opGen) entry(id string) *pb.HistoryEntry {
	e := &pb.HistoryEntry{MessageId: id}
	if g.r.IntN(2) == 0 {
		e.RetrievalHint = g.bytes(8)
	}
	if g.r.IntN(2) == 0 {
		e.SenderId = proto.String([]string{"bob", "carol"}[g.r.IntN(2)])
	}
	return e
}

func (g *opGen) msg(ch, id string) *pb.SdsMessage {
	m := &pb.SdsMessage{SenderId: []string{"alice", "bob"}[g.r.IntN(2)], MessageId: id, ChannelId: ch, LamportTimestamp: g.lamport()}
	for range g.r.IntN(3) {
		m.CausalHistory = append(m.CausalHistory, g.entry(g.id()))
	}
	if g.r.IntN(4) == 0 {
		m.RepairRequest = append(m.RepairRequest, g.entry(g.id()))
	}
	if m.LamportTimestamp != nil || g.r.IntN(2) == 0 {
		m.Content = g.bytes(32)
	}
	return m
}

// op returns a random write op of kind k (0..12, contract order) for channel ch.
func (g *opGen) op(k int, ch string) *pb.PersistenceOp {
	id := g.id()
	at := func() int64 { return g.r.Int64N(1 << 42) }
	switch k {
	case 0:
		return saveLamport(ch, []uint64{0, 1, g.r.Uint64N(1 << 40), 1<<63 + 5, ^uint64(0)}[g.r.IntN(5)])
	case 1:
		return appendLog(ch, g.msg(ch, id))
	case 2:
		return removeLog(ch, id)
	case 3:
		return setHint(ch, id, g.bytes(12))
	case 4:
		u := &pb.UnacknowledgedMessage{Message: g.msg(ch, id), WireBytes: g.bytes(40), SentAtUnixMs: at(),
			ResendAttempts: g.r.Uint32N(4), NextResendAtUnixMs: at()}
		for range g.r.IntN(3) {
			u.PossibleAckSenders = append(u.PossibleAckSenders, fmt.Sprint("p", g.r.IntN(4)))
		}
		return saveOut(ch, u)
	case 5:
		return removeOut(ch, id)
	case 6:
		im := &pb.IncomingMessage{Message: g.msg(ch, id), ReceivedAtUnixMs: at()}
		for range g.r.IntN(3) {
			im.MissingDependencies = append(im.MissingDependencies, g.id())
		}
		return saveIn(ch, im)
	case 7:
		return removeIn(ch, id)
	case 8:
		return saveOutRepair(ch, &pb.OutgoingRepairEntry{Entry: g.entry(id), RequestAtUnixMs: at(), DetectedAtUnixMs: at()})
	case 9:
		return removeOutRepair(ch, id)
	case 10:
		return saveInRepair(ch, &pb.IncomingRepairEntry{Entry: g.entry(id), CachedMessage: g.bytes(40), RespondAtUnixMs: at()})
	case 11:
		return removeInRepair(ch, id)
	case 12:
		return dropChannel(ch)
	}
	panic(k)
}

// batch returns a random batch for one channel; DropChannel is rarer than the rest. When
// invalid is set, one op of the batch is malformed (wrong channel or nothing to save).
func (g *opGen) batch(invalid bool) *pb.PersistenceBatch {
	ch := conformanceChannels[g.r.IntN(len(conformanceChannels))]
	b := &pb.PersistenceBatch{ChannelId: ch, Operation: "Random"}
	for range 1 + g.r.IntN(8) {
		k := g.r.IntN(12)
		if g.r.IntN(25) == 0 {
			k = 12
		}
		b.Ops = append(b.Ops, g.op(k, ch))
	}
	if invalid {
		bad := []*pb.PersistenceOp{
			removeOut("other-channel", "a"),
			saveOut(ch, &pb.UnacknowledgedMessage{}),
			{},
			appendLog(ch, nil),
		}[g.r.IntN(4)]
		b.Ops = slices.Insert(b.Ops, g.r.IntN(len(b.Ops)+1), bad)
	}
	return b
}

// TestConformanceRandomBatches runs identical random batches (all 13 write ops, three
// channels, upserts, removals of absent keys, DropChannel, malformed batches) against
// the SQLite store and the Memory reference and requires equal snapshots of every
// channel after every batch. The store is closed and reopened now and then, so the
// comparison also covers what survives a reopen.
func TestConformanceRandomBatches(t *testing.T) {
	ctx := context.Background()
	seeds, batches := []uint64{1, 2}, 500
	if race.Enabled {
		seeds, batches = seeds[:1], 250
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "conf.db")
			s, err := Open(ctx, path, Options{Synchronous: "OFF"})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			ref := store.NewMemory() // the reference: RemoveLogEntry drops the hint there too
			g := &opGen{r: rand.New(rand.NewPCG(seed, 99))}
			counts := map[string]int{}
			for i := range batches {
				invalid := g.r.IntN(30) == 0
				b := g.batch(invalid)
				for _, op := range b.GetOps() {
					counts[store.OpName(op)]++
				}
				errRef := ref.Apply(ctx, b)
				errSQL := s.Apply(ctx, b)
				if (errRef == nil) != (errSQL == nil) || invalid != (errSQL != nil) {
					t.Fatalf("batch %d (invalid=%v): memory error %v, sqlite error %v\n%s", i, invalid, errRef, errSQL, prototext.Format(b))
				}
				if errSQL != nil && !errors.Is(errSQL, store.ErrInvalidBatch) {
					t.Fatalf("batch %d: sqlite error %v does not wrap store.ErrInvalidBatch", i, errSQL)
				}
				if i%97 == 96 {
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					if s, err = Open(ctx, path, Options{Synchronous: "OFF"}); err != nil {
						t.Fatal(err)
					}
				}
				for _, ch := range conformanceChannels {
					got := mustLoad(t, s, ch)
					want := ref.Snapshot(ch)
					if !proto.Equal(got, want) {
						t.Fatalf("after batch %d, channel %s differs\n--- batch\n%s\n--- sqlite\n%s\n--- memory\n%s",
							i, ch, prototext.Format(b), prototext.Format(got), prototext.Format(want))
					}
				}
			}
			for _, name := range store.AllOps[:13] {
				if counts[name] == 0 {
					t.Errorf("op %s never generated", name)
				}
			}
			t.Logf("op counts: %v", counts)
		})
	}
}

// TestContractCases pins the contract rules one by one, each checked against Memory.
func TestContractCases(t *testing.T) {
	const ch = "ch"
	tests := []struct {
		name       string
		setup, ops []*pb.PersistenceOp
		want       *pb.ChannelSnapshot
	}{
		{
			name: "SaveOutgoing upsert keeps the insertion position",
			ops:  []*pb.PersistenceOp{saveOut(ch, outEntry("z", 0)), saveOut(ch, outEntry("a", 0)), saveOut(ch, outEntry("z", 3))},
			want: &pb.ChannelSnapshot{ChannelId: ch, Outgoing: []*pb.UnacknowledgedMessage{outEntry("z", 3), outEntry("a", 0)}},
		},
		{
			name:  "a removed then re-saved entry goes to the end",
			setup: []*pb.PersistenceOp{saveOut(ch, outEntry("z", 0)), saveOut(ch, outEntry("a", 0))},
			ops:   []*pb.PersistenceOp{removeOut(ch, "z"), saveOut(ch, outEntry("z", 1))},
			want:  &pb.ChannelSnapshot{ChannelId: ch, Outgoing: []*pb.UnacknowledgedMessage{outEntry("a", 0), outEntry("z", 1)}},
		},
		{
			name: "log ordered by lamport then id, whatever the insertion order",
			ops:  []*pb.PersistenceOp{appendLog(ch, sdsMsg("b", 2)), appendLog(ch, sdsMsg("c", 1)), appendLog(ch, sdsMsg("a", 2)), appendLog(ch, sdsMsg("big", 1<<63))},
			want: &pb.ChannelSnapshot{ChannelId: ch, Log: []*pb.SdsMessage{sdsMsg("c", 1), sdsMsg("a", 2), sdsMsg("b", 2), sdsMsg("big", 1<<63)}},
		},
		{
			name:  "RemoveLogEntry deletes the message's hint too",
			setup: []*pb.PersistenceOp{appendLog(ch, sdsMsg("m", 1)), setHint(ch, "m", []byte("h")), appendLog(ch, sdsMsg("n", 2)), setHint(ch, "n", []byte("hn"))},
			ops:   []*pb.PersistenceOp{removeLog(ch, "m")},
			want: &pb.ChannelSnapshot{ChannelId: ch, Log: []*pb.SdsMessage{sdsMsg("n", 2)},
				RetrievalHints: []*pb.RetrievalHint{{MessageId: "n", RetrievalHint: []byte("hn")}}},
		},
		{
			name:  "DropChannel then writes in the same batch",
			setup: []*pb.PersistenceOp{saveLamport(ch, 9), appendLog(ch, sdsMsg("old", 1)), setHint(ch, "old", []byte("h")), setHint(ch, "not-in-log", []byte("h"))},
			ops:   []*pb.PersistenceOp{dropChannel(ch), appendLog(ch, sdsMsg("new", 2))},
			want:  &pb.ChannelSnapshot{ChannelId: ch, Log: []*pb.SdsMessage{sdsMsg("new", 2)}},
		},
		{
			name: "removals on an unknown channel succeed",
			ops: []*pb.PersistenceOp{removeLog(ch, "x"), removeOut(ch, "x"), removeIn(ch, "x"),
				removeOutRepair(ch, "x"), removeInRepair(ch, "x"), dropChannel(ch)},
			want: &pb.ChannelSnapshot{ChannelId: ch},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTemp(t, Options{Synchronous: "OFF"})
			ref := store.NewMemory() // the reference: RemoveLogEntry drops the hint there too
			for _, ops := range [][]*pb.PersistenceOp{tt.setup, tt.ops} {
				if ops == nil {
					continue
				}
				mustApply(t, s, batchOf(ch, ops...))
				if err := ref.Apply(context.Background(), batchOf(ch, ops...)); err != nil {
					t.Fatal(err)
				}
			}
			assertSnapshot(t, mustLoad(t, s, ch), tt.want)
			assertSnapshot(t, ref.Snapshot(ch), tt.want)
		})
	}
}
