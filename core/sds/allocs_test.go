package sds

import (
	"context"
	"fmt"
	"testing"

	"github.com/sdskit/sdskit/core/clock"
)

// The steady-state allocations of a send and of an in-order delivery (default config,
// no persistence) guard the hot paths against features that allocate per message: the
// bounds are today's counts plus a little room. The least of three measurements is
// taken, since AllocsPerRun counts the whole process.
func TestSteadyStateAllocations(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewManual(relStart)
	alice, err := New("alice", DefaultConfig(), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := New("bob", DefaultConfig(), WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	const runs = 100
	wires := make([][]byte, 0, 4*runs+50)
	next := 0
	wrap := func() {
		b, err := alice.WrapOutgoingMessage(ctx, relCh, fmt.Sprintf("m%06d", next), []byte("payload"))
		if err != nil {
			t.Fatal(err)
		}
		next++
		wires = append(wires, b)
	}
	for range 50 {
		wrap()
	}
	least := func(f func()) float64 {
		n := testing.AllocsPerRun(runs, f)
		for range 2 {
			n = min(n, testing.AllocsPerRun(runs, f))
		}
		return n
	}
	n := least(wrap)
	t.Logf("send: %v allocations", n)
	if n > 16 {
		t.Errorf("a send allocates %v times, want ≤ 16", n)
	}
	delivered := 0
	unwrap := func() {
		u, err := bob.UnwrapReceivedMessage(ctx, wires[delivered])
		if err != nil || !u.Delivered {
			t.Fatalf("unwrap %d: %v, %+v", delivered, err, u)
		}
		delivered++
	}
	for range 50 {
		unwrap()
	}
	n = least(unwrap)
	t.Logf("delivery: %v allocations", n)
	if n > 25 {
		t.Errorf("an in-order delivery allocates %v times, want ≤ 25", n)
	}
}
