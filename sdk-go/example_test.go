package sdskit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	sdskit "github.com/sdskit/sdskit/sdk-go"
)

// Two participants on one channel: bob receives alice's second message before her first
// and gets both, in causal order, as soon as the gap is filled.
func Example() {
	ctx := context.Background()
	alice, _ := sdskit.New(ctx, "alice")
	defer alice.Close()
	bob, _ := sdskit.New(ctx, "bob", sdskit.WithEventFunc(func(ev *sdskit.Event) {
		if r := ev.GetMessageReady(); r != nil {
			fmt.Printf("bob delivers %s: %s\n", r.GetMessageId(), r.GetContent())
		}
	}))
	defer bob.Close()

	first, _ := alice.Wrap(ctx, "room", "m1", []byte("hello"))
	second, _ := alice.Wrap(ctx, "room", "m2", []byte("world"))

	got, _ := bob.Unwrap(ctx, second, nil) // arrives first: it waits for m1
	fmt.Println("m2 delivered on arrival:", got.GetDelivered(), "missing:", got.GetMissing()[0].GetMessageId())
	_, _ = bob.Unwrap(ctx, first, nil)
	// Output:
	// m2 delivered on arrival: false missing: m1
	// bob delivers m1: hello
	// bob delivers m2: world
}

// Typed event handlers: embed UnimplementedEventHandler and override what you need.
type acks struct {
	sdskit.UnimplementedEventHandler
}

func (acks) OnMessageAcknowledged(e *sdskit.MessageAcknowledged) {
	fmt.Println("acknowledged:", e.GetMessageId())
}

func ExampleWithEventHandler() {
	ctx := context.Background()
	alice, _ := sdskit.New(ctx, "alice", sdskit.WithEventHandler(acks{}))
	defer alice.Close()
	bob, _ := sdskit.New(ctx, "bob")
	defer bob.Close()

	hello, _ := alice.Wrap(ctx, "room", "m1", []byte("hello"))
	_, _ = bob.Unwrap(ctx, hello, nil)
	reply, _ := bob.Wrap(ctx, "room", "b1", []byte("hi alice")) // its causal history names m1
	_, _ = alice.Unwrap(ctx, reply, nil)
	// Output:
	// acknowledged: m1
}

// Errors are typed: check the code with errors.As.
func ExampleManager_Wrap_errors() {
	ctx := context.Background()
	m, _ := sdskit.New(ctx, "alice")
	defer m.Close()
	_, err := m.Wrap(ctx, "room", "m1", nil)
	var e *sdskit.Error
	if errorsAs(err, &e) {
		fmt.Println(e.GetCode())
	}
	// Output:
	// ERROR_CODE_INVALID_ARGUMENT
}

// State survives a restart with the embedded SQLite backend: the unacknowledged message
// is still there, waiting for an acknowledgement or a resend.
func ExampleWithSQLite() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "sdskit-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "alice.db")

	alice, err := sdskit.New(ctx, "alice", sdskit.WithSQLite(path, ""))
	if err != nil {
		fmt.Println(err)
		return
	}
	_, _ = alice.Wrap(ctx, "room", "m1", []byte("hello"))
	_ = alice.Close()

	again, _ := sdskit.New(ctx, "alice", sdskit.WithSQLite(path, ""))
	defer again.Close()
	_ = again.EnsureChannel(ctx, "room")
	snap, _ := again.Snapshot(ctx, "room")
	fmt.Println("unacknowledged after restart:", snap.GetOutgoing()[0].GetMessage().GetMessageId())
	// Output:
	// unacknowledged after restart: m1
}

// Events can also arrive on a channel; drain it from its own goroutine.
func ExampleWithEventChannel() {
	ctx := context.Background()
	events := make(chan *sdskit.Event, 16)
	bob, _ := sdskit.New(ctx, "bob", sdskit.WithEventChannel(events))
	alice, _ := sdskit.New(ctx, "alice")
	defer alice.Close()

	hello, _ := alice.Wrap(ctx, "room", "m1", []byte("hello"))
	_, _ = bob.Unwrap(ctx, hello, nil)
	_ = bob.Close()
	close(events)
	for ev := range events {
		fmt.Println(sdskit.EventName(ev), ev.GetMessageReady().GetMessageId())
	}
	// Output:
	// MessageReady m1
}
