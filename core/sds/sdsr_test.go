package sds

// Ports of the SDS-R suites of nim-sds's tests/test_reliability.nim (§13.2): computation
// functions (for the spec profile: core/hash's Waku* functions, which @waku/sds uses),
// repair buffers, protobuf round trips, edge cases, lifecycle and the repair sweep.

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/hash"
	"github.com/sdskit/sdskit/core/profile"
	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

const (
	relTMin = 30 * time.Second
	relTMax = 300 * time.Second
)

// --- SDS-R: Computation Functions ----------------------------------------------------

func TestSDSRComputation_ComputeTReqReturnsDurationInRange(t *testing.T) {
	d := hash.WakuTReq("participant1", "msg1", relTMin, relTMax)
	if d < relTMin || d >= relTMax {
		t.Fatalf("T_req %v outside [%v, %v)", d, relTMin, relTMax)
	}
	if d%time.Millisecond != 0 {
		t.Fatalf("T_req %v is not whole milliseconds", d)
	}
	if p := profile.Spec.TReq("participant1", "msg1", relTMin, relTMax); p != d {
		t.Fatalf("the spec profile's TReq %v differs from WakuTReq %v", p, d)
	}
}

func TestSDSRComputation_ComputeTReqIsDeterministicForSameInputs(t *testing.T) {
	a := hash.WakuTReq("participant1", "msg1", relTMin, relTMax)
	b := hash.WakuTReq("participant1", "msg1", relTMin, relTMax)
	if a != b {
		t.Fatalf("%v != %v", a, b)
	}
}

func TestSDSRComputation_ComputeTReqVariesWithDifferentParticipants(t *testing.T) {
	a := hash.WakuTReq("participant1", "msg1", relTMin, relTMax)
	b := hash.WakuTReq("participant2", "msg1", relTMin, relTMax)
	if a < relTMin || b < relTMin {
		t.Fatalf("T_req %v, %v below T_min", a, b)
	}
	distinct := map[time.Duration]bool{}
	for i := 0; i < 20; i++ {
		distinct[hash.WakuTReq(fmt.Sprint("participant", i), "msg1", relTMin, relTMax)] = true
	}
	if len(distinct) < 15 {
		t.Fatalf("20 participants share %d distinct T_req values: requests would collide", len(distinct))
	}
}

func TestSDSRComputation_ComputeTRespOriginalSenderHasZeroDistance(t *testing.T) {
	if d := hash.WakuTResp("sender1", "sender1", "msg1", relTMax); d != 0 {
		t.Fatalf("T_resp of the original sender = %v, want 0", d)
	}
	if d := profile.Spec.TResp("sender1", "sender1", "msg1", relTMax); d != 0 {
		t.Fatalf("spec profile T_resp of the original sender = %v", d)
	}
}

func TestSDSRComputation_ComputeTRespNonSenderHasPositiveBackoff(t *testing.T) {
	d := hash.WakuTResp("participant1", "sender1", "msg1", relTMax)
	if d < 0 || d >= relTMax {
		t.Fatalf("T_resp %v outside [0, %v)", d, relTMax)
	}
	if d == 0 {
		t.Fatalf("T_resp of a non-sender is 0")
	}
}

func TestSDSRComputation_IsInResponseGroupAllInSameGroupWhenNumGroupsIs1(t *testing.T) {
	for _, p := range []string{"p1", "p2"} {
		if !hash.WakuInResponseGroup(p, "sender", "msg1", 1) {
			t.Fatalf("%s not in the only group", p)
		}
	}
}

func TestSDSRComputation_IsInResponseGroupSenderAlwaysInOwnGroup(t *testing.T) {
	for n := 1; n <= 10; n++ {
		if !hash.WakuInResponseGroup("sender1", "sender1", "msg1", n) {
			t.Fatalf("the sender is not in its own group for N = %d", n)
		}
	}
}

// --- SDS-R: Repair Buffer Management ------------------------------------------------

func relSDSRConfig() Config {
	cfg := relQuietConfig()
	cfg.RepairTMin, cfg.RepairTMax = relTMin, relTMax
	return cfg
}

func TestSDSRRepairBuffer_MissingDepsAddedToOutgoingRepairBuffer(t *testing.T) {
	p := relNew(t, "test-participant", relSDSRConfig())
	m2 := relMsg("sender-B", relCh, "msg2", 2, "two")
	m2.CausalHistory = []*pb.HistoryEntry{relH("msg1", "sender-A", []byte("h1"))}
	p.unwrap(t, relEncode(t, m2))
	if p.rec.count("missing") != 1 {
		t.Fatalf("events %v", p.rec.kinds())
	}
	orep := p.snap(t, relCh).GetOutgoingRepair()
	if len(orep) != 1 {
		t.Fatalf("outgoing repair buffer %v", orep)
	}
	e := orep[0]
	wantAt := relStart.Add(hash.WakuTReq("test-participant", "msg1", relTMin, relTMax)).UnixMilli()
	if e.GetEntry().GetMessageId() != "msg1" || e.GetEntry().GetSenderId() != "sender-A" || string(e.GetEntry().GetRetrievalHint()) != "h1" ||
		e.GetRequestAtUnixMs() != wantAt || e.GetDetectedAtUnixMs() != relStart.UnixMilli() || e.GetAttempts() != 0 {
		t.Fatalf("repair entry %v, want msg1 from sender-A due at %d", e, wantAt)
	}
	// A second message with the same gap does not re-time the request.
	p.clk.Advance(time.Second)
	m3 := relMsg("sender-B", relCh, "msg3", 3, "three")
	m3.CausalHistory = []*pb.HistoryEntry{relH("msg1", "sender-A", nil)}
	p.unwrap(t, relEncode(t, m3))
	if got := p.snap(t, relCh).GetOutgoingRepair(); len(got) != 1 || got[0].GetRequestAtUnixMs() != wantAt {
		t.Fatalf("repair entry re-timed: %v", got)
	}
	// A gap whose message we hold buffered is not requested.
	m4 := relMsg("sender-B", relCh, "msg4", 4, "four", "msg3")
	p.unwrap(t, relEncode(t, m4))
	if got := relOrepIDs(p.snap(t, relCh)); !slices.Equal(got, []string{"msg1"}) {
		t.Fatalf("repair requests %v, want [msg1]", got)
	}
}

func TestSDSRRepairBuffer_ReceivingMessageClearsItFromRepairBuffers(t *testing.T) {
	p := relNew(t, "test-participant", relSDSRConfig())
	m2 := relMsg("sender-A", relCh, "msg2", 2, "two")
	m2.CausalHistory = []*pb.HistoryEntry{relH("msg1", "sender-A", nil)}
	p.unwrap(t, relEncode(t, m2))
	if got := relOrepIDs(p.snap(t, relCh)); !slices.Equal(got, []string{"msg1"}) {
		t.Fatalf("repair requests %v", got)
	}
	p.unwrap(t, relEncode(t, relMsg("sender-A", relCh, "msg1", 1, "one")))
	s := p.snap(t, relCh)
	if len(s.GetOutgoingRepair()) != 0 || len(s.GetIncoming()) != 0 {
		t.Fatalf("after receiving msg1: %v", s)
	}
	if got := p.rec.ids("ready"); !slices.Equal(got, []string{"msg1", "msg2"}) {
		t.Fatalf("ready %v", got)
	}
}

func TestSDSRRepairBuffer_MarkDependenciesMetClearsRepairBuffers(t *testing.T) {
	p := relNew(t, "test-participant", relSDSRConfig())
	// An outgoing request for msg1 and a pending response for own-1.
	p.wrap(t, relCh, "own-1", []byte("x"))
	m2 := relMsg("sender-A", relCh, "msg2", 2, "two")
	m2.CausalHistory = []*pb.HistoryEntry{relH("msg1", "sender-A", nil)}
	m2.RepairRequest = []*pb.HistoryEntry{relH("own-1", "test-participant", nil)}
	p.unwrap(t, relEncode(t, m2))
	s := p.snap(t, relCh)
	if !slices.Equal(relOrepIDs(s), []string{"msg1"}) || !slices.Equal(relIrepIDs(s), []string{"own-1"}) {
		t.Fatalf("repair buffers: outgoing %v, incoming %v", relOrepIDs(s), relIrepIDs(s))
	}
	if err := p.MarkDependenciesMet(relCtx, relCh, []string{"msg1", "own-1"}); err != nil {
		t.Fatal(err)
	}
	s = p.snap(t, relCh)
	if len(s.GetOutgoingRepair()) != 0 || len(s.GetIncomingRepair()) != 0 {
		t.Fatalf("repair buffers after MarkDependenciesMet: outgoing %v, incoming %v", relOrepIDs(s), relIrepIDs(s))
	}
	if got := p.rec.ids("ready"); !slices.Equal(got, []string{"msg2"}) {
		t.Fatalf("ready %v", got)
	}
}

func TestSDSRRepairBuffer_ExpiredRepairRequestsAttachedToOutgoingMessages(t *testing.T) {
	for _, attempts := range []int{1, 5} {
		t.Run(fmt.Sprint("MaxRepairAttempts=", attempts), func(t *testing.T) {
			cfg := relSDSRConfig()
			cfg.MaxRepairAttempts = attempts
			cfg.RepairRetryMaxInterval = 0 // spent requests are forgotten, as in nim-sds
			p := relNew(t, "test-participant", cfg)
			m := relMsg("sender-A", relCh, "msg2", 2, "two")
			want := relH("missing-msg", "sender-A", []byte("hint"))
			m.CausalHistory = []*pb.HistoryEntry{want}
			p.unwrap(t, relEncode(t, m))
			d := hash.WakuTReq("test-participant", "missing-msg", relTMin, relTMax)
			p.clk.Advance(d - time.Millisecond)
			if rr := relDecode(t, p.wrap(t, relCh, "early", []byte("x"))).GetRepairRequest(); len(rr) != 0 {
				t.Fatalf("request attached before T_req: %v", rr)
			}
			p.clk.Advance(10*time.Second + time.Millisecond) // due 10 s ago
			rr := relDecode(t, p.wrap(t, relCh, "late", []byte("x"))).GetRepairRequest()
			if len(rr) != 1 || !proto.Equal(rr[0], want) {
				t.Fatalf("repair_request %v, want [%v]", rr, want)
			}
			orep := p.snap(t, relCh).GetOutgoingRepair()
			if attempts == 1 {
				if len(orep) != 0 {
					t.Fatalf("entry kept after its last attempt: %v", orep)
				}
				return
			}
			// Re-armed with a fresh T_req, so a lost request or answer is retried.
			wantAt := p.clk.Now().Add(d).UnixMilli()
			if len(orep) != 1 || orep[0].GetAttempts() != 1 || orep[0].GetRequestAtUnixMs() != wantAt {
				t.Fatalf("re-armed entry %v, want attempts 1 due at %d", orep, wantAt)
			}
			for i := 2; i <= attempts; i++ {
				p.clk.Advance(d)
				rr := relDecode(t, p.wrap(t, relCh, fmt.Sprint("again", i), []byte("x"))).GetRepairRequest()
				if len(rr) != 1 {
					t.Fatalf("attempt %d: repair_request %v", i, rr)
				}
			}
			if orep := p.snap(t, relCh).GetOutgoingRepair(); len(orep) != 0 {
				t.Fatalf("entry kept after %d attempts: %v", attempts, orep)
			}
		})
	}
}

// After MaxRepairAttempts, a gap that a buffered message still depends on keeps being
// requested, the wait doubling up to RepairRetryMaxInterval; once nothing depends on it,
// the spent request is forgotten.
// With the retry policy on (the default), a request nothing carried for T_max stays while a
// buffered message waits for it, so the next outgoing message still asks for the gap.
func TestSDSRRepairSweepKeepsRequestsBufferedMessagesNeed(t *testing.T) {
	bob := relNew(t, "bob", relSDSRConfig())
	m := relMsg("alice", relCh, "m1", 1, "x")
	m.CausalHistory = []*pb.HistoryEntry{relH("g1", "alice", nil)}
	bob.unwrap(t, relEncode(t, m))
	sync := relMsg("alice", relCh, "sync-1", 2, "")
	sync.CausalHistory = []*pb.HistoryEntry{relH("g2", "alice", nil)}
	bob.unwrap(t, relEncode(t, sync))
	bob.clk.Advance(relTMax + hash.WakuTReq("bob", "g1", relTMin, relTMax) + hash.WakuTReq("bob", "g2", relTMin, relTMax) + time.Second)
	bob.sweep(t)
	if got := relOrepIDs(bob.snap(t, relCh)); !slices.Equal(got, []string{"g1"}) {
		t.Fatalf("requests after T_max unsent: %v, want [g1] (g2 holds up no buffered message)", got)
	}
	rr := relDecode(t, bob.wrap(t, relCh, "b1", []byte("y"))).GetRepairRequest()
	if len(rr) != 1 || rr[0].GetMessageId() != "g1" {
		t.Fatalf("the next message carries %v, want the request for g1", rr)
	}
}

func TestSDSRRepairRetryAfterMaxAttempts(t *testing.T) {
	cfg := relSDSRConfig()
	cfg.MaxRepairAttempts = 2
	cfg.RepairRetryMaxInterval = 4 * relTMax
	p := relNew(t, "test-participant", cfg)
	m := relMsg("sender-A", relCh, "msg2", 2, "two")
	m.CausalHistory = []*pb.HistoryEntry{relH("missing-msg", "sender-A", nil)}
	p.unwrap(t, relEncode(t, m))
	d := hash.WakuTReq("test-participant", "missing-msg", relTMin, relTMax)
	// Two ordinary attempts T_req apart, then T_req doubled per attempt, capped.
	waits := []time.Duration{d, d, min(2*d, cfg.RepairRetryMaxInterval), min(4*d, cfg.RepairRetryMaxInterval), min(8*d, cfg.RepairRetryMaxInterval), cfg.RepairRetryMaxInterval}
	for i, w := range waits {
		p.clk.Advance(w - time.Millisecond)
		if rr := relDecode(t, p.wrap(t, relCh, fmt.Sprint("early", i), []byte("x"))).GetRepairRequest(); len(rr) != 0 {
			t.Fatalf("attempt %d: request attached %v before its wait of %v", i+1, rr, w)
		}
		p.clk.Advance(time.Millisecond)
		if rr := relDecode(t, p.wrap(t, relCh, fmt.Sprint("due", i), []byte("x"))).GetRepairRequest(); len(rr) != 1 || rr[0].GetMessageId() != "missing-msg" {
			t.Fatalf("attempt %d after %v: repair_request %v", i+1, w, rr)
		}
	}
	orep := p.snap(t, relCh).GetOutgoingRepair()
	if len(orep) != 1 || orep[0].GetAttempts() != uint32(len(waits)) {
		t.Fatalf("outgoing repair %v, want the gap kept with %d attempts", orep, len(waits))
	}
	// A gap seen only in a sync message's history holds up no buffered message: after
	// MaxRepairAttempts requests it is forgotten.
	sync := relMsg("sender-A", relCh, "sync-1", 3, "")
	sync.CausalHistory = []*pb.HistoryEntry{relH("other-gap", "sender-A", nil)}
	p.unwrap(t, relEncode(t, sync))
	d2 := hash.WakuTReq("test-participant", "other-gap", relTMin, relTMax)
	for i := 0; i < cfg.MaxRepairAttempts; i++ {
		p.clk.Advance(d2)
		p.wrap(t, relCh, fmt.Sprint("sync-gap", i), []byte("x"))
	}
	for _, e := range p.snap(t, relCh).GetOutgoingRepair() {
		if e.GetEntry().GetMessageId() == "other-gap" {
			t.Fatalf("a gap nothing depends on was kept after %d requests: %v", cfg.MaxRepairAttempts, e)
		}
	}
}

func TestSDSRRepairBuffer_ExpiredRepairRequestsAttachTheMostOverdueFirstWhenCapped(t *testing.T) {
	cfg := relSDSRConfig()
	// T_req = T_min + h mod 1 ms = 0: each request is due the moment its gap is seen.
	cfg.RepairTMin, cfg.RepairTMax = 0, time.Millisecond
	p := relNew(t, "test-participant", cfg)
	for i := 1; i <= 5; i++ { // dep-1 seen 50 s before the send, ..., dep-5 10 s before
		m := relMsg("sender-A", relCh, fmt.Sprint("m", i), uint64(i), "x")
		m.CausalHistory = []*pb.HistoryEntry{relH(fmt.Sprint("dep-", i), "sender-A", nil)}
		p.unwrap(t, relEncode(t, m))
		p.clk.Advance(10 * time.Second)
	}
	rr := relDecode(t, p.wrap(t, relCh, "a1", []byte("x"))).GetRepairRequest()
	if got := relEntryIDs(rr); !slices.Equal(got, []string{"dep-1", "dep-2", "dep-3"}) {
		t.Fatalf("repair_request %v, want the three most overdue [dep-1 dep-2 dep-3]", got)
	}
	orep := map[string]*pb.OutgoingRepairEntry{}
	for _, e := range p.snap(t, relCh).GetOutgoingRepair() {
		orep[e.GetEntry().GetMessageId()] = e
	}
	for i, id := range []string{"dep-4", "dep-5"} {
		e := orep[id]
		if e == nil || e.GetAttempts() != 0 || e.GetRequestAtUnixMs() != relStart.Add(time.Duration(30+10*i)*time.Second).UnixMilli() {
			t.Fatalf("%s: %v, want untouched", id, e)
		}
	}
	// Next send: the two left over are now the most overdue, then the re-armed ones.
	rr = relDecode(t, p.wrap(t, relCh, "a2", []byte("x"))).GetRepairRequest()
	if got := relEntryIDs(rr); !slices.Equal(got, []string{"dep-4", "dep-5", "dep-1"}) {
		t.Fatalf("second repair_request %v, want [dep-4 dep-5 dep-1]", got)
	}
	// MaxRepairRequests 0: nothing is ever attached.
	cfg.MaxRepairRequests = 0
	q := relNew(t, "test-participant", cfg)
	m := relMsg("sender-A", relCh, "m", 1, "x")
	m.CausalHistory = []*pb.HistoryEntry{relH("dep", "sender-A", nil)}
	q.unwrap(t, relEncode(t, m))
	q.clk.Advance(time.Minute)
	if rr := relDecode(t, q.wrap(t, relCh, "a1", []byte("x"))).GetRepairRequest(); len(rr) != 0 {
		t.Fatalf("MaxRepairRequests 0 attached %v", rr)
	}
}

func TestSDSRRepairBuffer_IncomingRepairRequestAddsToIncomingRepairBufferWhenEligible(t *testing.T) {
	p := relNew(t, "test-participant", relSDSRConfig())
	p.wrap(t, relCh, "cached-msg", []byte("payload"))
	logged := p.snap(t, relCh).GetLog()[0]
	req := relH("cached-msg", "test-participant", nil)
	m := relMsg("peer", relCh, "peer-1", 1, "x")
	m.RepairRequest = []*pb.HistoryEntry{req}
	p.unwrap(t, relEncode(t, m))
	irep := p.snap(t, relCh).GetIncomingRepair()
	if len(irep) != 1 {
		t.Fatalf("incoming repair buffer %v", irep)
	}
	e := irep[0]
	// We are the original sender: T_resp = 0.
	if !proto.Equal(e.GetEntry(), req) || e.GetRespondAtUnixMs() != relStart.UnixMilli() {
		t.Fatalf("incoming repair entry %v", e)
	}
	if cached := relDecode(t, e.GetCachedMessage()); !proto.Equal(cached, logged) || string(cached.GetContent()) != "payload" {
		t.Fatalf("cached message %v, want the logged %v", cached, logged)
	}

	// A responder that is not the sender waits T_resp.
	bob := relNew(t, "bob", relSDSRConfig())
	bob.unwrap(t, relEncode(t, relMsg("alice", relCh, "m1", 1, "x")))
	r := relMsg("carol", relCh, "c1", 2, "x")
	r.RepairRequest = []*pb.HistoryEntry{relH("m1", "alice", nil)}
	bob.unwrap(t, relEncode(t, r))
	irep = bob.snap(t, relCh).GetIncomingRepair()
	wantAt := relStart.Add(hash.WakuTResp("bob", "alice", "m1", relTMax)).UnixMilli()
	if len(irep) != 1 || irep[0].GetRespondAtUnixMs() != wantAt {
		t.Fatalf("bob's incoming repair %v, want due at %d", irep, wantAt)
	}
	// A repeated request does not postpone the answer.
	bob.clk.Advance(time.Second)
	r2 := relMsg("dave", relCh, "d1", 3, "x")
	r2.RepairRequest = []*pb.HistoryEntry{relH("m1", "alice", nil)}
	bob.unwrap(t, relEncode(t, r2))
	if got := bob.snap(t, relCh).GetIncomingRepair(); len(got) != 1 || got[0].GetRespondAtUnixMs() != wantAt {
		t.Fatalf("re-request re-timed the answer: %v", got)
	}
}

func TestSDSRRepairBuffer_IncomingRepairRequestIgnoredWhenNotEligible(t *testing.T) {
	cfg := relSDSRConfig()
	cfg.NumResponseGroups = 10
	// Find a message id for which bob is outside alice's response group.
	id := ""
	for i := 0; i < 1000 && id == ""; i++ {
		c := fmt.Sprint("probe-", i)
		if !hash.WakuInResponseGroup("bob", "alice", c, 10) {
			id = c
		}
	}
	if id == "" {
		t.Fatal("no probe id outside the group")
	}
	bob := relNew(t, "bob", cfg)
	bob.unwrap(t, relEncode(t, relMsg("alice", relCh, id, 1, "x")))                  // held, but not our group
	bob.unwrap(t, relEncode(t, relMsg("alice", relCh, "buffered", 3, "x", "gap")))   // only buffered
	if err := bob.MarkDependenciesMet(relCtx, relCh, []string{"stub"}); err != nil { // met out of band: no content
		t.Fatal(err)
	}
	r := relMsg("carol", relCh, "c1", 2, "x")
	r.RepairRequest = []*pb.HistoryEntry{relH(id, "alice", nil), relH("buffered", "alice", nil), relH("stub", "alice", nil), relH("unknown", "alice", nil)}
	bob.unwrap(t, relEncode(t, r))
	if got := relIrepIDs(bob.snap(t, relCh)); len(got) != 0 {
		t.Fatalf("answers scheduled for %v", got)
	}
}

// --- SDS-R: Protobuf Roundtrip ------------------------------------------------------

func relRoundTrip(t *testing.T, m *pb.SdsMessage) *pb.SdsMessage {
	t.Helper()
	b := relEncode(t, m)
	std, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, std) {
		t.Fatalf("wire.Spec encoding differs from protobuf's")
	}
	got := relDecode(t, b)
	if !proto.Equal(got, m) {
		t.Fatalf("round trip:\n got %v\nwant %v", got, m)
	}
	var viaProto pb.SdsMessage
	if err := proto.Unmarshal(b, &viaProto); err != nil || !proto.Equal(&viaProto, m) {
		t.Fatalf("protobuf decoding of wire.Spec bytes: %v %v", err, &viaProto)
	}
	return got
}

func TestSDSRProtobuf_SenderIDInHistoryEntryRoundtripsThroughProtobuf(t *testing.T) {
	m := relMsg("alice", relCh, "m3", 3, "x")
	m.CausalHistory = []*pb.HistoryEntry{relH("m1", "alice", nil), relH("m2", "bob", []byte{1, 2})}
	got := relRoundTrip(t, m)
	if got.GetCausalHistory()[0].GetSenderId() != "alice" || got.GetCausalHistory()[1].GetSenderId() != "bob" ||
		!bytes.Equal(got.GetCausalHistory()[1].GetRetrievalHint(), []byte{1, 2}) {
		t.Fatalf("causal history %v", got.GetCausalHistory())
	}
}

func TestSDSRProtobuf_RepairRequestFieldRoundtripsThroughProtobuf(t *testing.T) {
	m := relMsg("alice", relCh, "m3", 3, "x")
	m.RepairRequest = []*pb.HistoryEntry{relH("r1", "carol", nil), relH("r2", "dave", []byte{5})}
	got := relRoundTrip(t, m)
	rr := got.GetRepairRequest()
	if len(rr) != 2 || rr[0].GetMessageId() != "r1" || rr[0].GetSenderId() != "carol" || rr[1].GetSenderId() != "dave" || !bytes.Equal(rr[1].GetRetrievalHint(), []byte{5}) {
		t.Fatalf("repair_request %v", rr)
	}
}

func TestSDSRProtobuf_BackwardCompatMessageWithoutRepairRequestDecodesFine(t *testing.T) {
	m := relMsg("alice", relCh, "m2", 2, "x", "m1")
	got := relRoundTrip(t, m)
	if len(got.GetRepairRequest()) != 0 || got.GetCausalHistory()[0].SenderId != nil || got.GetCausalHistory()[0].GetSenderId() != "" {
		t.Fatalf("decoded %v", got)
	}
	// Such a message is processed normally: no answer can be scheduled without a sender.
	bob := relNew(t, "bob", relSDSRConfig())
	if u := bob.unwrap(t, relEncode(t, m)); len(u.Missing) != 1 || u.Missing[0].GetSenderId() != "" {
		t.Fatalf("unwrap %+v", u)
	}
}

func TestSDSRProtobuf_SdsMessageSenderIDRoundtripsThroughProtobuf(t *testing.T) {
	if got := relRoundTrip(t, relMsg("alice", relCh, "m1", 1, "x")); got.GetSenderId() != "alice" {
		t.Fatalf("sender %q", got.GetSenderId())
	}
	// And the engine stamps its participant id.
	alice := relNew(t, "alice", DefaultConfig())
	if got := relDecode(t, alice.wrap(t, relCh, "m1", []byte("x"))).GetSenderId(); got != "alice" {
		t.Fatalf("wrapped sender %q", got)
	}
}

// --- SDS-R: Edge Cases and Defensive Branches ---------------------------------------

func TestSDSREdgeCases_ComputeTReqReturnsTMinWhenRangeIsDegenerate(t *testing.T) {
	if d := hash.WakuTReq("p", "m", relTMin, relTMin); d != relTMin {
		t.Fatalf("T_max = T_min: %v, want %v", d, relTMin)
	}
	// T_max < T_min: nim-sds returns T_min; @waku/sds (the spec profile) reduces modulo
	// |range|, so the delay stays in [T_min, T_min + |range|). The engine never gets there:
	// Config rejects RepairTMax ≤ RepairTMin.
	d := hash.WakuTReq("p", "m", relTMin, relTMin-10*time.Second)
	if d < relTMin || d >= relTMin+10*time.Second {
		t.Fatalf("T_max < T_min: %v", d)
	}
	for _, tmax := range []time.Duration{relTMin, relTMin - time.Second} {
		cfg := DefaultConfig()
		cfg.RepairTMin, cfg.RepairTMax = relTMin, tmax
		_, err := New("p", cfg)
		relWantCode(t, err, sdserr.InvalidArgument)
		if !bytes.Contains([]byte(err.Error()), []byte("RepairTMax")) {
			t.Fatalf("error %v does not name RepairTMax", err)
		}
	}
}

func TestSDSREdgeCases_ComputeTRespReturns0WhenTMaxIs0(t *testing.T) {
	if d := hash.WakuTResp("p", "s", "m", 0); d != 0 {
		t.Fatalf("T_resp with T_max 0 = %v", d)
	}
}

func TestSDSREdgeCases_ComputeTRespAlwaysStaysWithin0TMax(t *testing.T) {
	for i := 0; i < 500; i++ {
		d := hash.WakuTResp(fmt.Sprint("participant-", i), fmt.Sprint("sender-", 13*i), fmt.Sprint("msg-", 31*i), relTMax)
		if d < 0 || d >= relTMax {
			t.Fatalf("combo %d: T_resp %v outside [0, %v)", i, d, relTMax)
		}
	}
}

func TestSDSREdgeCases_IsInResponseGroupReturnsTrueForNonPositiveNumGroups(t *testing.T) {
	for _, n := range []int{0, -1} {
		if !hash.WakuInResponseGroup("p", "s", "m", n) {
			t.Fatalf("N = %d: not in group", n)
		}
	}
	// The spec profile never answers for an unknown sender (nim-sds's callers skip them).
	if hash.WakuInResponseGroup("p", "", "m", 1) {
		t.Fatal("in the group of an empty sender")
	}
}

func TestSDSREdgeCases_ComputeTReqBoundsAcrossManyRandomInputs(t *testing.T) {
	for i := 0; i < 200; i++ {
		d := hash.WakuTReq(fmt.Sprint("p-", i), fmt.Sprint("m-", 7*i), relTMin, relTMax)
		if d < relTMin || d >= relTMax {
			t.Fatalf("combo %d: T_req %v outside [%v, %v)", i, d, relTMin, relTMax)
		}
	}
}

func TestSDSREdgeCases_ResponseGroupDistributionIsRoughlyUniform(t *testing.T) {
	same := 0
	for i := 0; i < 1000; i++ {
		if hash.WakuInResponseGroup(fmt.Sprint("participant-", i), "alice", "msg-xyz", 10) {
			same++
		}
	}
	if same < 50 || same > 200 {
		t.Fatalf("%d of 1000 participants in alice's group (N = 10), want 50..200", same)
	}
}

func TestSDSREdgeCases_ComputeTRespMonotonicitySelfAlwaysFastest(t *testing.T) {
	self := hash.WakuTResp("alice", "alice", "m", relTMax)
	if self != 0 {
		t.Fatalf("self %v", self)
	}
	for i := 0; i < 50; i++ {
		if d := hash.WakuTResp(fmt.Sprint("peer-", i), "alice", "m", relTMax); d < self {
			t.Fatalf("peer-%d answers before the sender: %v", i, d)
		}
	}
}

// --- SDS-R: Lifecycle and State -----------------------------------------------------

func TestSDSRLifecycle_EmptyParticipantIDDisablesOutgoingRepairCreation(t *testing.T) {
	p := relNew(t, "", relSDSRConfig())
	m := relMsg("bob", relCh, "m2", 2, "x")
	m.CausalHistory = []*pb.HistoryEntry{relH("m1", "bob", nil)}
	u := p.unwrap(t, relEncode(t, m))
	if len(u.Missing) != 1 {
		t.Fatalf("unwrap %+v", u)
	}
	// Nor are requests answered.
	p.unwrap(t, relEncode(t, relMsg("bob", relCh, "held", 1, "x")))
	r := relMsg("carol", relCh, "c1", 3, "x")
	r.RepairRequest = []*pb.HistoryEntry{relH("held", "bob", nil)}
	p.unwrap(t, relEncode(t, r))
	s := p.snap(t, relCh)
	if len(s.GetOutgoingRepair()) != 0 || len(s.GetIncomingRepair()) != 0 {
		t.Fatalf("repair buffers with an empty participant id: %v / %v", relOrepIDs(s), relIrepIDs(s))
	}
	if got := relDecode(t, p.wrap(t, relCh, "a", []byte("x"))).GetSenderId(); got != "" {
		t.Fatalf("sender %q", got)
	}
}

func TestSDSRLifecycle_EmptySenderIDInIncomingRepairRequestIsIgnored(t *testing.T) {
	bob := relNew(t, "bob", relSDSRConfig())
	bob.unwrap(t, relEncode(t, relMsg("alice", relCh, "m-wanted", 1, "x")))
	r := relMsg("carol", relCh, "c1", 2, "x")
	r.RepairRequest = []*pb.HistoryEntry{{MessageId: "m-wanted", SenderId: proto.String("")}, {MessageId: "m-wanted"}}
	bob.unwrap(t, relEncode(t, r))
	if got := relIrepIDs(bob.snap(t, relCh)); len(got) != 0 {
		t.Fatalf("answer scheduled for %v", got)
	}
}

func TestSDSRLifecycle_WrapOutgoingMessageRecordsTheMessageInHistoryWithOurSenderID(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	alice.wrap(t, relCh, "m1", []byte("content"))
	log := alice.snap(t, relCh).GetLog()
	if len(log) != 1 || log[0].GetMessageId() != "m1" || log[0].GetSenderId() != "alice" || string(log[0].GetContent()) != "content" {
		t.Fatalf("log %v", log)
	}
	if log[0].BloomFilter != nil {
		t.Fatal("the log keeps the bloom filter")
	}
}

func TestSDSRLifecycle_GetRecentHistoryEntriesCarriesSenderIDForOwnMessages(t *testing.T) {
	alice := relNew(t, "alice", DefaultConfig())
	alice.wrap(t, relCh, "m1", []byte("x"))
	alice.wrap(t, relCh, "m2", []byte("x"))
	ch := relDecode(t, alice.wrap(t, relCh, "m3", []byte("x"))).GetCausalHistory()
	if len(ch) != 2 || ch[0].GetMessageId() != "m1" || ch[1].GetMessageId() != "m2" || ch[0].GetSenderId() != "alice" || ch[1].GetSenderId() != "alice" {
		t.Fatalf("causal history %v", ch)
	}
	// Received messages carry their original sender; at most MaxCausalHistory (2) entries.
	alice.unwrap(t, relEncode(t, relMsg("bob", relCh, "b1", uint64(relStart.UnixMilli())+10, "x", "m3")))
	ch = relDecode(t, alice.wrap(t, relCh, "m4", []byte("x"))).GetCausalHistory()
	if len(ch) != 2 || ch[0].GetMessageId() != "m3" || ch[1].GetMessageId() != "b1" || ch[1].GetSenderId() != "bob" {
		t.Fatalf("causal history %v", ch)
	}
	// Configurable, and sync messages carry SyncCausalHistory entries.
	cfg := DefaultConfig()
	cfg.MaxCausalHistory = 5
	cfg.SyncCausalHistory = 8
	bob := relNew(t, "bob", cfg)
	for i := 0; i < 12; i++ {
		bob.wrap(t, relCh, fmt.Sprint("x", i), []byte("x"))
	}
	if got := relEntryIDs(relDecode(t, bob.wrap(t, relCh, "x12", []byte("x"))).GetCausalHistory()); !slices.Equal(got, []string{"x7", "x8", "x9", "x10", "x11"}) {
		t.Fatalf("causal history %v", got)
	}
	sb, err := bob.BuildSyncMessage(relCtx, relCh)
	if err != nil {
		t.Fatal(err)
	}
	if got := relEntryIDs(relDecode(t, sb).GetCausalHistory()); len(got) != 8 || got[7] != "x12" || got[0] != "x5" {
		t.Fatalf("sync causal history %v", got)
	}
}

func TestSDSRLifecycle_ResetReliabilityManagerClearsAllSDSRState(t *testing.T) {
	p := relNew(t, "test-participant", relSDSRConfig())
	p.wrap(t, relCh, "own", []byte("x"))
	m := relMsg("peer", relCh, "m2", 2, "x")
	m.CausalHistory = []*pb.HistoryEntry{relH("m1", "peer", nil)}
	m.RepairRequest = []*pb.HistoryEntry{relH("own", "test-participant", nil)}
	p.unwrap(t, relEncode(t, m))
	s := p.snap(t, relCh)
	if len(s.GetOutgoingRepair()) != 1 || len(s.GetIncomingRepair()) != 1 {
		t.Fatalf("setup: %v", s)
	}
	if err := p.Reset(relCtx); err != nil {
		t.Fatal(err)
	}
	if err := p.EnsureChannel(relCtx, relCh); err != nil {
		t.Fatal(err)
	}
	relWantEqual(t, "channel after Reset", &pb.ChannelSnapshot{ChannelId: relCh}, p.snap(t, relCh))
	p.rec.reset()
	p.clk.Advance(time.Hour)
	p.sweep(t)
	if p.rec.len() != 0 {
		t.Fatalf("events after Reset: %v", p.rec.kinds())
	}
}

func TestSDSRLifecycle_SDSRStateIsIsolatedPerChannel(t *testing.T) {
	p := relNew(t, "test-participant", relSDSRConfig())
	if err := p.EnsureChannel(relCtx, "ch-B"); err != nil {
		t.Fatal(err)
	}
	m := relMsg("peer", "ch-A", "m2", 2, "x")
	m.CausalHistory = []*pb.HistoryEntry{relH("m1", "peer", nil)}
	p.unwrap(t, relEncode(t, m))
	if len(p.snap(t, "ch-A").GetOutgoingRepair()) != 1 || len(p.snap(t, "ch-B").GetOutgoingRepair()) != 0 {
		t.Fatal("repair state leaked across channels")
	}
	// A due request is attached only on its own channel.
	p.clk.Advance(relTMax)
	if rr := relDecode(t, p.wrap(t, "ch-B", "b", []byte("x"))).GetRepairRequest(); len(rr) != 0 {
		t.Fatalf("ch-B message carries %v", rr)
	}
	if rr := relDecode(t, p.wrap(t, "ch-A", "a", []byte("x"))).GetRepairRequest(); len(rr) != 1 {
		t.Fatalf("ch-A message carries %v", rr)
	}
}

func TestSDSRLifecycle_DuplicateMessageArrivalCancelsPendingIncomingRepairEntry(t *testing.T) {
	alice := relNew(t, "alice", relSDSRConfig())
	m1 := alice.wrap(t, relCh, "m1", []byte("x"))
	carol := relNew(t, "carol", relSDSRConfig())
	carol.unwrap(t, m1)
	r := relMsg("bob", relCh, "b1", 2, "x")
	r.RepairRequest = []*pb.HistoryEntry{relH("m1", "alice", nil)}
	carol.unwrap(t, relEncode(t, r))
	if got := relIrepIDs(carol.snap(t, relCh)); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("carol's pending answers %v", got)
	}
	// Alice's rebroadcast arrives first: carol's answer is moot.
	if u := carol.unwrap(t, m1); u.Kind != KindDuplicate {
		t.Fatalf("rebroadcast: %+v", u)
	}
	if got := relIrepIDs(carol.snap(t, relCh)); len(got) != 0 {
		t.Fatalf("pending answers after the rebroadcast %v", got)
	}
	carol.rec.reset()
	carol.clk.Advance(relTMax)
	carol.sweep(t)
	if carol.rec.count("repairReady") != 0 {
		t.Fatal("carol still rebroadcasts")
	}
}

func TestSDSRLifecycle_PeerRequestPostponesOwnRequest(t *testing.T) {
	// nim-sds drops its own request when it sees another peer's; sdskit postpones it to
	// a fresh T_req (the other peer's answer reaches us too; if it is lost we still ask).
	bob := relNew(t, "bob", relSDSRConfig())
	m := relMsg("alice", relCh, "m2", 2, "x")
	m.CausalHistory = []*pb.HistoryEntry{relH("m1", "alice", nil)}
	bob.unwrap(t, relEncode(t, m))
	d := hash.WakuTReq("bob", "m1", relTMin, relTMax)
	first := relStart.Add(d).UnixMilli()
	bob.clk.Advance(d / 2)
	r := relMsg("carol", relCh, "c1", 3, "x")
	r.RepairRequest = []*pb.HistoryEntry{relH("m1", "alice", nil)}
	bob.unwrap(t, relEncode(t, r))
	orep := bob.snap(t, relCh).GetOutgoingRepair()
	if want := bob.clk.Now().Add(d).UnixMilli(); len(orep) != 1 || orep[0].GetRequestAtUnixMs() != want || want <= first {
		t.Fatalf("own request %v, want postponed to %d", orep, want)
	}
	if n := bob.rec.count("repairReady"); n != 0 {
		t.Fatalf("bob answers a request for a message it lacks")
	}
}

// --- SDS-R: Repair Sweep ------------------------------------------------------------

func TestSDSRRepairSweep_RunRepairSweepFiresRepairReadyForExpiredTResp(t *testing.T) {
	bob := relNew(t, "bob", relSDSRConfig())
	// Two messages whose answers fall due at different times.
	ids := []string{}
	for i := 0; len(ids) < 2; i++ {
		id := fmt.Sprint("m", i)
		if len(ids) == 1 && hash.WakuTResp("bob", "alice", id, relTMax) == hash.WakuTResp("bob", "alice", ids[0], relTMax) {
			continue
		}
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		return int(hash.WakuTResp("bob", "alice", a, relTMax) - hash.WakuTResp("bob", "alice", b, relTMax))
	})
	early, late := ids[0], ids[1]
	for i, id := range ids {
		bob.unwrap(t, relEncode(t, relMsg("alice", relCh, id, uint64(i+1), "payload-"+id)))
	}
	r := relMsg("carol", relCh, "c1", 3, "x")
	r.RepairRequest = []*pb.HistoryEntry{relH(early, "alice", nil), relH(late, "alice", nil)}
	bob.unwrap(t, relEncode(t, r))
	logged := map[string]*pb.SdsMessage{}
	for _, m := range bob.snap(t, relCh).GetLog() {
		logged[m.GetMessageId()] = m
	}
	bob.rec.reset()
	bob.clk.Advance(hash.WakuTResp("bob", "alice", early, relTMax) - time.Millisecond)
	bob.sweep(t)
	if bob.rec.len() != 0 {
		t.Fatalf("events before T_resp: %v", bob.rec.kinds())
	}
	bob.clk.Advance(time.Millisecond)
	bob.sweep(t)
	rr := bob.rec.of("repairReady")
	if len(rr) != 1 || bob.rec.len() != 1 {
		t.Fatalf("events %v, want one RepairReady", bob.rec.kinds())
	}
	ev := rr[0].GetRepairReady()
	if ev.GetMessageId() != early || ev.GetChannelId() != relCh {
		t.Fatalf("RepairReady %v", ev)
	}
	if got := relDecode(t, ev.GetWireBytes()); !proto.Equal(got, logged[early]) {
		t.Fatalf("rebroadcast bytes decode to %v, want %v", got, logged[early])
	}
	if got := relIrepIDs(bob.snap(t, relCh)); !slices.Equal(got, []string{late}) {
		t.Fatalf("pending answers %v, want [%s]", got, late)
	}
	// The rebroadcast is understood by a peer that missed the message.
	dave := relNew(t, "dave", relSDSRConfig())
	if u := dave.unwrap(t, ev.GetWireBytes()); !u.Delivered || string(u.Content) != "payload-"+early || u.SenderID != "alice" {
		t.Fatalf("dave's unwrap of the rebroadcast %+v", u)
	}
}

func TestSDSRRepairSweep_RunRepairSweepDropsOutgoingEntriesPastTMaxWindow(t *testing.T) {
	cfg := relSDSRConfig()
	cfg.RepairRetryMaxInterval = 0 // nim-sds: a request nothing carried for T_max is dropped
	bob := relNew(t, "bob", cfg)
	gap := func(id, dep string) {
		m := relMsg("alice", relCh, id, 1, "x")
		m.CausalHistory = []*pb.HistoryEntry{relH(dep, "alice", nil)}
		bob.unwrap(t, relEncode(t, m))
	}
	gap("m1", "g1")
	due1 := relStart.Add(hash.WakuTReq("bob", "g1", relTMin, relTMax))
	bob.clk.Set(due1.Add(relTMax))
	gap("m2", "g2")
	bob.rec.reset()
	bob.sweep(t)
	if got := relOrepIDs(bob.snap(t, relCh)); !slices.Equal(got, []string{"g1", "g2"}) {
		t.Fatalf("requests at the edge of the window: %v", got)
	}
	bob.clk.Advance(time.Millisecond)
	bob.sweep(t)
	if got := relOrepIDs(bob.snap(t, relCh)); !slices.Equal(got, []string{"g2"}) {
		t.Fatalf("requests after the window: %v, want [g2]", got)
	}
	if bob.rec.len() != 0 {
		t.Fatalf("dropping a request fired %v", bob.rec.kinds())
	}
}

func TestSDSRRepairSweep_RunRepairSweepNoOpWhenBuffersAreEmpty(t *testing.T) {
	mem := store.NewMemory()
	bob := relNew(t, "bob", relSDSRConfig(), WithBackend(mem))
	if err := bob.EnsureChannel(relCtx, relCh); err != nil {
		t.Fatal(err)
	}
	before := bob.snap(t, relCh)
	batches := mem.Batches()
	for i := 0; i < 3; i++ {
		bob.clk.Advance(time.Minute)
		bob.sweep(t)
	}
	if bob.rec.len() != 0 {
		t.Fatalf("events %v", bob.rec.kinds())
	}
	relWantEqual(t, "state after empty sweeps", before, bob.snap(t, relCh))
	if mem.Batches() != batches {
		t.Fatalf("empty sweeps wrote %d batches", mem.Batches()-batches)
	}
	// Without channels a sweep is a no-op too.
	carol := relNew(t, "carol", relSDSRConfig())
	carol.sweep(t)
	if carol.rec.len() != 0 || len(carol.Channels()) != 0 {
		t.Fatal("sweep of an empty manager did something")
	}
}
