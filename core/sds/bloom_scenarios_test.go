package sds

// Bloom-filter scenarios of nim-sds's tests/test_reliability.nim, adapted: a hit in a
// received bloom filter is a *possible* acknowledgement, counted once per distinct
// sender and promoted to an acknowledgement at PossibleAcksThreshold (default 2).

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/profile"
)

// relBloomMsg is a message of sender with no causal history and a bloom holding ids.
func relBloomMsg(t *testing.T, sender, id string, ids ...string) []byte {
	m := relMsg(sender, relCh, id, 1, "x")
	m.BloomFilter = relPeerBloom(t, ids...)
	return relEncode(t, m)
}

func TestReliabilityMechanisms_AcknowledgmentViaBloomFilter(t *testing.T) {
	relAckViaBloom(t, nil)
}

func TestReliabilityMechanisms_AcknowledgmentViaBloomFilterNonEmptyBloom(t *testing.T) {
	var noise []string
	for i := 0; i < 100; i++ {
		noise = append(noise, fmt.Sprint("noise", i))
	}
	relAckViaBloom(t, noise)
}

func relAckViaBloom(t *testing.T, noise []string) {
	alice := relNew(t, "alice", DefaultConfig())
	alice.wrap(t, relCh, "msg1", []byte("one"))
	alice.seedBloom(t, relCh, noise...)
	// nim: one bloom hit ⇒ acknowledged. Here: possibly acknowledged, count 1.
	alice.unwrap(t, relBloomMsg(t, "bob", "msg2", append(noise, "msg1")...))
	if got := alice.rec.kinds(); !slices.Equal(got, []string{"possiblyAcked", "ready"}) {
		t.Fatalf("events %v, want [possiblyAcked ready]", got)
	}
	pa := alice.rec.of("possiblyAcked")[0].GetMessagePossiblyAcknowledged()
	if pa.GetMessageId() != "msg1" || pa.GetCount() != 1 || pa.GetChannelId() != relCh {
		t.Fatalf("MessagePossiblyAcknowledged %v", pa)
	}
	out := alice.snap(t, relCh).GetOutgoing()
	if len(out) != 1 || !slices.Equal(out[0].GetPossibleAckSenders(), []string{"bob"}) {
		t.Fatalf("outgoing %v", out)
	}
	// The same peer again: still one, no event.
	alice.unwrap(t, relBloomMsg(t, "bob", "msg3", append(noise, "msg1")...))
	if alice.rec.count("possiblyAcked") != 1 || alice.rec.count("acked") != 0 {
		t.Fatalf("events %v", alice.rec.kinds())
	}
	// A second distinct peer reaches the threshold.
	alice.unwrap(t, relBloomMsg(t, "carol", "msg4", append(noise, "msg1")...))
	if got := alice.rec.kinds(); !slices.Equal(got, []string{"possiblyAcked", "ready", "ready", "possiblyAcked", "acked", "ready"}) {
		t.Fatalf("events %v", got)
	}
	if pa := alice.rec.of("possiblyAcked")[1].GetMessagePossiblyAcknowledged(); pa.GetCount() != 2 {
		t.Fatalf("second MessagePossiblyAcknowledged %v", pa)
	}
	if ack := alice.rec.of("acked"); len(ack) != 1 || ack[0].GetMessageAcknowledged().GetMessageId() != "msg1" {
		t.Fatalf("acked %v", ack)
	}
	if out := alice.snap(t, relCh).GetOutgoing(); len(out) != 0 {
		t.Fatalf("outgoing %v", out)
	}
	// A later bloom hit or causal-history mention of an acknowledged message: nothing.
	alice.rec.reset()
	alice.unwrap(t, relBloomMsg(t, "dave", "msg5", "msg1"))
	alice.unwrap(t, relEncode(t, relMsg("erin", relCh, "msg6", 1, "x", "msg1")))
	if got := alice.rec.kinds(); !slices.Equal(got, []string{"ready", "ready"}) {
		t.Fatalf("events %v", got)
	}
}

func TestReliabilityMechanisms_AcknowledgmentViaBloomFilterThresholdOne(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PossibleAcksThreshold = 1 // nim-sds's behaviour
	alice := relNew(t, "alice", cfg)
	alice.wrap(t, relCh, "msg1", []byte("one"))
	alice.unwrap(t, relBloomMsg(t, "bob", "msg2", "msg1"))
	if got := alice.rec.kinds(); !slices.Equal(got, []string{"possiblyAcked", "acked", "ready"}) {
		t.Fatalf("events %v", got)
	}
}

func TestReliabilityMechanisms_PossibleAckThenCausalHistoryAck(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	alice.wrap(t, relCh, "msg1", []byte("one"))
	alice.wrap(t, relCh, "msg2", []byte("two"))
	// A message whose bloom holds msg1 and msg2, buffered for a missing dependency: the
	// acknowledgements are still reviewed.
	m := relMsg("bob", relCh, "b2", 1, "x", "b1")
	m.BloomFilter = relPeerBloom(t, "msg1", "msg2")
	if u := alice.unwrap(t, relEncode(t, m)); u.Delivered {
		t.Fatal("b2 delivered")
	}
	if got := alice.rec.ids("possiblyAcked"); !slices.Equal(got, []string{"msg1", "msg2"}) {
		t.Fatalf("possibly acknowledged %v", got)
	}
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "b3", 1, "x", "msg1")))
	if got := alice.rec.ids("acked"); !slices.Equal(got, []string{"msg1"}) {
		t.Fatalf("acked %v", got)
	}
	if got := relOutIDs(alice.snap(t, relCh)); !slices.Equal(got, []string{"msg2"}) {
		t.Fatalf("outgoing %v", got)
	}
}

func TestReliabilityMechanisms_OutgoingMessageBloomSnapshotReflectsChannelState(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	if err := alice.EnsureChannel(relCtx, relCh); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		alice.seedBloom(t, relCh, fmt.Sprint("delivered-", i))
	}
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "incoming-1", 1, "x")))
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "buffered-1", 3, "x", "gap")))
	m := relDecode(t, alice.wrap(t, relCh, "outgoing-1", []byte("x")))
	f := relDecodeBloom(t, m.GetBloomFilter())
	for _, id := range []string{"delivered-0", "delivered-39", "incoming-1", "buffered-1"} {
		if !f.Test(id) {
			t.Errorf("attached bloom lacks %s", id)
		}
	}
	if f.Test("outgoing-1") || f.Test("gap") {
		t.Error("attached bloom holds the message's own id or a missing one")
	}
	// The next message's bloom holds the previous one.
	if f2 := relDecodeBloom(t, relDecode(t, alice.wrap(t, relCh, "outgoing-2", []byte("x"))).GetBloomFilter()); !f2.Test("outgoing-1") {
		t.Error("second bloom lacks outgoing-1")
	}
}

func TestReliabilityMechanisms_BloomHoldsSeenIDsOnly(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	bob := relNew(t, "bob", DefaultConfig())
	sync, err := bob.BuildSyncMessage(relCtx, relCh)
	if err != nil {
		t.Fatal(err)
	}
	eph, err := bob.WrapEphemeral(relCtx, relCh, "eph", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	alice.unwrap(t, sync)
	alice.unwrap(t, eph)
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "content", 1, "x")))
	if err := alice.MarkDependenciesMet(relCtx, relCh, []string{"met"}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{
		relDecode(t, sync).GetMessageId(): false, "eph": false, "content": true, "met": true,
	} {
		if got := alice.bloomHas(t, relCh, id); got != want {
			t.Errorf("bloom holds %s: %v, want %v", id, got, want)
		}
	}
}

func TestSpecialCases_BloomFilterOfTheWrongSize(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	alice.wrap(t, relCh, "msg1", []byte("x"))
	// A well-formed filter of another size (capacity 100): the spec layout has no header,
	// so it cannot be interpreted; the message is processed without bloom acks.
	small, err := bloom.NewRolling(100, 0.001, profile.Spec.Hash)
	if err != nil {
		t.Fatal(err)
	}
	small.Add("msg1")
	for _, b := range [][]byte{profile.Spec.EncodeBloom(small.Filter()), make([]byte, 8), make([]byte, 18752+8), {}} {
		alice.rec.reset()
		m := relMsg("bob", relCh, fmt.Sprint("b", len(b)), 1, "x")
		m.BloomFilter = b
		u, err := alice.UnwrapReceivedMessage(relCtx, relEncode(t, m))
		if err != nil {
			t.Fatalf("bloom of %d bytes: %v", len(b), err)
		}
		if !u.Delivered || len(u.Missing) != 0 {
			t.Fatalf("bloom of %d bytes: %+v", len(b), u)
		}
		if got := alice.rec.kinds(); !slices.Equal(got, []string{"ready"}) {
			t.Fatalf("bloom of %d bytes: events %v", len(b), got)
		}
	}
	if got := relOutIDs(alice.snap(t, relCh)); !slices.Equal(got, []string{"msg1"}) {
		t.Fatalf("outgoing %v", got)
	}
	// A message whose only acknowledgement is a causal-history entry is still acked.
	m := relMsg("bob", relCh, "bx", 1, "x", "msg1")
	m.BloomFilter = []byte{1, 2, 3}
	alice.unwrap(t, relEncode(t, m))
	if alice.rec.count("acked") != 1 {
		t.Fatalf("events %v", alice.rec.kinds())
	}
}

func TestMultiChannel_ChannelIsolationNonEmptyBloom(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	for _, ch := range []string{"ch1", "ch2"} {
		if err := alice.EnsureChannel(relCtx, ch); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			alice.seedBloom(t, ch, fmt.Sprintf("%s-%d", ch, i))
		}
	}
	alice.wrap(t, "ch1", "m1", []byte("x"))
	alice.wrap(t, "ch2", "m2", []byte("x"))
	for _, c := range []struct{ ch, own, other, ownMsg, otherMsg string }{
		{"ch1", "ch1-", "ch2-", "m1", "m2"}, {"ch2", "ch2-", "ch1-", "m2", "m1"},
	} {
		for i := 0; i < 20; i++ {
			if !alice.bloomHas(t, c.ch, fmt.Sprint(c.own, i)) || alice.bloomHas(t, c.ch, fmt.Sprint(c.other, i)) {
				t.Fatalf("%s bloom mixes channels at %d", c.ch, i)
			}
		}
		if !alice.bloomHas(t, c.ch, c.ownMsg) || alice.bloomHas(t, c.ch, c.otherMsg) {
			t.Fatalf("%s bloom: own %v other %v", c.ch, alice.bloomHas(t, c.ch, c.ownMsg), alice.bloomHas(t, c.ch, c.otherMsg))
		}
	}
	// A peer bloom on ch2 holding ch1's message does not touch ch1's buffer.
	m := relMsg("bob", "ch2", "b", 1, "x")
	m.BloomFilter = relPeerBloom(t, "m1", "m2")
	alice.unwrap(t, relEncode(t, m))
	if got := alice.rec.ids("possiblyAcked"); !slices.Equal(got, []string{"m2"}) {
		t.Fatalf("possibly acknowledged %v, want [m2]", got)
	}
	for _, ev := range alice.rec.of("possiblyAcked") {
		if ev.GetMessagePossiblyAcknowledged().GetChannelId() != "ch2" {
			t.Fatalf("event %v", ev)
		}
	}
}
