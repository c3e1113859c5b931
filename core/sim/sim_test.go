package sim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/sds"
	"github.com/sdskit/sdskit/core/store"
)

func testConfig() sds.Config {
	cfg := sds.DefaultConfig()
	cfg.ResendInterval = 10 * time.Second
	cfg.MaxResendInterval = 80 * time.Second
	cfg.RepairTMin, cfg.RepairTMax = 2*time.Second, 20*time.Second
	cfg.SyncInterval = 15 * time.Second
	return cfg
}

// runChat posts messages round-robin on a lossy network, optionally restarting one
// peer midway, then lets it settle; it returns the network and whether it converged.
func runChat(t *testing.T, seed uint64, peers, msgs int, loss float64, restart bool) (*Network, bool) {
	t.Helper()
	ctx := context.Background()
	net := New(Options{Seed: seed, Loss: loss, Dup: 0.05, MinDelay: 10 * time.Millisecond, MaxDelay: 300 * time.Millisecond})
	for i := range peers {
		if _, err := net.AddPeer(fmt.Sprintf("p%d", i), testConfig(), store.NewMemory()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range msgs {
		from := net.Peers[i%peers]
		if err := net.Send(ctx, from, "ch", fmt.Sprintf("%s-%d", from.Name, i), []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if restart && i == msgs/2 {
			if err := net.Restart(net.Peers[1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := net.Step(ctx, time.Second, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	for range 120 { // at most 10 simulated minutes
		if err := net.Step(ctx, 5*time.Second, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		ok, err := net.Converged("ch")
		if err != nil {
			t.Fatal(err)
		}
		if ok && net.Pending() == 0 {
			return net, true
		}
	}
	return net, false
}

func TestLossyChatConverges(t *testing.T) {
	net, ok := runChat(t, 7, 4, 80, 0.25, false)
	if !ok {
		t.Fatal("did not converge")
	}
	for _, p := range net.Peers {
		snap, err := p.Manager.Snapshot("ch")
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.GetLog()) != 80 {
			t.Fatalf("%s holds %d messages, want 80", p.Name, len(snap.GetLog()))
		}
		// Every received message is delivered exactly once: own messages are not
		// delivered to oneself, so 80 - own.
		if p.Stats.Delivered != 80-p.Stats.Sent {
			t.Fatalf("%s delivered %d, want %d", p.Name, p.Stats.Delivered, 80-p.Stats.Sent)
		}
	}
}

func TestRestartedPeerConverges(t *testing.T) {
	net, ok := runChat(t, 3, 3, 60, 0.2, true)
	if !ok {
		t.Fatal("did not converge after a restart")
	}
	if net.Peers[1].Stats.Restarts != 1 {
		t.Fatal("restart not counted")
	}
}

func TestSameSeedSameRun(t *testing.T) {
	a, _ := runChat(t, 11, 3, 30, 0.3, false)
	b, _ := runChat(t, 11, 3, 30, 0.3, false)
	if a.Wire != b.Wire {
		t.Fatalf("wire differs: %+v vs %+v", a.Wire, b.Wire)
	}
	for i := range a.Peers {
		if a.Peers[i].Stats != b.Peers[i].Stats {
			t.Fatalf("peer %d stats differ: %+v vs %+v", i, a.Peers[i].Stats, b.Peers[i].Stats)
		}
	}
}
