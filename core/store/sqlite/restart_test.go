package sqlite

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/internal/race"
	"github.com/sdskit/sdskit/core/sds"
	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/wire"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// managerOn opens the store at path and alice's manager on it, with both workload
// channels loaded.
func managerOn(t testing.TB, path string, clk *clock.Manual, ev *eventLog) (*Store, *sds.Manager) {
	t.Helper()
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := newWorkloadManager(s, clk, ev)
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

func managerSnapshots(t testing.TB, m *sds.Manager) map[string]*pb.ChannelSnapshot {
	t.Helper()
	out := map[string]*pb.ChannelSnapshot{}
	for _, ch := range wlChannels {
		s, err := m.Snapshot(ch)
		if err != nil {
			t.Fatal(err)
		}
		out[ch] = s
	}
	return out
}

func assertSnapshots(t testing.TB, what string, got, want map[string]*pb.ChannelSnapshot) {
	t.Helper()
	for _, ch := range wlChannels {
		if !proto.Equal(got[ch], want[ch]) {
			t.Fatalf("%s: channel %s differs\n--- got\n%s\n--- want\n%s", what, ch, prototext.Format(got[ch]), prototext.Format(want[ch]))
		}
	}
}

// TestRestartAfterEveryCall runs the workload through sds.Manager, closing the manager
// and the store after every call (every fifth call after the first 120) and reopening
// both: the reopened manager's Snapshot must equal the one before the restart, and at
// the end the file must hold exactly the state of an uninterrupted run on store.Memory.
func TestRestartAfterEveryCall(t *testing.T) {
	steps, every := 400, 5
	if race.Enabled {
		steps, every = 250, 10
	}
	w := genWorkload(wlSeed, steps)
	path := filepath.Join(t.TempDir(), "alice.db")
	clk, ev := clock.NewManual(wlStart), &eventLog{}
	s, m := managerOn(t, path, clk, ev)
	kinds := map[string]int{}
	for n := 1; n <= steps; n++ {
		rec, err := runStep(context.Background(), m, clk, ev, w, n, false)
		if err != nil {
			t.Fatal(err)
		}
		kinds[rec.Kind]++
		for _, e := range rec.Events {
			kinds[strings.Fields(e)[0]]++
		}
		if n > 120 && n%every != 0 {
			continue
		}
		before := managerSnapshots(t, m)
		_ = m.Close()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, m = managerOn(t, path, clk, ev)
		assertSnapshots(t, "after restart at step "+strconv.Itoa(n), managerSnapshots(t, m), before)
	}
	defer s.Close()
	defer m.Close()
	ref := newRefRunner(w).at(steps)
	got := map[string]*pb.ChannelSnapshot{}
	for _, ch := range wlChannels {
		got[ch] = normalize(mustLoad(t, s, ch))
	}
	assertSnapshots(t, "file vs uninterrupted reference", got, ref)
	t.Logf("calls and events: %v", kinds)
	for _, k := range []string{"wrap", "recv", "sweep", "markdeps", "ready", "acked", "possibly", "gaveup", "resend", "missing", "lost", "repair"} {
		if kinds[k] == 0 {
			t.Errorf("the workload never produced %q", k)
		}
	}
}

// faultyManager returns alice's manager on a fresh store after 60 workload steps.
func faultyManager(t *testing.T) (*Store, *sds.Manager, *clock.Manual, *eventLog) {
	t.Helper()
	w := genWorkload(wlSeed, 60)
	clk, ev := clock.NewManual(wlStart), &eventLog{}
	s, m := managerOn(t, filepath.Join(t.TempDir(), "alice.db"), clk, ev)
	t.Cleanup(func() { _ = m.Close(); _ = s.Close() })
	for n := 1; n <= 60; n++ {
		if _, err := runStep(context.Background(), m, clk, ev, w, n, false); err != nil {
			t.Fatal(err)
		}
	}
	ev.take()
	return s, m, clk, ev
}

// bigMessage is a message from bob, large enough to need new database pages.
func bigMessage(t *testing.T) []byte {
	t.Helper()
	b, err := wire.Spec.Encode(&pb.SdsMessage{SenderId: "bob", MessageId: "bob-big", ChannelId: "room",
		LamportTimestamp: proto.Uint64(uint64(wlStart.UnixMilli()) + 100_000), Content: make([]byte, 300<<10)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func wantPersistence(t *testing.T, err error, detail string) {
	t.Helper()
	if sdserr.CodeOf(err) != sdserr.Persistence || !strings.Contains(err.Error(), detail) {
		t.Fatalf("error = %v, want PERSISTENCE mentioning %q", err, detail)
	}
	t.Log(err)
}

// TestManagerDiskFull simulates a full disk with PRAGMA max_page_count: a wrap and a
// receive that need new pages fail with PERSISTENCE, the manager's memory is rolled
// back, and the same calls succeed once the limit is raised.
func TestManagerDiskFull(t *testing.T) {
	ctx := context.Background()
	s, m, clk, ev := faultyManager(t)
	before := managerSnapshots(t, m)
	s.execForTest(t, "PRAGMA max_page_count = "+strconv.FormatInt(s.queryIntForTest(t, "PRAGMA page_count"), 10))

	_, err := m.WrapOutgoingMessage(ctx, "room", "big-wrap", make([]byte, 300<<10))
	wantPersistence(t, err, "full")
	_, err = m.UnwrapReceivedMessage(ctx, bigMessage(t))
	wantPersistence(t, err, "full")
	if evs := ev.take(); len(evs) != 0 {
		t.Fatalf("failed calls fired events: %v", evs)
	}
	assertSnapshots(t, "after failed calls", managerSnapshots(t, m), before)

	s.execForTest(t, "PRAGMA max_page_count = 1073741823")
	if _, err := m.WrapOutgoingMessage(ctx, "room", "big-wrap", make([]byte, 300<<10)); err != nil {
		t.Fatalf("wrap after healing: %v", err)
	}
	if _, err := m.UnwrapReceivedMessage(ctx, bigMessage(t)); err != nil {
		t.Fatalf("receive after healing: %v", err)
	}
	after := managerSnapshots(t, m)
	_ = m.Close()
	_ = s.Close()
	// What the manager holds is what the file holds.
	s2, m2 := managerOn(t, s.Path(), clk, ev)
	defer s2.Close()
	defer m2.Close()
	assertSnapshots(t, "after reopening", managerSnapshots(t, m2), after)
}

// TestManagerReadOnly makes the live connection read-only (PRAGMA query_only, which
// works whoever runs the test; TestReadOnly covers files made read-only): calls fail
// with PERSISTENCE, a sweep with resends due fails with a PersistenceFailed event, memory
// is rolled back, and everything succeeds once writes are allowed.
func TestManagerReadOnly(t *testing.T) {
	ctx := context.Background()
	s, m, clk, ev := faultyManager(t)
	before := managerSnapshots(t, m)
	s.execForTest(t, "PRAGMA query_only = 1")
	_, err := m.WrapOutgoingMessage(ctx, "room", "ro-wrap", []byte("hello"))
	wantPersistence(t, err, "read-only")
	if err := m.MarkDependenciesMet(ctx, "room", []string{"somewhere"}); err == nil {
		t.Fatal("MarkDependenciesMet succeeded on a read-only database")
	}
	if evs := ev.take(); len(evs) != 0 {
		t.Fatalf("failed calls fired events: %v", evs)
	}
	assertSnapshots(t, "after failed calls", managerSnapshots(t, m), before)

	clk.Set(clk.Now().Add(workloadConfig().MaxResendInterval * 3)) // resends are due
	err = m.RunSweeps(ctx)
	wantPersistence(t, err, "read-only")
	evs := ev.take()
	if len(evs) == 0 || !strings.HasPrefix(evs[0], "persistfail") {
		t.Fatalf("sweep events = %v, want PersistenceFailed first", evs)
	}
	assertSnapshots(t, "after a failed sweep", managerSnapshots(t, m), before)

	s.execForTest(t, "PRAGMA query_only = 0")
	if err := m.RunSweeps(ctx); err != nil {
		t.Fatalf("sweep once writable: %v", err)
	}
	if evs := ev.take(); !strings.Contains(strings.Join(evs, ";"), "resend ") && !strings.Contains(strings.Join(evs, ";"), "gaveup ") {
		t.Fatalf("the retried sweep did no resend: %v", evs)
	}
	if _, err := m.WrapOutgoingMessage(ctx, "room", "ro-wrap", []byte("hello")); err != nil {
		t.Fatalf("wrap once writable: %v", err)
	}
}
