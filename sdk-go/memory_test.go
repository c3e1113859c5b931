package sdskit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	sdskit "github.com/sdskit/sdskit/sdk-go"
	"google.golang.org/protobuf/proto"
)

func memOutgoing(id string) *pb.SaveOutgoingRequest {
	return &pb.SaveOutgoingRequest{ChannelId: "c", Message: &pb.UnacknowledgedMessage{
		Message: &pb.SdsMessage{MessageId: id, ChannelId: "c", LamportTimestamp: proto.Uint64(1), Content: []byte("x")}}}
}

func memOutIDs(s *pb.ChannelSnapshot) []string {
	var ids []string
	for _, u := range s.GetOutgoing() {
		ids = append(ids, u.GetMessage().GetMessageId())
	}
	return ids
}

func TestMemoryPersistenceTransactionsAreAtomic(t *testing.T) {
	ctx := context.Background()
	p := sdskit.NewMemoryPersistence()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Outside a transaction a write applies at once.
	must(p.SaveOutgoing(ctx, memOutgoing("a")))
	if got := memOutIDs(p.Snapshot("c")); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("outgoing %v, want [a]", got)
	}

	// Inside one, writes are staged until Commit.
	must(p.Begin(ctx, &pb.BeginRequest{ChannelId: "c"}))
	must(p.SaveOutgoing(ctx, memOutgoing("b")))
	must(p.SaveLamport(ctx, &pb.SaveLamportRequest{ChannelId: "c", LamportTimestamp: 7}))
	if got := memOutIDs(p.Snapshot("c")); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("staged writes visible before Commit: %v", got)
	}
	if err := p.Begin(ctx, &pb.BeginRequest{ChannelId: "c"}); err == nil {
		t.Fatal("a second Begin on the same channel succeeded")
	}
	must(p.Commit(ctx, &pb.CommitRequest{ChannelId: "c"}))
	if s := p.Snapshot("c"); !slices.Equal(memOutIDs(s), []string{"a", "b"}) || s.GetLamportTimestamp() != 7 {
		t.Fatalf("after Commit: outgoing %v lamport %d", memOutIDs(s), s.GetLamportTimestamp())
	}

	// Rollback discards; a failing staged write is not staged; a failing Commit applies nothing.
	must(p.Begin(ctx, &pb.BeginRequest{ChannelId: "c"}))
	must(p.RemoveOutgoing(ctx, &pb.RemoveOutgoingRequest{ChannelId: "c", MessageId: "a"}))
	must(p.Rollback(ctx, &pb.RollbackRequest{ChannelId: "c"}))
	p.FailNth(sdskit.OpCommit, 1)
	must(p.Begin(ctx, &pb.BeginRequest{ChannelId: "c"}))
	must(p.RemoveOutgoing(ctx, &pb.RemoveOutgoingRequest{ChannelId: "c", MessageId: "b"}))
	var inj *store.InjectedError
	if err := p.Commit(ctx, &pb.CommitRequest{ChannelId: "c"}); !errors.As(err, &inj) || inj.Op != sdskit.OpCommit {
		t.Fatalf("Commit = %v, want the injected failure", err)
	}
	if got := memOutIDs(p.Snapshot("c")); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("after Rollback and a failed Commit: outgoing %v, want [a b]", got)
	}
	must(p.Begin(ctx, &pb.BeginRequest{ChannelId: "c"})) // the failed Commit closed the transaction
	must(p.Commit(ctx, &pb.CommitRequest{ChannelId: "c"}))
}

func TestMemoryPersistenceFailureInjectionAndCounters(t *testing.T) {
	ctx := context.Background()
	p := sdskit.NewMemoryPersistence()
	p.FailOp(sdskit.OpSaveOutgoing)
	for range 2 {
		if err := p.SaveOutgoing(ctx, memOutgoing("a")); err == nil {
			t.Fatal("SaveOutgoing succeeded under FailOp")
		}
	}
	if len(p.Channels()) != 0 {
		t.Fatalf("a failed write stored something: %v", p.Channels())
	}
	p.Heal(sdskit.OpSaveOutgoing)
	if err := p.SaveOutgoing(ctx, memOutgoing("a")); err != nil {
		t.Fatal(err)
	}

	p.FailNth(sdskit.OpLoadAllForChannel, 2)
	if _, err := p.LoadAllForChannel(ctx, &pb.LoadAllForChannelRequest{ChannelId: "c"}); err != nil {
		t.Fatalf("first load: %v", err)
	}
	if _, err := p.LoadAllForChannel(ctx, &pb.LoadAllForChannelRequest{ChannelId: "c"}); err == nil {
		t.Fatal("second load succeeded under FailNth(2)")
	}
	s, err := p.LoadAllForChannel(ctx, &pb.LoadAllForChannelRequest{ChannelId: "c"})
	if err != nil || !slices.Equal(memOutIDs(s), []string{"a"}) {
		t.Fatalf("third load = %v, %v", s, err)
	}
	if got := p.Calls(sdskit.OpSaveOutgoing); got != 3 {
		t.Fatalf("Calls(SaveOutgoing) = %d, want 3 (failed calls count)", got)
	}
	if got := p.Calls(sdskit.OpLoadAllForChannel); got != 3 {
		t.Fatalf("Calls(LoadAllForChannel) = %d, want 3", got)
	}

	p.FailOp(sdskit.OpDropChannel)
	p.FailOp(sdskit.OpBegin)
	p.Heal()
	if err := p.DropChannel(ctx, &pb.DropChannelRequest{ChannelId: "c"}); err != nil {
		t.Fatalf("Heal() left a failure: %v", err)
	}
	if len(p.Channels()) != 0 {
		t.Fatalf("DropChannel left %v", p.Channels())
	}

	defer func() {
		if recover() == nil {
			t.Fatal("FailOp of an unknown method did not panic")
		}
	}()
	p.FailOp("Explode")
}

// TestMemoryPersistenceRestart: a manager closed and re-created on the same
// MemoryPersistence resumes where it stopped.
func TestMemoryPersistenceRestart(t *testing.T) {
	ctx := context.Background()
	p := sdskit.NewMemoryPersistence()
	m, err := sdskit.New(ctx, "alice", sdskit.WithPersistence(p))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Wrap(ctx, "room", "m1", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if p.Calls(sdskit.OpBegin) != 1 || p.Calls(sdskit.OpCommit) != 1 {
		t.Fatalf("one wrap made %d Begin and %d Commit calls, want 1 each", p.Calls(sdskit.OpBegin), p.Calls(sdskit.OpCommit))
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m, err = sdskit.New(ctx, "alice", sdskit.WithPersistence(p))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.EnsureChannel(ctx, "room"); err != nil {
		t.Fatal(err)
	}
	s, err := m.Snapshot(ctx, "room")
	if err != nil {
		t.Fatal(err)
	}
	if got := memOutIDs(s); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("outgoing after restart %v, want [m1]", got)
	}
}

// A test backend that fails on demand: the failed wrap changes nothing and can simply be
// retried once the backend recovers.
func ExampleMemoryPersistence() {
	ctx := context.Background()
	backend := sdskit.NewMemoryPersistence()
	m, _ := sdskit.New(ctx, "alice", sdskit.WithPersistence(backend))
	defer m.Close()

	backend.FailOp(sdskit.OpSaveOutgoing)
	_, err := m.Wrap(ctx, "room", "m1", []byte("hello"))
	var e *sdskit.Error
	if errors.As(err, &e) {
		fmt.Println(e.GetCode(), "after", backend.Calls(sdskit.OpRollback), "rollback")
	}

	backend.Heal()
	_, err = m.Wrap(ctx, "room", "m1", []byte("hello"))
	fmt.Println("retry:", err, "- stored:", memOutIDs(backend.Snapshot("room")))
	// Output:
	// ERROR_CODE_PERSISTENCE after 1 rollback
	// retry: <nil> - stored: [m1]
}
