package sds

// Tests of the persistence contract (issue 2, "Persistence"; ARCHITECTURE §3):
//
//   - the scenarios of nim-sds tests/test_persistence.nim (behaviour reference §13.3),
//     adapted: a restart is Close() and New on the same store (or a Clone of it);
//   - a failure matrix: every public operation × every persistence op its batch
//     contains, with the typed error, the untouched state, no events, and a retry that
//     ends exactly where a never-failed twin ends;
//   - one batch per operation, one load per channel;
//   - restart equivalence after every step of a three-participant scenario;
//   - bootstrap validation and broken backends;
//   - the typed Persistence adapter with a transactional host backend.
//
// Every top-level helper of this file starts with "pst" so that other test files of the
// package can define their own helpers freely.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/profile"
	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/store"
	"github.com/sdskit/sdskit/core/wire"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

const pstCh = "ch"

var pstStart = time.Unix(1_700_000_000, 0)

// --- helpers: a recording backend, events, messages ------------------------------------

// pstRecorder wraps a Backend and records, in order, the op names of every load and of
// every batch handed to it (whether or not the inner backend accepts it).
type pstRecorder struct {
	inner   store.Backend
	mu      sync.Mutex
	trace   []string // op names, LoadAllForChannel for a load
	batches int
	loads   int
}

func (r *pstRecorder) Apply(ctx context.Context, b *pb.PersistenceBatch) error {
	r.mu.Lock()
	r.batches++
	for _, op := range b.GetOps() {
		r.trace = append(r.trace, store.OpName(op))
	}
	r.mu.Unlock()
	return r.inner.Apply(ctx, b)
}

func (r *pstRecorder) Load(ctx context.Context, channelID string) (*pb.ChannelSnapshot, error) {
	r.mu.Lock()
	r.loads++
	r.trace = append(r.trace, store.OpLoadAllForChannel)
	r.mu.Unlock()
	return r.inner.Load(ctx, channelID)
}

type pstMark struct{ trace, batches, loads int }

func (r *pstRecorder) mark() pstMark {
	r.mu.Lock()
	defer r.mu.Unlock()
	return pstMark{len(r.trace), r.batches, r.loads}
}

// since returns the op names recorded after mk and the batch and load counts.
func (r *pstRecorder) since(mk pstMark) (ops []string, batches, loads int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.trace[mk.trace:]), r.batches - mk.batches, r.loads - mk.loads
}

// pstEvents collects a manager's events.
type pstEvents struct {
	mu  sync.Mutex
	evs []*pb.Event
}

func (c *pstEvents) HandleEvent(ev *pb.Event) {
	c.mu.Lock()
	c.evs = append(c.evs, ev)
	c.mu.Unlock()
}

func (c *pstEvents) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.evs)
}

func (c *pstEvents) from(i int) []*pb.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.evs[i:])
}

func (c *pstEvents) all() []*pb.Event { return c.from(0) }

func pstEventsEqual(a, b []*pb.Event) bool {
	return slices.EqualFunc(a, b, func(x, y *pb.Event) bool { return proto.Equal(x, y) })
}

// pstFmtEvents renders events one a line, wire bytes abbreviated.
func pstFmtEvents(evs []*pb.Event) string {
	var sb strings.Builder
	for _, ev := range evs {
		ev = proto.CloneOf(ev)
		if r := ev.GetResendRequested(); r != nil {
			r.WireBytes = []byte(fmt.Sprintf("<%d bytes>", len(r.WireBytes)))
		}
		if r := ev.GetRepairReady(); r != nil {
			r.WireBytes = []byte(fmt.Sprintf("<%d bytes>", len(r.WireBytes)))
		}
		fmt.Fprintf(&sb, "\n    %s", prototext.MarshalOptions{}.Format(ev))
	}
	if sb.Len() == 0 {
		return " (none)"
	}
	return sb.String()
}

// pstFmt renders a message for a failure report, wire bytes abbreviated.
func pstFmt(m proto.Message) string {
	if m == nil {
		return "<nil>"
	}
	if s, ok := m.(*pb.ChannelSnapshot); ok {
		s = proto.CloneOf(s)
		for _, u := range s.GetOutgoing() {
			u.WireBytes = []byte(fmt.Sprintf("<%d bytes>", len(u.WireBytes)))
		}
		for _, e := range s.GetIncomingRepair() {
			e.CachedMessage = []byte(fmt.Sprintf("<%d bytes>", len(e.CachedMessage)))
		}
		m = s
	}
	return prototext.MarshalOptions{Multiline: true}.Format(m)
}

func pstHints() HintProvider {
	return HintProviderFunc(func(_ context.Context, _, id string) ([]byte, error) { return []byte("hint:" + id), nil })
}

func pstContent(id string) []byte { return []byte("content of " + id) }

func pstEncode(t testing.TB, msg *pb.SdsMessage) []byte {
	t.Helper()
	b, err := wire.Spec.Encode(msg)
	if err != nil {
		t.Fatalf("encode %s: %v", msg.GetMessageId(), err)
	}
	return b
}

func pstDecode(t testing.TB, b []byte) *pb.SdsMessage {
	t.Helper()
	msg, err := wire.Spec.Decode(b, wire.DefaultLimits())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return msg
}

// pstMsg builds a content message of sender "bob" with the given lamport and causal
// history (ids only, each with sender "bob").
func pstMsg(id string, lamport uint64, deps ...string) *pb.SdsMessage {
	msg := &pb.SdsMessage{SenderId: "bob", MessageId: id, ChannelId: pstCh, LamportTimestamp: proto.Uint64(lamport), Content: pstContent(id)}
	for _, d := range deps {
		msg.CausalHistory = append(msg.CausalHistory, &pb.HistoryEntry{MessageId: d, SenderId: proto.String("bob")})
	}
	return msg
}

func pstIsPersistence(t testing.TB, err error, wantText string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a PERSISTENCE error containing %q, got nil", wantText)
	}
	if !errors.Is(err, sdserr.Is(sdserr.Persistence)) || sdserr.CodeOf(err) != sdserr.Persistence {
		t.Fatalf("want code PERSISTENCE, got %v (%v)", sdserr.CodeOf(err), err)
	}
	if !strings.Contains(err.Error(), wantText) {
		t.Fatalf("error %q does not contain %q", err, wantText)
	}
}

func pstMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func pstOpen(t testing.TB, participant string, cfg Config, backend store.Backend, clk clock.Clock, opts ...Option) *Manager {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler) // failed sweeps log warnings by design
	opts = append([]Option{WithBackend(backend), WithClock(clk), WithSeed(7), WithLogger(quiet)}, opts...)
	m, err := New(participant, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func pstSnap(t testing.TB, m *Manager) *pb.ChannelSnapshot {
	t.Helper()
	s, err := m.Snapshot(pstCh)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pstOutgoingIDs(s *pb.ChannelSnapshot) []string {
	var ids []string
	for _, u := range s.GetOutgoing() {
		ids = append(ids, u.GetMessage().GetMessageId())
	}
	return ids
}

func pstLogIDs(s *pb.ChannelSnapshot) []string {
	var ids []string
	for _, msg := range s.GetLog() {
		ids = append(ids, msg.GetMessageId())
	}
	return ids
}

func pstIncomingIDs(s *pb.ChannelSnapshot) []string {
	var ids []string
	for _, im := range s.GetIncoming() {
		ids = append(ids, im.GetMessage().GetMessageId())
	}
	return ids
}

// pstRestarted returns the snapshot of ch as a fresh manager bootstraps it from a clone
// of mem, and that manager (closed by the test's cleanup).
func pstRestarted(t testing.TB, participant string, cfg Config, mem *store.Memory, clk clock.Clock) (*pb.ChannelSnapshot, *Manager) {
	t.Helper()
	r := pstOpen(t, participant, cfg, mem.Clone(), clk)
	t.Cleanup(func() { _ = r.Close() })
	pstMust(t, r.EnsureChannel(context.Background(), pstCh))
	return pstSnap(t, r), r
}

// --- 1. nim-sds test_persistence.nim, suite "write → restart → read-back" -------------

func TestPersistenceRestart_OutgoingBufferSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), DefaultConfig()
	m := pstOpen(t, "alice", cfg, mem, clk)
	if _, err := m.WrapOutgoingMessage(ctx, pstCh, "msg-1", pstContent("msg-1")); err != nil {
		t.Fatal(err)
	}
	if got := pstOutgoingIDs(mem.Snapshot(pstCh)); !slices.Equal(got, []string{"msg-1"}) {
		t.Fatalf("stored outgoing = %v, want [msg-1]", got)
	}
	pstMust(t, m.Close())
	m2 := pstOpen(t, "alice", cfg, mem, clk)
	pstMust(t, m2.EnsureChannel(ctx, pstCh))
	if got := pstOutgoingIDs(pstSnap(t, m2)); !slices.Equal(got, []string{"msg-1"}) {
		t.Fatalf("outgoing after restart = %v, want [msg-1]", got)
	}
}

// Adapted: nim's updateLamportTimestamp(42) is internal; receiving a message with lamport
// 42 drives the clock there (the spec profile stores max(L, 42) = 42, not nim's 43).
func TestPersistenceRestart_LamportClockSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(time.UnixMilli(0)), DefaultConfig()
	m := pstOpen(t, "alice", cfg, mem, clk)
	if _, err := m.UnwrapReceivedMessage(ctx, pstEncode(t, pstMsg("m42", 42))); err != nil {
		t.Fatal(err)
	}
	if got := mem.Snapshot(pstCh).GetLamportTimestamp(); got != 42 || !mem.HasLamport(pstCh) {
		t.Fatalf("stored lamport = %d, want 42", got)
	}
	pstMust(t, m.Close())
	m2 := pstOpen(t, "alice", cfg, mem, clk)
	pstMust(t, m2.EnsureChannel(ctx, pstCh))
	if got := pstSnap(t, m2).GetLamportTimestamp(); got != 42 {
		t.Fatalf("lamport after restart = %d, want 42", got)
	}
	// As nim's master variant checks: the next send stores at least 43.
	if _, err := m2.WrapOutgoingMessage(ctx, pstCh, "m43", pstContent("m43")); err != nil {
		t.Fatal(err)
	}
	if got := mem.Snapshot(pstCh).GetLamportTimestamp(); got != 43 {
		t.Fatalf("stored lamport after the next send = %d, want 43", got)
	}
}

// Adapted: nim's addToHistory is internal; receiving a deliverable message logs it.
func TestPersistenceRestart_DeliveredMessagesSurviveRestartAndRebuildBloom(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), DefaultConfig()
	m := pstOpen(t, "alice", cfg, mem, clk)
	if _, err := m.UnwrapReceivedMessage(ctx, pstEncode(t, pstMsg("delivered-1", 5))); err != nil {
		t.Fatal(err)
	}
	if got := pstLogIDs(mem.Snapshot(pstCh)); !slices.Equal(got, []string{"delivered-1"}) {
		t.Fatalf("stored log = %v", got)
	}
	pstMust(t, m.Close())
	m2 := pstOpen(t, "alice", cfg, mem, clk)
	pstMust(t, m2.EnsureChannel(ctx, pstCh))
	if got := pstLogIDs(pstSnap(t, m2)); !slices.Equal(got, []string{"delivered-1"}) {
		t.Fatalf("log after restart = %v", got)
	}
	if in, err := m2.BloomContains(pstCh, "delivered-1"); err != nil || !in {
		t.Fatalf("bloom after restart does not contain delivered-1 (%v)", err)
	}
}

func TestPersistenceRestart_AckRemovesOutgoingEntryFromPersistence(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), DefaultConfig()
	var evs pstEvents
	m := pstOpen(t, "alice", cfg, mem, clk, WithHandler(&evs))
	if _, err := m.WrapOutgoingMessage(ctx, pstCh, "msg-x", pstContent("msg-x")); err != nil {
		t.Fatal(err)
	}
	if got := pstOutgoingIDs(mem.Snapshot(pstCh)); !slices.Equal(got, []string{"msg-x"}) {
		t.Fatalf("stored outgoing = %v", got)
	}
	ack := pstMsg("sync-1", 1, "msg-x")
	ack.Content = nil // a sync message: empty content
	res, err := m.UnwrapReceivedMessage(ctx, pstEncode(t, ack))
	if err != nil || res.Kind != KindSync {
		t.Fatalf("unwrap ack: %+v %v", res, err)
	}
	if got := mem.Snapshot(pstCh).GetOutgoing(); len(got) != 0 {
		t.Fatalf("stored outgoing after the ack = %v", got)
	}
	var acked []string
	for _, ev := range evs.all() {
		if a := ev.GetMessageAcknowledged(); a != nil {
			acked = append(acked, a.GetMessageId())
		}
	}
	if !slices.Equal(acked, []string{"msg-x"}) {
		t.Fatalf("acknowledged = %v", acked)
	}
}

func TestPersistenceRestart_RemoveChannelIssuesExactlyOneDropChannelCallAndWipesAllState(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), DefaultConfig()
	cfg.RepairTMin, cfg.RepairTMax = 0, time.Second
	m := pstOpen(t, "alice", cfg, mem, clk)
	if _, err := m.WrapOutgoingMessage(ctx, pstCh, "a1", pstContent("a1")); err != nil {
		t.Fatal(err)
	}
	// Fill every table: a buffered message (incoming + outgoing repair), a repair
	// request for a1 (incoming repair) and a retrieval hint.
	if _, err := m.UnwrapReceivedMessageWithHint(ctx, pstEncode(t, pstMsg("b2", 3, "b1")), []byte("h")); err != nil {
		t.Fatal(err)
	}
	req := pstMsg("b3", 4)
	req.RepairRequest = []*pb.HistoryEntry{{MessageId: "a1", SenderId: proto.String("alice")}}
	if _, err := m.UnwrapReceivedMessage(ctx, pstEncode(t, req)); err != nil {
		t.Fatal(err)
	}
	s := mem.Snapshot(pstCh)
	if !mem.HasLamport(pstCh) || len(s.GetLog()) == 0 || len(s.GetOutgoing()) == 0 || len(s.GetIncoming()) == 0 ||
		len(s.GetOutgoingRepair()) == 0 || len(s.GetIncomingRepair()) == 0 || len(s.GetRetrievalHints()) == 0 {
		t.Fatalf("setup did not fill every table:\n%s", pstFmt(s))
	}
	pstMust(t, m.RemoveChannel(ctx, pstCh))
	if n := mem.DropChannelCalls(pstCh); n != 1 {
		t.Fatalf("DropChannel calls = %d, want 1", n)
	}
	if slices.Contains(mem.Channels(), pstCh) || mem.HasLamport(pstCh) {
		t.Fatalf("channel still stored: %v", mem.Channels())
	}
	if s := mem.Snapshot(pstCh); !proto.Equal(s, &pb.ChannelSnapshot{ChannelId: pstCh}) {
		t.Fatalf("stored state after removal:\n%s", pstFmt(s))
	}
	if _, err := m.Snapshot(pstCh); sdserr.CodeOf(err) != sdserr.NotFound {
		t.Fatalf("channel still loaded: %v", err)
	}
}

func TestPersistenceRestart_NoOpPersistenceKeepsExistingManagerWorking(t *testing.T) {
	m, err := New("alice", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.WrapOutgoingMessage(context.Background(), pstCh, "m1", pstContent("m1")); err != nil {
		t.Fatal(err)
	}
	if got := pstOutgoingIDs(pstSnap(t, m)); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("outgoing = %v", got)
	}
}

func TestPersistenceRestart_ContinueOperatingAfterRestartLamportStaysMonotonic(t *testing.T) {
	ctx := context.Background()
	// A clock that does not move, so the second send must use L+1.
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), DefaultConfig()
	m := pstOpen(t, "alice", cfg, mem, clk)
	if _, err := m.WrapOutgoingMessage(ctx, pstCh, "m1", pstContent("m1")); err != nil {
		t.Fatal(err)
	}
	stored := mem.Snapshot(pstCh).GetLamportTimestamp()
	pstMust(t, m.Close())
	m2 := pstOpen(t, "alice", cfg, mem, clk)
	pstMust(t, m2.EnsureChannel(ctx, pstCh))
	if got := pstSnap(t, m2).GetLamportTimestamp(); got != stored {
		t.Fatalf("lamport after restart = %d, stored %d", got, stored)
	}
	if _, err := m2.WrapOutgoingMessage(ctx, pstCh, "m2", pstContent("m2")); err != nil {
		t.Fatal(err)
	}
	if got := mem.Snapshot(pstCh).GetLamportTimestamp(); got <= stored {
		t.Fatalf("stored lamport %d after the next send, not above %d", got, stored)
	}
	if got := pstOutgoingIDs(pstSnap(t, m2)); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("outgoing = %v", got)
	}
}

func TestPersistenceRestart_MultipleRestartCyclesPreserveState(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), DefaultConfig()
	for _, id := range []string{"m1", "m2", "m3"} {
		m := pstOpen(t, "alice", cfg, mem, clk)
		if _, err := m.WrapOutgoingMessage(ctx, pstCh, id, pstContent(id)); err != nil {
			t.Fatal(err)
		}
		pstMust(t, m.Close())
		clk.Advance(time.Second)
	}
	m := pstOpen(t, "alice", cfg, mem, clk)
	pstMust(t, m.EnsureChannel(ctx, pstCh))
	s := pstSnap(t, m)
	if got := pstOutgoingIDs(s); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Fatalf("outgoing = %v", got)
	}
	if got := pstLogIDs(s); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Fatalf("log = %v", got)
	}
}

func TestPersistenceRestart_IncomingDepWaitingBufferSurvivesRestartWithMissingDepsIntact(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), DefaultConfig()
	m := pstOpen(t, "alice", cfg, mem, clk)
	res, err := m.UnwrapReceivedMessage(ctx, pstEncode(t, pstMsg("msg-with-deps", 2, "missing-dep")))
	if err != nil || res.Delivered {
		t.Fatalf("unwrap: %+v %v", res, err)
	}
	pstMust(t, m.Close())
	m2 := pstOpen(t, "alice", cfg, mem, clk)
	pstMust(t, m2.EnsureChannel(ctx, pstCh))
	in := pstSnap(t, m2).GetIncoming()
	if len(in) != 1 || in[0].GetMessage().GetMessageId() != "msg-with-deps" ||
		!slices.Equal(in[0].GetMissingDependencies(), []string{"missing-dep"}) {
		t.Fatalf("incoming after restart = %v", in)
	}
	if ok, _ := m2.BloomContains(pstCh, "msg-with-deps"); !ok {
		t.Fatal("bloom after restart does not contain the buffered message")
	}
}

func TestPersistenceRestart_RemoveChannelAndRecreateDoesNotInheritStaleLamport(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(time.UnixMilli(0)), DefaultConfig()
	m := pstOpen(t, "alice", cfg, mem, clk)
	if _, err := m.UnwrapReceivedMessage(ctx, pstEncode(t, pstMsg("m1", 1000))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WrapOutgoingMessage(ctx, pstCh, "a1", pstContent("a1")); err != nil {
		t.Fatal(err)
	}
	pstMust(t, m.RemoveChannel(ctx, pstCh))
	if mem.HasLamport(pstCh) {
		t.Fatal("lamport row survived RemoveChannel")
	}
	pstMust(t, m.Close())
	m2 := pstOpen(t, "alice", cfg, mem, clk)
	pstMust(t, m2.EnsureChannel(ctx, pstCh))
	s := pstSnap(t, m2)
	if s.GetLamportTimestamp() != 0 || len(s.GetOutgoing()) != 0 || len(s.GetLog()) != 0 {
		t.Fatalf("recreated channel inherited state:\n%s", pstFmt(s))
	}
}

func TestPersistenceRestart_SDSROutgoingRepairBufferSurvivesRestartWithAbsoluteTReq(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), DefaultConfig()
	m := pstOpen(t, "alice", cfg, mem, clk)
	if _, err := m.UnwrapReceivedMessage(ctx, pstEncode(t, pstMsg("b2", 2, "b1"))); err != nil {
		t.Fatal(err)
	}
	stored := mem.Snapshot(pstCh).GetOutgoingRepair()
	if len(stored) != 1 || stored[0].GetEntry().GetMessageId() != "b1" {
		t.Fatalf("stored outgoing repair = %v", stored)
	}
	wantAt := pstStart.Add(profile.Spec.TReq("alice", "b1", cfg.RepairTMin, cfg.RepairTMax)).UnixMilli()
	if got := stored[0].GetRequestAtUnixMs(); got != wantAt || got <= pstStart.UnixMilli() {
		t.Fatalf("stored T_req = %d, want %d (absolute, after detection)", got, wantAt)
	}
	pstMust(t, m.Close())
	// Restart an hour later: the deadline is absolute, not re-armed.
	clk.Advance(time.Hour)
	m2 := pstOpen(t, "alice", cfg, mem, clk)
	pstMust(t, m2.EnsureChannel(ctx, pstCh))
	got := pstSnap(t, m2).GetOutgoingRepair()
	if len(got) != 1 || !proto.Equal(got[0], stored[0]) {
		t.Fatalf("outgoing repair after restart = %v, want %v", got, stored)
	}
}

func TestPersistenceRestart_FIFOEvictionStateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), DefaultConfig()
	cfg.MaxMessageHistory, cfg.BloomCapacity = 3, 3
	m := pstOpen(t, "alice", cfg, mem, clk)
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("m%d", i)
		if _, err := m.UnwrapReceivedMessage(ctx, pstEncode(t, pstMsg(id, uint64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	if got := pstLogIDs(mem.Snapshot(pstCh)); !slices.Equal(got, []string{"m3", "m4", "m5"}) {
		t.Fatalf("stored log = %v", got)
	}
	pstMust(t, m.Close())
	m2 := pstOpen(t, "alice", cfg, mem, clk)
	pstMust(t, m2.EnsureChannel(ctx, pstCh))
	if got := pstLogIDs(pstSnap(t, m2)); !slices.Equal(got, []string{"m3", "m4", "m5"}) {
		t.Fatalf("log after restart = %v", got)
	}
	if _, err := m2.UnwrapReceivedMessage(ctx, pstEncode(t, pstMsg("m6", 6))); err != nil {
		t.Fatal(err)
	}
	if got := pstLogIDs(mem.Snapshot(pstCh)); !slices.Equal(got, []string{"m4", "m5", "m6"}) {
		t.Fatalf("stored log after m6 = %v (m3 must be evicted)", got)
	}
}

func TestPersistenceRestart_DepClearCascadeResumesCorrectlyAcrossARestart(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), DefaultConfig()
	m := pstOpen(t, "alice", cfg, mem, clk)
	for _, msg := range []*pb.SdsMessage{pstMsg("c", 3, "b"), pstMsg("b", 2, "a")} {
		if _, err := m.UnwrapReceivedMessage(ctx, pstEncode(t, msg)); err != nil {
			t.Fatal(err)
		}
	}
	if got := pstIncomingIDs(mem.Snapshot(pstCh)); len(got) != 2 {
		t.Fatalf("stored incoming = %v", got)
	}
	pstMust(t, m.Close())
	var evs pstEvents
	m2 := pstOpen(t, "alice", cfg, mem, clk, WithHandler(&evs))
	res, err := m2.UnwrapReceivedMessage(ctx, pstEncode(t, pstMsg("a", 1)))
	if err != nil || !res.Delivered {
		t.Fatalf("unwrap a: %+v %v", res, err)
	}
	s := pstSnap(t, m2)
	if got := pstLogIDs(s); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("log = %v", got)
	}
	if len(s.GetIncoming()) != 0 || len(mem.Snapshot(pstCh).GetIncoming()) != 0 {
		t.Fatalf("incoming not empty: memory %v, stored %v", s.GetIncoming(), mem.Snapshot(pstCh).GetIncoming())
	}
	var ready []string
	for _, ev := range evs.all() {
		if r := ev.GetMessageReady(); r != nil {
			ready = append(ready, r.GetMessageId())
		}
	}
	if !slices.Equal(ready, []string{"a", "b", "c"}) {
		t.Fatalf("delivered %v, want [a b c]", ready)
	}
}

// Not in nim-sds: a message dropped after the incoming timeout takes its retrieval hint
// with it on disk too, so the hint does not come back after a restart when the message
// arrives again (without a hint).
func TestPersistenceRestart_DroppedMessageHintDoesNotComeBack(t *testing.T) {
	cfg := pstConfig()
	cfg.IncomingTimeout, cfg.LostPolicy = 5*time.Second, LostDrop
	e := pstNewEnv(t, cfg)
	e.ensure()
	e.wrap("bob", "b1", "b2")
	if _, err := e.m.UnwrapReceivedMessageWithHint(e.ctx, e.wire["b2"], []byte("h2")); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(6 * time.Second)
	e.sweep() // b2 is dropped
	if hs := e.mem.Snapshot(pstCh).GetRetrievalHints(); len(hs) != 0 {
		t.Fatalf("stored hints after the drop: %v", hs)
	}
	e.recv("alice", "b1", "b2")
	live := pstSnap(t, e.m)
	if got, _ := pstRestarted(t, "alice", cfg, e.mem, e.clk); !proto.Equal(live, got) {
		t.Fatalf("restart differs:\n--- live\n%s--- restarted\n%s", pstFmt(live), pstFmt(got))
	}
}

// --- 1. nim-sds test_persistence.nim, suite "error propagation" -----------------------

func TestPersistenceErrors_LoadAllForChannelFailureSurfacesAsPersistenceError(t *testing.T) {
	mem := store.NewMemory()
	m := pstOpen(t, "alice", DefaultConfig(), mem, clock.NewManual(pstStart))
	mem.FailOp(store.OpLoadAllForChannel)
	pstIsPersistence(t, m.EnsureChannel(context.Background(), pstCh), "injected failure: LoadAllForChannel")
}

// Adapted: unlike nim-sds (§9.4: lamport bump and repair removals stay, the message
// lingers in the outgoing buffer) nothing of the failed send remains, in memory or on disk.
func TestPersistenceErrors_WriteFailureDuringSendSurfacesAsPersistenceError(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	m := pstOpen(t, "alice", DefaultConfig(), mem, clock.NewManual(pstStart))
	pstMust(t, m.EnsureChannel(ctx, pstCh))
	before, stored := pstSnap(t, m), mem.Snapshot(pstCh)
	mem.FailOp(store.OpSaveOutgoing)
	b, err := m.WrapOutgoingMessage(ctx, pstCh, "m1", pstContent("m1"))
	pstIsPersistence(t, err, "injected failure: SaveOutgoing")
	if b != nil {
		t.Fatal("bytes returned with the error")
	}
	if !proto.Equal(pstSnap(t, m), before) || !proto.Equal(mem.Snapshot(pstCh), stored) {
		t.Fatal("the failed send left state behind")
	}
}

func TestPersistenceErrors_DropChannelFailureDuringRemoveChannelSurfacesAsPersistenceError(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	m := pstOpen(t, "alice", DefaultConfig(), mem, clock.NewManual(pstStart))
	if _, err := m.WrapOutgoingMessage(ctx, pstCh, "m1", pstContent("m1")); err != nil {
		t.Fatal(err)
	}
	mem.FailOp(store.OpDropChannel)
	pstIsPersistence(t, m.RemoveChannel(ctx, pstCh), "injected failure: DropChannel")
	if got := pstOutgoingIDs(pstSnap(t, m)); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("channel state after the failed removal: outgoing %v", got)
	}
}

// Adapted from nim-sds master's "failure policy" suite: there a failed write is queued and
// flushed later; here the failed call is simply retried and nothing is lost.
func TestPersistenceErrors_RetryAfterRecoveryStoresEverything(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	m := pstOpen(t, "alice", DefaultConfig(), mem, clock.NewManual(pstStart))
	mem.FailOp(store.OpAppendLogEntry)
	_, err := m.WrapOutgoingMessage(ctx, pstCh, "m1", pstContent("m1"))
	pstIsPersistence(t, err, "injected failure: AppendLogEntry")
	_, err = m.WrapOutgoingMessage(ctx, pstCh, "m1", pstContent("m1"))
	pstIsPersistence(t, err, "injected failure: AppendLogEntry")
	mem.HealOp(store.OpAppendLogEntry)
	for _, id := range []string{"m1", "m2"} {
		if _, err := m.WrapOutgoingMessage(ctx, pstCh, id, pstContent(id)); err != nil {
			t.Fatal(err)
		}
	}
	s := mem.Snapshot(pstCh)
	if !slices.Equal(pstLogIDs(s), []string{"m1", "m2"}) || !slices.Equal(pstOutgoingIDs(s), []string{"m1", "m2"}) {
		t.Fatalf("stored:\n%s", pstFmt(s))
	}
}

// --- 2. the failure matrix ----------------------------------------------------------

// pstEnv is one world of the failure matrix: alice (the manager under test, persisting
// into mem through a recorder) and two peers bob and carol (no-op persistence), all on
// one manual clock.
type pstEnv struct {
	t     testing.TB
	ctx   context.Context
	cfg   Config
	clk   *clock.Manual
	mem   *store.Memory
	rec   *pstRecorder
	ev    *pstEvents
	m     *Manager
	peers map[string]*Manager
	wire  map[string][]byte // messages produced so far, by name
}

func pstConfig() Config {
	cfg := DefaultConfig()
	cfg.SyncJitter = 0
	cfg.RepairTMin = time.Second
	cfg.RepairTMax = 10 * time.Second
	return cfg
}

func pstNewEnv(t testing.TB, cfg Config) *pstEnv {
	e := &pstEnv{
		t: t, ctx: context.Background(), cfg: cfg, clk: clock.NewManual(pstStart),
		mem: store.NewMemory(), ev: &pstEvents{}, peers: map[string]*Manager{}, wire: map[string][]byte{},
	}
	e.rec = &pstRecorder{inner: e.mem}
	e.m = e.session(cfg, e.rec, e.ev)
	for i, p := range []string{"bob", "carol"} {
		m, err := New(p, cfg, WithClock(e.clk), WithSeed(uint64(100+i)), WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		e.peers[p] = m
	}
	return e
}

// session opens a manager for alice on backend.
func (e *pstEnv) session(cfg Config, backend store.Backend, h Handler) *Manager {
	opts := []Option{WithHintProvider(pstHints())}
	if h != nil {
		opts = append(opts, WithHandler(h))
	}
	return pstOpen(e.t, "alice", cfg, backend, e.clk, opts...)
}

// previous runs f on an earlier session of alice on the same store, then closes it.
func (e *pstEnv) previous(cfg Config, f func(m *Manager)) {
	m := e.session(cfg, e.mem, nil)
	f(m)
	pstMust(e.t, m.Close())
}

func (e *pstEnv) mgr(who string) *Manager {
	if who == "alice" {
		return e.m
	}
	return e.peers[who]
}

func (e *pstEnv) wrapOn(m *Manager, id string) {
	e.t.Helper()
	b, err := m.WrapOutgoingMessage(e.ctx, pstCh, id, pstContent(id))
	if err != nil {
		e.t.Fatalf("%s wraps %s: %v", m.ParticipantID(), id, err)
	}
	e.wire[id] = b
}

func (e *pstEnv) wrap(who string, ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		e.wrapOn(e.mgr(who), id)
	}
}

func (e *pstEnv) recvOn(m *Manager, names ...string) {
	e.t.Helper()
	for _, name := range names {
		b, ok := e.wire[name]
		if !ok {
			e.t.Fatalf("no message %q", name)
		}
		if _, err := m.UnwrapReceivedMessage(e.ctx, b); err != nil {
			e.t.Fatalf("%s receives %s: %v", m.ParticipantID(), name, err)
		}
	}
}

func (e *pstEnv) recv(who string, names ...string) {
	e.t.Helper()
	e.recvOn(e.mgr(who), names...)
}

func (e *pstEnv) sync(who, name string) {
	e.t.Helper()
	b, err := e.mgr(who).BuildSyncMessage(e.ctx, pstCh)
	if err != nil {
		e.t.Fatalf("%s builds a sync message: %v", who, err)
	}
	e.wire[name] = b
}

func (e *pstEnv) ensure() { e.t.Helper(); pstMust(e.t, e.m.EnsureChannel(e.ctx, pstCh)) }

func (e *pstEnv) sweep() { e.t.Helper(); pstMust(e.t, e.m.RunSweeps(e.ctx)) }

// pstState is everything the failure matrix compares.
type pstState struct {
	snap           *pb.ChannelSnapshot // nil when not loaded
	snapCode       sdserr.Code
	bloom          bool
	channels       []string
	stored         *pb.ChannelSnapshot
	storedLamport  bool
	storedChannels []string
}

func (e *pstEnv) capture(id string) pstState {
	var s pstState
	snap, err := e.m.Snapshot(pstCh)
	s.snap, s.snapCode = snap, sdserr.CodeOf(err)
	if err == nil {
		s.bloom, _ = e.m.BloomContains(pstCh, id)
	}
	s.channels = e.m.Channels()
	s.stored = e.mem.Snapshot(pstCh)
	s.storedLamport = e.mem.HasLamport(pstCh)
	s.storedChannels = e.mem.Channels()
	return s
}

// pstDiff describes how b differs from a ("" when equal).
func pstDiff(a, b pstState) string {
	var d []string
	if a.snapCode != b.snapCode || !proto.Equal(a.snap, b.snap) {
		d = append(d, fmt.Sprintf("manager snapshot (%v vs %v):\n--- want\n%s--- got\n%s", a.snapCode, b.snapCode, pstFmt(a.snap), pstFmt(b.snap)))
	}
	if a.bloom != b.bloom {
		d = append(d, fmt.Sprintf("bloom membership %v vs %v", a.bloom, b.bloom))
	}
	if !slices.Equal(a.channels, b.channels) {
		d = append(d, fmt.Sprintf("loaded channels %v vs %v", a.channels, b.channels))
	}
	if !proto.Equal(a.stored, b.stored) || a.storedLamport != b.storedLamport {
		d = append(d, fmt.Sprintf("stored snapshot:\n--- want\n%s--- got\n%s", pstFmt(a.stored), pstFmt(b.stored)))
	}
	if !slices.Equal(a.storedChannels, b.storedChannels) {
		d = append(d, fmt.Sprintf("stored channels %v vs %v", a.storedChannels, b.storedChannels))
	}
	return strings.Join(d, "\n")
}

// pstSameResult compares the results of two runs of the same action.
func pstSameResult(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case proto.Message:
		y, ok := b.(proto.Message)
		return ok && proto.Equal(x, y)
	case *Unwrapped:
		y, ok := b.(*Unwrapped)
		return ok && x.ChannelID == y.ChannelID && x.MessageID == y.MessageID && x.SenderID == y.SenderID &&
			x.Kind == y.Kind && x.Lamport == y.Lamport && bytes.Equal(x.Content, y.Content) &&
			x.Delivered == y.Delivered &&
			slices.EqualFunc(x.Missing, y.Missing, func(p, q *pb.HistoryEntry) bool { return proto.Equal(p, q) })
	}
	return false
}

// pstCase is one row of the failure matrix.
type pstCase struct {
	name  string
	cfg   func(*Config)
	setup func(e *pstEnv)
	act   func(e *pstEnv) (any, error)
	id    string   // the message whose bloom membership must not change on failure
	want  []string // persistence ops the action must issue (proves the setup reaches the path)
	loads int      // loads the action makes (1: first touch)
	// installs: a first touch whose load succeeds installs the persisted state before
	// the action's own batch can fail.
	installs bool
	sweep    bool // a background sweep: failures report PersistenceFailed
}

func pstR[T any](v T, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

func pstWrapAct(id string) func(e *pstEnv) (any, error) {
	return func(e *pstEnv) (any, error) { return pstR(e.m.WrapOutgoingMessage(e.ctx, pstCh, id, pstContent(id))) }
}

func pstRecvAct(name string) func(e *pstEnv) (any, error) {
	return func(e *pstEnv) (any, error) { return pstR(e.m.UnwrapReceivedMessage(e.ctx, e.wire[name])) }
}

func pstSweepAct(e *pstEnv) (any, error) { return nil, e.m.RunSweeps(e.ctx) }

// pstSyncAct builds a sync message and returns it decoded without its random id.
func pstSyncAct(e *pstEnv) (any, error) {
	b, err := e.m.BuildSyncMessage(e.ctx, pstCh)
	if err != nil {
		return nil, err
	}
	msg := pstDecode(e.t, b)
	if !strings.HasPrefix(msg.GetMessageId(), "sync-") || len(msg.GetContent()) != 0 {
		e.t.Fatalf("not a sync message: %v", msg)
	}
	msg.MessageId = ""
	return msg, nil
}

// Setups shared by several rows.

// alice holds b2 (waiting for b1, an SDS-R request for b1 pending) and has sent a1.
func pstSetupWaiting(e *pstEnv) {
	e.wrap("alice", "a1")
	e.wrap("bob", "b1", "b2")
	e.recv("alice", "b2")
}

// alice holds b3 (waiting for b1, b2) and b2 (waiting for b1).
func pstSetupCascade(e *pstEnv) {
	e.ensure()
	e.wrap("bob", "b1", "b2", "b3")
	e.recv("alice", "b3", "b2")
}

// alice sent a1, a2; bob missed a1 and, once T_req passed, asks for it in b1.
func pstSetupRepairRequest(e *pstEnv) {
	e.wrap("alice", "a1", "a2")
	e.recv("bob", "a2")
	e.clk.Advance(11 * time.Second)
	e.wrap("bob", "b1")
	if len(pstDecode(e.t, e.wire["b1"]).GetRepairRequest()) == 0 {
		e.t.Fatal("setup: b1 carries no repair request")
	}
}

// alice sent a1..a3; bob saw them all and sends b1 (causal history [a2 a3], a1 only in
// his bloom filter).
func pstSetupBloomAck(e *pstEnv) {
	e.wrap("alice", "a1", "a2", "a3")
	e.recv("bob", "a1", "a2", "a3")
	e.clk.Advance(time.Second)
	e.wrap("bob", "b1")
}

func pstCases() []pstCase {
	return []pstCase{
		{
			name: "EnsureChannel/bootstrap",
			setup: func(e *pstEnv) {
				e.wrap("bob", "b1", "b2")
				e.previous(e.cfg, func(m *Manager) {
					e.wrapOn(m, "a1")
					e.wrapOn(m, "a2")
					e.recvOn(m, "b2")
				})
			},
			act:   func(e *pstEnv) (any, error) { return nil, e.m.EnsureChannel(e.ctx, pstCh) },
			id:    "a1",
			want:  []string{store.OpLoadAllForChannel},
			loads: 1,
		},
		{
			name: "EnsureChannel/bootstrap trimming an over-long log",
			cfg:  func(c *Config) { c.MaxMessageHistory = 3 },
			setup: func(e *pstEnv) {
				big := e.cfg
				big.MaxMessageHistory = 10
				e.previous(big, func(m *Manager) {
					for i := 1; i <= 5; i++ {
						e.wrapOn(m, fmt.Sprintf("a%d", i))
					}
				})
			},
			act:   func(e *pstEnv) (any, error) { return nil, e.m.EnsureChannel(e.ctx, pstCh) },
			id:    "a5",
			want:  []string{store.OpLoadAllForChannel, store.OpRemoveLogEntry},
			loads: 1,
		},
		{
			name:  "WrapOutgoingMessage/first touch",
			setup: func(e *pstEnv) { e.previous(e.cfg, func(m *Manager) { e.wrapOn(m, "a1") }) },
			act:   pstWrapAct("a2"),
			id:    "a2",
			want: []string{store.OpLoadAllForChannel, store.OpSaveLamport, store.OpSetRetrievalHint,
				store.OpSaveOutgoing, store.OpAppendLogEntry},
			loads:    1,
			installs: true,
		},
		{
			name:  "WrapOutgoingMessage",
			setup: func(e *pstEnv) { e.wrap("alice", "a1") },
			act:   pstWrapAct("a2"),
			id:    "a2",
			want:  []string{store.OpSaveLamport, store.OpSetRetrievalHint, store.OpSaveOutgoing, store.OpAppendLogEntry},
		},
		{
			// The request is attached for the last permitted time, so it is dropped.
			name: "WrapOutgoingMessage with last repair requests and log eviction",
			cfg:  func(c *Config) { c.MaxMessageHistory = 4; c.MaxRepairAttempts = 1; c.RepairRetryMaxInterval = 0 },
			setup: func(e *pstEnv) {
				e.wrap("alice", "a1")
				e.wrap("bob", "b1", "b2", "b3")
				e.recv("alice", "b3", "b2") // waiting for b1 (and b2 for b1): requests for b1, b2 then b2 cancelled
				e.wrap("alice", "a2", "a3", "a4")
				e.clk.Advance(11 * time.Second)
			},
			act: pstWrapAct("a5"),
			id:  "a5",
			want: []string{store.OpSaveLamport, store.OpRemoveOutgoingRepair, store.OpSetRetrievalHint,
				store.OpSaveOutgoing, store.OpAppendLogEntry, store.OpRemoveLogEntry},
		},
		{
			// The attached request is re-armed with a fresh T_req.
			name: "BuildSyncMessage with repair requests",
			setup: func(e *pstEnv) {
				pstSetupWaiting(e)
				e.clk.Advance(11 * time.Second)
			},
			act:  pstSyncAct,
			id:   "b2",
			want: []string{store.OpSaveLamport, store.OpSaveOutgoingRepair, store.OpSetRetrievalHint},
		},
		{
			name: "WrapOutgoingMessage with repair requests re-armed",
			setup: func(e *pstEnv) {
				pstSetupWaiting(e)
				e.clk.Advance(11 * time.Second)
			},
			act:  pstWrapAct("a2"),
			id:   "a2",
			want: []string{store.OpSaveLamport, store.OpSaveOutgoingRepair, store.OpSaveOutgoing, store.OpAppendLogEntry},
		},
		{
			name: "UnwrapReceivedMessage/first touch",
			setup: func(e *pstEnv) {
				e.previous(e.cfg, func(m *Manager) { e.wrapOn(m, "a1") })
				e.clk.Advance(time.Second)
				e.wrap("bob", "b1")
			},
			act:      pstRecvAct("b1"),
			id:       "b1",
			want:     []string{store.OpLoadAllForChannel, store.OpSaveLamport, store.OpAppendLogEntry},
			loads:    1,
			installs: true,
		},
		{
			name: "UnwrapReceivedMessage/delivered with retrieval hint",
			setup: func(e *pstEnv) {
				e.wrap("alice", "a1")
				e.clk.Advance(time.Second)
				e.wrap("bob", "b1")
			},
			act: func(e *pstEnv) (any, error) {
				return pstR(e.m.UnwrapReceivedMessageWithHint(e.ctx, e.wire["b1"], []byte("transport-hash-b1")))
			},
			id:   "b1",
			want: []string{store.OpSaveLamport, store.OpSetRetrievalHint, store.OpAppendLogEntry},
		},
		{
			name: "UnwrapReceivedMessage/buffered with missing deps",
			setup: func(e *pstEnv) {
				e.ensure()
				e.wrap("bob", "b1", "b2")
			},
			act:  pstRecvAct("b2"),
			id:   "b2",
			want: []string{store.OpSaveIncoming, store.OpSaveOutgoingRepair},
		},
		{
			name: "UnwrapReceivedMessage/buffered behind a buffered message",
			setup: func(e *pstEnv) {
				e.ensure()
				e.wrap("bob", "b1", "b2", "b3")
				e.recv("alice", "b3")
			},
			act:  pstRecvAct("b2"),
			id:   "b2",
			want: []string{store.OpRemoveOutgoingRepair, store.OpSaveIncoming},
		},
		{
			name:  "UnwrapReceivedMessage/cascade delivery",
			setup: pstSetupCascade,
			act:   pstRecvAct("b1"),
			id:    "b1",
			want: []string{store.OpSaveLamport, store.OpRemoveOutgoingRepair, store.OpAppendLogEntry,
				store.OpRemoveIncoming, store.OpSaveIncoming},
		},
		{
			name: "UnwrapReceivedMessage/acknowledgement via causal history",
			setup: func(e *pstEnv) {
				e.wrap("alice", "a1")
				e.recv("bob", "a1")
				e.clk.Advance(time.Second)
				e.wrap("bob", "b1")
			},
			act:  pstRecvAct("b1"),
			id:   "b1",
			want: []string{store.OpSaveLamport, store.OpRemoveOutgoing, store.OpAppendLogEntry},
		},
		{
			name:  "UnwrapReceivedMessage/possible acknowledgement via bloom filter",
			setup: pstSetupBloomAck,
			act:   pstRecvAct("b1"),
			id:    "b1",
			want:  []string{store.OpSaveLamport, store.OpSaveOutgoing, store.OpRemoveOutgoing, store.OpAppendLogEntry},
		},
		{
			name: "UnwrapReceivedMessage/possible acknowledgement promoted at the threshold",
			setup: func(e *pstEnv) {
				pstSetupBloomAck(e)
				e.recv("alice", "b1")
				e.recv("carol", "a1", "a2", "a3")
				e.wrap("carol", "c1")
			},
			act:  pstRecvAct("c1"),
			id:   "c1",
			want: []string{store.OpRemoveOutgoing, store.OpAppendLogEntry},
		},
		{
			name:  "UnwrapReceivedMessage/incoming repair request",
			setup: pstSetupRepairRequest,
			act:   pstRecvAct("b1"),
			id:    "b1",
			want:  []string{store.OpSaveIncomingRepair, store.OpAppendLogEntry},
		},
		{
			name: "UnwrapReceivedMessage/repair request postpones our own request",
			setup: func(e *pstEnv) {
				e.ensure()
				e.wrap("bob", "b1", "b2")
				e.recv("alice", "b2")
				e.recv("carol", "b2")
				e.clk.Advance(11 * time.Second)
				e.wrap("carol", "c1")
			},
			act:  pstRecvAct("c1"),
			id:   "c1",
			want: []string{store.OpSaveOutgoingRepair, store.OpAppendLogEntry},
		},
		{
			name: "UnwrapReceivedMessage/arrival of a requested message",
			setup: func(e *pstEnv) {
				e.ensure()
				e.wrap("bob", "b1", "b2")
				e.recv("alice", "b2")
			},
			act:  pstRecvAct("b1"),
			id:   "b1",
			want: []string{store.OpRemoveOutgoingRepair, store.OpRemoveIncoming, store.OpAppendLogEntry},
		},
		{
			name: "UnwrapReceivedMessage/duplicate cancels a pending repair response",
			setup: func(e *pstEnv) {
				pstSetupRepairRequest(e)
				e.recv("alice", "b1")
			},
			act:  pstRecvAct("a1"),
			id:   "a1",
			want: []string{store.OpRemoveIncomingRepair},
		},
		{
			name: "UnwrapReceivedMessage/sync message with acknowledgements and gaps",
			setup: func(e *pstEnv) {
				e.wrap("alice", "a1")
				e.wrap("bob", "b1")
				e.recv("bob", "a1")
				e.sync("bob", "bsync")
			},
			act:  pstRecvAct("bsync"),
			id:   "b1",
			want: []string{store.OpRemoveOutgoing, store.OpSaveOutgoingRepair},
		},
		{
			name:  "MarkDependenciesMet with cascade",
			setup: pstSetupCascade,
			act:   func(e *pstEnv) (any, error) { return nil, e.m.MarkDependenciesMet(e.ctx, pstCh, []string{"b1"}) },
			id:    "b1",
			want: []string{store.OpSaveLamport, store.OpRemoveOutgoingRepair, store.OpAppendLogEntry,
				store.OpRemoveIncoming, store.OpSaveIncoming},
		},
		{
			name: "MarkDependenciesMet of a buffered message",
			setup: func(e *pstEnv) {
				pstSetupRepairRequest(e)
				e.recv("alice", "b1") // pending response for a1
				e.wrap("bob", "b2", "b3")
				e.recv("alice", "b3") // waits for b2
			},
			act: func(e *pstEnv) (any, error) {
				return nil, e.m.MarkDependenciesMet(e.ctx, pstCh, []string{"a1", "b3"})
			},
			id:   "b3",
			want: []string{store.OpSaveLamport, store.OpRemoveIncomingRepair, store.OpRemoveIncoming, store.OpAppendLogEntry},
		},
		{
			name:  "RemoveChannel",
			setup: pstSetupWaiting,
			act:   func(e *pstEnv) (any, error) { return nil, e.m.RemoveChannel(e.ctx, pstCh) },
			id:    "a1",
			want:  []string{store.OpDropChannel},
		},
		{
			name: "RemoveChannel of a channel not loaded",
			setup: func(e *pstEnv) {
				e.wrap("bob", "b1", "b2")
				e.previous(e.cfg, func(m *Manager) { e.wrapOn(m, "a1"); e.recvOn(m, "b2") })
			},
			act:  func(e *pstEnv) (any, error) { return nil, e.m.RemoveChannel(e.ctx, pstCh) },
			id:   "a1",
			want: []string{store.OpDropChannel},
		},
		{
			name:  "Reset",
			setup: pstSetupWaiting,
			act:   func(e *pstEnv) (any, error) { return nil, e.m.Reset(e.ctx) },
			id:    "a1",
			want:  []string{store.OpDropChannel},
		},
		{
			name: "RunSweeps/resend",
			setup: func(e *pstEnv) {
				e.wrap("alice", "a1", "a2")
				e.clk.Advance(30 * time.Second)
			},
			act:   pstSweepAct,
			id:    "a1",
			want:  []string{store.OpSaveOutgoing},
			sweep: true,
		},
		{
			name: "RunSweeps/give-up",
			cfg:  func(c *Config) { c.MaxResendAttempts = 1 },
			setup: func(e *pstEnv) {
				e.wrap("alice", "a1")
				e.clk.Advance(30 * time.Second)
				e.sweep()
				e.clk.Advance(60 * time.Second)
			},
			act:   pstSweepAct,
			id:    "a1",
			want:  []string{store.OpRemoveOutgoing},
			sweep: true,
		},
		{
			name: "RunSweeps/lost-message timeout (deliver)",
			cfg:  func(c *Config) { c.IncomingTimeout = 20 * time.Second },
			setup: func(e *pstEnv) {
				pstSetupCascade(e)
				e.clk.Advance(21 * time.Second)
			},
			act:   pstSweepAct,
			id:    "b2",
			want:  []string{store.OpSaveLamport, store.OpRemoveIncoming, store.OpAppendLogEntry, store.OpSaveIncoming},
			sweep: true,
		},
		{
			name: "RunSweeps/lost-message timeout (drop)",
			cfg:  func(c *Config) { c.IncomingTimeout = 5 * time.Second; c.LostPolicy = LostDrop },
			setup: func(e *pstEnv) {
				e.ensure()
				e.wrap("bob", "b1", "b2")
				if _, err := e.m.UnwrapReceivedMessageWithHint(e.ctx, e.wire["b2"], []byte("transport-hash-b2")); err != nil {
					e.t.Fatal(err)
				}
				e.clk.Advance(6 * time.Second)
			},
			act:   pstSweepAct,
			id:    "b2",
			want:  []string{store.OpRemoveIncoming, store.OpRemoveLogEntry}, // the latter drops the hint
			sweep: true,
		},
		{
			name: "RunSweeps/repair response",
			setup: func(e *pstEnv) {
				pstSetupRepairRequest(e)
				e.recv("alice", "b1")
			},
			act:   pstSweepAct,
			id:    "a1",
			want:  []string{store.OpRemoveIncomingRepair},
			sweep: true,
		},
		{
			name: "RunSweeps/repair expiry",
			cfg:  func(c *Config) { c.RepairRetryMaxInterval = 0 }, // nim-sds: unsent requests expire
			setup: func(e *pstEnv) {
				e.ensure()
				e.wrap("bob", "b1", "b2")
				e.recv("alice", "b2")
				e.clk.Advance(21 * time.Second)
			},
			act:   pstSweepAct,
			id:    "b2",
			want:  []string{store.OpRemoveOutgoingRepair},
			sweep: true,
		},
	}
}

func (c pstCase) config() Config {
	cfg := pstConfig()
	if c.cfg != nil {
		c.cfg(&cfg)
	}
	return cfg
}

// TestPersistenceFailureMatrix injects, for every public operation, a failure of every
// persistence op its batch contains, and checks the contract: PERSISTENCE with the
// backend's message, memory, bloom and store exactly as before, no events (a sweep
// reports only PersistenceFailed), and a retry after recovery that ends exactly where a
// never-failed twin ends.
func TestPersistenceFailureMatrix(t *testing.T) {
	for _, c := range pstCases() {
		t.Run(c.name, func(t *testing.T) { pstRunCase(t, c) })
	}
}

type pstFailure struct {
	op  string
	nth int // 0: FailOp; n: FailNth(op, n)
}

func (f pstFailure) String() string {
	if f.nth == 0 {
		return "fail " + f.op
	}
	return fmt.Sprintf("fail %s #%d", f.op, f.nth)
}

func pstRunCase(t *testing.T, c pstCase) {
	cfg := c.config()

	// The twin never fails; it tells which ops the action issues and what it yields.
	twin := pstNewEnv(t, cfg)
	c.setup(twin)
	mk, ev0, b0, l0 := twin.rec.mark(), twin.ev.n(), twin.mem.Batches(), twin.mem.Loads()
	wantRes, err := c.act(twin)
	if err != nil {
		t.Fatalf("twin: %v", err)
	}
	ops, batches, loads := twin.rec.since(mk)
	wantEvents := twin.ev.from(ev0)
	wantState := twin.capture(c.id)
	if batches > 1 || twin.mem.Batches()-b0 != batches {
		t.Fatalf("the action issued %d batches (store counted %d), want at most one", batches, twin.mem.Batches()-b0)
	}
	if loads != c.loads || twin.mem.Loads()-l0 != c.loads {
		t.Fatalf("the action loaded %d times (store counted %d), want %d", loads, twin.mem.Loads()-l0, c.loads)
	}
	for _, w := range c.want {
		if !slices.Contains(ops, w) {
			t.Fatalf("the action's persistence ops %v lack %s: the setup misses the path under test", ops, w)
		}
	}
	t.Logf("ops: %v; events:%s", ops, pstFmtEvents(wantEvents))

	var failures, lasts []pstFailure
	count := map[string]int{}
	for _, op := range ops {
		count[op]++
	}
	for _, op := range ops {
		if slices.ContainsFunc(failures, func(f pstFailure) bool { return f.op == op }) {
			continue
		}
		failures = append(failures, pstFailure{op: op})
		if n := count[op]; n > 1 { // the last of several: the store must undo the earlier ones
			lasts = append(lasts, pstFailure{op: op, nth: n})
		}
	}
	failures = append(failures, lasts...)
	batchOps := slices.DeleteFunc(slices.Clone(ops), func(op string) bool { return op == store.OpLoadAllForChannel })

	for _, f := range failures {
		t.Run(f.String(), func(t *testing.T) {
			e := pstNewEnv(t, cfg)
			c.setup(e)
			before := e.capture(c.id)
			if c.installs && f.op != store.OpLoadAllForChannel {
				// The load succeeds and installs the persisted state (nothing more)
				// before the action's own batch fails.
				snap, r := pstRestarted(t, "alice", cfg, e.mem, e.clk)
				before.snap, before.snapCode = snap, sdserr.CodeOf(nil)
				before.bloom, _ = r.BloomContains(pstCh, c.id)
				before.channels = []string{pstCh}
			}
			if f.nth == 0 {
				e.mem.FailOp(f.op)
			} else {
				e.mem.FailNth(f.op, f.nth)
			}
			mk, ev0 := e.rec.mark(), e.ev.n()
			_, err := c.act(e)
			pstIsPersistence(t, err, "injected failure: "+f.op)
			var inj *store.InjectedError
			if !errors.As(err, &inj) || inj.Op != f.op {
				t.Fatalf("the backend's error is not in the chain: %v", err)
			}
			if _, n, _ := e.rec.since(mk); n > 1 {
				t.Fatalf("the failed action issued %d batches", n)
			}
			if d := pstDiff(before, e.capture(c.id)); d != "" {
				t.Fatalf("state changed by the failed action:\n%s", d)
			}
			evs := e.ev.from(ev0)
			if c.sweep {
				var pf *pb.PersistenceFailed
				if len(evs) == 1 {
					pf = evs[0].GetPersistenceFailed()
				}
				if pf == nil || pf.GetChannelId() != pstCh || pf.GetOperation() != "Sweep" ||
					!strings.Contains(pf.GetDetail(), "injected failure: "+f.op) {
					t.Fatalf("a failed sweep must fire exactly one PersistenceFailed; got:%s", pstFmtEvents(evs))
				}
			} else if len(evs) != 0 {
				t.Fatalf("the failed action fired events:%s", pstFmtEvents(evs))
			}

			e.mem.HealOp(f.op)
			mk, ev0 = e.rec.mark(), e.ev.n()
			res, err := c.act(e)
			if err != nil {
				t.Fatalf("retry after recovery: %v", err)
			}
			if !pstSameResult(wantRes, res) {
				t.Fatalf("retry result differs from the twin's:\nwant %v\ngot  %v", wantRes, res)
			}
			if evs := e.ev.from(ev0); !pstEventsEqual(wantEvents, evs) {
				t.Fatalf("retry events differ from the twin's:\nwant:%s\ngot:%s", pstFmtEvents(wantEvents), pstFmtEvents(evs))
			}
			if d := pstDiff(wantState, e.capture(c.id)); d != "" {
				t.Fatalf("state after the retry differs from the twin's:\n%s", d)
			}
			rops, n, _ := e.rec.since(mk)
			rops = slices.DeleteFunc(rops, func(op string) bool { return op == store.OpLoadAllForChannel })
			if n != batches || !slices.Equal(rops, batchOps) {
				t.Fatalf("retry issued %d batches with ops %v; the twin %d with %v", n, rops, batches, batchOps)
			}
		})
	}
}

// --- 3. one batch per operation, one load per channel -------------------------------

func TestPersistenceBatches_OneLoadOnFirstTouchOnly(t *testing.T) {
	e := pstNewEnv(t, pstConfig())
	e.wrap("bob", "b1", "b2")
	steps := []func(){
		func() { e.ensure() },
		func() { e.wrap("alice", "a1") },
		func() { e.recv("alice", "b2") },
		func() { pstMust(t, e.m.MarkDependenciesMet(e.ctx, pstCh, []string{"b1"})) },
		func() { e.sync("alice", "s1") },
		func() { e.sweep() },
		func() { e.ensure() },
	}
	for i, step := range steps {
		b0 := e.mem.Batches()
		step()
		if d := e.mem.Batches() - b0; d > 1 {
			t.Fatalf("step %d issued %d batches", i, d)
		}
		if n := e.mem.Loads(); n != 1 {
			t.Fatalf("after step %d: %d loads, want exactly one", i, n)
		}
	}
	// Every first touch loads, whichever operation it is.
	touches := []struct {
		name  string
		touch func(ch, id string) error
	}{
		{"EnsureChannel", func(ch, _ string) error { return e.m.EnsureChannel(e.ctx, ch) }},
		{"WrapOutgoingMessage", func(ch, id string) error {
			_, err := e.m.WrapOutgoingMessage(e.ctx, ch, id, []byte("x"))
			return err
		}},
		{"BuildSyncMessage", func(ch, _ string) error { _, err := e.m.BuildSyncMessage(e.ctx, ch); return err }},
		{"MarkDependenciesMet", func(ch, id string) error { return e.m.MarkDependenciesMet(e.ctx, ch, []string{id}) }},
		{"UnwrapReceivedMessage", func(ch, id string) error {
			msg := pstMsg(id, 1)
			msg.ChannelId = ch
			_, err := e.m.UnwrapReceivedMessage(e.ctx, pstEncode(t, msg))
			return err
		}},
	}
	for _, tc := range touches {
		ch := "ch-" + tc.name
		l0 := e.mem.Loads()
		pstMust(t, tc.touch(ch, "x1"))
		pstMust(t, tc.touch(ch, "x2"))
		if n := e.mem.Loads() - l0; n != 1 {
			t.Fatalf("%s twice on a new channel loaded %d times, want 1", tc.name, n)
		}
	}
}

func TestPersistenceBatches_OperationsThatChangeNothingWriteNothing(t *testing.T) {
	e := pstNewEnv(t, pstConfig())
	e.wrap("alice", "a1")
	e.wrap("bob", "b1")
	e.recv("alice", "b1")
	b0 := e.mem.Batches()
	e.recv("alice", "b1") // duplicate
	e.recv("alice", "a1") // our own message echoed back
	e.ensure()
	e.sweep() // nothing due
	pstMust(t, e.m.MarkDependenciesMet(e.ctx, pstCh, []string{"b1"}))
	eph, err := e.peers["bob"].WrapEphemeral(e.ctx, pstCh, "e1", []byte("x"))
	pstMust(t, err)
	if u, err := e.m.UnwrapReceivedMessage(e.ctx, eph); err != nil || u.Kind != KindEphemeral {
		t.Fatalf("ephemeral: %+v %v", u, err)
	}
	if _, err := e.m.WrapEphemeral(e.ctx, pstCh, "e2", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Snapshot(pstCh); err != nil {
		t.Fatal(err)
	}
	if d := e.mem.Batches() - b0; d != 0 {
		t.Fatalf("operations that change nothing persisted issued %d batches", d)
	}
	// Rejected input writes nothing either.
	if _, err := e.m.UnwrapReceivedMessage(e.ctx, []byte{0xff, 0xff}); sdserr.CodeOf(err) != sdserr.Deserialization {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := e.m.WrapOutgoingMessage(e.ctx, pstCh, "a1", []byte("again")); sdserr.CodeOf(err) != sdserr.InvalidArgument {
		t.Fatalf("reused id: %v", err)
	}
	if d := e.mem.Batches() - b0; d != 0 {
		t.Fatalf("rejected input issued %d batches", d)
	}
}

func TestPersistenceBatches_RemoveChannelOfANeverLoadedChannelIssuesOneDropChannel(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), pstConfig()
	m := pstOpen(t, "alice", cfg, mem, clk)
	if _, err := m.WrapOutgoingMessage(ctx, pstCh, "a1", pstContent("a1")); err != nil {
		t.Fatal(err)
	}
	pstMust(t, m.Close())
	mem.ResetCounters()
	m2 := pstOpen(t, "alice", cfg, mem, clk)
	pstMust(t, m2.RemoveChannel(ctx, pstCh))
	if mem.DropChannelCalls(pstCh) != 1 || mem.Batches() != 1 || mem.Loads() != 0 {
		t.Fatalf("drops %d, batches %d, loads %d; want 1, 1, 0", mem.DropChannelCalls(pstCh), mem.Batches(), mem.Loads())
	}
	if len(mem.Channels()) != 0 || len(m2.Channels()) != 0 {
		t.Fatalf("stored %v, loaded %v", mem.Channels(), m2.Channels())
	}
	// Removing it again still asks the backend once (it may hold state we never saw).
	pstMust(t, m2.RemoveChannel(ctx, pstCh))
	if mem.DropChannelCalls(pstCh) != 2 {
		t.Fatalf("drops %d, want 2", mem.DropChannelCalls(pstCh))
	}
}

func TestPersistenceBatches_ResetDropsEveryTouchedChannel(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), pstConfig()
	prev := pstOpen(t, "alice", cfg, mem, clk)
	for _, ch := range []string{"c1", "c2", "c3", "c4"} {
		if _, err := prev.WrapOutgoingMessage(ctx, ch, "a1", pstContent("a1")); err != nil {
			t.Fatal(err)
		}
	}
	pstMust(t, prev.Close())
	mem.ResetCounters()
	m := pstOpen(t, "alice", cfg, mem, clk)
	if _, err := m.WrapOutgoingMessage(ctx, "c1", "a2", pstContent("a2")); err != nil { // loaded and written
		t.Fatal(err)
	}
	pstMust(t, m.EnsureChannel(ctx, "c2")) // loaded only
	mem.FailNth(store.OpLoadAllForChannel, 1)
	pstIsPersistence(t, m.EnsureChannel(ctx, "c3"), "injected failure") // touched, never loaded
	// c4 is never touched by this manager.
	pstMust(t, m.RemoveChannel(ctx, "c5")) // dropped already: no longer ours to reset
	b0 := mem.Batches()

	// A failure part-way: channels are dropped in order; the failing one and the rest stay.
	mem.FailNth(store.OpDropChannel, 2)
	pstIsPersistence(t, m.Reset(ctx), "injected failure: DropChannel")
	if got := mem.Channels(); !slices.Equal(got, []string{"c2", "c3", "c4"}) {
		t.Fatalf("stored after the failed reset: %v", got)
	}
	if got := m.Channels(); !slices.Equal(got, []string{"c2"}) {
		t.Fatalf("loaded after the failed reset: %v", got)
	}
	pstMust(t, m.Reset(ctx))
	for ch, want := range map[string]int{"c1": 1, "c2": 2, "c3": 1, "c4": 0, "c5": 1} {
		if got := mem.DropChannelCalls(ch); got != want {
			t.Errorf("DropChannel(%s) attempted %d times, want %d", ch, got, want)
		}
	}
	if d := mem.Batches() - b0; d != 4 {
		t.Errorf("reset issued %d batches, want one per drop attempt (4)", d)
	}
	if got := mem.Channels(); !slices.Equal(got, []string{"c4"}) {
		t.Fatalf("stored after reset: %v (c4 was never touched)", got)
	}
	if len(m.Channels()) != 0 {
		t.Fatalf("loaded after reset: %v", m.Channels())
	}
	// Nothing left to reset.
	b0 = mem.Batches()
	pstMust(t, m.Reset(ctx))
	if mem.Batches() != b0 {
		t.Fatal("a second reset issued batches")
	}
}

// --- 4. restart equivalence ---------------------------------------------------------

// pstPeer is one participant of the restart-equivalence scenario, persisting into its
// own memory store.
type pstPeer struct {
	name string
	mem  *store.Memory
	ev   *pstEvents
	m    *Manager
}

// TestPersistenceRestartEquivalence runs a three-participant scenario and, after every
// step, restarts each participant from a clone of its store: the restarted manager must
// hold exactly the live state, and its bloom filter every logged and buffered id.
func TestPersistenceRestartEquivalence(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.SyncJitter = 0
	cfg.MaxMessageHistory = 8
	cfg.RepairTMin, cfg.RepairTMax = time.Second, 10*time.Second
	cfg.MaxResendAttempts = 2
	cfg.IncomingTimeout = 45 * time.Second
	clk := clock.NewManual(pstStart)
	wires := map[string][]byte{}
	peers := map[string]*pstPeer{}
	open := func(p *pstPeer) {
		p.m = pstOpen(t, p.name, cfg, p.mem, clk, WithHintProvider(pstHints()), WithHandler(p.ev))
	}
	for _, name := range []string{"alice", "bob", "carol"} {
		p := &pstPeer{name: name, mem: store.NewMemory(), ev: &pstEvents{}}
		open(p)
		peers[name] = p
	}
	wrap := func(who string, ids ...string) {
		for _, id := range ids {
			b, err := peers[who].m.WrapOutgoingMessage(ctx, pstCh, id, pstContent(id))
			if err != nil {
				t.Fatalf("%s wraps %s: %v", who, id, err)
			}
			wires[id] = b
		}
	}
	recv := func(who string, names ...string) {
		for _, n := range names {
			if _, err := peers[who].m.UnwrapReceivedMessage(ctx, wires[n]); err != nil {
				t.Fatalf("%s receives %s: %v", who, n, err)
			}
		}
	}
	syncMsg := func(who, name string) {
		b, err := peers[who].m.BuildSyncMessage(ctx, pstCh)
		if err != nil {
			t.Fatal(err)
		}
		wires[name] = b
	}
	// sweep runs who's sweeps and keeps what the events ask to rebroadcast.
	sweep := func(who string) {
		p := peers[who]
		n := p.ev.n()
		pstMust(t, p.m.RunSweeps(ctx))
		for _, ev := range p.ev.from(n) {
			if r := ev.GetRepairReady(); r != nil {
				wires[r.GetMessageId()+"@repair-"+who] = r.GetWireBytes()
			}
			if r := ev.GetResendRequested(); r != nil {
				wires[fmt.Sprintf("%s@resend%d", r.GetMessageId(), r.GetAttempt())] = r.GetWireBytes()
			}
		}
	}
	restart := func(who string) {
		p := peers[who]
		pstMust(t, p.m.Close())
		open(p)
		pstMust(t, p.m.EnsureChannel(ctx, pstCh))
	}
	adv := func(d time.Duration) { clk.Advance(d) }

	steps := []struct {
		name string
		do   func()
	}{
		{"alice wraps a1 a2", func() { wrap("alice", "a1", "a2") }},
		{"bob receives a2 only (gap: a1)", func() { recv("bob", "a2") }},
		{"carol receives a1 a2", func() { recv("carol", "a1", "a2") }},
		{"bob wraps b1", func() { wrap("bob", "b1") }},
		{"alice receives b1 (possible ack of a2)", func() { recv("alice", "b1") }},
		{"carol wraps c1", func() { wrap("carol", "c1") }},
		{"alice receives c1 (acks a1 a2)", func() { recv("alice", "c1") }},
		{"11 s pass", func() { adv(11 * time.Second) }},
		{"bob syncs (repair request for a1)", func() { syncMsg("bob", "bsync1") }},
		{"carol receives bob's sync", func() { recv("carol", "bsync1") }},
		{"alice receives bob's sync", func() { recv("alice", "bsync1") }},
		{"alice sweeps (repair response a1)", func() { sweep("alice") }},
		{"bob receives the repaired a1 (cascade a2)", func() { recv("bob", "a1@repair-alice") }},
		{"carol receives the repaired a1 (cancels her response)", func() { recv("carol", "a1@repair-alice") }},
		{"bob receives c1", func() { recv("bob", "c1") }},
		{"bob wraps b2 b3", func() { wrap("bob", "b2", "b3") }},
		{"carol receives b3 (gap: b2)", func() { recv("carol", "b3") }},
		{"alice receives b3 (gap: b2)", func() { recv("alice", "b3") }},
		{"carol marks b2 as met", func() { pstMust(t, peers["carol"].m.MarkDependenciesMet(ctx, pstCh, []string{"b2"})) }},
		{"alice receives b2 (cascade b3)", func() { recv("alice", "b2") }},
		{"alice restarts for real", func() { restart("alice") }},
		{"20 s pass", func() { adv(20 * time.Second) }},
		{"alice sweeps", func() { sweep("alice") }},
		{"bob sweeps (resend b1)", func() { sweep("bob") }},
		{"carol sweeps (resend c1)", func() { sweep("carol") }},
		{"alice syncs", func() { syncMsg("alice", "async1") }},
		{"bob receives alice's sync (acks)", func() { recv("bob", "async1") }},
		{"carol receives alice's sync", func() { recv("carol", "async1") }},
		{"carol wraps c2", func() { wrap("carol", "c2") }},
		{"bob receives c2 and the resent b1 echo", func() { recv("bob", "c2", "b1@resend1") }},
		{"bob wraps b4 b5", func() { wrap("bob", "b4", "b5") }},
		{"carol receives b5 (gap: b4)", func() { recv("carol", "b5") }},
		{"alice receives b5 then b4", func() { recv("alice", "b5", "b4") }},
		{"alice wraps a3 a4 a5 (eviction)", func() { wrap("alice", "a3", "a4", "a5") }},
		{"bob restarts for real", func() { restart("bob") }},
		{"50 s pass", func() { adv(50 * time.Second) }},
		{"carol sweeps (b5 lost, repair expired)", func() { sweep("carol") }},
		{"bob sweeps", func() { sweep("bob") }},
		{"alice sweeps", func() { sweep("alice") }},
		{"carol receives b4 late", func() { recv("carol", "b4") }},
		{"200 s pass", func() { adv(200 * time.Second) }},
		{"everyone sweeps (second resends)", func() { sweep("alice"); sweep("bob"); sweep("carol") }},
		{"150 s pass", func() { adv(150 * time.Second) }},
		{"everyone sweeps (give-ups)", func() { sweep("alice"); sweep("bob"); sweep("carol") }},
		{"carol syncs, alice and bob receive it", func() { syncMsg("carol", "csync1"); recv("alice", "csync1"); recv("bob", "csync1") }},
	}
	for i, st := range steps {
		st.do()
		for _, name := range []string{"alice", "bob", "carol"} {
			p := peers[name]
			pstCheckRestart(t, fmt.Sprintf("step %d (%s): %s", i, st.name, name), p.m, p.mem, cfg, clk)
		}
	}

	// The scenario must have exercised every write op and every kind of event.
	for _, op := range store.AllOps {
		if op == store.OpDropChannel || op == store.OpLoadAllForChannel {
			continue
		}
		n := 0
		for _, p := range peers {
			n += p.mem.Calls(op)
		}
		if n == 0 {
			t.Errorf("the scenario never issued %s", op)
		}
	}
	kinds := map[string]bool{}
	for _, p := range peers {
		for _, ev := range p.ev.all() {
			kinds[fmt.Sprintf("%T", ev.GetEvent())] = true
		}
	}
	for _, k := range []string{"MessageReady", "MessageAcknowledged", "MessagePossiblyAcknowledged", "MessageUnacknowledged",
		"ResendRequested", "MissingDependencies", "MessageLost", "SyncDue", "RepairReady"} {
		if !kinds["*sdskitv1.Event_"+k] {
			t.Errorf("the scenario never fired %s (fired: %v)", k, kinds)
		}
	}
}

// pstCheckRestart restarts live's participant from a clone of mem and checks that the
// restarted manager holds exactly live's state of pstCh, that its bloom filter holds
// every logged and buffered id, and that the restart wrote nothing.
func pstCheckRestart(t testing.TB, label string, live *Manager, mem *store.Memory, cfg Config, clk clock.Clock) {
	t.Helper()
	pstCheckRestartOf(t, label, pstCh, live, mem, cfg, clk)
}

// pstCheckRestartOf is pstCheckRestart for channel ch.
func pstCheckRestartOf(t testing.TB, label, ch string, live *Manager, mem *store.Memory, cfg Config, clk clock.Clock) {
	t.Helper()
	ctx := context.Background()
	want, err := live.Snapshot(ch)
	if sdserr.CodeOf(err) == sdserr.NotFound {
		if s := mem.Snapshot(ch); !proto.Equal(s, &pb.ChannelSnapshot{ChannelId: ch}) {
			t.Fatalf("%s: the channel is not loaded but has stored state:\n%s", label, pstFmt(s))
		}
		return
	}
	pstMust(t, err)
	clone := mem.Clone()
	r := pstOpen(t, live.ParticipantID(), cfg, clone, clk)
	defer func() { _ = r.Close() }()
	pstMust(t, r.EnsureChannel(ctx, ch))
	got, err := r.Snapshot(ch)
	pstMust(t, err)
	if !proto.Equal(want, got) {
		t.Fatalf("%s: restarted from the store, the state differs from the live manager's:\n--- live\n%s--- restarted\n%s",
			label, pstFmt(want), pstFmt(got))
	}
	for _, id := range append(pstLogIDs(got), pstIncomingIDs(got)...) {
		if ok, _ := r.BloomContains(ch, id); !ok {
			t.Fatalf("%s: the restarted bloom filter lacks %s", label, id)
		}
	}
	if clone.Batches() != 0 {
		t.Fatalf("%s: the restart wrote to the store", label)
	}
}

// TestPersistenceRestartEquivalenceRandomized drives three participants through seeded
// random steps — sends, deliveries in any order with duplicates and loss, syncs, marks,
// sweeps on an advancing clock, real restarts and channel removals — under several
// configurations, checking restart equivalence after every step.
func TestPersistenceRestartEquivalenceRandomized(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			pstRandomRun(t, seed, 200)
		})
	}
}

func pstRandomRun(t *testing.T, seed uint64, steps int) {
	ctx := context.Background()
	rng := mrand.New(mrand.NewPCG(seed, 42))
	cfg := DefaultConfig()
	cfg.SyncJitter = 0.2
	cfg.BloomCapacity = 64 // small and cheap, and it rolls
	cfg.MaxMessageHistory = 6 + int(seed%3)
	cfg.SyncCausalHistory = 4
	cfg.RepairTMin, cfg.RepairTMax = time.Second, 10*time.Second
	cfg.MaxResendAttempts = 2
	cfg.MaxRepairAttempts = 2
	cfg.NumResponseGroups = 1 + int(seed%2)
	cfg.IncomingTimeout = 40 * time.Second
	if seed%2 == 0 {
		cfg.LostPolicy = LostDrop
	}
	clk := clock.NewManual(pstStart)
	names := []string{"alice", "bob", "carol"}
	peers := map[string]*pstPeer{}
	open := func(p *pstPeer) {
		p.m = pstOpen(t, p.name, cfg, p.mem, clk, WithHintProvider(pstHints()), WithHandler(p.ev), WithSeed(seed))
	}
	for _, n := range names {
		p := &pstPeer{name: n, mem: store.NewMemory(), ev: &pstEvents{}}
		open(p)
		peers[n] = p
	}
	var pool [][]byte // everything ever broadcast, rebroadcasts included
	next := 0
	pick := func() *pstPeer { return peers[names[rng.IntN(len(names))]] }
	for i := range steps {
		p := pick()
		var what string
		switch r := rng.IntN(100); {
		case r < 25:
			next++
			id := fmt.Sprintf("%s-%d", p.name, next)
			what = "wrap " + id
			b, err := p.m.WrapOutgoingMessage(ctx, pstCh, id, pstContent(id))
			pstMust(t, err)
			pool = append(pool, b)
		case r < 60 && len(pool) > 0:
			k := len(pool) - 1 - rng.IntN(min(len(pool), 12)) // mostly recent, sometimes late
			what = fmt.Sprintf("%s receives pool[%d]", p.name, k)
			var hint []byte
			if rng.IntN(3) == 0 {
				hint = []byte(fmt.Sprintf("transport-%d", k))
			}
			_, err := p.m.UnwrapReceivedMessageWithHint(ctx, pool[k], hint)
			pstMust(t, err)
		case r < 68:
			what = p.name + " syncs"
			b, err := p.m.BuildSyncMessage(ctx, pstCh)
			pstMust(t, err)
			pool = append(pool, b)
		case r < 73:
			var ids []string
			if s, err := p.m.Snapshot(pstCh); err == nil {
				for _, im := range s.GetIncoming() {
					ids = append(ids, im.GetMissingDependencies()...)
				}
			}
			if len(ids) == 0 {
				ids = []string{fmt.Sprintf("ghost-%d", i)}
			}
			ids = ids[:1]
			what = fmt.Sprintf("%s marks %v met", p.name, ids)
			pstMust(t, p.m.MarkDependenciesMet(ctx, pstCh, ids))
		case r < 93:
			d := time.Duration(rng.IntN(20_000)) * time.Millisecond
			clk.Advance(d)
			what = fmt.Sprintf("%v pass, %s sweeps", d, p.name)
			n := p.ev.n()
			pstMust(t, p.m.RunSweeps(ctx))
			for _, ev := range p.ev.from(n) {
				if r := ev.GetRepairReady(); r != nil {
					pool = append(pool, r.GetWireBytes())
				}
				if r := ev.GetResendRequested(); r != nil {
					pool = append(pool, r.GetWireBytes())
				}
			}
		case r < 98:
			what = p.name + " restarts"
			pstMust(t, p.m.Close())
			open(p)
			pstMust(t, p.m.EnsureChannel(ctx, pstCh))
		default:
			what = p.name + " removes the channel"
			pstMust(t, p.m.RemoveChannel(ctx, pstCh))
		}
		for _, n := range names {
			pstCheckRestart(t, fmt.Sprintf("step %d (%s): %s", i, what, n), peers[n].m, peers[n].mem, cfg, clk)
		}
	}
	calls := map[string]int{}
	kinds := map[string]int{}
	for _, p := range peers {
		for _, op := range store.AllOps {
			calls[op] += p.mem.Calls(op)
		}
		for _, ev := range p.ev.all() {
			kinds[strings.TrimPrefix(fmt.Sprintf("%T", ev.GetEvent()), "*sdskitv1.Event_")]++
		}
	}
	t.Logf("ops %v\nevents %v", calls, kinds)
}

// pstFlakyBackend fails every n-th batch, whichever goroutine or channel it comes from.
type pstFlakyBackend struct {
	*store.Memory
	n     int64
	count atomic.Int64
}

func (b *pstFlakyBackend) Apply(ctx context.Context, batch *pb.PersistenceBatch) error {
	if b.count.Add(1)%b.n == 0 {
		return errors.New("flaky disk")
	}
	return b.Memory.Apply(ctx, batch)
}

// TestPersistenceConcurrentFailuresNeverHalfApply runs sends, out-of-order receives and
// sweeps on several channels in parallel against a backend failing every third batch.
// Each failed call is retried until it succeeds. Whatever the interleaving: no
// half-applied state (a restart from the store equals the live state), no duplicate and
// no lost delivery, every send once in the log and the outgoing buffer.
func TestPersistenceConcurrentFailuresNeverHalfApply(t *testing.T) {
	ctx := context.Background()
	cfg := pstConfig()
	clk := clock.NewManual(pstStart)
	mem := store.NewMemory()
	var evs pstEvents
	m := pstOpen(t, "alice", cfg, &pstFlakyBackend{Memory: mem, n: 3}, clk, WithHandler(&evs), WithHintProvider(pstHints()))
	channels := []string{"c0", "c1", "c2", "c3"}
	const perChannel = 25
	// Bob's messages, each depending on the previous ones, delivered in a shuffled order.
	bob := pstOpen(t, "bob", cfg, store.Noop{}, clk)
	incoming := map[string][][]byte{}
	rng := mrand.New(mrand.NewPCG(1, 2))
	for _, ch := range channels {
		for i := range perChannel {
			b, err := bob.WrapOutgoingMessage(ctx, ch, fmt.Sprintf("%s-b%d", ch, i), []byte("x"))
			pstMust(t, err)
			incoming[ch] = append(incoming[ch], b)
		}
		rng.Shuffle(perChannel, func(i, j int) { incoming[ch][i], incoming[ch][j] = incoming[ch][j], incoming[ch][i] })
	}
	retry := func(f func() error) error {
		for range 100 {
			err := f()
			if err == nil || sdserr.CodeOf(err) != sdserr.Persistence {
				return err
			}
		}
		return errors.New("still failing after 100 attempts")
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(channels)+1)
	for _, ch := range channels {
		wg.Go(func() {
			for i := range perChannel {
				id := fmt.Sprintf("%s-a%d", ch, i)
				if err := retry(func() error { _, err := m.WrapOutgoingMessage(ctx, ch, id, []byte("y")); return err }); err != nil {
					errs <- fmt.Errorf("wrap %s: %w", id, err)
					return
				}
				b := incoming[ch][i]
				if err := retry(func() error { _, err := m.UnwrapReceivedMessage(ctx, b); return err }); err != nil {
					errs <- fmt.Errorf("unwrap on %s: %w", ch, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 60 {
			clk.Advance(time.Second) // resends become due half-way
			if err := m.RunSweeps(ctx); err != nil && sdserr.CodeOf(err) != sdserr.Persistence {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ready := map[string]int{}
	for _, ev := range evs.all() {
		if r := ev.GetMessageReady(); r != nil {
			ready[r.GetMessageId()]++
		}
	}
	for _, ch := range channels {
		pstCheckRestartOf(t, ch, ch, m, mem, cfg, clk)
		s, err := m.Snapshot(ch)
		pstMust(t, err)
		if len(s.GetIncoming()) != 0 || len(s.GetLog()) != 2*perChannel || len(s.GetOutgoing()) != perChannel {
			t.Fatalf("%s: log %d, outgoing %d, incoming %d; want %d, %d, 0", ch, len(s.GetLog()), len(s.GetOutgoing()), len(s.GetIncoming()), 2*perChannel, perChannel)
		}
		for i := range perChannel {
			if id := fmt.Sprintf("%s-b%d", ch, i); ready[id] != 1 {
				t.Fatalf("%s delivered %d times", id, ready[id])
			}
			if id := fmt.Sprintf("%s-a%d", ch, i); pstOutgoingIDs(s)[i] != id {
				t.Fatalf("%s: outgoing %v", ch, pstOutgoingIDs(s))
			}
		}
	}
}

// --- 5. bootstrap validation and broken backends -------------------------------------

func TestPersistenceBootstrap_LoadFailureInstallsNothingAndALaterCallRetries(t *testing.T) {
	e := pstNewEnv(t, pstConfig())
	e.wrap("bob", "b1")
	e.previous(e.cfg, func(m *Manager) { e.wrapOn(m, "a1") })
	stored, b0 := e.mem.Snapshot(pstCh), e.mem.Batches()
	e.mem.FailOp(store.OpLoadAllForChannel)
	firstTouches := []struct {
		name  string
		touch func() error
	}{
		{"EnsureChannel", func() error { return e.m.EnsureChannel(e.ctx, pstCh) }},
		{"WrapOutgoingMessage", func() error {
			_, err := e.m.WrapOutgoingMessage(e.ctx, pstCh, "a2", pstContent("a2"))
			return err
		}},
		{"BuildSyncMessage", func() error { _, err := e.m.BuildSyncMessage(e.ctx, pstCh); return err }},
		{"UnwrapReceivedMessage", func() error { _, err := e.m.UnwrapReceivedMessage(e.ctx, e.wire["b1"]); return err }},
		{"MarkDependenciesMet", func() error { return e.m.MarkDependenciesMet(e.ctx, pstCh, []string{"x"}) }},
	}
	for _, ft := range firstTouches {
		name, touch := ft.name, ft.touch
		l0 := e.mem.Loads()
		pstIsPersistence(t, touch(), "injected failure: LoadAllForChannel")
		if e.mem.Loads() != l0+1 {
			t.Fatalf("%s: loads %d, want one more than %d (every first touch retries the load)", name, e.mem.Loads(), l0)
		}
		if len(e.m.Channels()) != 0 {
			t.Fatalf("%s: a channel was installed: %v", name, e.m.Channels())
		}
		if _, err := e.m.Snapshot(pstCh); sdserr.CodeOf(err) != sdserr.NotFound {
			t.Fatalf("%s: snapshot after a failed load: %v", name, err)
		}
		if e.ev.n() != 0 {
			t.Fatalf("%s: events fired:%s", name, pstFmtEvents(e.ev.all()))
		}
	}
	if !proto.Equal(e.mem.Snapshot(pstCh), stored) || e.mem.Batches() != b0 {
		t.Fatal("a failed bootstrap wrote to the store")
	}
	// The sweep does not touch channels that are not loaded.
	pstMust(t, e.m.RunSweeps(e.ctx))
	e.mem.HealOp(store.OpLoadAllForChannel)
	if _, err := e.m.WrapOutgoingMessage(e.ctx, pstCh, "a2", pstContent("a2")); err != nil {
		t.Fatal(err)
	}
	if got := pstOutgoingIDs(pstSnap(t, e.m)); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Fatalf("outgoing = %v", got)
	}
}

// pstReversingBackend hands out the log newest-first, against the contract.
type pstReversingBackend struct{ *store.Memory }

func (b pstReversingBackend) Load(ctx context.Context, ch string) (*pb.ChannelSnapshot, error) {
	s, err := b.Memory.Load(ctx, ch)
	if err == nil {
		slices.Reverse(s.Log)
	}
	return s, err
}

// pstFuncBackend is a Backend whose Load result can be rewritten.
type pstFuncBackend struct {
	*store.Memory
	rewrite func(*pb.ChannelSnapshot)
}

func (b pstFuncBackend) Load(ctx context.Context, ch string) (*pb.ChannelSnapshot, error) {
	s, err := b.Memory.Load(ctx, ch)
	if err == nil {
		b.rewrite(s)
	}
	return s, err
}

func TestPersistenceBootstrap_RejectsInvalidSnapshots(t *testing.T) {
	ctx := context.Background()
	cfg := pstConfig()
	clk := clock.NewManual(pstStart)
	mem := store.NewMemory()
	prev := pstOpen(t, "alice", cfg, mem, clk)
	for _, id := range []string{"a1", "a2", "a3"} {
		if _, err := prev.WrapOutgoingMessage(ctx, pstCh, id, pstContent(id)); err != nil {
			t.Fatal(err)
		}
	}
	pstMust(t, prev.Close())

	cases := []struct {
		name    string
		backend store.Backend
		want    string
	}{
		{"log not oldest-first", pstReversingBackend{mem}, "oldest-first"},
		{"repeated outgoing id", pstFuncBackend{mem, func(s *pb.ChannelSnapshot) { s.Outgoing = append(s.Outgoing, s.Outgoing[0]) }}, "outgoing entry 3"},
		{"log entry without id", pstFuncBackend{mem, func(s *pb.ChannelSnapshot) { s.Log[1].MessageId = "" }}, "no message id"},
		{"another channel's snapshot", pstFuncBackend{mem, func(s *pb.ChannelSnapshot) { s.ChannelId = "other" }}, `"other"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := pstOpen(t, "alice", cfg, c.backend, clk)
			err := m.EnsureChannel(ctx, pstCh)
			pstIsPersistence(t, err, c.want)
			if len(m.Channels()) != 0 {
				t.Fatalf("installed %v", m.Channels())
			}
			_, err = m.WrapOutgoingMessage(ctx, pstCh, "a4", pstContent("a4"))
			pstIsPersistence(t, err, c.want)
		})
	}
	if got := pstLogIDs(mem.Snapshot(pstCh)); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
		t.Fatalf("store changed: log %v", got)
	}
}

func TestPersistenceBootstrap_OverLongLogIsTrimmedAndTheTrimPersisted(t *testing.T) {
	ctx := context.Background()
	cfg := pstConfig()
	clk := clock.NewManual(pstStart)
	mem := store.NewMemory()
	prev := pstOpen(t, "alice", cfg, mem, clk)
	for i := 1; i <= 6; i++ {
		id := fmt.Sprintf("a%d", i)
		if _, err := prev.WrapOutgoingMessage(ctx, pstCh, id, pstContent(id)); err != nil {
			t.Fatal(err)
		}
	}
	pstMust(t, prev.Close())
	mem.ResetCounters()

	small := cfg
	small.MaxMessageHistory = 4
	m := pstOpen(t, "alice", small, mem, clk)
	pstMust(t, m.EnsureChannel(ctx, pstCh))
	want := []string{"a3", "a4", "a5", "a6"}
	if got := pstLogIDs(pstSnap(t, m)); !slices.Equal(got, want) {
		t.Fatalf("log = %v, want %v", got, want)
	}
	if got := pstLogIDs(mem.Snapshot(pstCh)); !slices.Equal(got, want) {
		t.Fatalf("stored log = %v, want %v", got, want)
	}
	if mem.Calls(store.OpRemoveLogEntry) != 2 || mem.Batches() != 1 || mem.Loads() != 1 {
		t.Fatalf("RemoveLogEntry %d, batches %d, loads %d; want 2, 1, 1", mem.Calls(store.OpRemoveLogEntry), mem.Batches(), mem.Loads())
	}
	for _, id := range want {
		if ok, _ := m.BloomContains(pstCh, id); !ok {
			t.Fatalf("bloom lacks %s", id)
		}
	}
	// The outgoing buffer is not the log: trimmed messages are still awaiting acks.
	if got := pstOutgoingIDs(pstSnap(t, m)); len(got) != 6 {
		t.Fatalf("outgoing = %v", got)
	}
	// A restart with the same cap finds nothing to trim.
	r := pstOpen(t, "alice", small, mem, clk)
	pstMust(t, r.EnsureChannel(ctx, pstCh))
	if mem.Batches() != 1 || !proto.Equal(pstSnap(t, r), pstSnap(t, m)) {
		t.Fatal("second bootstrap differs or wrote again")
	}
}

// pstPanicBackend panics in the chosen method, then behaves.
type pstPanicBackend struct {
	*store.Memory
	inApply, inLoad bool
}

func (b *pstPanicBackend) Apply(ctx context.Context, batch *pb.PersistenceBatch) error {
	if b.inApply {
		panic("apply exploded")
	}
	return b.Memory.Apply(ctx, batch)
}

func (b *pstPanicBackend) Load(ctx context.Context, ch string) (*pb.ChannelSnapshot, error) {
	if b.inLoad {
		panic(errors.New("load exploded"))
	}
	return b.Memory.Load(ctx, ch)
}

func TestPersistenceBootstrap_PanickingBackendIsAPersistenceErrorNotACrash(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewManual(pstStart)
	b := &pstPanicBackend{Memory: store.NewMemory(), inLoad: true}
	var evs pstEvents
	m := pstOpen(t, "alice", pstConfig(), b, clk, WithHandler(&evs))
	pstIsPersistence(t, m.EnsureChannel(ctx, pstCh), "load exploded")
	if len(m.Channels()) != 0 {
		t.Fatal("installed after a panicking load")
	}
	b.inLoad = false
	if _, err := m.WrapOutgoingMessage(ctx, pstCh, "a1", pstContent("a1")); err != nil {
		t.Fatal(err)
	}
	before, stored := pstSnap(t, m), b.Snapshot(pstCh)
	n := evs.n()
	b.inApply = true
	_, err := m.WrapOutgoingMessage(ctx, pstCh, "a2", pstContent("a2"))
	pstIsPersistence(t, err, "apply exploded")
	pstIsPersistence(t, m.MarkDependenciesMet(ctx, pstCh, []string{"x"}), "apply exploded")
	pstIsPersistence(t, m.RemoveChannel(ctx, pstCh), "apply exploded")
	clk.Advance(time.Minute)
	pstIsPersistence(t, m.RunSweeps(ctx), "apply exploded")
	if !proto.Equal(pstSnap(t, m), before) || !proto.Equal(b.Snapshot(pstCh), stored) {
		t.Fatal("state changed by operations whose backend panicked")
	}
	if evs := evs.from(n); len(evs) != 1 || evs[0].GetPersistenceFailed() == nil {
		t.Fatalf("events:%s", pstFmtEvents(evs))
	}
	b.inApply = false
	if _, err := m.WrapOutgoingMessage(ctx, pstCh, "a2", pstContent("a2")); err != nil {
		t.Fatal(err)
	}
}

func TestPersistenceBootstrap_DeadBackendFailsEveryOperationAndKeepsState(t *testing.T) {
	cfg := pstConfig()
	cfg.IncomingTimeout = time.Minute
	e := pstNewEnv(t, cfg)
	pstSetupRepairRequest(e) // alice: a1 a2 outgoing; bob's b1 asks for a1
	e.recv("alice", "b1")    // a response for a1 is pending
	e.wrap("bob", "b2", "b3")
	e.recv("alice", "b3") // waits for b2
	e.wrap("carol", "c1")
	e.sync("carol", "csync")
	dead := errors.New("disk on fire")
	e.mem.FailAll(dead)
	before := e.capture("b1")
	n := e.ev.n()
	ops := []struct {
		name string
		op   func() error
	}{
		{"WrapOutgoingMessage", func() error { _, err := e.m.WrapOutgoingMessage(e.ctx, pstCh, "a9", []byte("x")); return err }},
		{"BuildSyncMessage", func() error { _, err := e.m.BuildSyncMessage(e.ctx, pstCh); return err }},
		{"Unwrap content", func() error { _, err := e.m.UnwrapReceivedMessage(e.ctx, e.wire["c1"]); return err }},
		{"Unwrap cascade", func() error { _, err := e.m.UnwrapReceivedMessage(e.ctx, e.wire["b2"]); return err }},
		{"Unwrap sync", func() error { _, err := e.m.UnwrapReceivedMessage(e.ctx, e.wire["csync"]); return err }},
		{"MarkDependenciesMet", func() error { return e.m.MarkDependenciesMet(e.ctx, pstCh, []string{"b2"}) }},
		{"RemoveChannel", func() error { return e.m.RemoveChannel(e.ctx, pstCh) }},
		{"Reset", func() error { return e.m.Reset(e.ctx) }},
		{"EnsureChannel (new)", func() error { return e.m.EnsureChannel(e.ctx, "other") }},
	}
	for _, o := range ops {
		name, op := o.name, o.op
		if err := op(); !errors.Is(err, dead) || sdserr.CodeOf(err) != sdserr.Persistence {
			t.Fatalf("%s on a dead backend: %v", name, err)
		}
		if d := pstDiff(before, e.capture("b1")); d != "" {
			t.Fatalf("%s changed state:\n%s", name, d)
		}
	}
	e.clk.Advance(2 * time.Minute) // resends, give-ups, repair work and a lost message are due
	for range 3 {
		if err := e.m.RunSweeps(e.ctx); !errors.Is(err, dead) || sdserr.CodeOf(err) != sdserr.Persistence {
			t.Fatalf("sweep on a dead backend: %v", err)
		}
	}
	if d := pstDiff(before, e.capture("b1")); d != "" {
		t.Fatalf("failed sweeps changed state:\n%s", d)
	}
	evs := e.ev.from(n)
	if len(evs) != 3 {
		t.Fatalf("want one PersistenceFailed per failed sweep, got:%s", pstFmtEvents(evs))
	}
	for _, ev := range evs {
		if pf := ev.GetPersistenceFailed(); pf == nil || pf.GetChannelId() != pstCh || !strings.Contains(pf.GetDetail(), "disk on fire") {
			t.Fatalf("events:%s", pstFmtEvents(evs))
		}
	}
	// Revived, the next sweep does the overdue work.
	e.mem.ClearFailures()
	pstMust(t, e.m.RunSweeps(e.ctx))
	kinds := map[string]bool{}
	for _, ev := range e.ev.from(n + 3) {
		kinds[fmt.Sprintf("%T", ev.GetEvent())] = true
	}
	for _, k := range []string{"RepairReady", "ResendRequested", "MessageLost", "SyncDue"} {
		if !kinds["*sdskitv1.Event_"+k] {
			t.Errorf("revived sweep did not fire %s (fired %v)", k, kinds)
		}
	}
}

// --- 6. the typed adapter with a transactional host backend --------------------------

// pstTyped is a host backend written against the typed contract: it buffers the writes
// of a transaction and commits them to a memory store as one batch.
type pstTyped struct {
	mem     *store.Memory
	mu      sync.Mutex
	pending map[string]*pb.PersistenceBatch
	fail    map[string]error
	calls   []string
}

func pstNewTyped(mem *store.Memory) *pstTyped {
	return &pstTyped{mem: mem, pending: map[string]*pb.PersistenceBatch{}, fail: map[string]error{}}
}

func (x *pstTyped) setFail(method string, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err == nil {
		delete(x.fail, method)
	} else {
		x.fail[method] = err
	}
}

func (x *pstTyped) trace() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.calls)
}

func (x *pstTyped) write(ctx context.Context, name, ch string, op *pb.PersistenceOp) error {
	x.mu.Lock()
	x.calls = append(x.calls, name)
	if err := x.fail[name]; err != nil {
		x.mu.Unlock()
		return err
	}
	tx := x.pending[ch]
	if tx != nil {
		tx.Ops = append(tx.Ops, op)
		x.mu.Unlock()
		return nil
	}
	x.mu.Unlock()
	// Outside a transaction every write is its own batch.
	return x.mem.Apply(ctx, &pb.PersistenceBatch{ChannelId: ch, Ops: []*pb.PersistenceOp{op}})
}

func (x *pstTyped) Begin(_ context.Context, r *pb.BeginRequest) error {
	ch := r.GetChannelId()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.calls = append(x.calls, "Begin")
	if err := x.fail["Begin"]; err != nil {
		return err
	}
	x.pending[ch] = &pb.PersistenceBatch{ChannelId: ch, Operation: "tx"}
	return nil
}

func (x *pstTyped) Commit(ctx context.Context, r *pb.CommitRequest) error {
	ch := r.GetChannelId()
	x.mu.Lock()
	x.calls = append(x.calls, "Commit")
	tx := x.pending[ch]
	delete(x.pending, ch)
	x.mu.Unlock()
	if tx == nil {
		return errors.New("commit without a transaction")
	}
	return x.mem.Apply(ctx, tx)
}

func (x *pstTyped) Rollback(_ context.Context, r *pb.RollbackRequest) error {
	ch := r.GetChannelId()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.calls = append(x.calls, "Rollback")
	delete(x.pending, ch)
	return nil
}

func (x *pstTyped) SaveLamport(ctx context.Context, r *pb.SaveLamportRequest) error {
	return x.write(ctx, store.OpSaveLamport, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveLamport{SaveLamport: r}})
}

func (x *pstTyped) AppendLogEntry(ctx context.Context, r *pb.AppendLogEntryRequest) error {
	return x.write(ctx, store.OpAppendLogEntry, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_AppendLogEntry{AppendLogEntry: r}})
}

func (x *pstTyped) RemoveLogEntry(ctx context.Context, r *pb.RemoveLogEntryRequest) error {
	return x.write(ctx, store.OpRemoveLogEntry, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveLogEntry{RemoveLogEntry: r}})
}

func (x *pstTyped) SetRetrievalHint(ctx context.Context, r *pb.SetRetrievalHintRequest) error {
	return x.write(ctx, store.OpSetRetrievalHint, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SetRetrievalHint{SetRetrievalHint: r}})
}

func (x *pstTyped) SaveOutgoing(ctx context.Context, r *pb.SaveOutgoingRequest) error {
	return x.write(ctx, store.OpSaveOutgoing, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoing{SaveOutgoing: r}})
}

func (x *pstTyped) RemoveOutgoing(ctx context.Context, r *pb.RemoveOutgoingRequest) error {
	return x.write(ctx, store.OpRemoveOutgoing, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoing{RemoveOutgoing: r}})
}

func (x *pstTyped) SaveIncoming(ctx context.Context, r *pb.SaveIncomingRequest) error {
	return x.write(ctx, store.OpSaveIncoming, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncoming{SaveIncoming: r}})
}

func (x *pstTyped) RemoveIncoming(ctx context.Context, r *pb.RemoveIncomingRequest) error {
	return x.write(ctx, store.OpRemoveIncoming, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncoming{RemoveIncoming: r}})
}

func (x *pstTyped) SaveOutgoingRepair(ctx context.Context, r *pb.SaveOutgoingRepairRequest) error {
	return x.write(ctx, store.OpSaveOutgoingRepair, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoingRepair{SaveOutgoingRepair: r}})
}

func (x *pstTyped) RemoveOutgoingRepair(ctx context.Context, r *pb.RemoveOutgoingRepairRequest) error {
	return x.write(ctx, store.OpRemoveOutgoingRepair, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoingRepair{RemoveOutgoingRepair: r}})
}

func (x *pstTyped) SaveIncomingRepair(ctx context.Context, r *pb.SaveIncomingRepairRequest) error {
	return x.write(ctx, store.OpSaveIncomingRepair, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncomingRepair{SaveIncomingRepair: r}})
}

func (x *pstTyped) RemoveIncomingRepair(ctx context.Context, r *pb.RemoveIncomingRepairRequest) error {
	return x.write(ctx, store.OpRemoveIncomingRepair, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncomingRepair{RemoveIncomingRepair: r}})
}

func (x *pstTyped) DropChannel(ctx context.Context, r *pb.DropChannelRequest) error {
	return x.write(ctx, store.OpDropChannel, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_DropChannel{DropChannel: r}})
}

func (x *pstTyped) LoadAllForChannel(ctx context.Context, r *pb.LoadAllForChannelRequest) (*pb.ChannelSnapshot, error) {
	x.mu.Lock()
	x.calls = append(x.calls, store.OpLoadAllForChannel)
	err := x.fail[store.OpLoadAllForChannel]
	x.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return x.mem.Load(ctx, r.GetChannelId())
}

var (
	_ store.Persistence   = (*pstTyped)(nil)
	_ store.Transactional = (*pstTyped)(nil)
)

func TestPersistenceTypedAdapter_EndToEndWithTransactions(t *testing.T) {
	cfg := pstConfig()
	// Two worlds driven identically: one on the plain memory store, one through the
	// typed adapter over a transactional host backend (itself on a memory store).
	plain := pstNewEnv(t, cfg)
	typed := pstNewEnv(t, cfg)
	host := pstNewTyped(typed.mem)
	typed.rec = &pstRecorder{inner: store.FromPersistence(host)}
	typed.m = typed.session(cfg, typed.rec, typed.ev)

	script := func(e *pstEnv) {
		pstSetupRepairRequest(e)
		e.recv("alice", "b1")
		e.wrap("bob", "b2", "b3")
		e.recv("alice", "b3")
		e.recv("alice", "b2")
		e.clk.Advance(31 * time.Second)
		e.sweep()
	}
	script(plain)
	script(typed)
	if d := pstDiff(plain.capture("b3"), typed.capture("b3")); d != "" {
		t.Fatalf("typed adapter diverges from the memory backend:\n%s", d)
	}
	if !pstEventsEqual(plain.ev.all(), typed.ev.all()) {
		t.Fatalf("events differ:\n%s\n%s", pstFmtEvents(plain.ev.all()), pstFmtEvents(typed.ev.all()))
	}
	// Every batch went through one transaction: as many commits as store batches.
	tr := host.trace()
	commits, begins := 0, 0
	for _, c := range tr {
		switch c {
		case "Commit":
			commits++
		case "Begin":
			begins++
		}
	}
	if begins != commits || commits != typed.mem.Batches() || commits == 0 {
		t.Fatalf("begins %d, commits %d, store batches %d", begins, commits, typed.mem.Batches())
	}
	// Restart through the adapter.
	r := pstOpen(t, "alice", cfg, store.FromPersistence(pstNewTyped(typed.mem)), typed.clk)
	pstMust(t, r.EnsureChannel(context.Background(), pstCh))
	if !proto.Equal(pstSnap(t, r), pstSnap(t, typed.m)) {
		t.Fatal("restart through the typed adapter differs from the live state")
	}
}

func TestPersistenceTypedAdapter_FailureInsideABatchRollsBack(t *testing.T) {
	cfg := pstConfig()
	for _, method := range []string{store.OpSaveLamport, store.OpSaveOutgoing, store.OpAppendLogEntry, store.OpRemoveLogEntry, "Begin", "Commit", "panic"} {
		t.Run(method, func(t *testing.T) {
			mk := func() (*pstEnv, *pstTyped) {
				c := cfg
				c.MaxMessageHistory = 2
				e := pstNewEnv(t, c)
				host := pstNewTyped(e.mem)
				e.rec = &pstRecorder{inner: store.FromPersistence(host)}
				e.m = e.session(c, e.rec, e.ev)
				e.wrap("alice", "a1", "a2")
				return e, host
			}
			e, host := mk()
			twin, _ := mk()
			wantRes, err := pstWrapAct("a3")(twin) // evicts a1: every kind of op of a wrap
			pstMust(t, err)
			before := e.capture("a3")
			n0, ev0 := len(host.trace()), e.ev.n()
			var wantText string
			var p *pstPanicTyped
			switch method {
			case "Commit":
				e.mem.FailOp(store.OpAppendLogEntry) // the store refuses the committed batch
				wantText = "Commit: injected failure: AppendLogEntry"
			case "panic":
				p = &pstPanicTyped{pstTyped: host, method: store.OpSaveOutgoing}
				e.rec.inner = store.FromPersistence(p)
				wantText = "backend panicked in SaveOutgoing"
			default:
				host.setFail(method, errors.New("host refused"))
				wantText = method + ": host refused"
			}
			_, err = pstWrapAct("a3")(e)
			pstIsPersistence(t, err, wantText)
			if d := pstDiff(before, e.capture("a3")); d != "" {
				t.Fatalf("state changed:\n%s", d)
			}
			if e.ev.n() != ev0 {
				t.Fatalf("events fired:%s", pstFmtEvents(e.ev.from(ev0)))
			}
			calls := host.trace()[n0:]
			switch method {
			case "Begin":
				if !slices.Equal(calls, []string{"Begin"}) {
					t.Fatalf("host calls %v", calls)
				}
			case "Commit":
				if calls[0] != "Begin" || calls[len(calls)-1] != "Commit" || slices.Contains(calls, "Rollback") {
					t.Fatalf("host calls %v", calls)
				}
			default:
				if calls[0] != "Begin" || calls[len(calls)-1] != "Rollback" || slices.Contains(calls, "Commit") {
					t.Fatalf("host calls %v: want Begin … Rollback and no Commit", calls)
				}
			}
			if len(host.pending) != 0 {
				t.Fatal("a transaction was left open")
			}
			// Healed, the same call ends where the never-failed twin ended.
			host.setFail(method, nil)
			e.mem.ClearFailures()
			e.rec.inner = store.FromPersistence(host)
			res, err := pstWrapAct("a3")(e)
			pstMust(t, err)
			if !pstSameResult(wantRes, res) {
				t.Fatal("retry result differs from the twin's")
			}
			if d := pstDiff(twin.capture("a3"), e.capture("a3")); d != "" {
				t.Fatalf("after the retry:\n%s", d)
			}
		})
	}
}

// pstPanicTyped panics in one typed method.
type pstPanicTyped struct {
	*pstTyped
	method string
}

func (p *pstPanicTyped) SaveOutgoing(ctx context.Context, r *pb.SaveOutgoingRequest) error {
	if p.method == store.OpSaveOutgoing {
		p.mu.Lock()
		p.calls = append(p.calls, store.OpSaveOutgoing)
		p.mu.Unlock()
		panic("host backend bug")
	}
	return p.pstTyped.SaveOutgoing(ctx, r)
}

// An outgoing entry written by an earlier build still holds the bytes first broadcast:
// after a restart its resend is re-encoded from the stored message with the current
// bloom filter (never the stale bytes), and the rewritten entry drops them.
func TestPersistenceRestart_OutgoingEntryFromEarlierBuildIsReencoded(t *testing.T) {
	ctx := context.Background()
	mem, clk, cfg := store.NewMemory(), clock.NewManual(pstStart), DefaultConfig()
	m := pstOpen(t, "alice", cfg, mem, clk)
	first, err := m.WrapOutgoingMessage(ctx, pstCh, "m1", pstContent("m1"))
	pstMust(t, err)
	pstMust(t, m.Close())
	old := proto.CloneOf(mem.Snapshot(pstCh).GetOutgoing()[0])
	old.WireBytes = []byte("bytes of an earlier build")
	pstMust(t, mem.Apply(ctx, &pb.PersistenceBatch{ChannelId: pstCh, Ops: []*pb.PersistenceOp{{Op: &pb.PersistenceOp_SaveOutgoing{
		SaveOutgoing: &pb.SaveOutgoingRequest{ChannelId: pstCh, Message: old}}}}}))

	rec := &relRecorder{}
	m2 := pstOpen(t, "alice", cfg, mem, clk, WithHandler(rec))
	t.Cleanup(func() { _ = m2.Close() })
	pstMust(t, m2.EnsureChannel(ctx, pstCh))
	clk.Advance(cfg.ResendInterval)
	pstMust(t, m2.RunSweeps(ctx))
	m2.drain()
	resends := rec.of("resend")
	if len(resends) != 1 {
		t.Fatalf("events %v, want one resend", rec.kinds())
	}
	got := pstDecode(t, resends[0].GetResendRequested().GetWireBytes())
	if want := pstDecode(t, first); !proto.Equal(stripBloom(got), stripBloom(want)) {
		t.Fatalf("resend %v, want the fields of %v", got, want)
	}
	if !relDecodeBloom(t, got.GetBloomFilter()).Test("m1") {
		t.Fatal("the resend's bloom filter is not the current one (it lacks m1)")
	}
	out := mem.Snapshot(pstCh).GetOutgoing()
	if len(out) != 1 || len(out[0].GetWireBytes()) != 0 || out[0].GetResendAttempts() != 1 {
		t.Fatalf("stored outgoing entry after the resend: %s", pstFmt(mem.Snapshot(pstCh)))
	}
}
