package sds

import (
	"context"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/clock"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

func TestSmokeTwoPeers(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewManual(time.Unix(1_700_000_000, 0))
	var evA, evB []*pb.Event
	a, err := New("alice", DefaultConfig(), WithClock(clk), WithHandler(HandlerFunc(func(e *pb.Event) { evA = append(evA, e) })))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New("bob", DefaultConfig(), WithClock(clk), WithHandler(HandlerFunc(func(e *pb.Event) { evB = append(evB, e) })))
	if err != nil {
		t.Fatal(err)
	}
	m1, err := a.WrapOutgoingMessage(ctx, "ch", "m1", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	m2, err := a.WrapOutgoingMessage(ctx, "ch", "m2", []byte("world"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.UnwrapReceivedMessage(ctx, m2)
	if err != nil {
		t.Fatal(err)
	}
	if r.Delivered || len(r.Missing) != 1 {
		t.Fatalf("m2 should wait for m1: %+v", r)
	}
	r, err = b.UnwrapReceivedMessage(ctx, m1)
	if err != nil || !r.Delivered {
		t.Fatalf("m1: %+v %v", r, err)
	}
	var ready []string
	for _, e := range evB {
		if mr := e.GetMessageReady(); mr != nil {
			ready = append(ready, mr.GetMessageId())
		}
	}
	if len(ready) != 2 || ready[0] != "m1" || ready[1] != "m2" {
		t.Fatalf("ready = %v", ready)
	}
	reply, err := b.WrapOutgoingMessage(ctx, "ch", "b1", []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.UnwrapReceivedMessage(ctx, reply); err != nil {
		t.Fatal(err)
	}
	acks := 0
	for _, e := range evA {
		if e.GetMessageAcknowledged() != nil {
			acks++
		}
	}
	if acks != 2 {
		t.Fatalf("acks = %d, events %v", acks, evA)
	}
}
