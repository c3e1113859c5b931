package sds

// Helpers of the behaviour tests (reliability_test.go, sdsr_test.go,
// bloom_scenarios_test.go, badinput_test.go, concurrency_test.go). Every identifier
// starts with "rel" so that other test files of the package cannot collide with them.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/profile"
	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/wire"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

const relCh = "testChannel"

var relStart = time.Unix(1_700_000_000, 0)

// relRecorder records every event a manager publishes; safe for concurrent use.
type relRecorder struct {
	mu  sync.Mutex
	evs []*pb.Event
}

func (r *relRecorder) HandleEvent(ev *pb.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *relRecorder) all() []*pb.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

func (r *relRecorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

func (r *relRecorder) reset() {
	r.mu.Lock()
	r.evs = nil
	r.mu.Unlock()
}

// relKind names an event's type, as the oneof field name.
func relKind(ev *pb.Event) string {
	switch ev.GetEvent().(type) {
	case *pb.Event_MessageReady:
		return "ready"
	case *pb.Event_MessageAcknowledged:
		return "acked"
	case *pb.Event_MessagePossiblyAcknowledged:
		return "possiblyAcked"
	case *pb.Event_MessageUnacknowledged:
		return "unacked"
	case *pb.Event_ResendRequested:
		return "resend"
	case *pb.Event_MissingDependencies:
		return "missing"
	case *pb.Event_MessageLost:
		return "lost"
	case *pb.Event_SyncDue:
		return "syncDue"
	case *pb.Event_RepairReady:
		return "repairReady"
	case *pb.Event_PersistenceFailed:
		return "persistenceFailed"
	}
	return "?"
}

// count returns the number of events of the kind.
func (r *relRecorder) count(kind string) int {
	n := 0
	for _, ev := range r.all() {
		if relKind(ev) == kind {
			n++
		}
	}
	return n
}

// of returns the events of the kind, in publication order.
func (r *relRecorder) of(kind string) []*pb.Event {
	var out []*pb.Event
	for _, ev := range r.all() {
		if relKind(ev) == kind {
			out = append(out, ev)
		}
	}
	return out
}

// ids returns the message ids of the events of the kind, in order.
func (r *relRecorder) ids(kind string) []string {
	var out []string
	for _, ev := range r.of(kind) {
		out = append(out, relEventID(ev))
	}
	return out
}

func relEventID(ev *pb.Event) string {
	switch e := ev.GetEvent().(type) {
	case *pb.Event_MessageReady:
		return e.MessageReady.GetMessageId()
	case *pb.Event_MessageAcknowledged:
		return e.MessageAcknowledged.GetMessageId()
	case *pb.Event_MessagePossiblyAcknowledged:
		return e.MessagePossiblyAcknowledged.GetMessageId()
	case *pb.Event_MessageUnacknowledged:
		return e.MessageUnacknowledged.GetMessageId()
	case *pb.Event_ResendRequested:
		return e.ResendRequested.GetMessageId()
	case *pb.Event_MissingDependencies:
		return e.MissingDependencies.GetMessageId()
	case *pb.Event_MessageLost:
		return e.MessageLost.GetMessageId()
	case *pb.Event_RepairReady:
		return e.RepairReady.GetMessageId()
	case *pb.Event_SyncDue:
		return e.SyncDue.GetChannelId()
	}
	return ""
}

// kinds returns the kinds of all events, in order.
func (r *relRecorder) kinds() []string {
	var out []string
	for _, ev := range r.all() {
		out = append(out, relKind(ev))
	}
	return out
}

// relQuietConfig is DefaultConfig without SyncDue events in tests that advance the
// manual clock by hours.
func relQuietConfig() Config {
	cfg := DefaultConfig()
	cfg.SyncInterval = 10 * 365 * 24 * time.Hour
	return cfg
}

// relPeer is a manager under test with its clock and event recorder.
type relPeer struct {
	*Manager
	clk *clock.Manual
	rec *relRecorder
}

// relNew returns a manager on a manual clock starting at relStart (or clk, if given).
func relNew(t testing.TB, participant string, cfg Config, opts ...Option) *relPeer {
	t.Helper()
	return relNewAt(t, participant, cfg, clock.NewManual(relStart), opts...)
}

func relNewAt(t testing.TB, participant string, cfg Config, clk *clock.Manual, opts ...Option) *relPeer {
	t.Helper()
	rec := &relRecorder{}
	all := append([]Option{WithClock(clk), WithHandler(rec), WithSeed(1)}, opts...)
	m, err := New(participant, cfg, all...)
	if err != nil {
		t.Fatalf("New(%q): %v", participant, err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return &relPeer{Manager: m, clk: clk, rec: rec}
}

var relCtx = context.Background()

func (p *relPeer) wrap(t testing.TB, ch, id string, content []byte) []byte {
	t.Helper()
	b, err := p.WrapOutgoingMessage(relCtx, ch, id, content)
	if err != nil {
		t.Fatalf("wrap %s/%s: %v", ch, id, err)
	}
	return b
}

func (p *relPeer) unwrap(t testing.TB, b []byte) *Unwrapped {
	t.Helper()
	u, err := p.UnwrapReceivedMessage(relCtx, b)
	if err != nil {
		t.Fatalf("unwrap: %v", err)
	}
	return u
}

func (p *relPeer) snap(t testing.TB, ch string) *pb.ChannelSnapshot {
	t.Helper()
	s, err := p.Snapshot(ch)
	if err != nil {
		t.Fatalf("Snapshot(%s): %v", ch, err)
	}
	return s
}

func (p *relPeer) sweep(t testing.TB) {
	t.Helper()
	if err := p.RunSweeps(relCtx); err != nil {
		t.Fatalf("RunSweeps: %v", err)
	}
}

func (p *relPeer) bloomHas(t testing.TB, ch, id string) bool {
	t.Helper()
	ok, err := p.BloomContains(ch, id)
	if err != nil {
		t.Fatalf("BloomContains(%s, %s): %v", ch, id, err)
	}
	return ok
}

// seedBloom adds ids directly to a loaded channel's bloom filter, as nim-sds's test
// helper seedBloom does (the log is not touched).
func (p *relPeer) seedBloom(t testing.TB, ch string, ids ...string) {
	t.Helper()
	c, err := p.loaded("seedBloom", ch)
	if err != nil {
		t.Fatal(err)
	}
	defer c.mu.Unlock()
	for _, id := range ids {
		c.st.bloom.Add(id)
	}
}

func relLogIDs(s *pb.ChannelSnapshot) []string {
	var out []string
	for _, m := range s.GetLog() {
		out = append(out, m.GetMessageId())
	}
	return out
}

func relOutIDs(s *pb.ChannelSnapshot) []string {
	var out []string
	for _, u := range s.GetOutgoing() {
		out = append(out, u.GetMessage().GetMessageId())
	}
	return out
}

func relInIDs(s *pb.ChannelSnapshot) []string {
	var out []string
	for _, im := range s.GetIncoming() {
		out = append(out, im.GetMessage().GetMessageId())
	}
	return out
}

func relOrepIDs(s *pb.ChannelSnapshot) []string {
	var out []string
	for _, e := range s.GetOutgoingRepair() {
		out = append(out, e.GetEntry().GetMessageId())
	}
	return out
}

func relIrepIDs(s *pb.ChannelSnapshot) []string {
	var out []string
	for _, e := range s.GetIncomingRepair() {
		out = append(out, e.GetEntry().GetMessageId())
	}
	return out
}

func relEntryIDs(es []*pb.HistoryEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.GetMessageId())
	}
	return out
}

// relH builds a history entry; sender "" leaves sender_id unset.
func relH(id, sender string, hint []byte) *pb.HistoryEntry {
	e := &pb.HistoryEntry{MessageId: id, RetrievalHint: hint}
	if sender != "" {
		e.SenderId = proto.String(sender)
	}
	return e
}

// relMsg builds a content message of sender on ch whose causal history references deps
// (sender unknown, no hint).
func relMsg(sender, ch, id string, lamport uint64, content string, deps ...string) *pb.SdsMessage {
	m := &pb.SdsMessage{
		SenderId:         sender,
		MessageId:        id,
		ChannelId:        ch,
		LamportTimestamp: proto.Uint64(lamport),
		Content:          []byte(content),
	}
	for _, d := range deps {
		m.CausalHistory = append(m.CausalHistory, relH(d, "", nil))
	}
	return m
}

func relEncode(t testing.TB, m *pb.SdsMessage) []byte {
	t.Helper()
	b, err := wire.Spec.Encode(m)
	if err != nil {
		t.Fatalf("encode %s: %v", m.GetMessageId(), err)
	}
	return b
}

func relDecode(t testing.TB, b []byte) *pb.SdsMessage {
	t.Helper()
	m, err := wire.Spec.Decode(b, wire.DefaultLimits())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

// relPeerBloom returns the encoded default-size bloom filter of a peer that saw ids.
func relPeerBloom(t testing.TB, ids ...string) []byte {
	t.Helper()
	r, err := bloom.NewRolling(10000, 0.001, profile.Spec.Hash)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		r.Add(id)
	}
	return profile.Spec.EncodeBloom(r.Filter())
}

// relDecodeBloom decodes a default-size spec-profile bloom filter.
func relDecodeBloom(t testing.TB, b []byte) *bloom.Filter {
	t.Helper()
	return relDecodeBloomSized(t, b, 10000, 0.001)
}

// relDecodeBloomSized decodes a spec-profile bloom filter of the given sizing.
func relDecodeBloomSized(t testing.TB, b []byte, capacity int, rate float64) *bloom.Filter {
	t.Helper()
	k, m, err := bloom.Size(capacity, rate)
	if err != nil {
		t.Fatal(err)
	}
	f, err := profile.Spec.DecodeBloom(b, k, m)
	if err != nil {
		t.Fatalf("decode bloom (%d bytes): %v", len(b), err)
	}
	return f
}

// relWantCode fails unless err carries code.
func relWantCode(t testing.TB, err error, code sdserr.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v", code)
	}
	if !errors.Is(err, sdserr.Is(code)) || sdserr.CodeOf(err) != code {
		t.Fatalf("got %v (code %v), want %v", err, sdserr.CodeOf(err), code)
	}
}

// relWantEqual fails unless the snapshots are identical.
func relWantEqual(t testing.TB, what string, before, after proto.Message) {
	t.Helper()
	if !proto.Equal(before, after) {
		t.Fatalf("%s changed:\nbefore %v\nafter  %v", what, before, after)
	}
}

// relWait polls cond every few milliseconds until it holds or the deadline passes.
func relWait(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
