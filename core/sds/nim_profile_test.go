package sds

// The nim wire profile driven through the engine: a full exchange between nim-profile
// managers (bloom acknowledgement, SDS-R repair) and messages of the other profile.

import (
	"slices"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/profile"
	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/wire"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

func nimConfig() Config {
	cfg := relQuietConfig()
	cfg.Profile = "nim"
	cfg.PossibleAcksThreshold = 1 // nim-sds: one bloom hit is an acknowledgement
	cfg.MaxCausalHistory = 1
	return cfg
}

func nimDecode(t testing.TB, b []byte) *pb.SdsMessage {
	t.Helper()
	m, err := wire.Nim.Decode(b, wire.DefaultLimits())
	if err != nil {
		t.Fatalf("nim decode: %v", err)
	}
	return m
}

func nimEncode(t testing.TB, m *pb.SdsMessage) []byte {
	t.Helper()
	b, err := wire.Nim.Encode(m)
	if err != nil {
		t.Fatalf("nim encode %s: %v", m.GetMessageId(), err)
	}
	return b
}

func TestNimProfileExchange(t *testing.T) {
	clk := clock.NewManual(relStart)
	cfg := nimConfig()
	alice := relNewAt(t, "alice", cfg, clk)
	bob := relNewAt(t, "bob", cfg, clk)
	carol := relNewAt(t, "carol", cfg, clk)

	a1 := alice.wrap(t, relCh, "a1", []byte("one"))
	a2 := alice.wrap(t, relCh, "a2", []byte("two"))
	if _, err := wire.Spec.Decode(a1, wire.Limits{}); err == nil {
		t.Fatal("a nim-profile message decodes as a spec message")
	}
	m1, m2 := nimDecode(t, a1), nimDecode(t, a2)
	// Lamport in seconds: max(unix seconds, L) + 1, as nim-sds.
	if got, want := m1.GetLamportTimestamp(), uint64(relStart.Unix())+1; got != want {
		t.Fatalf("lamport of a1 = %d, want %d", got, want)
	}
	if got := m2.GetLamportTimestamp(); got != m1.GetLamportTimestamp()+1 {
		t.Fatalf("lamport of a2 = %d", got)
	}
	// The bloom field is nim-sds's nested message at the default size, holding a1.
	if len(m2.GetBloomFilter()) != 18768 {
		t.Fatalf("bloom field is %d bytes, want 18768", len(m2.GetBloomFilter()))
	}
	f, err := profile.Nim.DecodeBloom(m2.GetBloomFilter(), 0, 0)
	if err != nil || f.K() != 10 || f.M() != 150000 || !f.Test("a1") || f.Test("a2") {
		t.Fatalf("a2's bloom: %v", err)
	}
	if h := m2.GetCausalHistory(); len(h) != 1 || h[0].GetMessageId() != "a1" || h[0].GetSenderId() != "alice" {
		t.Fatalf("a2's causal history %v", h)
	}

	// Bob gets both; carol misses a2.
	for _, b := range [][]byte{a1, a2} {
		if u := bob.unwrap(t, b); !u.Delivered {
			t.Fatalf("bob: %+v", u)
		}
	}
	carol.unwrap(t, a1)

	// Bob's message acknowledges a2 through its causal history (one entry) and a1
	// through its bloom filter only.
	clk.Advance(2 * time.Second)
	b1 := bob.wrap(t, relCh, "b1", []byte("bob"))
	mb := nimDecode(t, b1)
	if h := relEntryIDs(mb.GetCausalHistory()); !slices.Equal(h, []string{"a2"}) {
		t.Fatalf("b1's causal history %v", h)
	}
	if got, want := mb.GetLamportTimestamp(), uint64(clk.Now().Unix())+1; got != want {
		t.Fatalf("lamport of b1 = %d, want %d", got, want)
	}
	alice.unwrap(t, b1)
	if got := alice.rec.ids("acked"); !slices.Equal(got, []string{"a1", "a2"}) && !slices.Equal(got, []string{"a2", "a1"}) {
		t.Fatalf("alice acknowledged %v", got)
	}
	if got := alice.rec.ids("possiblyAcked"); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("bloom acknowledgements %v, want [a1]", got)
	}
	if out := relOutIDs(alice.snap(t, relCh)); len(out) != 0 {
		t.Fatalf("alice's outgoing buffer %v", out)
	}

	// SDS-R: carol detects the gap from b1 and requests a2 once T_req passed.
	u := carol.unwrap(t, b1)
	if u.Delivered || len(u.Missing) != 1 || u.Missing[0].GetMessageId() != "a2" {
		t.Fatalf("carol: %+v", u)
	}
	orep := carol.snap(t, relCh).GetOutgoingRepair()
	tReq := profile.Nim.TReq("carol", "a2", cfg.RepairTMin, cfg.RepairTMax)
	if len(orep) != 1 || orep[0].GetRequestAtUnixMs() != clk.Now().Add(tReq).UnixMilli() {
		t.Fatalf("carol's repair request %v, want due after %v", orep, tReq)
	}
	clk.Advance(tReq)
	c1 := carol.wrap(t, relCh, "c1", []byte("carol"))
	if rr := nimDecode(t, c1).GetRepairRequest(); len(rr) != 1 || rr[0].GetMessageId() != "a2" || rr[0].GetSenderId() != "alice" {
		t.Fatalf("c1's repair request %v", rr)
	}

	// Alice (the sender: T_resp 0) and bob schedule answers with the nim formulas.
	now := clk.Now()
	alice.unwrap(t, c1)
	bob.unwrap(t, c1)
	for _, p := range []struct {
		peer *relPeer
		name string
	}{{alice, "alice"}, {bob, "bob"}} {
		irep := p.peer.snap(t, relCh).GetIncomingRepair()
		want := now.Add(profile.Nim.TResp(p.name, "alice", "a2", cfg.RepairTMax)).UnixMilli()
		if len(irep) != 1 || irep[0].GetEntry().GetMessageId() != "a2" || irep[0].GetRespondAtUnixMs() != want {
			t.Fatalf("%s's answer %v, want at %d", p.name, irep, want)
		}
	}
	alice.rec.reset()
	alice.sweep(t)
	ready := alice.rec.of("repairReady")
	if len(ready) != 1 {
		t.Fatalf("alice's sweep: %v", alice.rec.kinds())
	}
	rb := ready[0].GetRepairReady().GetWireBytes()
	if rm := nimDecode(t, rb); rm.GetMessageId() != "a2" || string(rm.GetContent()) != "two" || rm.GetLamportTimestamp() != m2.GetLamportTimestamp() {
		t.Fatalf("rebroadcast %v", rm)
	}

	// The rebroadcast repairs carol (a2, then b1) and cancels bob's answer.
	carol.rec.reset()
	carol.unwrap(t, rb)
	if got := carol.rec.ids("ready"); !slices.Equal(got, []string{"a2", "b1"}) {
		t.Fatalf("carol delivered %v, want [a2 b1]", got)
	}
	if u := bob.unwrap(t, rb); u.Kind != KindDuplicate {
		t.Fatalf("bob: %+v", u)
	}
	if irep := bob.snap(t, relCh).GetIncomingRepair(); len(irep) != 0 {
		t.Fatalf("bob still answers: %v", irep)
	}
	bob.rec.reset()
	clk.Advance(cfg.RepairTMax)
	bob.sweep(t)
	if n := bob.rec.count("repairReady"); n != 0 {
		t.Fatalf("bob rebroadcast %d times", n)
	}
	if got, want := relLogIDs(carol.snap(t, relCh)), []string{"a1", "a2", "b1", "c1"}; !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Fatalf("carol's log %v", got)
	}

	// Sync messages work between nim-profile managers (empty field 5); ephemeral
	// messages cannot be expressed in nim-sds's format.
	sync, err := carol.BuildSyncMessage(relCtx, relCh)
	if err != nil {
		t.Fatal(err)
	}
	if u := alice.unwrap(t, sync); u.Kind != KindSync {
		t.Fatalf("sync: %+v", u)
	}
	_, err = alice.WrapEphemeral(relCtx, relCh, "e1", []byte("x"))
	relWantCode(t, err, sdserr.Serialization)
}

// A message of the other profile is rejected with a typed error and changes nothing.
func TestNimProfileRejectsSpecMessagesAndViceVersa(t *testing.T) {
	specCfg := relQuietConfig()
	nimCfg := nimConfig()
	for _, c := range []struct {
		name     string
		receiver Config
		sender   Config
	}{{"spec message to nim manager", nimCfg, specCfg}, {"nim message to spec manager", specCfg, nimCfg}} {
		t.Run(c.name, func(t *testing.T) {
			rx := relNew(t, "rx", c.receiver)
			tx := relNew(t, "tx", c.sender)
			rx.wrap(t, relCh, "own", []byte("x"))
			before := rx.snap(t, relCh)
			rx.rec.reset()
			msgs := [][]byte{tx.wrap(t, relCh, "t1", []byte("x")), tx.wrap(t, relCh, "t2", []byte("y"))}
			if s, err := tx.BuildSyncMessage(relCtx, relCh); err == nil {
				msgs = append(msgs, s)
			}
			if e, err := tx.WrapEphemeral(relCtx, relCh, "e", []byte("z")); err == nil {
				msgs = append(msgs, e)
			}
			for _, b := range msgs {
				_, err := rx.UnwrapReceivedMessage(relCtx, b)
				relWantCode(t, err, sdserr.Deserialization)
			}
			relWantEqual(t, "receiver state", before, rx.snap(t, relCh))
			if n := rx.rec.len(); n != 0 {
				t.Fatalf("events for rejected input: %v", rx.rec.kinds())
			}
		})
	}
}

// Receiving is liberal: a nim message whose bloom filter has other parameters is used
// with them; one whose bloom does not decode is processed without bloom acks.
func TestNimProfileLiberalBloom(t *testing.T) {
	alice := relNew(t, "alice", nimConfig())
	alice.wrap(t, relCh, "a1", []byte("x"))
	alice.wrap(t, relCh, "a2", []byte("x"))
	other, err := bloom.NewRolling(12000, 0.001, profile.Nim.Hash) // a nim-sds filter after a roll
	if err != nil {
		t.Fatal(err)
	}
	other.Add("a1")
	specBloom, _ := bloom.NewRolling(10000, 0.001, profile.Spec.Hash)
	specBloom.Add("a2")
	// A nim-sds peer configured for 40,000 ids sends 75,008 bytes of bloom, more than
	// MaxBloomBytes: the filter is dropped and the message still delivered.
	big, err := bloom.NewRolling(40000, 0.001, profile.Nim.Hash)
	if err != nil {
		t.Fatal(err)
	}
	big.Add("a2")
	bigBloom := profile.Nim.EncodeBloom(big.Filter())
	if len(bigBloom) <= wire.DefaultLimits().MaxBloomBytes {
		t.Fatalf("test filter of %d bytes is not oversized", len(bigBloom))
	}
	for _, c := range []struct {
		id    string
		bloom []byte
		acked []string
	}{
		{"p1", profile.Nim.EncodeBloom(other.Filter()), []string{"a1"}},
		{"p2", profile.Spec.EncodeBloom(specBloom.Filter()), nil}, // not a nim layout: ignored
		{"p3", []byte{0x0a, 0x05, 1}, nil},                        // malformed: ignored
		{"p3b", bigBloom, nil},                                    // oversized: ignored
	} {
		alice.rec.reset()
		m := relMsg("peer", relCh, c.id, 5, "hi")
		m.BloomFilter = c.bloom
		u := alice.unwrap(t, nimEncode(t, m))
		if !u.Delivered {
			t.Fatalf("%s not delivered: %+v", c.id, u)
		}
		if got := alice.rec.ids("acked"); !slices.Equal(got, c.acked) {
			t.Fatalf("%s acknowledged %v, want %v", c.id, got, c.acked)
		}
	}
	if out := relOutIDs(alice.snap(t, relCh)); !slices.Equal(out, []string{"a2"}) {
		t.Fatalf("outgoing %v", out)
	}
	// A nim-sds message carries its bloom even when empty; an empty one is no bloom.
	m := relMsg("peer", relCh, "p4", 6, "hi")
	if b := nimEncode(t, m); !proto.Equal(nimDecode(t, b), &pb.SdsMessage{SenderId: "peer", MessageId: "p4", ChannelId: relCh,
		LamportTimestamp: proto.Uint64(6), Content: []byte("hi"), BloomFilter: []byte{}}) {
		t.Fatal("empty bloom not emitted")
	}
	if u := alice.unwrap(t, nimEncode(t, m)); !u.Delivered {
		t.Fatalf("p4: %+v", u)
	}
}
