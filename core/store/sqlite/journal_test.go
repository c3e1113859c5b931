package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// tablesForTest reads the channel from the tables alone, without folding the journal.
func (s *Store) tablesForTest(t testing.TB, ch string) *pb.ChannelSnapshot {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap, err := s.loadLocked(context.Background(), ch)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func journalRows(t testing.TB, s *Store) int64 {
	t.Helper()
	return s.queryIntForTest(t, "SELECT count(*) FROM journal")
}

// wantBigBatchApplied checks the state bigBatch leaves on top of populated.
func wantBigBatchApplied(t testing.TB, snap *pb.ChannelSnapshot) {
	t.Helper()
	if snap.GetLamportTimestamp() != 99 || len(snap.GetLog()) != 1 || snap.GetLog()[0].GetMessageId() != "new" ||
		len(snap.GetOutgoing()) != 2 || len(snap.GetIncoming()) != 0 {
		t.Fatalf("bigBatch not applied: %v", snap)
	}
}

// A committed batch waits in the journal (the tables do not have it yet), is what Load
// returns, and leaves the journal once folded.
func TestJournalHoldsCommittedBatchesUntilFolded(t *testing.T) {
	s, before := populated(t)
	mustApply(t, s, bigBatch())
	if n := journalRows(t, s); n != 1 {
		t.Fatalf("journal rows = %d, want 1", n)
	}
	assertSnapshot(t, s.tablesForTest(t, "ch"), before)
	wantBigBatchApplied(t, mustLoad(t, s, "ch"))
	if n := journalRows(t, s); n != 0 || s.journaled != 0 {
		t.Fatalf("journal rows after the fold = %d (counted %d), want 0", n, s.journaled)
	}
	wantBigBatchApplied(t, s.tablesForTest(t, "ch"))
}

// The journal is folded by the Apply that finds it full, before its own row is added.
func TestJournalFoldsWhenFull(t *testing.T) {
	s := openTemp(t, Options{JournalBatches: 3})
	for i := range 7 {
		mustApply(t, s, batchOf("ch", saveLamport("ch", uint64(i+1)), appendLog("ch", sdsMsg(string(rune('a'+i)), uint64(i+1)))))
		if got, want := journalRows(t, s), int64(i%3+1); got != want {
			t.Fatalf("after batch %d: journal rows = %d, want %d", i+1, got, want)
		}
	}
	if got := len(s.tablesForTest(t, "ch").GetLog()); got != 6 {
		t.Fatalf("tables hold %d log entries, want the 6 folded ones", got)
	}
	snap := mustLoad(t, s, "ch")
	if snap.GetLamportTimestamp() != 7 || len(snap.GetLog()) != 7 {
		t.Fatalf("loaded %v, want lamport 7 and 7 log entries", snap)
	}
}

// Batches of several channels, with upserts, removals and a DropChannel, fold to what
// applying them one by one gives.
func TestJournalFoldMatchesDirectApply(t *testing.T) {
	batches := []*pb.PersistenceBatch{
		batchOf("a", saveLamport("a", 1), appendLog("a", sdsMsg("a1", 1)), saveOut("a", outEntry("a1", 0))),
		batchOf("b", saveLamport("b", 5), appendLog("b", sdsMsg("b1", 5)), setHint("b", "b1", []byte("h"))),
		batchOf("a", saveOut("a", outEntry("a1", 2)), saveOut("a", outEntry("a2", 0)), appendLog("a", sdsMsg("a2", 2))),
		batchOf("b", &pb.PersistenceOp{Op: &pb.PersistenceOp_DropChannel{DropChannel: &pb.DropChannelRequest{ChannelId: "b"}}}),
		batchOf("b", saveLamport("b", 9), appendLog("b", sdsMsg("b9", 9))),
		batchOf("a", removeLog("a", "a1"), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoing{
			RemoveOutgoing: &pb.RemoveOutgoingRequest{ChannelId: "a", MessageId: "a1"}}}),
	}
	journaled, straight := openTemp(t, Options{}), openTemp(t, direct)
	for _, b := range batches {
		mustApply(t, journaled, b)
		mustApply(t, straight, b)
	}
	for _, ch := range []string{"a", "b"} {
		assertSnapshot(t, mustLoad(t, journaled, ch), mustLoad(t, straight, ch))
	}
}

// Batches still in the journal when the store is closed are there after a reopen.
func TestJournalSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sdskit.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		mustApply(t, s, batchOf("ch", saveLamport("ch", uint64(i+1))))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.journaled != 5 {
		t.Fatalf("journal rows counted at open = %d, want 5", s.journaled)
	}
	if got := mustLoad(t, s, "ch").GetLamportTimestamp(); got != 5 {
		t.Fatalf("lamport = %d, want 5", got)
	}
}

// A fold is one transaction: a failing statement in the middle of it leaves the tables
// and the journal as they were, fails the Load that ran it, and the next Load folds
// everything once the fault is gone.
func TestJournalFoldIsAtomic(t *testing.T) {
	s, before := populated(t)
	mustApply(t, s, bigBatch())
	s.execForTest(t, `CREATE TRIGGER test_boom BEFORE INSERT ON outgoing WHEN NEW.id = 'boom'
		BEGIN SELECT RAISE(ABORT, 'injected failure on boom'); END`)
	_, err := s.Load(context.Background(), "ch")
	if err == nil || !strings.Contains(err.Error(), "injected failure on boom") || !strings.Contains(err.Error(), "op 5 (SaveOutgoing)") ||
		!strings.Contains(err.Error(), "fold the journal") {
		t.Fatalf("Load error = %v, want the trigger's failure at op 5 of the fold", err)
	}
	assertSnapshot(t, s.tablesForTest(t, "ch"), before)
	if n := journalRows(t, s); n != 1 {
		t.Fatalf("journal rows after a failed fold = %d, want 1", n)
	}
	s.execForTest(t, `DROP TRIGGER test_boom`)
	wantBigBatchApplied(t, mustLoad(t, s, "ch"))
}

// When the Apply that finds the journal full cannot fold it, that Apply fails and its
// batch is not committed; the journal keeps the earlier batches, and the same Apply
// succeeds once the fault is gone.
func TestJournalFailedFoldFailsTheApply(t *testing.T) {
	s := openTemp(t, Options{JournalBatches: 2})
	mustApply(t, s, batchOf("ch", saveOut("ch", outEntry("boom", 0))))
	mustApply(t, s, batchOf("ch", saveLamport("ch", 4)))
	s.execForTest(t, `CREATE TRIGGER test_boom BEFORE INSERT ON outgoing WHEN NEW.id = 'boom'
		BEGIN SELECT RAISE(ABORT, 'injected failure on boom'); END`)
	third := batchOf("ch", saveLamport("ch", 5))
	if err := s.Apply(context.Background(), third); err == nil || !strings.Contains(err.Error(), "injected failure on boom") {
		t.Fatalf("Apply with a failing fold = %v, want the trigger's failure", err)
	}
	if n := journalRows(t, s); n != 2 || s.journaled != 2 {
		t.Fatalf("journal rows = %d (counted %d), want the 2 earlier batches only", n, s.journaled)
	}
	s.execForTest(t, `DROP TRIGGER test_boom`)
	mustApply(t, s, third)
	snap := mustLoad(t, s, "ch")
	if snap.GetLamportTimestamp() != 5 || len(snap.GetOutgoing()) != 1 {
		t.Fatalf("after healing: %v", snap)
	}
}

// A fold cancelled by its context, or interrupted by a panic, keeps the journal.
func TestJournalFoldInterrupted(t *testing.T) {
	for _, how := range []string{"cancel", "panic"} {
		t.Run(how, func(t *testing.T) {
			s, before := populated(t)
			mustApply(t, s, bigBatch())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s.afterOp = func(_ context.Context, i int) {
				if i == 3 {
					if how == "panic" {
						panic("boom")
					}
					cancel()
				}
			}
			_, err := s.Load(ctx, "ch")
			s.afterOp = nil
			switch how {
			case "cancel":
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Load = %v, want context.Canceled", err)
				}
			case "panic":
				if err == nil || !strings.Contains(err.Error(), "driver panic") {
					t.Fatalf("Load = %v, want the panic as an error", err)
				}
			}
			assertSnapshot(t, s.tablesForTest(t, "ch"), before)
			wantBigBatchApplied(t, mustLoad(t, s, "ch"))
		})
	}
}

// A journal row that does not decode (a corrupt file) is a clear error, never a panic.
func TestJournalCorruptRow(t *testing.T) {
	s := openTemp(t, Options{})
	mustApply(t, s, batchOf("ch", saveLamport("ch", 1)))
	s.execForTest(t, `UPDATE journal SET batch = x'ffffffff'`)
	_, err := s.Load(context.Background(), "ch")
	if err == nil || !strings.Contains(err.Error(), "does not decode") {
		t.Fatalf("Load of a corrupt journal = %v, want a decode error", err)
	}
}

func TestJournalBatchesOption(t *testing.T) {
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), Options{JournalBatches: -1}); err == nil ||
		!strings.Contains(err.Error(), "JournalBatches") {
		t.Fatalf("Open with JournalBatches -1 = %v, want an option error", err)
	}
	s := openTemp(t, direct)
	mustApply(t, s, batchOf("ch", saveLamport("ch", 1)))
	if n := journalRows(t, s); n != 0 {
		t.Fatalf("JournalBatches 1 wrote %d journal rows, want none", n)
	}
}
