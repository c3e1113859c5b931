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
	"runtime"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

const benchChannel = "bench-channel"

// benchChunk is how many messages are prepared (and how many outgoing entries pile up)
// between two pauses of the timer.
const benchChunk = 1024

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

// benchRetire empties m's outgoing buffer the way an unacknowledged sender does: every
// entry is resent MaxResendAttempts times and then given up. Nobody acknowledges the
// messages of the Wrap benchmark, so without this the buffer (which keeps each
// message's ~19 KB of wire bytes) would grow with b.N. It runs with the timer stopped,
// every benchChunk messages.
func benchRetire(b *testing.B, m *Manager, clk *clock.Manual) {
	b.Helper()
	cfg := m.Config()
	for range cfg.MaxResendAttempts + 1 {
		clk.Advance(cfg.MaxResendInterval + time.Second)
		if err := m.RunSweeps(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	s, err := m.Snapshot(benchChannel)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(s.GetOutgoing()); n != 0 {
		b.Fatalf("%d outgoing messages left after giving up", n)
	}
	// Collect this setup's garbage now, so that the timed part pays only for its own.
	runtime.GC()
}

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
			benchRetire(b, m, clk)
		}
	}
	benchRetire(b, m, clk)
	ids := benchIDs("msg", b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i > 0 && i%benchChunk == 0 {
			b.StopTimer()
			benchRetire(b, m, clk)
			b.StartTimer()
		}
		if _, err := m.WrapOutgoingMessage(ctx, benchChannel, ids[i], benchPayload); err != nil {
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
	clk *clock.Manual
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
	benchRetire(s.b, s.m, s.clk)
	return out
}

func benchUnwrap(b *testing.B, cfg Config, backend benchBackend) {
	ctx := context.Background()
	clk := clock.NewManual(busEpoch)
	warm := cfg.MaxMessageHistory
	snd := &benchSender{b: b, m: benchManager(b, "alice", cfg, clk, store.Noop{}, nil), clk: clk, ids: benchIDs("msg", warm+b.N)}
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
