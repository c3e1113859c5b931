package sdskit_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	sdskit "github.com/sdskit/sdskit/sdk-go"
	"google.golang.org/protobuf/proto"
)

// fastConfig makes timers fire within a test's patience: resends after 100 ms, sync
// every 200 ms, SDS-R between 50 and 300 ms, sweeps every 20 ms, repairs retried
// until they succeed.
func fastConfig() *sdskit.Config {
	return &sdskit.Config{
		ResendIntervalMs:    proto.Uint64(100),
		MaxResendIntervalMs: proto.Uint64(400),
		MaxResendAttempts:   proto.Uint32(50),
		SyncIntervalMs:      proto.Uint64(200),
		SweepIntervalMs:     proto.Uint64(20),
		RepairTMinMs:        proto.Uint64(50),
		RepairTMaxMs:        proto.Uint64(300),
		BloomCapacity:       proto.Uint32(1000),
		// Fast T_req retries for the whole test: past max_repair_attempts a gap is
		// re-requested only with a doubling wait (docs/behaviour.md).
		MaxRepairAttempts: proto.Uint32(100),
	}
}

// logOf records what a channel delivered.
type logOf struct {
	mu    sync.Mutex
	ids   map[string][]byte
	acked map[string]bool
	order []string
}

func newLog() *logOf { return &logOf{ids: map[string][]byte{}, acked: map[string]bool{}} }

func (l *logOf) options() sdskit.ChannelOptions {
	return sdskit.ChannelOptions{
		OnMessage: func(m *sdskit.MessageReady) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if _, dup := l.ids[m.GetMessageId()]; dup {
				panic("delivered twice: " + m.GetMessageId())
			}
			l.ids[m.GetMessageId()] = m.GetContent()
			l.order = append(l.order, m.GetMessageId())
		},
		OnAcknowledged: func(id string) {
			l.mu.Lock()
			l.acked[id] = true
			l.mu.Unlock()
		},
	}
}

// own records one of our sends, as an application does when Send succeeds.
func (l *logOf) own(id string, content []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids[id] = content
	l.order = append(l.order, id)
}

func (l *logOf) sorted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.ids))
	for id := range l.ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReliableChannelsConvergeUnderLoss(t *testing.T) {
	ctx := context.Background()
	bus := sdskit.NewLoopbackBus()
	defer bus.Close()
	var rmu sync.Mutex
	rng := rand.New(rand.NewPCG(7, 7))
	dropped := 0
	bus.Filter = func(from, to int, _ []byte) bool {
		rmu.Lock()
		defer rmu.Unlock()
		if rng.Float64() < 0.3 {
			dropped++
			return false
		}
		return true
	}
	names := []string{"alice", "bob", "carol"}
	chans := make([]*sdskit.ReliableChannel, len(names))
	logs := make([]*logOf, len(names))
	for i, n := range names {
		logs[i] = newLog()
		c, err := sdskit.OpenReliableChannel(ctx, n, "room", bus.Transport(), logs[i].options(),
			sdskit.WithConfig(fastConfig()), sdskit.WithMemoryPersistence())
		if err != nil {
			t.Fatal(err)
		}
		chans[i] = c
		defer c.Close()
	}
	const perPeer = 15
	var want []string
	for k := 0; k < perPeer; k++ {
		for i, c := range chans {
			id := fmt.Sprintf("%s-%d", names[i], k)
			if err := c.SendWithID(ctx, id, []byte("hello "+id)); err != nil {
				t.Fatal(err)
			}
			logs[i].own(id, []byte("hello "+id))
			want = append(want, id)
		}
	}
	sort.Strings(want)
	defer func() {
		if t.Failed() {
			for i, l := range logs {
				got := map[string]bool{}
				for _, id := range l.sorted() {
					got[id] = true
				}
				var miss []string
				for _, id := range want {
					if !got[id] {
						miss = append(miss, id)
					}
				}
				snap, _ := chans[i].Manager().Snapshot(ctx, "room")
				t.Logf("%s misses %v; incoming %d, outgoing %d, repairs out %d in %d", names[i], miss,
					len(snap.GetIncoming()), len(snap.GetOutgoing()), len(snap.GetOutgoingRepair()), len(snap.GetIncomingRepair()))
			}
		}
	}()
	waitFor(t, 30*time.Second, "every participant to hold every message", func() bool {
		for _, l := range logs {
			if strings.Join(l.sorted(), ",") != strings.Join(want, ",") {
				return false
			}
		}
		return true
	})
	rmu.Lock()
	lost := dropped
	rmu.Unlock()
	if lost == 0 {
		t.Fatal("the loss filter dropped nothing: the test proves no repair")
	}
	waitFor(t, 30*time.Second, "acknowledgements of alice's messages", func() bool {
		logs[0].mu.Lock()
		defer logs[0].mu.Unlock()
		return len(logs[0].acked) > 0
	})
	for _, l := range logs {
		if got := string(l.ids["bob-3"]); got != "hello bob-3" {
			t.Fatalf("content of bob-3 = %q", got)
		}
	}
	t.Logf("dropped %d payloads; all %d messages converged", lost, len(want))
}

func TestReliableChannelCloseIsIdempotent(t *testing.T) {
	ctx := context.Background()
	bus := sdskit.NewLoopbackBus()
	defer bus.Close()
	c, err := sdskit.OpenReliableChannel(ctx, "alice", "room", bus.Transport(), sdskit.ChannelOptions{}, sdskit.WithMemoryPersistence())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	_, err = c.Send(ctx, []byte("late"))
	var e *sdskit.Error
	if !errors.As(err, &e) || e.GetCode() != pb.ErrorCode_ERROR_CODE_CLOSED {
		t.Fatalf("Send after Close = %v, want CLOSED", err)
	}
}

func TestOpenReliableChannelBadInput(t *testing.T) {
	ctx := context.Background()
	bus := sdskit.NewLoopbackBus()
	defer bus.Close()
	for name, open := range map[string]func() error{
		"empty channel": func() error {
			_, err := sdskit.OpenReliableChannel(ctx, "a", "", bus.Transport(), sdskit.ChannelOptions{})
			return err
		},
		"nil transport": func() error {
			_, err := sdskit.OpenReliableChannel(ctx, "a", "room", nil, sdskit.ChannelOptions{})
			return err
		},
		"bad config": func() error {
			_, err := sdskit.OpenReliableChannel(ctx, "a", "room", bus.Transport(), sdskit.ChannelOptions{},
				sdskit.WithConfig(&sdskit.Config{BloomErrorRate: proto.Float64(2)}))
			return err
		},
	} {
		var e *sdskit.Error
		if err := open(); !errors.As(err, &e) || e.GetCode() != pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
		}
	}
}

var errNetworkDown = errors.New("network down")

// failingTransport publishes nothing and says so.
type failingTransport struct{ sdskit.Transport }

func (failingTransport) Publish(context.Context, []byte) error { return errNetworkDown }

func TestReliableChannelReportsPublishFailures(t *testing.T) {
	ctx := context.Background()
	bus := sdskit.NewLoopbackBus()
	defer bus.Close()
	errs := make(chan error, 100)
	c, err := sdskit.OpenReliableChannel(ctx, "alice", "room", failingTransport{bus.Transport()},
		sdskit.ChannelOptions{OnError: func(err error) {
			select {
			case errs <- err:
			default:
			}
		}}, sdskit.WithConfig(fastConfig()), sdskit.WithMemoryPersistence())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.SendWithID(ctx, "m1", []byte("x"))
	var pe *sdskit.PublishError
	if !errors.As(err, &pe) || pe.MessageID != "m1" || !pe.Persisted || !errors.Is(err, errNetworkDown) {
		t.Fatalf("Send over a failing transport = %#v, want a persisted *PublishError of m1 wrapping the transport's error", err)
	}
	id, err := c.SendEphemeral(ctx, []byte("typing"))
	if !errors.As(err, &pe) || pe.MessageID != id || id == "" || pe.Persisted {
		t.Fatalf("SendEphemeral over a failing transport = %q, %#v, want a non-persisted *PublishError of its id", id, err)
	}
	// The message was persisted before publishing: the resend timer tries again and the
	// failure of that background publication reaches OnError.
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "network down") {
			t.Fatalf("OnError got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no background publish failure reported")
	}
	snap, err := c.Manager().Snapshot(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.GetOutgoing()) != 1 {
		t.Fatalf("outgoing buffer holds %d entries, want the unsent message", len(snap.GetOutgoing()))
	}
}

func TestReliableChannelReportsMalformedPayloads(t *testing.T) {
	ctx := context.Background()
	bus := sdskit.NewLoopbackBus()
	defer bus.Close()
	errs := make(chan error, 10)
	c, err := sdskit.OpenReliableChannel(ctx, "alice", "room", bus.Transport(),
		sdskit.ChannelOptions{OnError: func(err error) { errs <- err }}, sdskit.WithMemoryPersistence())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := bus.Transport().Publish(ctx, []byte{0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		var e *sdskit.Error
		if !errors.As(err, &e) || e.GetCode() != pb.ErrorCode_ERROR_CODE_DESERIALIZATION {
			t.Fatalf("malformed payload reported as %v, want DESERIALIZATION", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("malformed payload not reported")
	}
	snap, err := c.Manager().Snapshot(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.GetLog()) != 0 || len(snap.GetIncoming()) != 0 {
		t.Fatal("a malformed payload changed the channel's state")
	}
}

// alicePair opens alice and bob on one loopback bus (memory persistence, closed with the
// test) and returns alice's channel and both logs.
func alicePair(t *testing.T) (*sdskit.ReliableChannel, *logOf, *logOf) {
	t.Helper()
	bus := sdskit.NewLoopbackBus()
	t.Cleanup(bus.Close)
	open := func(name string, l *logOf) *sdskit.ReliableChannel {
		c, err := sdskit.OpenReliableChannel(context.Background(), name, "room", bus.Transport(), l.options(), sdskit.WithMemoryPersistence())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	la, lb := newLog(), newLog()
	a := open("alice", la)
	open("bob", lb)
	return a, la, lb
}

func TestReliableChannelConcurrentSenders(t *testing.T) {
	ctx := context.Background()
	a, la, lb := alicePair(t)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 10; k++ {
				if _, err := a.Send(ctx, []byte(fmt.Sprintf("g%d-%d", g, k))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, 20*time.Second, "bob to receive all 40 messages", func() bool { return len(lb.sorted()) == 40 })
	if got := len(la.sorted()); got != 0 {
		t.Fatalf("alice was handed %d of her own messages, want 0", got)
	}
}

func TestReliableChannelEphemeral(t *testing.T) {
	ctx := context.Background()
	a, _, lb := alicePair(t)
	id, err := a.SendEphemeral(ctx, []byte("typing…"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the ephemeral message", func() bool {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		return string(lb.ids[id]) == "typing…"
	})
	snap, err := a.Manager().Snapshot(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.GetOutgoing()) != 0 || len(snap.GetLog()) != 0 {
		t.Fatal("an ephemeral message entered the log or the resend buffer")
	}
}
