package sds

// Concurrency: many goroutines on many channels (run with -race), handlers that call
// back into the manager, handlers that panic, Close racing with operations.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

var relQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// relSerialHandler records events and detects concurrent handler calls.
type relSerialHandler struct {
	relRecorder
	in      atomic.Int32
	overlap atomic.Int32
}

func (h *relSerialHandler) HandleEvent(ev *pb.Event) {
	if h.in.Add(1) > 1 {
		h.overlap.Add(1)
	}
	h.relRecorder.HandleEvent(ev)
	h.in.Add(-1)
}

// relBounded runs f and fails the test if it does not return within d (a deadlock).
func relBounded(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not finish within %v (deadlock?)", what, d)
	}
}

func TestConcurrency_ManyGoroutinesWrappingAndUnwrappingOnManyChannels(t *testing.T) {
	const channels, perChannel = 8, 40
	clk := clock.NewManual(relStart)
	hb := &relSerialHandler{}
	alice, err := New("alice", DefaultConfig(), WithClock(clk), WithBackend(store.NewMemory()))
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := New("bob", DefaultConfig(), WithClock(clk), WithHandler(hb), WithBackend(store.NewMemory()))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	ctx := context.Background()
	errs := make(chan error, 1000)
	report := func(err error) {
		if err != nil {
			select {
			case errs <- err:
			default:
			}
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	relBounded(t, 30*time.Second, "the concurrent workload", func() {
		// Background noise: sweeps, snapshots, syncs, bloom queries, channel listing.
		var noise sync.WaitGroup
		for g := 0; g < 4; g++ {
			noise.Add(1)
			go func(g int) {
				defer noise.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					ch := fmt.Sprint("ch", (g+i)%channels)
					switch g {
					case 0:
						clk.Advance(time.Millisecond)
						report(bob.RunSweeps(ctx))
						report(alice.RunSweeps(ctx))
					case 1:
						if _, err := bob.Snapshot(ch); err != nil && sdserr.CodeOf(err) != sdserr.NotFound {
							report(err)
						}
						bob.Channels()
					case 2:
						if b, err := bob.BuildSyncMessage(ctx, ch); err != nil {
							report(err)
						} else if _, err := alice.UnwrapReceivedMessage(ctx, b); err != nil {
							report(err)
						}
					case 3:
						if _, err := alice.BloomContains(ch, "m0"); err != nil && sdserr.CodeOf(err) != sdserr.NotFound {
							report(err)
						}
					}
				}
			}(g)
		}
		for c := 0; c < channels; c++ {
			ch := fmt.Sprint("ch", c)
			wire := make(chan []byte, perChannel)
			wg.Add(3)
			go func() { // sender
				defer wg.Done()
				defer close(wire)
				for i := 0; i < perChannel; i++ {
					b, err := alice.WrapOutgoingMessage(ctx, ch, fmt.Sprint("m", i), []byte(fmt.Sprint(ch, "/", i)))
					if err != nil {
						report(err)
						return
					}
					wire <- b
				}
			}()
			dup := make(chan []byte, perChannel)
			go func() { // receiver: holds back every third message and delivers those last, newest first
				defer wg.Done()
				defer close(dup)
				var held [][]byte
				i := 0
				for b := range wire {
					if i%3 == 1 {
						held = append(held, b)
					} else if _, err := bob.UnwrapReceivedMessage(ctx, b); err != nil {
						report(err)
					}
					dup <- b
					i++
				}
				for j := len(held) - 1; j >= 0; j-- {
					if _, err := bob.UnwrapReceivedMessage(ctx, held[j]); err != nil {
						report(err)
					}
				}
			}()
			go func() { // a second copy of everything, concurrently
				defer wg.Done()
				for b := range dup {
					if _, err := bob.UnwrapReceivedMessage(ctx, b); err != nil {
						report(err)
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		noise.Wait()
	})
	close(errs)
	for err := range errs {
		t.Fatalf("operation failed: %v", err)
	}
	if n := hb.overlap.Load(); n != 0 {
		t.Fatalf("the handler ran concurrently %d times", n)
	}
	readyPer := map[string][]string{}
	for _, ev := range hb.of("ready") {
		mr := ev.GetMessageReady()
		readyPer[mr.GetChannelId()] = append(readyPer[mr.GetChannelId()], mr.GetMessageId())
	}
	for c := 0; c < channels; c++ {
		ch := fmt.Sprint("ch", c)
		ready := readyPer[ch]
		if len(ready) != perChannel {
			t.Fatalf("%s: %d ready events, want %d (each message exactly once)", ch, len(ready), perChannel)
		}
		sorted := slices.Clone(ready)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != perChannel {
			t.Fatalf("%s: duplicate deliveries %v", ch, ready)
		}
		sa, err := alice.Snapshot(ch)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := bob.Snapshot(ch)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(relLogIDs(sa), relLogIDs(sb)) || len(sb.GetIncoming()) != 0 {
			t.Fatalf("%s: alice's log %v, bob's %v, bob's buffer %v", ch, relLogIDs(sa), relLogIDs(sb), relInIDs(sb))
		}
	}
}

func TestConcurrency_HandlerCallsBackIntoTheManager(t *testing.T) {
	var bob *Manager
	var calls atomic.Int32
	var handlerErrs []error
	var mu sync.Mutex
	fail := func(err error) {
		if err != nil {
			mu.Lock()
			handlerErrs = append(handlerErrs, err)
			mu.Unlock()
		}
	}
	rec := &relRecorder{}
	h := HandlerFunc(func(ev *pb.Event) {
		rec.HandleEvent(ev)
		calls.Add(1)
		ctx := context.Background()
		switch e := ev.GetEvent().(type) {
		case *pb.Event_MissingDependencies:
			// The application fetched the missing messages elsewhere.
			var ids []string
			for _, d := range e.MissingDependencies.GetMissing() {
				ids = append(ids, d.GetMessageId())
			}
			fail(bob.MarkDependenciesMet(ctx, e.MissingDependencies.GetChannelId(), ids))
		case *pb.Event_MessageReady:
			ch, id := e.MessageReady.GetChannelId(), e.MessageReady.GetMessageId()
			_, err := bob.WrapOutgoingMessage(ctx, ch, "re-"+id, []byte("reply"))
			fail(err)
			_, err = bob.Snapshot(ch)
			fail(err)
			_, err = bob.BloomContains(ch, id)
			fail(err)
			fail(bob.RunSweeps(ctx))
			_, err = bob.BuildSyncMessage(ctx, ch)
			fail(err)
		}
	})
	hints := HintProviderFunc(func(_ context.Context, ch, id string) ([]byte, error) {
		if _, err := bob.Snapshot(ch); err != nil { // providers run outside every lock too
			return nil, err
		}
		return []byte("h-" + id), nil
	})
	var err error
	bob, err = New("bob", DefaultConfig(), WithClock(clock.NewManual(relStart)), WithHandler(h), WithHintProvider(hints))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	relBounded(t, 10*time.Second, "re-entrant handler", func() {
		for i := 5; i >= 1; i-- { // m5 … m2 wait, one after another, for m(i-1)
			deps := []string{}
			if i > 1 {
				deps = append(deps, fmt.Sprint("m", i-1))
			}
			if _, err := bob.UnwrapReceivedMessage(context.Background(), relEncode(t, relMsg("alice", relCh, fmt.Sprint("m", i), uint64(i), "x", deps...))); err != nil {
				t.Error(err)
			}
		}
	})
	mu.Lock()
	defer mu.Unlock()
	for _, err := range handlerErrs {
		t.Errorf("call from the handler: %v", err)
	}
	// m5 arrived first and its missing m4 was marked met from the handler, delivering m5
	// at once; m4 then arrives as a duplicate (the application already has it), m3 waits
	// for m2, which the handler marks met, and so on.
	if got := rec.ids("ready"); !slices.Equal(got, []string{"m5", "m3", "m1"}) {
		t.Fatalf("ready %v, want [m5 m3 m1]", got)
	}
	if got := rec.ids("missing"); !slices.Equal(got, []string{"m5", "m3"}) {
		t.Fatalf("missing %v, want [m5 m3]", got)
	}
	s, err := bob.Snapshot(relCh)
	if err != nil {
		t.Fatal(err)
	}
	replies := 0
	for _, u := range s.GetOutgoing() {
		if len(u.GetMessage().GetMessageId()) > 3 && u.GetMessage().GetMessageId()[:3] == "re-" {
			replies++
		}
	}
	if replies != 3 {
		t.Fatalf("%d replies sent from the handler, want 3", replies)
	}
	if int(calls.Load()) != rec.len() {
		t.Fatal("events lost")
	}
}

func TestConcurrency_HandlerMayCloseTheManager(t *testing.T) {
	var m *Manager
	h := HandlerFunc(func(*pb.Event) { _ = m.Close() })
	var err error
	m, err = New("bob", DefaultConfig(), WithHandler(h))
	if err != nil {
		t.Fatal(err)
	}
	relBounded(t, 10*time.Second, "Close from the handler", func() {
		if _, err := m.UnwrapReceivedMessage(relCtx, relEncode(t, relMsg("alice", relCh, "m1", 1, "x"))); err != nil {
			t.Error(err)
		}
	})
	_, err = m.WrapOutgoingMessage(relCtx, relCh, "m2", []byte("x"))
	relWantCode(t, err, sdserr.Closed)
}

func TestConcurrency_HandlerThatPanics(t *testing.T) {
	var seen atomic.Int32
	h := HandlerFunc(func(ev *pb.Event) {
		seen.Add(1)
		panic(fmt.Sprintf("handler bug on %s", relKind(ev)))
	})
	m, err := New("bob", DefaultConfig(), WithHandler(h), WithLogger(relQuiet), WithClock(clock.NewManual(relStart)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	m.WrapOutgoingMessage(ctx, relCh, "b1", []byte("x"))
	// A cascade of three deliveries plus an ack: every event still reaches the handler.
	for _, msg := range []*pb.SdsMessage{
		relMsg("alice", relCh, "m3", 3, "x", "m2"),
		relMsg("alice", relCh, "m2", 2, "x", "m1"),
		relMsg("alice", relCh, "m1", 1, "x", "b1"),
	} {
		if _, err := m.UnwrapReceivedMessage(ctx, relEncode(t, msg)); err != nil {
			t.Fatal(err)
		}
	}
	// missing ×2, acked, ready ×3
	if n := seen.Load(); n != 6 {
		t.Fatalf("handler called %d times, want 6", n)
	}
	s, err := m.Snapshot(relCh)
	if err != nil {
		t.Fatal(err)
	}
	if got := relLogIDs(s); !slices.Equal(got, []string{"m1", "m2", "m3", "b1"}) || len(s.GetOutgoing()) != 0 || len(s.GetIncoming()) != 0 {
		t.Fatalf("state %v", s)
	}
	// The manager keeps working, and so do periodic tasks.
	if _, err := m.WrapOutgoingMessage(ctx, relCh, "b2", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := m.RunSweeps(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrency_CloseWhileOperationsAreInFlight(t *testing.T) {
	m, err := New("alice", DefaultConfig(), WithHandler(&relRecorder{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	var ok atomic.Int32
	bad := make(chan error, 16)
	started := make(chan struct{}, 16)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				_, err := m.WrapOutgoingMessage(ctx, fmt.Sprint("ch", g%3), fmt.Sprintf("g%d-%d", g, i), []byte("x"))
				if i == 0 {
					started <- struct{}{}
				}
				if err == nil {
					ok.Add(1)
					if _, err := m.UnwrapReceivedMessage(ctx, relEncode(t, relMsg("bob", fmt.Sprint("ch", g%3), fmt.Sprintf("b%d-%d", g, i), 1, "x"))); err != nil && sdserr.CodeOf(err) != sdserr.Closed {
						bad <- err
						return
					}
					continue
				}
				if sdserr.CodeOf(err) != sdserr.Closed {
					bad <- err
				}
				return
			}
		}(g)
	}
	for i := 0; i < 8; i++ {
		<-started
	}
	relBounded(t, 10*time.Second, "Close with operations in flight", func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
		wg.Wait()
	})
	close(bad)
	for err := range bad {
		t.Fatalf("unexpected error: %v", err)
	}
	if ok.Load() == 0 {
		t.Fatal("no operation succeeded before Close")
	}
}
