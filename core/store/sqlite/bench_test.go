package sqlite

// Benchmarks of the SQLite backend (results in docs/benchmarks.md, section "SQLite"):
//
//	go test -run '^$' -bench . -benchtime 3s ./core/store/sqlite
//
// Like the core's benchmarks they use DefaultConfig (causal history 2, a bloom filter of
// 10 000 ids at 0.1 %, i.e. ~18 KB in every message's wire bytes), 100-byte payloads,
// the manual clock, and a log filled to MaxMessageHistory (1000) before the timer
// starts, so every call also evicts the oldest log entry. "Durable" means each call
// returns after its batch committed to the file: with NORMAL the batch survives a crash
// of the process, with FULL also a power loss.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/sds"
	"github.com/sdskit/sdskit/core/store"
)

const (
	benchCh    = "bench"
	benchChunk = 1024
)

var benchPayload = bytes.Repeat([]byte{'x'}, 100)

var benchEpoch = time.UnixMilli(1_700_000_000_000)

func benchIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%08d", prefix, i)
	}
	return ids
}

func benchManager(b *testing.B, id string, clk *clock.Manual, backend store.Backend) *sds.Manager {
	return benchManagerCfg(b, id, sds.DefaultConfig(), clk, backend)
}

func benchManagerCfg(b *testing.B, id string, cfg sds.Config, clk *clock.Manual, backend store.Backend) *sds.Manager {
	b.Helper()
	m, err := sds.New(id, cfg, sds.WithClock(clk), sds.WithBackend(backend), sds.WithSeed(7))
	if err != nil {
		b.Fatal(err)
	}
	if err := m.EnsureChannel(context.Background(), benchCh); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	return m
}

func benchStore(b *testing.B, sync string) *Store {
	b.Helper()
	return benchStoreOpts(b, Options{Synchronous: sync})
}

func benchStoreOpts(b *testing.B, opts Options) *Store {
	b.Helper()
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// benchRetire empties m's outgoing buffer as an unacknowledged sender does (resends,
// then give-up), so that it does not grow with b.N; it runs with the timer stopped. The
// sweeps' batches (hundreds of rewritten entries each) are folded into the tables here
// too, when m persists to st, so that no timed call pays for them.
func benchRetire(b *testing.B, m *sds.Manager, clk *clock.Manual, st *Store) {
	b.Helper()
	cfg := m.Config()
	for range cfg.MaxResendAttempts + 1 {
		clk.Advance(cfg.MaxResendInterval + time.Second)
		if err := m.RunSweeps(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	if st != nil {
		st.mu.Lock()
		err := st.foldLocked(context.Background())
		st.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
}

func benchRate(b *testing.B, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, unit)
	}
}

// BenchmarkDurableWrap measures WrapOutgoingMessage on the SQLite store: one batch of
// SaveLamport, SaveOutgoing, AppendLogEntry and RemoveLogEntry per call, committed as a
// journal row, and its share of the folds. noJournal applies every batch to the tables
// in its own transaction (JournalBatches 1); smallBloom is BloomCapacity 1000.
func BenchmarkDurableWrap(b *testing.B) {
	small := sds.DefaultConfig()
	small.BloomCapacity = 1000
	for _, v := range []struct {
		name, sync string
		cfg        sds.Config
		journal    int
	}{
		{"NORMAL", "NORMAL", sds.DefaultConfig(), 0},
		{"FULL", "FULL", sds.DefaultConfig(), 0},
		{"NORMAL/smallBloom", "NORMAL", small, 0},
		{"NORMAL/noJournal", "NORMAL", sds.DefaultConfig(), 1},
	} {
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			clk := clock.NewManual(benchEpoch)
			st := benchStoreOpts(b, Options{Synchronous: v.sync, JournalBatches: v.journal})
			m := benchManagerCfg(b, "alice", v.cfg, clk, st)
			warm := m.Config().MaxMessageHistory
			for i, id := range benchIDs("warm", warm) {
				if _, err := m.WrapOutgoingMessage(ctx, benchCh, id, benchPayload); err != nil {
					b.Fatal(err)
				}
				if (i+1)%benchChunk == 0 {
					benchRetire(b, m, clk, st)
				}
			}
			benchRetire(b, m, clk, st)
			ids := benchIDs("msg", b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i > 0 && i%benchChunk == 0 {
					b.StopTimer()
					benchRetire(b, m, clk, st)
					b.StartTimer()
				}
				if _, err := m.WrapOutgoingMessage(ctx, benchCh, ids[i], benchPayload); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			benchRate(b, "wraps/s")
		})
	}
}

// benchSender prepares, with the timer stopped, consecutive messages of one peer.
type benchSender struct {
	b   *testing.B
	m   *sds.Manager
	clk *clock.Manual
	ids []string
	n   int
}

func (s *benchSender) next(k int, out [][]byte) [][]byte {
	out = out[:0]
	for range k {
		data, err := s.m.WrapOutgoingMessage(context.Background(), benchCh, s.ids[s.n], benchPayload)
		if err != nil {
			s.b.Fatal(err)
		}
		s.n++
		out = append(out, data)
	}
	benchRetire(s.b, s.m, s.clk, nil)
	return out
}

// BenchmarkDurableReceive measures UnwrapReceivedMessage delivering in order on the
// SQLite store: one transaction of SaveLamport, AppendLogEntry and RemoveLogEntry.
func BenchmarkDurableReceive(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run(sync, func(b *testing.B) {
			ctx := context.Background()
			clk := clock.NewManual(benchEpoch)
			warm := sds.DefaultConfig().MaxMessageHistory
			snd := &benchSender{b: b, m: benchManager(b, "alice", clk, store.Noop{}), clk: clk, ids: benchIDs("msg", warm+b.N)}
			rcv := benchManager(b, "bob", clk, benchStore(b, sync))
			var buf [][]byte
			deliver := func(buf [][]byte) {
				for _, data := range buf {
					res, err := rcv.UnwrapReceivedMessage(ctx, data)
					if err != nil {
						b.Fatal(err)
					}
					if !res.Delivered {
						b.Fatalf("%s not delivered in order", res.MessageID)
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
			benchRate(b, "receives/s")
		})
	}
}

// fullChannel returns the path of a closed database whose channel holds a full log of
// 1000 messages: received ones (outgoing buffer empty) or our own unacknowledged ones
// (1000 outgoing entries too).
func fullChannel(b *testing.B, own bool) string {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "full.db")
	s, err := Open(ctx, path, Options{Synchronous: "OFF"})
	if err != nil {
		b.Fatal(err)
	}
	clk := clock.NewManual(benchEpoch)
	n := sds.DefaultConfig().MaxMessageHistory
	m, err := sds.New("alice", sds.DefaultConfig(), sds.WithClock(clk), sds.WithBackend(s))
	if err != nil {
		b.Fatal(err)
	}
	if own {
		for _, id := range benchIDs("own", n) {
			if _, err := m.WrapOutgoingMessage(ctx, benchCh, id, benchPayload); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		snd := &benchSender{b: b, m: benchManager(b, "bob", clk, store.Noop{}), clk: clk, ids: benchIDs("recv", n)}
		for _, data := range snd.next(n, nil) {
			if _, err := m.UnwrapReceivedMessage(ctx, data); err != nil {
				b.Fatal(err)
			}
		}
	}
	snap, err := m.Snapshot(benchCh)
	if err != nil || len(snap.GetLog()) != n {
		b.Fatalf("log of %d entries: %v", len(snap.GetLog()), err)
	}
	_ = m.Close()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

func benchFullCases() []struct {
	name string
	own  bool
} {
	return []struct {
		name string
		own  bool
	}{{"received1000", false}, {"own1000unacked", true}}
}

// BenchmarkLoadFullLog measures LoadAllForChannel (Store.Load: one query per table) of
// a channel with a full log of 1000 messages, and the bootstrap of a fresh manager on
// it (load, validation, bloom rebuild).
func BenchmarkLoadFullLog(b *testing.B) {
	for _, c := range benchFullCases() {
		b.Run("Load/"+c.name, func(b *testing.B) {
			s, err := Open(context.Background(), fullChannel(b, c.own), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := s.Load(context.Background(), benchCh); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Bootstrap/"+c.name, func(b *testing.B) {
			s, err := Open(context.Background(), fullChannel(b, c.own), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			clk := clock.NewManual(benchEpoch)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				m, err := sds.New("alice", sds.DefaultConfig(), sds.WithClock(clk), sds.WithBackend(s))
				if err != nil {
					b.Fatal(err)
				}
				if err := m.EnsureChannel(context.Background(), benchCh); err != nil {
					b.Fatal(err)
				}
				_ = m.Close()
			}
		})
	}
}

// BenchmarkFileSize reports the size of the database file (after Close, which
// checkpoints the WAL into it) holding one channel of 1000 messages.
func BenchmarkFileSize(b *testing.B) {
	for _, c := range benchFullCases() {
		b.Run(c.name, func(b *testing.B) {
			var size int64
			for range b.N {
				fi, err := os.Stat(fullChannel(b, c.own))
				if err != nil {
					b.Fatal(err)
				}
				size = fi.Size()
			}
			b.ReportMetric(float64(size)/1024, "KiB/1000msgs")
		})
	}
}
