package sds

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/profile"
)

// relSyncFrom is a sync message of sender whose bloom filter holds ids.
func relSyncFrom(t *testing.T, sender, id string, lamport uint64, ids ...string) []byte {
	m := relMsg(sender, relCh, id, lamport, "")
	m.BloomFilter = relPeerBloom(t, ids...)
	return relEncode(t, m)
}

// A sync whose bloom filter shows its sender holds older and newer messages of our log
// but lacks some between (a participant back from an absence) schedules their
// rebroadcast as SDS-R answers; what it lacks before the oldest message it holds (it
// joined later) and what is younger than BloomRepairAfter are left alone; a copy of a
// scheduled message from another peer cancels its answer.
func TestBloomRepairAnswersWhatAReturningPeerLacks(t *testing.T) {
	cfg := relSDSRConfig()
	cfg.BloomRepairAfter = 5 * time.Minute
	bob := relNew(t, "bob", cfg)
	for i, id := range []string{"m1", "m2", "m3", "m4", "m5"} {
		bob.unwrap(t, relEncode(t, relMsg("alice", relCh, id, uint64(i+1), "payload-"+id)))
	}
	recent := profile.Spec.LamportNow(relStart.Add(-time.Minute)) // younger than 5 minutes
	bob.unwrap(t, relEncode(t, relMsg("alice", relCh, "m6", recent, "payload-m6")))

	// Carol holds m2 and m5: she lacks m1 (before the oldest she holds), m3, m4 (a gap)
	// and m6 (too recent to tell).
	bob.unwrap(t, relSyncFrom(t, "carol", "s1", recent+1, "m2", "m5"))
	if got := relIrepIDs(bob.snap(t, relCh)); !slices.Equal(got, []string{"m3", "m4"}) {
		t.Fatalf("answers scheduled %v, want [m3 m4]", got)
	}
	// The next sync of hers does not re-time them; a copy of m3 from dave cancels it.
	before := bob.snap(t, relCh).GetIncomingRepair()
	bob.clk.Advance(time.Second)
	bob.unwrap(t, relSyncFrom(t, "carol", "s2", recent+2, "m2", "m5"))
	if after := bob.snap(t, relCh).GetIncomingRepair(); len(after) != 2 || after[0].GetRespondAtUnixMs() != before[0].GetRespondAtUnixMs() {
		t.Fatalf("a repeated sync re-timed the answers: %v, was %v", after, before)
	}
	bob.unwrap(t, relEncode(t, relMsg("alice", relCh, "m3", 3, "payload-m3")))
	if got := relIrepIDs(bob.snap(t, relCh)); !slices.Equal(got, []string{"m4"}) {
		t.Fatalf("answers after m3 arrived again %v, want [m4]", got)
	}
	// The answer falls due and is a rebroadcast of the logged m4.
	bob.rec.reset()
	bob.clk.Advance(relTMax)
	bob.sweep(t)
	rr := bob.rec.of("repairReady")
	if len(rr) != 1 || rr[0].GetRepairReady().GetMessageId() != "m4" {
		t.Fatalf("events %v, want a RepairReady of m4", bob.rec.kinds())
	}
	if got := relDecode(t, rr[0].GetRepairReady().GetWireBytes()); string(got.GetContent()) != "payload-m4" || got.GetSenderId() != "alice" {
		t.Fatalf("rebroadcast %v", got)
	}
}

// Nothing is scheduled for a peer that holds none of our log (it joined later), for a
// sync without a readable bloom filter, without a participant id, or when the option is
// off.
func TestBloomRepairLeavesOthersAlone(t *testing.T) {
	fill := func(p *relPeer) {
		for i, id := range []string{"m1", "m2", "m3"} {
			p.unwrap(t, relEncode(t, relMsg("alice", relCh, id, uint64(i+1), "x")))
		}
	}
	on := relSDSRConfig()
	on.BloomRepairAfter = time.Minute
	off := on
	off.BloomRepairAfter = 0
	cases := []struct {
		name, participant string
		cfg               Config
		sync              func() []byte
	}{
		{"newcomer", "bob", on, func() []byte { return relSyncFrom(t, "carol", "s", 10, "other") }},
		{"no bloom filter", "bob", on, func() []byte { return relEncode(t, relMsg("carol", relCh, "s", 10, "")) }},
		{"unreadable bloom filter", "bob", on, func() []byte {
			m := relMsg("carol", relCh, "s", 10, "")
			m.BloomFilter = []byte{1, 2, 3}
			return relEncode(t, m)
		}},
		{"no participant id", "", on, func() []byte { return relSyncFrom(t, "carol", "s", 10, "m1") }},
		{"option off", "bob", off, func() []byte { return relSyncFrom(t, "carol", "s", 10, "m1") }},
		{"anonymous sender", "bob", on, func() []byte { return relSyncFrom(t, "", "s", 10, "m1") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := relNew(t, c.participant, c.cfg)
			fill(p)
			p.unwrap(t, c.sync())
			if got := relIrepIDs(p.snap(t, relCh)); len(got) != 0 {
				t.Fatalf("answers scheduled %v, want none", got)
			}
		})
	}
}

// The log is scanned back from the cutoff only until 64 messages in a row are held: a
// gap further back is not looked for (it was offered when it was recent).
func TestBloomRepairLooksBackAsFarAsTheLastGap(t *testing.T) {
	cfg := relSDSRConfig()
	cfg.BloomRepairAfter = time.Minute
	bob := relNew(t, "bob", cfg)
	var held []string
	for i := 1; i <= 100; i++ {
		id := fmt.Sprintf("m%03d", i)
		bob.unwrap(t, relEncode(t, relMsg("alice", relCh, id, uint64(i), "x")))
		if id != "m010" && id != "m090" {
			held = append(held, id)
		}
	}
	bob.unwrap(t, relSyncFrom(t, "carol", "s1", 1000, held...))
	if got := relIrepIDs(bob.snap(t, relCh)); !slices.Equal(got, []string{"m090"}) {
		t.Fatalf("answers scheduled %v, want [m090] (m010 is 79 held messages back)", got)
	}
}
