package sds

import (
	"slices"
	"testing"
)

// syncHistoryIDs builds a sync message on p and returns the ids of its causal history.
func syncHistoryIDs(t *testing.T, p *relPeer) []string {
	t.Helper()
	b, err := p.BuildSyncMessage(relCtx, relCh)
	if err != nil {
		t.Fatal(err)
	}
	return relEntryIDs(relDecode(t, b).GetCausalHistory())
}

func unreferencedConfig() Config {
	cfg := relQuietConfig()
	cfg.SyncCausalHistory = 2
	return cfg
}

// A message that a buffered message was waiting for is referenced by it, so it is not
// named again once it arrives; references by later messages retire the others.
func TestSyncUnreferenced_WaitedForAndReferencedMessagesAreNotNamed(t *testing.T) {
	bob := relNew(t, "bob", unreferencedConfig())
	if u := bob.unwrap(t, relEncode(t, relMsg("alice", relCh, "m2", 2, "two", "m1"))); u.Delivered {
		t.Fatal("m2 delivered without m1")
	}
	bob.unwrap(t, relEncode(t, relMsg("alice", relCh, "m1", 1, "one")))
	bob.unwrap(t, relEncode(t, relMsg("alice", relCh, "m3", 3, "three", "m2")))
	bob.unwrap(t, relEncode(t, relMsg("alice", relCh, "m4", 4, "four", "m3")))
	bob.unwrap(t, relEncode(t, relMsg("alice", relCh, "m5", 5, "five", "m4")))
	if got := syncHistoryIDs(t, bob); !slices.Equal(got, []string{"m4", "m5"}) {
		t.Fatalf("sync history %v, want only the newest [m4 m5]", got)
	}
}

// At most SyncCausalHistory unreferenced messages are named, the newest of them, in log
// order before the newest entries.
func TestSyncUnreferenced_CappedToTheNewest(t *testing.T) {
	bob := relNew(t, "bob", unreferencedConfig())
	for i, id := range []string{"u1", "u2", "u3", "u4", "u5"} {
		bob.unwrap(t, relEncode(t, relMsg("alice", relCh, id, uint64(i+1), id)))
	}
	if got := syncHistoryIDs(t, bob); !slices.Equal(got, []string{"u2", "u3", "u4", "u5"}) {
		t.Fatalf("sync history %v, want [u2 u3] then the newest [u4 u5]", got)
	}
}

// Our own message is named while nothing references it, and retired by the first
// received message that does.
func TestSyncUnreferenced_OwnMessages(t *testing.T) {
	bob := relNew(t, "bob", unreferencedConfig())
	bob.wrap(t, relCh, "b1", []byte("mine"))
	for i, id := range []string{"x1", "x2"} {
		bob.unwrap(t, relEncode(t, relMsg("alice", relCh, id, uint64(2_000_000_000_000+i), id)))
	}
	if got := syncHistoryIDs(t, bob); !slices.Equal(got, []string{"b1", "x1", "x2"}) {
		t.Fatalf("sync history %v, want b1 before the newest [x1 x2]", got)
	}
	bob.unwrap(t, relEncode(t, relMsg("alice", relCh, "x3", 2_000_000_000_010, "x3", "b1", "x2")))
	if got := syncHistoryIDs(t, bob); !slices.Equal(got, []string{"x1", "x2", "x3"}) {
		t.Fatalf("sync history %v, want x1 (still unreferenced) before the newest [x2 x3]", got)
	}
}
