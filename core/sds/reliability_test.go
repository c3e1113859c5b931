package sds

// Ports of nim-sds's tests/test_reliability.nim (§13.2 of nim-sds-behaviour.md), adapted
// to sdskit's deliberate differences (issue 2, "Behaviour"): millisecond Lamport clock
// with L = max(now_ms, L+1) on send and L = max(L, msg.L) on delivery, a log ordered by
// (lamport, id), causal history of 2, bloom hits as possible acknowledgements, resends
// as ResendRequested events, causal-order cascades, sync and ephemeral messages.

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/hash"
	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/store"
	"github.com/sdskit/sdskit/core/wire"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

// --- Core Operations ------------------------------------------------------------------

func TestCoreOperations_CanCreateWithDefaultConfig(t *testing.T) {
	cfg := DefaultConfig()
	want := Config{
		Profile:                "spec",
		BloomCapacity:          10000,
		BloomErrorRate:         0.001,
		MaxMessageHistory:      1000,
		MaxCausalHistory:       2,
		SyncCausalHistory:      20,
		MaxMessageSize:         1 << 20,
		ResendInterval:         30 * time.Second,
		ResendBackoff:          2,
		MaxResendInterval:      10 * time.Minute,
		MaxResendAttempts:      5,
		PossibleAcksThreshold:  2,
		SyncInterval:           30 * time.Second,
		SyncJitter:             0.2,
		SweepInterval:          time.Second,
		IncomingTimeout:        0,
		LostPolicy:             LostDeliver,
		RepairTMin:             30 * time.Second,
		RepairTMax:             120 * time.Second,
		NumResponseGroups:      1,
		MaxRepairRequests:      3,
		MaxRepairAttempts:      5,
		RepairRetryMaxInterval: time.Minute,
		SyncUnreferencedRounds: 3,
		BloomRepairAfter:       5 * time.Minute,
		MaxIncomingBuffer:      10000,
		MaxRepairBuffer:        1000,
		Limits:                 wire.DefaultLimits(),
	}
	if cfg != want {
		t.Fatalf("DefaultConfig() = %+v\nwant %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig does not validate: %v", err)
	}
	p := relNew(t, "alice", cfg)
	if p.ParticipantID() != "alice" || p.Config() != cfg {
		t.Fatalf("ParticipantID %q, Config %+v", p.ParticipantID(), p.Config())
	}
	if len(p.Channels()) != 0 {
		t.Fatalf("a new manager has channels %v", p.Channels())
	}
}

func TestCoreOperations_BasicMessageWrappingAndUnwrapping(t *testing.T) {
	relBasicWrapUnwrap(t, 0)
}

func TestCoreOperations_BasicMessageWrappingAndUnwrappingNonEmptyBloom(t *testing.T) {
	relBasicWrapUnwrap(t, 50)
}

func relBasicWrapUnwrap(t *testing.T, seed int) {
	alice := relNew(t, "alice", DefaultConfig())
	if err := alice.EnsureChannel(relCtx, relCh); err != nil {
		t.Fatal(err)
	}
	var noise []string
	for i := 0; i < seed; i++ {
		noise = append(noise, fmt.Sprint("noise", i))
	}
	alice.seedBloom(t, relCh, noise...)
	b := alice.wrap(t, relCh, "test-msg-1", []byte{1, 2, 3})
	if len(b) == 0 {
		t.Fatal("wrap returned no bytes")
	}
	msg := relDecode(t, b)
	if msg.GetMessageId() != "test-msg-1" || msg.GetChannelId() != relCh || msg.GetSenderId() != "alice" ||
		!bytes.Equal(msg.GetContent(), []byte{1, 2, 3}) || msg.GetLamportTimestamp() != uint64(relStart.UnixMilli()) ||
		len(msg.GetCausalHistory()) != 0 || len(msg.GetRepairRequest()) != 0 {
		t.Fatalf("wrapped message %v", msg)
	}
	f := relDecodeBloom(t, msg.GetBloomFilter())
	for _, id := range noise {
		if !f.Test(id) {
			t.Fatalf("attached bloom lacks seeded %s", id)
		}
	}
	if f.Test("test-msg-1") {
		t.Fatal("the attached bloom is taken before the message's own id is added")
	}
	if n := alice.rec.len(); n != 0 {
		t.Fatalf("wrap fired %d events", n)
	}

	// Our own message echoed back: a duplicate, content returned, nothing changes.
	before := alice.snap(t, relCh)
	u := alice.unwrap(t, b)
	if !bytes.Equal(u.Content, []byte{1, 2, 3}) || len(u.Missing) != 0 || u.ChannelID != relCh ||
		u.Kind != KindDuplicate || u.Delivered || u.MessageID != "test-msg-1" || u.SenderID != "alice" {
		t.Fatalf("unwrap of own message: %+v", u)
	}
	relWantEqual(t, "state after own echo", before, alice.snap(t, relCh))
	if n := alice.rec.len(); n != 0 {
		t.Fatalf("own echo fired %d events", n)
	}

	// Another participant delivers it.
	bob := relNew(t, "bob", DefaultConfig())
	u = bob.unwrap(t, b)
	if u.Kind != KindContent || !u.Delivered || len(u.Missing) != 0 || u.ChannelID != relCh || !bytes.Equal(u.Content, []byte{1, 2, 3}) {
		t.Fatalf("bob's unwrap: %+v", u)
	}
	ready := bob.rec.of("ready")
	if len(ready) != 1 {
		t.Fatalf("bob's events %v", bob.rec.kinds())
	}
	mr := ready[0].GetMessageReady()
	if mr.GetMessageId() != "test-msg-1" || mr.GetSenderId() != "alice" || mr.GetChannelId() != relCh ||
		!bytes.Equal(mr.GetContent(), []byte{1, 2, 3}) || mr.GetLamportTimestamp() != msg.GetLamportTimestamp() {
		t.Fatalf("MessageReady %v", mr)
	}
	if got := relLogIDs(bob.snap(t, relCh)); !slices.Equal(got, []string{"test-msg-1"}) {
		t.Fatalf("bob's log %v", got)
	}
}

func TestCoreOperations_MessageOrdering(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "m5", 5, "five")))
	l1 := alice.snap(t, relCh).GetLamportTimestamp()
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "m1", 1, "one")))
	l2 := alice.snap(t, relCh).GetLamportTimestamp()
	// nim: max(msg, L) + 1 gives 6 then 7. Here delivery takes L = max(L, msg.L): the
	// clock never goes back and does not move for an older message.
	if l1 != 5 || l2 != 5 || l2 < l1 {
		t.Fatalf("lamport after ts 5 = %d, after ts 1 = %d; want 5, 5", l1, l2)
	}
	// The log is ordered by (lamport, id), not by delivery.
	if got := relLogIDs(alice.snap(t, relCh)); !slices.Equal(got, []string{"m1", "m5"}) {
		t.Fatalf("log %v, want [m1 m5]", got)
	}
	// Equal lamports are ordered by id.
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "zz", 3, "z")))
	alice.unwrap(t, relEncode(t, relMsg("carol", relCh, "aa", 3, "a")))
	if got := relLogIDs(alice.snap(t, relCh)); !slices.Equal(got, []string{"m1", "aa", "zz", "m5"}) {
		t.Fatalf("log %v, want [m1 aa zz m5]", got)
	}

	// Send: L = max(now_ms, L+1).
	now := uint64(relStart.UnixMilli())
	a1 := relDecode(t, alice.wrap(t, relCh, "a1", []byte("x")))
	if a1.GetLamportTimestamp() != now {
		t.Fatalf("first send lamport %d, want now_ms %d", a1.GetLamportTimestamp(), now)
	}
	a2 := relDecode(t, alice.wrap(t, relCh, "a2", []byte("x")))
	if a2.GetLamportTimestamp() != now+1 {
		t.Fatalf("second send in the same ms: lamport %d, want %d", a2.GetLamportTimestamp(), now+1)
	}
	alice.clk.Advance(5 * time.Millisecond)
	a3 := relDecode(t, alice.wrap(t, relCh, "a3", []byte("x")))
	if a3.GetLamportTimestamp() != now+5 {
		t.Fatalf("send 5 ms later: lamport %d, want %d", a3.GetLamportTimestamp(), now+5)
	}
	// A peer far ahead pulls our clock forward; the next send is L+1.
	future := now + 1_000_000
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "future", future, "f", "a3")))
	if l := alice.snap(t, relCh).GetLamportTimestamp(); l != future {
		t.Fatalf("lamport after a future message %d, want %d", l, future)
	}
	a4 := relDecode(t, alice.wrap(t, relCh, "a4", []byte("x")))
	if a4.GetLamportTimestamp() != future+1 {
		t.Fatalf("send after a future message: lamport %d, want %d", a4.GetLamportTimestamp(), future+1)
	}
	if got := relLogIDs(alice.snap(t, relCh)); !slices.Equal(got, []string{"m1", "aa", "zz", "m5", "a1", "a2", "a3", "future", "a4"}) {
		t.Fatalf("log %v", got)
	}
}

// --- Reliability Mechanisms -----------------------------------------------------------

func TestReliabilityMechanisms_DependencyDetectionAndResolution(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	if err := alice.EnsureChannel(relCtx, relCh); err != nil {
		t.Fatal(err)
	}
	u := alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "msg3", 3, "three", "msg1", "msg2")))
	if u.Delivered || !slices.Equal(relEntryIDs(u.Missing), []string{"msg1", "msg2"}) {
		t.Fatalf("msg3: %+v", u)
	}
	if n := alice.rec.count("missing"); n != 1 {
		t.Fatalf("missing-dependency events %d, want 1", n)
	}
	md := alice.rec.of("missing")[0].GetMissingDependencies()
	if md.GetMessageId() != "msg3" || md.GetChannelId() != relCh || !slices.Equal(relEntryIDs(md.GetMissing()), []string{"msg1", "msg2"}) {
		t.Fatalf("MissingDependencies %v", md)
	}
	u = alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "msg2", 2, "two", "msg1")))
	if u.Delivered || !slices.Equal(relEntryIDs(u.Missing), []string{"msg1"}) {
		t.Fatalf("msg2: %+v", u)
	}
	if alice.rec.count("missing") != 2 || alice.rec.count("ready") != 0 {
		t.Fatalf("events %v", alice.rec.kinds())
	}
	if got := relInIDs(alice.snap(t, relCh)); !slices.Equal(got, []string{"msg2", "msg3"}) {
		t.Fatalf("incoming buffer %v", got)
	}
	if err := alice.MarkDependenciesMet(relCtx, relCh, []string{"msg1"}); err != nil {
		t.Fatal(err)
	}
	s := alice.snap(t, relCh)
	if len(s.GetIncoming()) != 0 {
		t.Fatalf("incoming buffer %v after the cascade", relInIDs(s))
	}
	// The unblocking message first: msg2, then msg3.
	if got := alice.rec.ids("ready"); !slices.Equal(got, []string{"msg2", "msg3"}) {
		t.Fatalf("ready %v, want [msg2 msg3]", got)
	}
	if alice.rec.count("missing") != 2 {
		t.Fatalf("missing-dependency events %d, want still 2", alice.rec.count("missing"))
	}
	if got := relLogIDs(s); !slices.Equal(got, []string{"msg1", "msg2", "msg3"}) {
		t.Fatalf("log %v", got)
	}
	for _, id := range []string{"msg1", "msg2", "msg3"} {
		if !alice.bloomHas(t, relCh, id) {
			t.Fatalf("bloom lacks %s", id)
		}
	}
	if s.GetLamportTimestamp() != 3 {
		t.Fatalf("lamport %d after delivering msg3 (L=3), want 3", s.GetLamportTimestamp())
	}
}

func TestReliabilityMechanisms_DependencyDetectionAndResolutionNonEmptyBloom(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	if err := alice.EnsureChannel(relCtx, relCh); err != nil {
		t.Fatal(err)
	}
	var seed []string
	for i := 0; i < 30; i++ {
		seed = append(seed, fmt.Sprint("noise", i))
	}
	alice.seedBloom(t, relCh, append(seed, "msg1")...)
	if !alice.bloomHas(t, relCh, "msg1") {
		t.Fatal("seed failed")
	}
	// Dependencies are checked against the log, never the bloom.
	u := alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "msg2", 2, "two", "msg1")))
	if u.Delivered || !slices.Equal(relEntryIDs(u.Missing), []string{"msg1"}) {
		t.Fatalf("msg2: %+v", u)
	}
	if alice.rec.count("missing") != 1 || alice.rec.count("ready") != 0 {
		t.Fatalf("events %v", alice.rec.kinds())
	}
}

func TestReliabilityMechanisms_AcknowledgmentViaCausalHistory(t *testing.T) {
	relAckViaCausalHistory(t, 0)
}

func TestReliabilityMechanisms_AcknowledgmentViaCausalHistoryNonEmptyBloom(t *testing.T) {
	relAckViaCausalHistory(t, 50)
}

func relAckViaCausalHistory(t *testing.T, seed int) {
	alice := relNew(t, "alice", DefaultConfig())
	if err := alice.EnsureChannel(relCtx, relCh); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < seed; i++ {
		alice.seedBloom(t, relCh, fmt.Sprint("noise", i))
	}
	alice.wrap(t, relCh, "msg1", []byte("one"))
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "msg2", 2, "two", "msg1")))
	if got := alice.rec.kinds(); !slices.Equal(got, []string{"acked", "ready"}) {
		t.Fatalf("events %v, want [acked ready]", got)
	}
	ack := alice.rec.of("acked")[0].GetMessageAcknowledged()
	if ack.GetMessageId() != "msg1" || ack.GetChannelId() != relCh {
		t.Fatalf("MessageAcknowledged %v", ack)
	}
	if out := alice.snap(t, relCh).GetOutgoing(); len(out) != 0 {
		t.Fatalf("outgoing buffer %v after the ack", out)
	}
	// A second acknowledgement of the same message fires nothing.
	alice.unwrap(t, relEncode(t, relMsg("carol", relCh, "msg3", 3, "three", "msg1")))
	if alice.rec.count("acked") != 1 {
		t.Fatalf("acked %d times", alice.rec.count("acked"))
	}
}

func TestReliabilityMechanisms_RetrievalHints(t *testing.T) {
	var calls sync32
	provider := HintProviderFunc(func(_ context.Context, ch, id string) ([]byte, error) {
		calls.add(id)
		if ch != relCh {
			t.Errorf("provider asked for channel %q", ch)
		}
		return []byte("hint:" + id), nil
	})
	alice := relNew(t, "alice", DefaultConfig(), WithHintProvider(provider))
	alice.wrap(t, relCh, "msg1", []byte("one"))
	m2 := relDecode(t, alice.wrap(t, relCh, "msg2", []byte("two")))
	if len(m2.GetCausalHistory()) != 1 {
		t.Fatalf("msg2 causal history %v", m2.GetCausalHistory())
	}
	h := m2.GetCausalHistory()[0]
	if h.GetMessageId() != "msg1" || string(h.GetRetrievalHint()) != "hint:msg1" || h.GetSenderId() != "alice" {
		t.Fatalf("msg2 causal[0] = %v, want msg1 with hint hint:msg1 and sender alice", h)
	}
	m3 := relDecode(t, alice.wrap(t, relCh, "msg3", []byte("three")))
	if got := m3.GetCausalHistory(); len(got) != 2 || string(got[0].GetRetrievalHint()) != "hint:msg1" || string(got[1].GetRetrievalHint()) != "hint:msg2" {
		t.Fatalf("msg3 causal history %v", got)
	}
	// The provider's answer is cached: one call per own message.
	if got := calls.get(); !slices.Equal(got, []string{"msg1", "msg2"}) {
		t.Fatalf("provider calls %v, want [msg1 msg2]", got)
	}
	hints := alice.snap(t, relCh).GetRetrievalHints()
	if len(hints) != 2 || hints[0].GetMessageId() != "msg1" || string(hints[0].GetRetrievalHint()) != "hint:msg1" {
		t.Fatalf("persisted hints %v", hints)
	}

	// Received dependencies keep the hint they came with (or none).
	u := alice.unwrap(t, relEncode(t, &pb.SdsMessage{SenderId: "bob", MessageId: "r1", ChannelId: relCh,
		LamportTimestamp: proto.Uint64(1), Content: []byte("x"), CausalHistory: []*pb.HistoryEntry{relH("dep-a", "", nil)}}))
	if len(u.Missing) != 1 || len(u.Missing[0].GetRetrievalHint()) != 0 {
		t.Fatalf("dependency without a hint: %v", u.Missing)
	}
	u = alice.unwrap(t, relEncode(t, &pb.SdsMessage{SenderId: "bob", MessageId: "r2", ChannelId: relCh,
		LamportTimestamp: proto.Uint64(1), Content: []byte("x"), CausalHistory: []*pb.HistoryEntry{relH("dep-b", "carol", []byte("remote-hint"))}}))
	if len(u.Missing) != 1 || string(u.Missing[0].GetRetrievalHint()) != "remote-hint" || u.Missing[0].GetSenderId() != "carol" {
		t.Fatalf("dependency with a remote hint: %v", u.Missing)
	}
	md := alice.rec.of("missing")[1].GetMissingDependencies()
	if string(md.GetMissing()[0].GetRetrievalHint()) != "remote-hint" {
		t.Fatalf("MissingDependencies lost the hint: %v", md)
	}
	for _, e := range alice.snap(t, relCh).GetOutgoingRepair() {
		if e.GetEntry().GetMessageId() == "dep-b" && string(e.GetEntry().GetRetrievalHint()) != "remote-hint" {
			t.Fatalf("repair entry lost the hint: %v", e)
		}
	}
}

func TestReliabilityMechanisms_RetrievalHintsFromTransportAndPeers(t *testing.T) {
	var asked atomic.Int32
	empty := HintProviderFunc(func(context.Context, string, string) ([]byte, error) {
		asked.Add(1)
		return nil, nil
	})
	alice := relNew(t, "alice", DefaultConfig(), WithHintProvider(empty))
	// The transport's hint of a received message is kept and passed on.
	b1 := relEncode(t, relMsg("bob", relCh, "b1", 1, "x"))
	if _, err := alice.UnwrapReceivedMessageWithHint(relCtx, b1, []byte("waku-hash-b1")); err != nil {
		t.Fatal(err)
	}
	a1 := relDecode(t, alice.wrap(t, relCh, "a1", []byte("x")))
	if got := a1.GetCausalHistory(); len(got) != 1 || got[0].GetMessageId() != "b1" || string(got[0].GetRetrievalHint()) != "waku-hash-b1" || got[0].GetSenderId() != "bob" {
		t.Fatalf("a1 causal history %v", got)
	}
	// "No hint" answers are cached too: a1 is asked for once over several sends.
	alice.wrap(t, relCh, "a2", []byte("x"))
	alice.wrap(t, relCh, "a3", []byte("x"))
	alice.wrap(t, relCh, "a4", []byte("x"))
	if n := asked.Load(); n != 3 { // a1, a2, a3
		t.Fatalf("provider asked %d times, want 3", n)
	}
	// A hint a peer attaches to one of our messages is learned.
	alice.unwrap(t, relEncode(t, &pb.SdsMessage{SenderId: "bob", MessageId: "b2", ChannelId: relCh, LamportTimestamp: proto.Uint64(2),
		Content: []byte("x"), CausalHistory: []*pb.HistoryEntry{relH("a4", "alice", []byte("bob-says-a4"))}}))
	a5 := relDecode(t, alice.wrap(t, relCh, "a5", []byte("x")))
	found := false
	for _, e := range a5.GetCausalHistory() {
		if e.GetMessageId() == "a4" {
			found = string(e.GetRetrievalHint()) == "bob-says-a4"
		}
	}
	if !found {
		t.Fatalf("a5 causal history %v lacks a4 with the learned hint", a5.GetCausalHistory())
	}
	// A failing provider never fails a send.
	failing := relNew(t, "carol", DefaultConfig(), WithHintProvider(HintProviderFunc(func(context.Context, string, string) ([]byte, error) {
		return nil, fmt.Errorf("boom")
	})))
	failing.wrap(t, relCh, "c1", []byte("x"))
	c2 := relDecode(t, failing.wrap(t, relCh, "c2", []byte("x")))
	if len(c2.GetCausalHistory()) != 1 || len(c2.GetCausalHistory()[0].GetRetrievalHint()) != 0 {
		t.Fatalf("c2 causal history %v", c2.GetCausalHistory())
	}
	// Nor does a panicking one, or one answering with an over-long hint.
	for name, p := range map[string]HintProviderFunc{
		"panicking": func(context.Context, string, string) ([]byte, error) { panic("provider bug") },
		"too long": func(context.Context, string, string) ([]byte, error) {
			return make([]byte, wire.DefaultLimits().MaxHintBytes+1), nil
		},
	} {
		d := relNew(t, "dave", DefaultConfig(), WithHintProvider(p), WithLogger(relQuiet))
		d.wrap(t, relCh, "d1", []byte("x"))
		d2 := relDecode(t, d.wrap(t, relCh, "d2", []byte("x")))
		if len(d2.GetCausalHistory()) != 1 || len(d2.GetCausalHistory()[0].GetRetrievalHint()) != 0 {
			t.Fatalf("%s provider: causal history %v", name, d2.GetCausalHistory())
		}
	}
}

// sync32 records provider calls from any goroutine.
type sync32 struct {
	mu  chan struct{}
	ids []string
}

func (s *sync32) add(id string) {
	s.lock()
	s.ids = append(s.ids, id)
	s.unlock()
}

func (s *sync32) get() []string {
	s.lock()
	defer s.unlock()
	return slices.Clone(s.ids)
}

func (s *sync32) lock() {
	if s.mu == nil {
		s.mu = make(chan struct{}, 1)
	}
	s.mu <- struct{}{}
}

func (s *sync32) unlock() { <-s.mu }

// --- Periodic Tasks & Buffer Management ----------------------------------------------

func TestPeriodicTasks_OutgoingBufferManagement(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	for i := 0; i < 6; i++ {
		alice.wrap(t, relCh, fmt.Sprint("msg", i), []byte("x"))
	}
	if got := relOutIDs(alice.snap(t, relCh)); len(got) != 6 {
		t.Fatalf("outgoing %v", got)
	}
	ack := relMsg("bob", relCh, "ack", 1, "ack", "msg0", "msg2", "msg4")
	alice.unwrap(t, relEncode(t, ack))
	if got := relOutIDs(alice.snap(t, relCh)); !slices.Equal(got, []string{"msg1", "msg3", "msg5"}) {
		t.Fatalf("outgoing %v, want [msg1 msg3 msg5]", got)
	}
	if got := alice.rec.ids("acked"); !slices.Equal(got, []string{"msg0", "msg2", "msg4"}) {
		t.Fatalf("acked %v", got)
	}
}

func TestPeriodicTasks_PeriodicBufferSweepAndBloomClean(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ResendInterval = 100 * time.Millisecond
	cfg.MaxResendInterval = time.Second
	cfg.ResendBackoff = 2
	cfg.MaxResendAttempts = 3
	cfg.SweepInterval = 50 * time.Millisecond
	cfg.BloomCapacity = 2
	alice := relNew(t, "alice", cfg)
	b1 := alice.wrap(t, relCh, "msg1", []byte("one"))
	// The buffer keeps the message without its bloom filter and without wire bytes.
	if out := alice.snap(t, relCh).GetOutgoing(); len(out) != 1 || out[0].GetResendAttempts() != 0 ||
		len(out[0].GetWireBytes()) != 0 || out[0].GetMessage().GetBloomFilter() != nil {
		t.Fatalf("outgoing %v", out)
	}
	first := relDecode(t, b1)
	if !alice.bloomHas(t, relCh, "msg1") {
		t.Fatal("bloom lacks msg1")
	}
	// Sweep every 50 ms of manual time: resends at 100, 300 (+200) and 700 ms (+400),
	// give-up at 1500 ms (+800).
	type at struct {
		ms   int
		kind string
		n    uint32
	}
	var got []at
	for ms := 50; ms <= 2000; ms += 50 {
		alice.clk.Advance(50 * time.Millisecond)
		alice.rec.reset()
		alice.sweep(t)
		for _, ev := range alice.rec.all() {
			switch e := ev.GetEvent().(type) {
			case *pb.Event_ResendRequested:
				// The original fields with the current bloom filter, which (unlike the
				// first broadcast's) holds msg1 itself.
				re := relDecode(t, e.ResendRequested.GetWireBytes())
				if e.ResendRequested.GetMessageId() != "msg1" || !proto.Equal(stripBloom(re), stripBloom(first)) {
					t.Fatalf("ResendRequested does not carry msg1 as first sent: %v", re)
				}
				if bytes.Equal(re.GetBloomFilter(), first.GetBloomFilter()) || !relDecodeBloomSized(t, re.GetBloomFilter(), cfg.BloomCapacity, cfg.BloomErrorRate).Test("msg1") {
					t.Fatalf("the resend's bloom filter is not the current one (it lacks msg1)")
				}
				got = append(got, at{ms, "resend", e.ResendRequested.GetAttempt()})
			case *pb.Event_MessageUnacknowledged:
				got = append(got, at{ms, "unacked", e.MessageUnacknowledged.GetResendAttempts()})
			case *pb.Event_MessageAcknowledged:
				t.Fatal("giving up must never look like an acknowledgement")
			default:
				t.Fatalf("unexpected event %v", ev)
			}
		}
	}
	want := []at{{100, "resend", 1}, {300, "resend", 2}, {700, "resend", 3}, {1500, "unacked", 3}}
	if !slices.Equal(got, want) {
		t.Fatalf("sweep events %v, want %v", got, want)
	}
	if out := alice.snap(t, relCh).GetOutgoing(); len(out) != 0 {
		t.Fatalf("msg1 still buffered after giving up: %v", out)
	}
	alice.wrap(t, relCh, "msg2", []byte("two"))
	alice.wrap(t, relCh, "msg3", []byte("three"))
	out := alice.snap(t, relCh).GetOutgoing()
	if got := relOutIDs(alice.snap(t, relCh)); !slices.Equal(got, []string{"msg2", "msg3"}) || out[0].GetResendAttempts() != 0 {
		t.Fatalf("outgoing %v", out)
	}
	// Capacity 2: the third id rolls the filter, which keeps only the newest.
	if alice.bloomHas(t, relCh, "msg1") || !alice.bloomHas(t, relCh, "msg3") {
		t.Fatalf("bloom: msg1 %v (want false), msg3 %v (want true)", alice.bloomHas(t, relCh, "msg1"), alice.bloomHas(t, relCh, "msg3"))
	}
}

func TestPeriodicTasks_ResendBackoffIsCappedAndStopsOnAck(t *testing.T) {
	cfg := relQuietConfig()
	cfg.ResendInterval = time.Second
	cfg.ResendBackoff = 10
	cfg.MaxResendInterval = 5 * time.Second
	cfg.MaxResendAttempts = 4
	alice := relNew(t, "alice", cfg)
	alice.wrap(t, relCh, "m1", []byte("x"))
	var times []int
	for s := 1; s <= 30; s++ {
		alice.clk.Advance(time.Second)
		alice.rec.reset()
		alice.sweep(t)
		if alice.rec.count("resend") == 1 {
			times = append(times, s)
		}
	}
	// 1 s, then capped at 5 s instead of 10, 100, 1000 s.
	if !slices.Equal(times, []int{1, 6, 11, 16}) {
		t.Fatalf("resends at %v s, want [1 6 11 16]", times)
	}

	// An acknowledgement stops the resends.
	bob := relNew(t, "bob", cfg)
	bob.wrap(t, relCh, "b1", []byte("x"))
	bob.clk.Advance(time.Second)
	bob.sweep(t)
	if bob.rec.count("resend") != 1 {
		t.Fatalf("events %v", bob.rec.kinds())
	}
	bob.unwrap(t, relEncode(t, relMsg("carol", relCh, "c1", 1, "x", "b1")))
	bob.rec.reset()
	for i := 0; i < 30; i++ {
		bob.clk.Advance(time.Second)
		bob.sweep(t)
	}
	if n := bob.rec.len(); n != 0 {
		t.Fatalf("events after the ack: %v", bob.rec.kinds())
	}

	// MaxResendAttempts 0: give up at the first expiry, never resend.
	cfg.MaxResendAttempts = 0
	carol := relNew(t, "carol", cfg)
	carol.wrap(t, relCh, "c1", []byte("x"))
	carol.clk.Advance(time.Second - time.Millisecond)
	carol.sweep(t)
	if carol.rec.len() != 0 {
		t.Fatalf("events before the interval: %v", carol.rec.kinds())
	}
	carol.clk.Advance(time.Millisecond)
	carol.sweep(t)
	if got := carol.rec.kinds(); !slices.Equal(got, []string{"unacked"}) {
		t.Fatalf("events %v, want [unacked]", got)
	}
}

// countingClock counts Now calls, to show the periodic task does not spin.
type countingClock struct{ n atomic.Int64 }

func (c *countingClock) Now() time.Time { c.n.Add(1); return time.Now() }

func TestPeriodicTasks_PeriodicSyncCallback(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SweepInterval = 10 * time.Millisecond
	cfg.SyncInterval = 50 * time.Millisecond
	cfg.SyncJitter = 0
	rec := &relRecorder{}
	clk := &countingClock{}
	m, err := New("alice", cfg, WithHandler(rec), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, ch := range []string{"ch1", "ch2"} {
		if err := m.EnsureChannel(relCtx, ch); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	startCalls := clk.n.Load()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := m.StartPeriodicTasks(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.StartPeriodicTasks(ctx); err != nil { // a no-op while running
		t.Fatal(err)
	}
	relWait(t, 5*time.Second, "two SyncDue events per channel", func() bool {
		n1, n2 := 0, 0
		for _, ev := range rec.of("syncDue") {
			switch ev.GetSyncDue().GetChannelId() {
			case "ch1":
				n1++
			case "ch2":
				n2++
			}
		}
		return n1 >= 2 && n2 >= 2
	})
	elapsed := time.Since(start)
	if elapsed < 2*cfg.SyncInterval-cfg.SweepInterval {
		t.Fatalf("two sync periods took only %v", elapsed)
	}
	// One sweep per 10 ms reads the clock about once per channel: a busy loop would read
	// it orders of magnitude more often.
	calls := clk.n.Load() - startCalls
	if limit := 4*int64(elapsed/cfg.SweepInterval) + 20; calls > limit {
		t.Fatalf("clock read %d times in %v (limit %d): the periodic task spins", calls, elapsed, limit)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	relWantCode(t, m.StartPeriodicTasks(ctx), sdserr.Closed)
	// The task stops by itself: no event after a short grace period.
	time.Sleep(3 * cfg.SweepInterval)
	n := rec.len()
	time.Sleep(3 * cfg.SyncInterval)
	if rec.len() != n {
		t.Fatalf("%d events after Close", rec.len()-n)
	}
}

func TestPeriodicTasks_StopWhenContextEnds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SweepInterval = 5 * time.Millisecond
	cfg.SyncInterval = 20 * time.Millisecond
	cfg.SyncJitter = 0
	rec := &relRecorder{}
	m, err := New("alice", cfg, WithHandler(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.EnsureChannel(relCtx, relCh); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.StartPeriodicTasks(ctx); err != nil {
		t.Fatal(err)
	}
	relWait(t, 5*time.Second, "a SyncDue event", func() bool { return rec.count("syncDue") > 0 })
	cancel()
	time.Sleep(4 * cfg.SweepInterval)
	n := rec.len()
	time.Sleep(3 * cfg.SyncInterval)
	if rec.len() != n {
		t.Fatalf("%d events after the context ended", rec.len()-n)
	}
	// The manager itself keeps working.
	if _, err := m.WrapOutgoingMessage(relCtx, relCh, "m1", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestPeriodicTasks_SyncDueOnManualClock(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SyncJitter = 0
	alice := relNew(t, "alice", cfg)
	for _, ch := range []string{"ch1", "ch2"} {
		if err := alice.EnsureChannel(relCtx, ch); err != nil {
			t.Fatal(err)
		}
	}
	alice.sweep(t)
	alice.clk.Advance(30*time.Second - time.Millisecond)
	alice.sweep(t)
	if n := alice.rec.len(); n != 0 {
		t.Fatalf("events before the sync interval: %v", alice.rec.kinds())
	}
	alice.clk.Advance(time.Millisecond)
	alice.sweep(t)
	if got := alice.rec.ids("syncDue"); !slices.Equal(got, []string{"ch1", "ch2"}) {
		t.Fatalf("SyncDue for %v, want [ch1 ch2]", got)
	}
	alice.sweep(t) // not again until the next interval
	if alice.rec.count("syncDue") != 2 {
		t.Fatalf("SyncDue repeated within the interval")
	}

	// With jitter 0.2 every interval lies in [24 s, 36 s].
	cfg.SyncJitter = 0.2
	bob := relNew(t, "bob", cfg)
	if err := bob.EnsureChannel(relCtx, relCh); err != nil {
		t.Fatal(err)
	}
	last := 0
	var gaps []int
	for s := 1; s <= 600; s++ {
		bob.clk.Advance(time.Second)
		bob.rec.reset()
		bob.sweep(t)
		if bob.rec.count("syncDue") == 1 {
			gaps = append(gaps, s-last)
			last = s
		}
	}
	if len(gaps) < 600/37 {
		t.Fatalf("only %d SyncDue events in 600 s", len(gaps))
	}
	distinct := map[int]bool{}
	for _, g := range gaps {
		// one-second steps: an interval of 24..36 s is observed as 24..37 s
		if g < 24 || g > 37 {
			t.Fatalf("sync gaps %v outside [24 s, 36 s]", gaps)
		}
		distinct[g] = true
	}
	if len(distinct) < 3 {
		t.Fatalf("sync gaps %v show no jitter", gaps)
	}
}

// --- Special Cases Handling ----------------------------------------------------------

func TestSpecialCases_MessageHistoryLimits(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	for i := 0; i < 1006; i++ {
		alice.wrap(t, relCh, fmt.Sprint("msg", i), []byte("x"))
	}
	log := relLogIDs(alice.snap(t, relCh))
	if len(log) != 1000 || log[len(log)-1] != "msg1005" || log[0] != "msg6" {
		t.Fatalf("log has %d entries, first %s, last %s; want 1000, msg6, msg1005", len(log), log[0], log[len(log)-1])
	}
	// An evicted message no longer satisfies a dependency.
	u := alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "late", 1, "x", "msg0", "msg6")))
	if u.Delivered || !slices.Equal(relEntryIDs(u.Missing), []string{"msg0"}) {
		t.Fatalf("message depending on an evicted one: %+v", u)
	}
}

func TestSpecialCases_InvalidBloomFilterHandling(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	alice.wrap(t, relCh, "a1", []byte("x"))
	msg := relMsg("bob", relCh, "b1", 1, "x")
	msg.BloomFilter = []byte{1, 2, 3}
	u, err := alice.UnwrapReceivedMessage(relCtx, relEncode(t, msg))
	if err != nil {
		t.Fatalf("unwrap with an invalid bloom: %v", err)
	}
	if !u.Delivered || len(u.Missing) != 0 {
		t.Fatalf("unwrap: %+v", u)
	}
	if got := alice.rec.kinds(); !slices.Equal(got, []string{"ready"}) {
		t.Fatalf("events %v, want [ready]", got)
	}
	if got := relOutIDs(alice.snap(t, relCh)); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("outgoing %v", got)
	}
}

func TestSpecialCases_DuplicateMessageHandling(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	b := relEncode(t, relMsg("bob", relCh, "b1", 1, "x"))
	u1 := alice.unwrap(t, b)
	before := alice.snap(t, relCh)
	u2 := alice.unwrap(t, b)
	if !u1.Delivered || u2.Delivered || u2.Kind != KindDuplicate || len(u2.Missing) != 0 || string(u2.Content) != "x" {
		t.Fatalf("first %+v, second %+v", u1, u2)
	}
	if alice.rec.count("ready") != 1 || alice.rec.len() != 1 {
		t.Fatalf("events %v, want one ready", alice.rec.kinds())
	}
	relWantEqual(t, "state after a duplicate", before, alice.snap(t, relCh))

	// A duplicate of a buffered message: no second missing-dependencies event.
	w := relEncode(t, relMsg("bob", relCh, "b3", 3, "x", "b2"))
	alice.unwrap(t, w)
	before = alice.snap(t, relCh)
	u := alice.unwrap(t, w)
	if u.Kind != KindDuplicate || u.Delivered || len(u.Missing) != 0 {
		t.Fatalf("duplicate of a buffered message: %+v", u)
	}
	if alice.rec.count("missing") != 1 {
		t.Fatalf("missing-dependency events %d, want 1", alice.rec.count("missing"))
	}
	relWantEqual(t, "state after a buffered duplicate", before, alice.snap(t, relCh))
	// Delivered once when unblocked, never again.
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "b2", 2, "x", "b1")))
	alice.unwrap(t, w)
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "b2", 2, "x", "b1")))
	if got := alice.rec.ids("ready"); !slices.Equal(got, []string{"b1", "b2", "b3"}) {
		t.Fatalf("ready %v", got)
	}

	// Our own message echoed back, also after it was acknowledged.
	a := alice.wrap(t, relCh, "a1", []byte("mine"))
	alice.rec.reset()
	before = alice.snap(t, relCh)
	if u := alice.unwrap(t, a); u.Kind != KindDuplicate {
		t.Fatalf("own echo: %+v", u)
	}
	relWantEqual(t, "state after own echo", before, alice.snap(t, relCh))
	alice.unwrap(t, relEncode(t, relMsg("carol", relCh, "c1", 4, "x", "a1")))
	alice.rec.reset()
	if u := alice.unwrap(t, a); u.Kind != KindDuplicate || alice.rec.len() != 0 {
		t.Fatalf("own echo after the ack: %+v, events %v", u, alice.rec.kinds())
	}
}

func TestSpecialCases_ErrorHandling(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	alice.wrap(t, relCh, "a1", []byte("x"))
	before := alice.snap(t, relCh)
	_, err := alice.WrapOutgoingMessage(relCtx, relCh, "empty", nil)
	relWantCode(t, err, sdserr.InvalidArgument)
	_, err = alice.WrapOutgoingMessage(relCtx, relCh, "empty", []byte{})
	relWantCode(t, err, sdserr.InvalidArgument)
	_, err = alice.WrapOutgoingMessage(relCtx, relCh, "big", make([]byte, DefaultConfig().MaxMessageSize+1))
	relWantCode(t, err, sdserr.MessageTooLarge)
	if _, err := alice.WrapOutgoingMessage(relCtx, relCh, "max", make([]byte, DefaultConfig().MaxMessageSize)); err != nil {
		t.Fatalf("content of exactly MaxMessageSize: %v", err)
	}
	after := alice.snap(t, relCh)
	if got := relLogIDs(after); !slices.Equal(got, []string{"a1", "max"}) {
		t.Fatalf("log %v", got)
	}
	after.Log, after.Outgoing, after.LamportTimestamp = before.Log, before.Outgoing, before.LamportTimestamp
	relWantEqual(t, "state besides the valid send", before, after)
	if alice.rec.len() != 0 {
		t.Fatalf("events %v", alice.rec.kinds())
	}
}

// --- cleanup -------------------------------------------------------------------------

func TestCleanup_CleanupWorksCorrectly(t *testing.T) {
	mem := store.NewMemory()
	alice := relNew(t, "alice", DefaultConfig(), WithBackend(mem))
	b := alice.wrap(t, relCh, "m1", []byte("x"))
	batches, loads := mem.Batches(), mem.Loads()
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	if err := alice.Close(); err != nil {
		t.Fatalf("Close is idempotent: %v", err)
	}
	eph, err := New("bob", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ephBytes, err := eph.WrapEphemeral(relCtx, relCh, "e1", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"WrapOutgoingMessage": func() error { _, err := alice.WrapOutgoingMessage(relCtx, relCh, "m2", []byte("x")); return err },
		"BuildSyncMessage":    func() error { _, err := alice.BuildSyncMessage(relCtx, relCh); return err },
		"WrapEphemeral":       func() error { _, err := alice.WrapEphemeral(relCtx, relCh, "e", []byte("x")); return err },
		"UnwrapReceivedMessage": func() error {
			_, err := alice.UnwrapReceivedMessage(relCtx, relEncode(t, relMsg("bob", relCh, "b1", 1, "x")))
			return err
		},
		"UnwrapReceivedMessage(own)":       func() error { _, err := alice.UnwrapReceivedMessage(relCtx, b); return err },
		"UnwrapReceivedMessage(ephemeral)": func() error { _, err := alice.UnwrapReceivedMessage(relCtx, ephBytes); return err },
		"UnwrapReceivedMessageWithHint": func() error {
			_, err := alice.UnwrapReceivedMessageWithHint(relCtx, b, []byte("h"))
			return err
		},
		"MarkDependenciesMet": func() error { return alice.MarkDependenciesMet(relCtx, relCh, []string{"x"}) },
		"RunSweeps":           func() error { return alice.RunSweeps(relCtx) },
		"StartPeriodicTasks":  func() error { return alice.StartPeriodicTasks(relCtx) },
		"EnsureChannel":       func() error { return alice.EnsureChannel(relCtx, relCh) },
		"RemoveChannel":       func() error { return alice.RemoveChannel(relCtx, relCh) },
		"Reset":               func() error { return alice.Reset(relCtx) },
		"Snapshot":            func() error { _, err := alice.Snapshot(relCh); return err },
		"BloomContains":       func() error { _, err := alice.BloomContains(relCh, "m1"); return err },
	} {
		t.Run(name, func(t *testing.T) { relWantCode(t, call(), sdserr.Closed) })
	}
	if alice.rec.len() != 0 {
		t.Fatalf("events after Close: %v", alice.rec.kinds())
	}
	// Close releases memory only: persistence is untouched and a new manager resumes.
	if mem.Batches() != batches || mem.Loads() != loads {
		t.Fatalf("Close touched the backend: batches %d→%d, loads %d→%d", batches, mem.Batches(), loads, mem.Loads())
	}
	again := relNew(t, "alice", DefaultConfig(), WithBackend(mem))
	if err := again.EnsureChannel(relCtx, relCh); err != nil {
		t.Fatal(err)
	}
	s := again.snap(t, relCh)
	if !slices.Equal(relLogIDs(s), []string{"m1"}) || !slices.Equal(relOutIDs(s), []string{"m1"}) {
		t.Fatalf("state after restart: %v", s)
	}
}

func TestCleanup_ResetClearsEveryChannel(t *testing.T) {
	mem := store.NewMemory()
	alice := relNew(t, "alice", DefaultConfig(), WithBackend(mem))
	alice.wrap(t, "ch1", "m1", []byte("x"))
	alice.wrap(t, "ch2", "m2", []byte("x"))
	if err := alice.Reset(relCtx); err != nil {
		t.Fatal(err)
	}
	if got := alice.Channels(); len(got) != 0 {
		t.Fatalf("channels after Reset: %v", got)
	}
	if got := mem.Channels(); len(got) != 0 {
		t.Fatalf("persisted channels after Reset: %v", got)
	}
	if mem.DropChannelCalls("ch1") != 1 || mem.DropChannelCalls("ch2") != 1 {
		t.Fatalf("DropChannel calls %d, %d", mem.DropChannelCalls("ch1"), mem.DropChannelCalls("ch2"))
	}
	// The manager keeps working; a recreated channel starts from scratch.
	if err := alice.EnsureChannel(relCtx, "ch1"); err != nil {
		t.Fatal(err)
	}
	relWantEqual(t, "recreated channel", &pb.ChannelSnapshot{ChannelId: "ch1"}, alice.snap(t, "ch1"))
	alice.wrap(t, "ch1", "m1", []byte("the id is free again"))
}

// --- Multi-Channel ReliabilityManager Tests ------------------------------------------

func TestMultiChannel_CanCreateMultiChannelManagerWithoutChannelID(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	if got := alice.Channels(); len(got) != 0 {
		t.Fatalf("channels %v", got)
	}
	_, err := alice.Snapshot("nope")
	relWantCode(t, err, sdserr.NotFound)
	_, err = alice.BloomContains("nope", "x")
	relWantCode(t, err, sdserr.NotFound)
}

func TestMultiChannel_ChannelManagement(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	for _, ch := range []string{"ch1", "ch2"} {
		if err := alice.EnsureChannel(relCtx, ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.EnsureChannel(relCtx, "ch1"); err != nil { // idempotent
		t.Fatal(err)
	}
	if got := alice.Channels(); !slices.Equal(got, []string{"ch1", "ch2"}) {
		t.Fatalf("channels %v", got)
	}
	if err := alice.RemoveChannel(relCtx, "ch1"); err != nil {
		t.Fatal(err)
	}
	if got := alice.Channels(); !slices.Equal(got, []string{"ch2"}) {
		t.Fatalf("channels after removing ch1: %v", got)
	}
	// Removing a channel that is not loaded is fine and loads nothing.
	if err := alice.RemoveChannel(relCtx, "never-seen"); err != nil {
		t.Fatal(err)
	}
	if got := alice.Channels(); !slices.Equal(got, []string{"ch2"}) {
		t.Fatalf("channels %v", got)
	}
}

func TestMultiChannel_StatelessMessageUnwrappingWithChannelExtraction(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	b1 := alice.wrap(t, "ch1", "m1", []byte("for ch1"))
	b2 := alice.wrap(t, "ch2", "m2", []byte("for ch2"))
	if got := alice.Channels(); !slices.Equal(got, []string{"ch1", "ch2"}) {
		t.Fatalf("alice's channels %v (auto-created by wrap)", got)
	}
	bob := relNew(t, "bob", DefaultConfig())
	for _, c := range []struct {
		b       []byte
		ch, txt string
	}{{b1, "ch1", "for ch1"}, {b2, "ch2", "for ch2"}} {
		u := bob.unwrap(t, c.b)
		if u.ChannelID != c.ch || string(u.Content) != c.txt || len(u.Missing) != 0 || !u.Delivered {
			t.Fatalf("unwrap: %+v", u)
		}
	}
	if got := bob.Channels(); !slices.Equal(got, []string{"ch1", "ch2"}) {
		t.Fatalf("bob's channels %v", got)
	}
}

func TestMultiChannel_ChannelIsolation(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	alice.wrap(t, "ch1", "m1", []byte("x"))
	alice.wrap(t, "ch2", "m2", []byte("x"))
	if got := relLogIDs(alice.snap(t, "ch1")); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("ch1 log %v", got)
	}
	if got := relLogIDs(alice.snap(t, "ch2")); !slices.Equal(got, []string{"m2"}) {
		t.Fatalf("ch2 log %v", got)
	}
	// The same message id may be used on two channels.
	alice.wrap(t, "ch2", "m1", []byte("x"))
	// A message on ch2 does not acknowledge ch1's messages.
	alice.unwrap(t, relEncode(t, relMsg("bob", "ch2", "b", 1, "x", "m2")))
	if got := relOutIDs(alice.snap(t, "ch1")); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("ch1 outgoing %v", got)
	}
	if got := relOutIDs(alice.snap(t, "ch2")); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("ch2 outgoing %v", got)
	}
}

func TestMultiChannel_MultiChannelCallbacks(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	alice.wrap(t, "ch1", "a1", []byte("x"))
	alice.wrap(t, "ch2", "a2", []byte("x"))
	alice.unwrap(t, relEncode(t, relMsg("bob", "ch1", "b1", 1, "x", "a1")))
	alice.unwrap(t, relEncode(t, relMsg("bob", "ch2", "b2", 1, "x", "a2")))
	if alice.rec.count("ready") != 2 || alice.rec.count("acked") != 2 || alice.rec.count("missing") != 0 {
		t.Fatalf("events %v", alice.rec.kinds())
	}
	for _, ev := range alice.rec.all() {
		id := relEventID(ev)
		ch := ev.GetMessageReady().GetChannelId() + ev.GetMessageAcknowledged().GetChannelId()
		if want := "ch" + id[1:]; ch != want {
			t.Fatalf("event for %s on channel %q, want %q", id, ch, want)
		}
	}
}

func TestMultiChannel_ChannelSpecificDependencyManagement(t *testing.T) {
	mem := store.NewMemory()
	alice := relNew(t, "alice", DefaultConfig(), WithBackend(mem))
	// ch1 was never touched: MarkDependenciesMet bootstraps it.
	if err := alice.MarkDependenciesMet(relCtx, "ch1", []string{"dep1", "dep2", "dep3"}); err != nil {
		t.Fatal(err)
	}
	if mem.Loads() != 1 {
		t.Fatalf("loads %d, want 1 (bootstrap)", mem.Loads())
	}
	if err := alice.EnsureChannel(relCtx, "ch2"); err != nil {
		t.Fatal(err)
	}
	if !alice.bloomHas(t, "ch1", "dep1") || alice.bloomHas(t, "ch2", "dep1") {
		t.Fatal("dep1 must be in ch1's bloom only")
	}
	// The ids now satisfy dependencies on ch1 only.
	u1 := alice.unwrap(t, relEncode(t, relMsg("bob", "ch1", "m", 1, "x", "dep1", "dep3")))
	u2 := alice.unwrap(t, relEncode(t, relMsg("bob", "ch2", "m", 1, "x", "dep1", "dep3")))
	if !u1.Delivered || u2.Delivered || len(u2.Missing) != 2 {
		t.Fatalf("ch1: %+v\nch2: %+v", u1, u2)
	}
	// Satisfied ids are never offered in causal histories.
	c := relDecode(t, alice.wrap(t, "ch1", "a1", []byte("x")))
	if got := relEntryIDs(c.GetCausalHistory()); !slices.Equal(got, []string{"m"}) {
		t.Fatalf("causal history %v, want [m]", got)
	}
}

// --- Behaviour beyond nim-sds (issue 2) ----------------------------------------------

func TestCascade_DeliversInCausalOrder(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	// A chain m1 ← m2 ← m3 ← m4 received newest first.
	for i := 4; i >= 2; i-- {
		u := alice.unwrap(t, relEncode(t, relMsg("bob", relCh, fmt.Sprint("m", i), uint64(i), "x", fmt.Sprint("m", i-1))))
		if u.Delivered {
			t.Fatalf("m%d delivered early", i)
		}
	}
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "m1", 1, "x")))
	if got := alice.rec.ids("ready"); !slices.Equal(got, []string{"m1", "m2", "m3", "m4"}) {
		t.Fatalf("ready %v, want [m1 m2 m3 m4]", got)
	}
	if s := alice.snap(t, relCh); len(s.GetIncoming()) != 0 || s.GetLamportTimestamp() != 4 {
		t.Fatalf("after the cascade: incoming %v, lamport %d", relInIDs(s), s.GetLamportTimestamp())
	}

	// A diamond: d2 and d3 wait for d1, d4 waits for both.
	bob := relNew(t, "bob", DefaultConfig())
	bob.unwrap(t, relEncode(t, relMsg("x", relCh, "d4", 4, "x", "d2", "d3")))
	bob.unwrap(t, relEncode(t, relMsg("x", relCh, "d3", 3, "x", "d1")))
	bob.unwrap(t, relEncode(t, relMsg("x", relCh, "d2", 2, "x", "d1")))
	bob.unwrap(t, relEncode(t, relMsg("x", relCh, "d1", 1, "x")))
	if got := bob.rec.ids("ready"); !slices.Equal(got, []string{"d1", "d2", "d3", "d4"}) {
		t.Fatalf("ready %v, want [d1 d2 d3 d4]", got)
	}
	if got := relLogIDs(bob.snap(t, relCh)); !slices.Equal(got, []string{"d1", "d2", "d3", "d4"}) {
		t.Fatalf("log %v", got)
	}
}

func TestMarkDependenciesMet_BootstrapsAndDeliversBufferedMessages(t *testing.T) {
	mem := store.NewMemory()
	alice := relNew(t, "alice", DefaultConfig(), WithBackend(mem))
	if err := alice.MarkDependenciesMet(relCtx, "fresh", []string{"x1"}); err != nil {
		t.Fatalf("MarkDependenciesMet on a never-touched channel: %v", err)
	}
	if got := alice.Channels(); !slices.Equal(got, []string{"fresh"}) {
		t.Fatalf("channels %v", got)
	}
	// The id counts as present for later messages and is persisted.
	u := alice.unwrap(t, relEncode(t, relMsg("bob", "fresh", "y", 1, "x", "x1")))
	if !u.Delivered {
		t.Fatalf("message depending on a met id: %+v", u)
	}
	if got := relLogIDs(mem.Snapshot("fresh")); !slices.Contains(got, "x1") {
		t.Fatalf("persisted log %v lacks x1", got)
	}
	// A met id that is itself buffered (only its own dependencies are missing): the
	// application vouches for it, so it is delivered, and what waited on it too.
	alice.unwrap(t, relEncode(t, relMsg("bob", "fresh", "b2", 3, "x", "b1")))
	alice.unwrap(t, relEncode(t, relMsg("bob", "fresh", "b3", 4, "x", "b2")))
	alice.rec.reset()
	if err := alice.MarkDependenciesMet(relCtx, "fresh", []string{"b2"}); err != nil {
		t.Fatal(err)
	}
	if got := alice.rec.ids("ready"); !slices.Equal(got, []string{"b2", "b3"}) {
		t.Fatalf("ready %v, want [b2 b3]", got)
	}
	// Empty list and ids already known are fine.
	if err := alice.MarkDependenciesMet(relCtx, "fresh", nil); err != nil {
		t.Fatal(err)
	}
	before := alice.snap(t, "fresh")
	if err := alice.MarkDependenciesMet(relCtx, "fresh", []string{"x1", "b3"}); err != nil {
		t.Fatal(err)
	}
	relWantEqual(t, "state after re-marking known ids", before, alice.snap(t, "fresh"))
}

func TestIncomingTimeout_MessageLostThenDelivered(t *testing.T) {
	cfg := relQuietConfig()
	cfg.IncomingTimeout = 10 * time.Second
	alice := relNew(t, "alice", cfg)
	m := relMsg("bob", relCh, "b2", 2, "x", "b1", "b0")
	m.CausalHistory[0].RetrievalHint = []byte("hint-b1")
	alice.unwrap(t, relEncode(t, m))
	alice.clk.Advance(5 * time.Second)
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "b3", 3, "x", "b2")))
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "b0", 0, "x")))
	alice.rec.reset()
	alice.clk.Advance(5*time.Second - time.Millisecond)
	alice.sweep(t)
	if alice.rec.len() != 0 {
		t.Fatalf("events before the timeout: %v", alice.rec.kinds())
	}
	alice.clk.Advance(time.Millisecond)
	alice.sweep(t)
	// b2 is lost (b1 never came) and delivered; b3, waiting on b2, follows.
	if got := alice.rec.kinds(); !slices.Equal(got, []string{"lost", "ready", "ready"}) {
		t.Fatalf("events %v, want [lost ready ready]", got)
	}
	lost := alice.rec.of("lost")[0].GetMessageLost()
	if lost.GetMessageId() != "b2" || !lost.GetDelivered() || lost.GetChannelId() != relCh ||
		len(lost.GetMissing()) != 1 || lost.GetMissing()[0].GetMessageId() != "b1" || string(lost.GetMissing()[0].GetRetrievalHint()) != "hint-b1" {
		t.Fatalf("MessageLost %v", lost)
	}
	if got := alice.rec.ids("ready"); !slices.Equal(got, []string{"b2", "b3"}) {
		t.Fatalf("ready %v", got)
	}
	s := alice.snap(t, relCh)
	if len(s.GetIncoming()) != 0 || !slices.Equal(relLogIDs(s), []string{"b0", "b2", "b3"}) {
		t.Fatalf("state %v", s)
	}
}

func TestIncomingTimeout_LostDropDropsTheMessage(t *testing.T) {
	cfg := relQuietConfig()
	cfg.IncomingTimeout = time.Minute
	cfg.LostPolicy = LostDrop
	alice := relNew(t, "alice", cfg)
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "b2", 2, "x", "b1")))
	alice.rec.reset()
	alice.clk.Advance(time.Minute)
	alice.sweep(t)
	if got := alice.rec.kinds(); !slices.Equal(got, []string{"lost"}) {
		t.Fatalf("events %v, want [lost]", got)
	}
	if lost := alice.rec.of("lost")[0].GetMessageLost(); lost.GetDelivered() || lost.GetMessageId() != "b2" {
		t.Fatalf("MessageLost %v", lost)
	}
	s := alice.snap(t, relCh)
	if len(s.GetIncoming()) != 0 || len(s.GetLog()) != 0 {
		t.Fatalf("dropped message kept: %v", s)
	}
	// Without a timeout nothing is ever lost.
	bob := relNew(t, "bob", relQuietConfig())
	bob.unwrap(t, relEncode(t, relMsg("x", relCh, "b2", 2, "x", "b1")))
	bob.clk.Advance(24 * time.Hour)
	bob.rec.reset()
	bob.sweep(t)
	if bob.rec.count("lost") != 0 || len(bob.snap(t, relCh).GetIncoming()) != 1 {
		t.Fatalf("message lost without IncomingTimeout: %v", bob.rec.kinds())
	}
}

func TestSyncMessages_BuildAndReceive(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	bob := relNew(t, "bob", DefaultConfig())
	a1 := alice.wrap(t, relCh, "a1", []byte("x"))
	b1 := bob.wrap(t, relCh, "b1", []byte("y"))
	alice.unwrap(t, b1) // alice has a1 and b1; bob lacks a1
	before := alice.snap(t, relCh)
	sb, err := alice.BuildSyncMessage(relCtx, relCh)
	if err != nil {
		t.Fatal(err)
	}
	sync := relDecode(t, sb)
	if len(sync.GetContent()) != 0 || sync.LamportTimestamp == nil || sync.GetSenderId() != "alice" || sync.GetChannelId() != relCh {
		t.Fatalf("sync message %v", sync)
	}
	if sync.GetLamportTimestamp() != before.GetLamportTimestamp()+1 {
		t.Fatalf("sync lamport %d, want %d", sync.GetLamportTimestamp(), before.GetLamportTimestamp()+1)
	}
	if got := relEntryIDs(sync.GetCausalHistory()); !slices.Equal(got, []string{"a1", "b1"}) {
		t.Fatalf("sync causal history %v", got)
	}
	if f := relDecodeBloom(t, sync.GetBloomFilter()); !f.Test("a1") || !f.Test("b1") {
		t.Fatal("sync bloom lacks a1 or b1")
	}
	// The sender only advanced its clock.
	after := alice.snap(t, relCh)
	if after.GetLamportTimestamp() != sync.GetLamportTimestamp() {
		t.Fatalf("lamport %d after building the sync", after.GetLamportTimestamp())
	}
	after.LamportTimestamp = before.LamportTimestamp
	relWantEqual(t, "sender state besides the clock", before, after)
	if alice.bloomHas(t, relCh, sync.GetMessageId()) {
		t.Fatal("sync id added to the sender's bloom")
	}
	// Own echo of a sync: nothing.
	alice.rec.reset()
	before = alice.snap(t, relCh)
	if u := alice.unwrap(t, sb); u.Kind != KindSync || u.Delivered {
		t.Fatalf("own sync echo: %+v", u)
	}
	relWantEqual(t, "state after own sync echo", before, alice.snap(t, relCh))
	if alice.rec.len() != 0 {
		t.Fatalf("own sync echo fired %v", alice.rec.kinds())
	}

	// The receiver: acknowledges b1, notices the gap a1, delivers and logs nothing.
	bobBefore := bob.snap(t, relCh)
	u := bob.unwrap(t, sb)
	if u.Kind != KindSync || u.Delivered || len(u.Content) != 0 {
		t.Fatalf("bob's unwrap of the sync: %+v", u)
	}
	if got := bob.rec.kinds(); !slices.Equal(got, []string{"acked"}) {
		t.Fatalf("bob's events %v, want [acked]", got)
	}
	s := bob.snap(t, relCh)
	if !slices.Equal(relLogIDs(s), relLogIDs(bobBefore)) || len(s.GetOutgoing()) != 0 || len(s.GetIncoming()) != 0 ||
		s.GetLamportTimestamp() != bobBefore.GetLamportTimestamp() {
		t.Fatalf("bob's state after the sync: %v", s)
	}
	if bob.bloomHas(t, relCh, sync.GetMessageId()) {
		t.Fatal("sync id added to the receiver's bloom")
	}
	if got := relOrepIDs(s); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("bob's repair requests %v, want [a1]", got)
	}
	// A second copy changes nothing.
	bob.rec.reset()
	before = bob.snap(t, relCh)
	bob.unwrap(t, sb)
	relWantEqual(t, "state after a repeated sync", before, bob.snap(t, relCh))
	if bob.rec.len() != 0 {
		t.Fatalf("repeated sync fired %v", bob.rec.kinds())
	}
	// Bob's own sync carries the due repair request.
	bob.clk.Advance(DefaultConfig().RepairTMax)
	bs, err := bob.BuildSyncMessage(relCtx, relCh)
	if err != nil {
		t.Fatal(err)
	}
	if got := relEntryIDs(relDecode(t, bs).GetRepairRequest()); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("bob's sync repair requests %v", got)
	}
	// The request is re-armed (a lost request or answer is retried, up to
	// MaxRepairAttempts), with a fresh T_req from now.
	orep := bob.snap(t, relCh).GetOutgoingRepair()
	wantAt := bob.clk.Now().Add(hash.WakuTReq("bob", "a1", DefaultConfig().RepairTMin, DefaultConfig().RepairTMax)).UnixMilli()
	if len(orep) != 1 || orep[0].GetAttempts() != 1 || orep[0].GetRequestAtUnixMs() != wantAt {
		t.Fatalf("repair request after sending: %v (want attempts 1, due %d)", orep, wantAt)
	}
	// Sync ids differ.
	sb2, err := alice.BuildSyncMessage(relCtx, relCh)
	if err != nil {
		t.Fatal(err)
	}
	if relDecode(t, sb2).GetMessageId() == sync.GetMessageId() {
		t.Fatal("two sync messages share an id")
	}
	_ = a1
}

func TestEphemeralMessages_DeliveredImmediately(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	b, err := alice.WrapEphemeral(relCtx, relCh, "e1", []byte("typing..."))
	if err != nil {
		t.Fatal(err)
	}
	e := relDecode(t, b)
	if e.LamportTimestamp != nil || len(e.GetCausalHistory()) != 0 || e.BloomFilter != nil || e.GetSenderId() != "alice" ||
		e.GetMessageId() != "e1" || string(e.GetContent()) != "typing..." {
		t.Fatalf("ephemeral message %v", e)
	}
	if got := alice.Channels(); len(got) != 0 {
		t.Fatalf("WrapEphemeral loaded channels %v", got)
	}
	_, err = alice.WrapEphemeral(relCtx, relCh, "e2", nil)
	relWantCode(t, err, sdserr.InvalidArgument)
	_, err = alice.WrapEphemeral(relCtx, relCh, "e2", make([]byte, DefaultConfig().MaxMessageSize+1))
	relWantCode(t, err, sdserr.MessageTooLarge)
	_, err = alice.WrapEphemeral(relCtx, "", "e2", []byte("x"))
	relWantCode(t, err, sdserr.InvalidArgument)

	bob := relNew(t, "bob", DefaultConfig())
	bob.wrap(t, relCh, "b1", []byte("x"))
	before := bob.snap(t, relCh)
	u := bob.unwrap(t, b)
	if u.Kind != KindEphemeral || !u.Delivered || string(u.Content) != "typing..." || u.SenderID != "alice" {
		t.Fatalf("unwrap: %+v", u)
	}
	ready := bob.rec.of("ready")
	if len(ready) != 1 || ready[0].GetMessageReady().GetMessageId() != "e1" || string(ready[0].GetMessageReady().GetContent()) != "typing..." {
		t.Fatalf("events %v", bob.rec.all())
	}
	relWantEqual(t, "state after an ephemeral message", before, bob.snap(t, relCh))
	if bob.bloomHas(t, relCh, "e1") {
		t.Fatal("ephemeral id added to the bloom")
	}
	// An ephemeral message for a channel we never used loads nothing.
	carol := relNew(t, "carol", DefaultConfig())
	carol.unwrap(t, b)
	if got := carol.Channels(); len(got) != 0 {
		t.Fatalf("ephemeral receipt loaded channels %v", got)
	}
	// Whatever history a hand-made ephemeral message claims, it is delivered at once.
	odd := &pb.SdsMessage{SenderId: "x", MessageId: "e9", ChannelId: relCh, Content: []byte("x"),
		CausalHistory: []*pb.HistoryEntry{relH("missing", "", nil)}}
	if u := carol.unwrap(t, relEncode(t, odd)); !u.Delivered || u.Kind != KindEphemeral || len(u.Missing) != 0 {
		t.Fatalf("ephemeral with a causal history: %+v", u)
	}
}

func TestSyncMessages_OwnEchoChangesNothing(t *testing.T) {
	// With a participant id: a pending repair request is not postponed by our own sync
	// (which carries it) coming back.
	alice := relNew(t, "alice", relSDSRConfig())
	m := relMsg("bob", relCh, "b2", 2, "x")
	m.CausalHistory = []*pb.HistoryEntry{relH("b1", "bob", nil)}
	alice.wrap(t, relCh, "a1", []byte("x"))
	alice.unwrap(t, relEncode(t, m))
	alice.clk.Advance(relTMax)
	sb, err := alice.BuildSyncMessage(relCtx, relCh)
	if err != nil {
		t.Fatal(err)
	}
	if rr := relDecode(t, sb).GetRepairRequest(); len(rr) != 1 {
		t.Fatalf("sync repair_request %v", rr)
	}
	alice.rec.reset()
	before := alice.snap(t, relCh)
	alice.clk.Advance(time.Second)
	if u := alice.unwrap(t, sb); u.Kind != KindSync || u.Delivered {
		t.Fatalf("own sync echo: %+v", u)
	}
	relWantEqual(t, "state after own sync echo", before, alice.snap(t, relCh))
	if alice.rec.len() != 0 {
		t.Fatalf("own sync echo fired %v", alice.rec.kinds())
	}

	// Without a participant id (SDS-R off, as nim-sds's FFI runs): our own sync, whose
	// causal history and bloom hold our messages, must not acknowledge them.
	anon := relNew(t, "", DefaultConfig())
	anon.wrap(t, relCh, "m1", []byte("x"))
	s1, err := anon.BuildSyncMessage(relCtx, relCh)
	if err != nil {
		t.Fatal(err)
	}
	before = anon.snap(t, relCh)
	anon.unwrap(t, s1)
	relWantEqual(t, "anonymous state after own sync echo", before, anon.snap(t, relCh))
	if anon.rec.len() != 0 {
		t.Fatalf("anonymous own sync echo fired %v", anon.rec.kinds())
	}
	// Another anonymous peer's sync still acknowledges.
	other := relNew(t, "", DefaultConfig(), WithSeed(2)) // seed 1 would repeat anon's sync ids
	other.unwrap(t, relEncode(t, before.GetOutgoing()[0].GetMessage()))
	other.unwrap(t, anon.wrap(t, relCh, "m2", []byte("x")))
	s2, err := other.BuildSyncMessage(relCtx, relCh)
	if err != nil {
		t.Fatal(err)
	}
	anon.unwrap(t, s2)
	if got := anon.rec.ids("acked"); !slices.Equal(got, []string{"m1", "m2"}) {
		t.Fatalf("acked %v, want [m1 m2]", got)
	}
	// With participant ids, a peer's sync is never mistaken for ours, even when both
	// managers draw the same sync ids (same seed).
	bob := relNew(t, "bob", DefaultConfig())
	carol := relNew(t, "carol", DefaultConfig())
	carol.unwrap(t, bob.wrap(t, relCh, "b1", []byte("x")))
	if _, err := bob.BuildSyncMessage(relCtx, relCh); err != nil {
		t.Fatal(err)
	}
	cs, err := carol.BuildSyncMessage(relCtx, relCh)
	if err != nil {
		t.Fatal(err)
	}
	bob.unwrap(t, cs)
	if got := bob.rec.ids("acked"); !slices.Equal(got, []string{"b1"}) {
		t.Fatalf("bob's acks %v, want [b1]", got)
	}
}

func TestPeriodicTasks_RestartAfterContextEnds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SweepInterval = 5 * time.Millisecond
	cfg.SyncInterval = 20 * time.Millisecond
	cfg.SyncJitter = 0
	rec := &relRecorder{}
	m, err := New("alice", cfg, WithHandler(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.EnsureChannel(relCtx, relCh); err != nil {
		t.Fatal(err)
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	if err := m.StartPeriodicTasks(ctx1); err != nil {
		t.Fatal(err)
	}
	relWait(t, 5*time.Second, "a SyncDue event", func() bool { return rec.count("syncDue") > 0 })
	cancel1()
	time.Sleep(4 * cfg.SweepInterval)
	n := rec.count("syncDue")
	// The tasks ended with their context: starting them again works.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	relWait(t, 5*time.Second, "StartPeriodicTasks to restart the tasks", func() bool {
		if err := m.StartPeriodicTasks(ctx2); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * cfg.SyncInterval)
		return rec.count("syncDue") > n
	})
}

func TestMarkDependenciesMet_SurvivesInAFullLog(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxMessageHistory = 3
	alice := relNew(t, "alice", cfg)
	for _, id := range []string{"a1", "a2", "a3"} {
		alice.wrap(t, relCh, id, []byte("x"))
	}
	if err := alice.MarkDependenciesMet(relCtx, relCh, []string{"X"}); err != nil {
		t.Fatal(err)
	}
	// The met id evicts the oldest message, not itself.
	log := relLogIDs(alice.snap(t, relCh))
	if len(log) != 3 || !slices.Contains(log, "X") || slices.Contains(log, "a1") {
		t.Fatalf("log %v, want X kept and a1 evicted", log)
	}
	u := alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "b1", uint64(relStart.UnixMilli())+5, "x", "X")))
	if !u.Delivered {
		t.Fatalf("a message depending on a met id waits again: %+v", u)
	}
	// The stub is still never offered in a causal history nor served for repair.
	c := relDecode(t, alice.wrap(t, relCh, "a4", []byte("x"))).GetCausalHistory()
	if slices.Contains(relEntryIDs(c), "X") {
		t.Fatalf("causal history %v offers the stub", relEntryIDs(c))
	}
}
