package sds

// Core benchmarks (results and the comparison with @waku/sds in docs/benchmarks.md):
//
//	go test -run '^$' -bench . -benchmem ./core/sds
//
// Every benchmark uses DefaultConfig (causal history 2, bloom filter of 10 000 ids at
// 0.1 %, i.e. ~18.7 KB on every message) unless its name says otherwise, 100-byte
// payloads, a fresh message id per iteration and the manual clock. The local log is
// filled to MaxMessageHistory before the timer starts, so every operation measures the
// steady state (each delivery evicts the oldest entry).

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/hash"
	"github.com/sdskit/sdskit/core/profile"
	"github.com/sdskit/sdskit/core/store"
	"github.com/sdskit/sdskit/core/wire"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

const benchChannel = "bench-channel"

// benchChunk is how many messages are prepared (and how many outgoing entries pile up)
// between two pauses of the timer.
const benchChunk = 512

var benchPayload = bytes.Repeat([]byte{'x'}, 100)

type benchBackend struct {
	name string
	new  func() store.Backend
}

var (
	benchNoop   = benchBackend{"noop", func() store.Backend { return store.Noop{} }}
	benchMemory = benchBackend{"memory", func() store.Backend { return store.NewMemory() }}
)

func benchIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%08d", prefix, i)
	}
	return ids
}

func benchManager(b *testing.B, id string, cfg Config, clk *clock.Manual, backend store.Backend, h Handler) *Manager {
	b.Helper()
	opts := []Option{WithClock(clk), WithBackend(backend), WithSeed(7)}
	if h != nil {
		opts = append(opts, WithHandler(h))
	}
	m, err := New(id, cfg, opts...)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.EnsureChannel(context.Background(), benchChannel); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	return m
}

// benchRetire acknowledges every message in m's outgoing buffer, as a peer's sync
// message whose causal history lists them does. Nobody acknowledges the messages of
// the Wrap benchmark (nor those the Unwrap benchmark prepares), and without this the
// buffer, which keeps each message's ~19 KB of wire bytes, would grow with b.N. It runs
// with the timer stopped, every benchChunk messages; benchChunk is below
// MaxMessageHistory, so every acknowledged id is still in m's log.
func benchRetire(b *testing.B, m *Manager) {
	b.Helper()
	ctx := context.Background()
	s, err := m.Snapshot(benchChannel)
	if err != nil {
		b.Fatal(err)
	}
	if len(s.GetOutgoing()) > 0 {
		benchAckSeq++
		ack := &pb.SdsMessage{SenderId: "bench-acker", MessageId: fmt.Sprintf("bench-ack-%d", benchAckSeq),
			ChannelId: benchChannel, LamportTimestamp: proto.Uint64(1)}
		for _, u := range s.GetOutgoing() {
			ack.CausalHistory = append(ack.CausalHistory, &pb.HistoryEntry{
				MessageId: u.GetMessage().GetMessageId(), SenderId: proto.String(m.ParticipantID())})
		}
		data, err := profile.Spec.Codec.Encode(ack)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.UnwrapReceivedMessage(ctx, data); err != nil {
			b.Fatal(err)
		}
		if s, err = m.Snapshot(benchChannel); err != nil {
			b.Fatal(err)
		}
		if n := len(s.GetOutgoing()); n != 0 || len(s.GetOutgoingRepair()) != 0 {
			b.Fatalf("%d outgoing messages and %d repair requests left after the acknowledgement", n, len(s.GetOutgoingRepair()))
		}
	}
}

// benchAckSeq numbers benchRetire's sync messages.
var benchAckSeq int

func benchReportRate(b *testing.B, perOp float64) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(perOp*float64(b.N)/s, "msgs/s")
	}
}

func benchWrap(b *testing.B, cfg Config, backend benchBackend) {
	ctx := context.Background()
	clk := clock.NewManual(busEpoch)
	m := benchManager(b, "alice", cfg, clk, backend.new(), nil)
	for i, id := range benchIDs("warm", cfg.MaxMessageHistory) {
		if _, err := m.WrapOutgoingMessage(ctx, benchChannel, id, benchPayload); err != nil {
			b.Fatal(err)
		}
		if (i+1)%benchChunk == 0 {
			benchRetire(b, m)
		}
	}
	benchRetire(b, m)
	ids := benchIDs("msg-0", benchChunk)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && i%benchChunk == 0 {
			b.StopTimer()
			benchRetire(b, m)
			ids = benchIDs(fmt.Sprintf("msg-%d", i), benchChunk)
			b.StartTimer()
		}
		if _, err := m.WrapOutgoingMessage(ctx, benchChannel, ids[i%benchChunk], benchPayload); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	benchReportRate(b, 1)
}

// BenchmarkWrap measures WrapOutgoingMessage.
func BenchmarkWrap(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchWrap(b, DefaultConfig(), benchNoop) })
	b.Run("history10", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.MaxCausalHistory = 10
		benchWrap(b, cfg, benchNoop)
	})
	b.Run("memoryBackend", func(b *testing.B) { benchWrap(b, DefaultConfig(), benchMemory) })
}

// benchSender produces, with the timer stopped, the wire bytes of consecutive messages
// of one sender, which a receiver then delivers in order.
type benchSender struct {
	b   *testing.B
	m   *Manager
	ids []string
	n   int
}

func (s *benchSender) next(k int, out [][]byte) [][]byte {
	s.b.Helper()
	out = out[:0]
	for range k {
		data, err := s.m.WrapOutgoingMessage(context.Background(), benchChannel, s.ids[s.n], benchPayload)
		if err != nil {
			s.b.Fatal(err)
		}
		s.n++
		out = append(out, data)
	}
	benchRetire(s.b, s.m)
	return out
}

func benchUnwrap(b *testing.B, cfg Config, backend benchBackend) {
	ctx := context.Background()
	clk := clock.NewManual(busEpoch)
	warm := cfg.MaxMessageHistory
	snd := &benchSender{b: b, m: benchManager(b, "alice", cfg, clk, store.Noop{}, nil), ids: benchIDs("msg", warm+b.N)}
	rcv := benchManager(b, "bob", cfg, clk, backend.new(), nil)
	var buf [][]byte
	deliver := func(buf [][]byte) {
		for _, data := range buf {
			res, err := rcv.UnwrapReceivedMessage(ctx, data)
			if err != nil {
				b.Fatal(err)
			}
			if !res.Delivered {
				b.Fatalf("message %s was not delivered in order", res.MessageID)
			}
		}
	}
	for done := 0; done < warm; done += benchChunk {
		buf = snd.next(min(benchChunk, warm-done), buf)
		deliver(buf)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += benchChunk {
		b.StopTimer()
		buf = snd.next(min(benchChunk, b.N-done), buf)
		b.StartTimer()
		deliver(buf)
	}
	b.StopTimer()
	benchReportRate(b, 1)
}

// benchAcks counts the receiver's acknowledgement events.
type benchAcks struct{ acked int }

func (h *benchAcks) HandleEvent(ev *pb.Event) {
	if ev.GetMessageAcknowledged() != nil {
		h.acked++
	}
}

// benchUnwrapWithAcks delivers messages that each acknowledge, through their causal
// history, the message the receiver sent just before: the receiver reviews its
// outgoing buffer (and decodes the sender's bloom filter) on every delivery.
func benchUnwrapWithAcks(b *testing.B, cfg Config, backend benchBackend) {
	ctx := context.Background()
	clk := clock.NewManual(busEpoch)
	snd := benchManager(b, "alice", cfg, clk, store.Noop{}, nil)
	acks := &benchAcks{}
	rcv := benchManager(b, "bob", cfg, clk, backend.new(), acks)
	n := cfg.MaxMessageHistory/2 + b.N
	sIDs, rIDs := benchIDs("alice", n), benchIDs("bob", n)
	step := func(i int, timed bool) {
		r, err := rcv.WrapOutgoingMessage(ctx, benchChannel, rIDs[i], benchPayload)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := snd.UnwrapReceivedMessage(ctx, r); err != nil {
			b.Fatal(err)
		}
		s, err := snd.WrapOutgoingMessage(ctx, benchChannel, sIDs[i], benchPayload)
		if err != nil {
			b.Fatal(err)
		}
		if timed {
			b.StartTimer()
		}
		res, err := rcv.UnwrapReceivedMessage(ctx, s)
		if timed {
			b.StopTimer()
		}
		if err != nil {
			b.Fatal(err)
		}
		if !res.Delivered {
			b.Fatalf("message %s was not delivered in order", res.MessageID)
		}
	}
	warm := cfg.MaxMessageHistory / 2
	for i := range warm {
		step(i, false)
	}
	acks.acked = 0
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		step(warm+i, true)
	}
	benchReportRate(b, 1)
	if acks.acked != b.N {
		b.Fatalf("%d acknowledgements for %d deliveries", acks.acked, b.N)
	}
}

// BenchmarkUnwrap measures UnwrapReceivedMessage delivering, in order, messages wrapped
// by another peer (the wire bytes are prepared with the timer stopped).
func BenchmarkUnwrap(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchUnwrap(b, DefaultConfig(), benchNoop) })
	b.Run("history10", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.MaxCausalHistory = 10
		benchUnwrap(b, cfg, benchNoop)
	})
	b.Run("withAcks", func(b *testing.B) { benchUnwrapWithAcks(b, DefaultConfig(), benchNoop) })
	b.Run("memoryBackend", func(b *testing.B) { benchUnwrap(b, DefaultConfig(), benchMemory) })
}

// BenchmarkRoundTrip is the workload of the comparison with @waku/sds: alice sends a
// message, bob receives it in order and replies, alice receives the reply, which
// acknowledges her message (and bob's reply is acknowledged by alice's next message).
// One iteration is two messages, each sent, received and acknowledged once; msgs/s
// counts messages.
func BenchmarkRoundTrip(b *testing.B) {
	for _, be := range []benchBackend{benchNoop, benchMemory} {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			clk := clock.NewManual(busEpoch)
			cfg := DefaultConfig()
			aAcks, bAcks := &benchAcks{}, &benchAcks{}
			alice := benchManager(b, "alice", cfg, clk, be.new(), aAcks)
			bob := benchManager(b, "bob", cfg, clk, be.new(), bAcks)
			warm := cfg.MaxMessageHistory / 2
			aIDs, bIDs := benchIDs("alice", warm+b.N), benchIDs("bob", warm+b.N)
			round := func(i int) {
				m, err := alice.WrapOutgoingMessage(ctx, benchChannel, aIDs[i], benchPayload)
				if err != nil {
					b.Fatal(err)
				}
				if res, err := bob.UnwrapReceivedMessage(ctx, m); err != nil || !res.Delivered {
					b.Fatalf("bob: %v (delivered %v)", err, res != nil && res.Delivered)
				}
				r, err := bob.WrapOutgoingMessage(ctx, benchChannel, bIDs[i], benchPayload)
				if err != nil {
					b.Fatal(err)
				}
				if res, err := alice.UnwrapReceivedMessage(ctx, r); err != nil || !res.Delivered {
					b.Fatalf("alice: %v (delivered %v)", err, res != nil && res.Delivered)
				}
			}
			for i := range warm {
				round(i)
			}
			aAcks.acked, bAcks.acked = 0, 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				round(warm + i)
			}
			b.StopTimer()
			benchReportRate(b, 2)
			// Each of the b.N messages of alice, and the b.N replies before bob's last, was acknowledged.
			if aAcks.acked != b.N || bAcks.acked != b.N {
				b.Fatalf("acknowledgements: alice %d, bob %d, for %d rounds", aAcks.acked, bAcks.acked, b.N)
			}
		})
	}
}

// --- guards for the optimisations these benchmarks measure ---------------------------
//
// The encoded bloom filter is cached per channel and patched on every insertion, the
// receive path decodes without copying the filter, and acknowledgements remove entries
// in place: none of it may change a byte on the wire or in the state.

// TestBenchEncodedBloomCacheMatchesFreshEncoding checks, around rolls, deliveries,
// out-of-band dependencies and a change made behind the cache's back, that every sent
// message carries exactly the encoding of the channel's filter at that moment.
func TestBenchEncodedBloomCacheMatchesFreshEncoding(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.BloomCapacity = 25 // rolls every few messages
	cfg.MaxMessageHistory = 40
	clk := clock.NewManual(busEpoch)
	alice, err := New("alice", cfg, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := New("bob", cfg, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.EnsureChannel(ctx, benchChannel); err != nil {
		t.Fatal(err)
	}
	fresh := func() []byte {
		c := alice.channels[benchChannel]
		c.mu.Lock()
		defer c.mu.Unlock()
		return profile.Spec.EncodeBloom(c.st.bloom.Filter())
	}
	for i := range 200 {
		switch i % 7 {
		case 3: // a delivery from bob
			data, err := bob.WrapOutgoingMessage(ctx, benchChannel, fmt.Sprintf("bob-%d", i), benchPayload)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := alice.UnwrapReceivedMessage(ctx, data); err != nil {
				t.Fatal(err)
			}
		case 5: // an id satisfied out of band
			if err := alice.MarkDependenciesMet(ctx, benchChannel, []string{fmt.Sprintf("oob-%d", i)}); err != nil {
				t.Fatal(err)
			}
		case 6: // a sync message also carries the filter
			want := fresh()
			data, err := alice.BuildSyncMessage(ctx, benchChannel)
			if err != nil {
				t.Fatal(err)
			}
			if got := benchDecode(t, data).GetBloomFilter(); !bytes.Equal(got, want) {
				t.Fatalf("step %d: sync message carries a stale bloom filter", i)
			}
		}
		if i == 100 { // a change the cache is not told about
			c := alice.channels[benchChannel]
			c.mu.Lock()
			c.st.bloom.Add("behind-the-back")
			c.mu.Unlock()
		}
		want := fresh()
		data, err := alice.WrapOutgoingMessage(ctx, benchChannel, fmt.Sprintf("alice-%d", i), benchPayload)
		if err != nil {
			t.Fatal(err)
		}
		if got := benchDecode(t, data).GetBloomFilter(); !bytes.Equal(got, want) {
			t.Fatalf("step %d: message carries a stale bloom filter", i)
		}
	}
}

func benchDecode(t *testing.T, data []byte) *pb.SdsMessage {
	t.Helper()
	m, err := profile.Spec.Codec.Decode(data, DefaultConfig().Limits)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBenchDecodeSharingBloomMatchesDecode checks that the receive path's decoder
// differs from Decode only in sharing the bloom filter's bytes with its input.
func TestBenchDecodeSharingBloomMatchesDecode(t *testing.T) {
	msg := &pb.SdsMessage{
		SenderId: "alice", MessageId: "m3", ChannelId: benchChannel, LamportTimestamp: proto.Uint64(42),
		CausalHistory: []*pb.HistoryEntry{{MessageId: "m1", SenderId: proto.String("alice"), RetrievalHint: []byte{1}}, {MessageId: "m2"}},
		RepairRequest: []*pb.HistoryEntry{{MessageId: "m0", SenderId: proto.String("bob")}},
		BloomFilter:   bytes.Repeat([]byte{0xA5}, 8*bloomWordsDefault()),
		Content:       benchPayload,
	}
	data, err := profile.Spec.Codec.Encode(msg)
	if err != nil {
		t.Fatal(err)
	}
	copied, err := profile.Spec.Codec.Decode(data, DefaultConfig().Limits)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := profile.Spec.Codec.(wire.BloomSharingDecoder).DecodeSharingBloom(data, DefaultConfig().Limits)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(copied, shared) || !proto.Equal(copied, msg) {
		t.Fatal("DecodeSharingBloom and Decode disagree")
	}
	f := shared.GetBloomFilter()
	if off := bytes.Index(data, f); off < 0 || &data[off] != &f[0] || cap(f) != len(f) {
		t.Fatal("the shared bloom filter should alias the input, capped at its length")
	}
	if c := copied.GetBloomFilter(); &c[0] == &f[0] {
		t.Fatal("Decode must copy the bloom filter")
	}
	// Nothing a manager keeps aliases the bytes it was given.
	m, err := New("bob", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.Clone(data)
	if _, err := m.UnwrapReceivedMessage(context.Background(), buf); err != nil {
		t.Fatal(err)
	}
	clear(buf)
	s, err := m.Snapshot(benchChannel)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range s.GetIncoming() { // m3 waits for m1 and m2
		if len(im.GetMessage().GetBloomFilter()) != 0 || !bytes.Equal(im.GetMessage().GetContent(), benchPayload) {
			t.Fatal("the buffered message kept the filter or lost its content")
		}
	}
}

func bloomWordsDefault() int {
	r := (&Manager{cfg: DefaultConfig(), prof: profile.Spec}).newBloom()
	return len(profile.Spec.EncodeBloom(r.Filter())) / 8
}

// TestBenchBulkAcknowledgementRollsBackInOrder acknowledges several messages of the
// outgoing buffer in one operation whose batch fails: the buffer must come back in its
// original order.
func TestBenchBulkAcknowledgementRollsBackInOrder(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	clk := clock.NewManual(busEpoch)
	m, err := New("alice", DefaultConfig(), WithClock(clk), WithBackend(mem))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 6 {
		id := fmt.Sprintf("a%d", i)
		ids = append(ids, id)
		if _, err := m.WrapOutgoingMessage(ctx, benchChannel, id, benchPayload); err != nil {
			t.Fatal(err)
		}
	}
	ack := &pb.SdsMessage{SenderId: "bob", MessageId: "sync-1", ChannelId: benchChannel, LamportTimestamp: proto.Uint64(1)}
	for _, id := range []string{"a1", "a3", "a4"} {
		ack.CausalHistory = append(ack.CausalHistory, &pb.HistoryEntry{MessageId: id, SenderId: proto.String("alice")})
	}
	data, err := profile.Spec.Codec.Encode(ack)
	if err != nil {
		t.Fatal(err)
	}
	outIDs := func() []string {
		s, err := m.Snapshot(benchChannel)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, u := range s.GetOutgoing() {
			out = append(out, u.GetMessage().GetMessageId())
		}
		return out
	}
	mem.FailOp(store.OpRemoveOutgoing)
	if _, err := m.UnwrapReceivedMessage(ctx, data); err == nil {
		t.Fatal("the acknowledgement should fail to persist")
	}
	if got := outIDs(); !slices.Equal(got, ids) {
		t.Fatalf("outgoing buffer after the failed acknowledgement = %v, want %v", got, ids)
	}
	mem.ClearFailures()
	if _, err := m.UnwrapReceivedMessage(ctx, data); err != nil {
		t.Fatal(err)
	}
	if got, want := outIDs(), []string{"a0", "a2", "a5"}; !slices.Equal(got, want) {
		t.Fatalf("outgoing buffer after the acknowledgement = %v, want %v", got, want)
	}
}

// TestBenchBloomViewMatchesDecodedFilter checks that testing a received filter in
// place answers exactly as the decoded filter does, and accepts the same inputs.
func TestBenchBloomViewMatchesDecodedFilter(t *testing.T) {
	own := (&Manager{cfg: DefaultConfig(), prof: profile.Spec}).newBloom()
	for i := range 3000 {
		own.Add(fmt.Sprintf("member-%d", i))
	}
	f := own.Filter()
	b := profile.Spec.EncodeBloom(f)
	view, err := profile.Spec.ViewBloom(b, f.K(), f.M())
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := profile.Spec.DecodeBloom(b, f.K(), f.M())
	if err != nil {
		t.Fatal(err)
	}
	hits := 0
	for i := range 6000 { // half members, half not
		id := fmt.Sprintf("member-%d", i)
		if got, want := view.Test(id), decoded.Test(id); got != want {
			t.Fatalf("view.Test(%q) = %v, decoded filter says %v", id, got, want)
		}
		if view.Test(id) {
			hits++
		}
	}
	if hits < 3000 {
		t.Fatalf("only %d of 3000 members found", hits)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-8], append(bytes.Clone(b), 0), b[:len(b)-1]} {
		_, verr := profile.Spec.ViewBloom(bad, f.K(), f.M())
		_, derr := profile.Spec.DecodeBloom(bad, f.K(), f.M())
		if (verr == nil) != (derr == nil) {
			t.Fatalf("%d bytes: view error %v, decode error %v", len(bad), verr, derr)
		}
	}
}

// TestBenchShallowCloneSharesButPreservesEveryField checks the copy used to update
// one field of an outgoing entry without copying its wire bytes.
func TestBenchShallowCloneSharesButPreservesEveryField(t *testing.T) {
	u := &pb.UnacknowledgedMessage{
		Message:            &pb.SdsMessage{MessageId: "m1", ChannelId: benchChannel, Content: benchPayload},
		WireBytes:          bytes.Repeat([]byte{7}, 1000),
		SentAtUnixMs:       1,
		ResendAttempts:     2,
		NextResendAtUnixMs: 3,
		PossibleAckSenders: []string{"bob"},
	}
	u.ProtoReflect().SetUnknown([]byte{0xF8, 0x07, 0x01}) // field 127, varint 1
	c := shallowClone(u)
	if !proto.Equal(c, u) || !bytes.Equal(c.ProtoReflect().GetUnknown(), u.ProtoReflect().GetUnknown()) {
		t.Fatalf("shallowClone lost a field: %v vs %v", c, u)
	}
	if &c.WireBytes[0] != &u.WireBytes[0] || c.Message != u.Message {
		t.Fatal("shallowClone should share the wire bytes and the message")
	}
	c.PossibleAckSenders = append(slices.Clone(c.PossibleAckSenders), "carol")
	if len(u.PossibleAckSenders) != 1 {
		t.Fatal("replacing a field of the copy changed the original")
	}
}

// TestBenchBloomPositionsMatchReference checks the division-free bit positions of the
// filter (and of the rolling filter's cached seeds) against hash.WakuHashNJS, the
// reference implementation of @waku/sds's positions.
func TestBenchBloomPositionsMatchReference(t *testing.T) {
	r := (&Manager{cfg: DefaultConfig(), prof: profile.Spec}).newBloom()
	f := r.Filter()
	for i := range 2000 {
		id := fmt.Sprintf("id-%d-%s", i, strings.Repeat("é", i%7))
		r.Add(id)
		got := r.AppendLocations(nil, id)
		for j, loc := range f.Locations(id) {
			want := hash.WakuHashNJS(id, j, int(f.M()))
			if int(loc) != want || int(got[j]) != want {
				t.Fatalf("%q: position %d is %d (rolling %d), want %d", id, j, loc, got[j], want)
			}
		}
		if !f.Test(id) {
			t.Fatalf("%q added but not found", id)
		}
	}
}
