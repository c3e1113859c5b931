package sds

// Bad input: every rejected call returns the right typed error and leaves the manager
// exactly as it was — same snapshot of every loaded channel, same channels, same bloom
// filter, no event.

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/wire"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// relRaw builds spec-profile bytes field by field, so that invalid values (bad UTF-8,
// over-long ids) can be encoded.
type relRaw []byte

func (r relRaw) str(num protowire.Number, s string) relRaw {
	b := protowire.AppendTag([]byte(r), num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func (r relRaw) bytes(num protowire.Number, v []byte) relRaw {
	b := protowire.AppendTag([]byte(r), num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func (r relRaw) varint(num protowire.Number, v uint64) relRaw {
	b := protowire.AppendTag([]byte(r), num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// entry appends a HistoryEntry (field 11 causal history, 13 repair request).
func (r relRaw) entry(num protowire.Number, id, sender string, hint []byte) relRaw {
	var e relRaw
	e = e.str(1, id)
	if hint != nil {
		e = e.bytes(2, hint)
	}
	if sender != "" {
		e = e.str(3, sender)
	}
	return r.bytes(num, e)
}

// relRawMsg is a content message from bob on relCh with the given id.
func relRawMsg(id string) relRaw {
	return relRaw(nil).str(1, "bob").str(2, id).str(3, relCh).varint(10, 7)
}

func (r relRaw) content(s string) relRaw { return r.bytes(20, []byte(s)) }

// relFixture is alice with a loaded channel holding some of everything: own and received
// log entries, an outgoing message, a buffered message, an outgoing repair request and a
// pending repair answer; plus a second loaded channel.
func relFixture(t *testing.T, cfg Config) *relPeer {
	t.Helper()
	cfg.RepairTMin, cfg.RepairTMax = relTMin, relTMax
	p := relNew(t, "alice", cfg)
	p.wrap(t, relCh, "a1", []byte("mine"))
	p.unwrap(t, relEncode(t, relMsg("bob", relCh, "b1", 1, "x")))
	m := relMsg("bob", relCh, "b3", 3, "x")
	m.CausalHistory = []*pb.HistoryEntry{relH("b2", "bob", nil)}
	m.RepairRequest = []*pb.HistoryEntry{relH("a1", "alice", nil)}
	p.unwrap(t, relEncode(t, m))
	p.wrap(t, "other", "o1", []byte("x"))
	s := p.snap(t, relCh)
	if len(s.GetLog()) != 2 || len(s.GetOutgoing()) != 1 || len(s.GetIncoming()) != 1 || len(s.GetOutgoingRepair()) != 1 || len(s.GetIncomingRepair()) != 1 {
		t.Fatalf("fixture: %v", s)
	}
	p.rec.reset()
	return p
}

type relState struct {
	channels []string
	snaps    map[string]*pb.ChannelSnapshot
	bloom    map[string]bool
	events   int
}

var relProbeIDs = []string{"a1", "b1", "b2", "b3", "o1", "x", "new", "m", "sync"}

func relCapture(t *testing.T, p *relPeer) relState {
	t.Helper()
	st := relState{channels: p.Channels(), snaps: map[string]*pb.ChannelSnapshot{}, bloom: map[string]bool{}, events: p.rec.len()}
	for _, ch := range st.channels {
		st.snaps[ch] = p.snap(t, ch)
		for _, id := range relProbeIDs {
			st.bloom[ch+"/"+id] = p.bloomHas(t, ch, id)
		}
	}
	return st
}

func relSameState(t *testing.T, what string, before, after relState) {
	t.Helper()
	if strings.Join(before.channels, ",") != strings.Join(after.channels, ",") {
		t.Fatalf("%s: channels %v → %v", what, before.channels, after.channels)
	}
	for ch, s := range before.snaps {
		if !proto.Equal(s, after.snaps[ch]) {
			t.Fatalf("%s: channel %s changed:\nbefore %v\nafter  %v", what, ch, s, after.snaps[ch])
		}
	}
	for k, v := range before.bloom {
		if after.bloom[k] != v {
			t.Fatalf("%s: bloom %s %v → %v", what, k, v, after.bloom[k])
		}
	}
	if after.events != before.events {
		t.Fatalf("%s: %d events fired", what, after.events-before.events)
	}
}

func TestBadInput_UnwrapRejectsMalformedMessages(t *testing.T) {
	lim := wire.DefaultLimits()
	long := strings.Repeat("x", lim.MaxIDBytes+1)
	bad := "bad\xff\xfeutf8"
	manyCausal := relRawMsg("m")
	for i := 0; i <= lim.MaxCausalHistory; i++ {
		manyCausal = manyCausal.entry(11, "dep", "", nil)
	}
	manyRepair := relRawMsg("m")
	for i := 0; i <= lim.MaxRepairRequests; i++ {
		manyRepair = manyRepair.entry(13, "dep", "bob", nil)
	}
	cases := []struct {
		name string
		b    []byte
		code sdserr.Code
	}{
		{"empty input", nil, sdserr.Deserialization},
		{"garbage", []byte{0xff, 0xff, 0xff, 0xff}, sdserr.Deserialization},
		{"text", []byte("hello, world"), sdserr.Deserialization},
		{"truncated varint tag", []byte{0x80}, sdserr.Deserialization},
		{"length past the end", relRaw(nil).str(2, "m")[:2], sdserr.Deserialization},
		{"message id as varint", relRaw(nil).varint(2, 5).str(3, relCh).varint(10, 1).content("x"), sdserr.Deserialization},
		{"lamport as bytes", relRaw(nil).str(2, "m").str(3, relCh).str(10, "5").content("x"), sdserr.Deserialization},
		{"causal history as varint", relRawMsg("m").varint(11, 1).content("x"), sdserr.Deserialization},
		{"malformed causal entry", relRawMsg("m").bytes(11, []byte{0x0a, 0x05, 'a'}).content("x"), sdserr.Deserialization},
		{"reserved wire type", append(relRawMsg("m").content("x"), 0x0f), sdserr.Deserialization},
		{"end group without start", append(relRawMsg("m").content("x"), 0x0c), sdserr.Deserialization},
		{"field number 0", append([]byte{0x02, 0x00}, relRawMsg("m").content("x")...), sdserr.Deserialization},
		{"missing message id", relRaw(nil).str(1, "bob").str(3, relCh).varint(10, 1).content("x"), sdserr.Deserialization},
		{"empty message id", relRaw(nil).str(2, "").str(3, relCh).varint(10, 1).content("x"), sdserr.Deserialization},
		{"missing channel id", relRaw(nil).str(1, "bob").str(2, "m").varint(10, 1).content("x"), sdserr.Deserialization},
		{"empty channel id", relRaw(nil).str(2, "m").str(3, "").varint(10, 1).content("x"), sdserr.Deserialization},
		{"empty channel id, ephemeral", relRaw(nil).str(2, "m").str(3, "").content("x"), sdserr.Deserialization},
		{"empty causal entry id", relRawMsg("m").entry(11, "", "", nil).content("x"), sdserr.Deserialization},
		{"empty repair entry id", relRawMsg("m").entry(13, "", "bob", nil).content("x"), sdserr.Deserialization},
		{"message id over the cap", relRawMsg(long).content("x"), sdserr.Deserialization},
		{"channel id over the cap", relRaw(nil).str(2, "m").str(3, long).varint(10, 1).content("x"), sdserr.Deserialization},
		{"sender id over the cap", relRaw(nil).str(1, long).str(2, "m").str(3, relCh).varint(10, 1).content("x"), sdserr.Deserialization},
		{"causal id over the cap", relRawMsg("m").entry(11, long, "", nil).content("x"), sdserr.Deserialization},
		{"causal sender over the cap", relRawMsg("m").entry(11, "d", long, nil).content("x"), sdserr.Deserialization},
		{"repair id over the cap", relRawMsg("m").entry(13, long, "bob", nil).content("x"), sdserr.Deserialization},
		{"hint over the cap", relRawMsg("m").entry(11, "d", "", make([]byte, lim.MaxHintBytes+1)).content("x"), sdserr.Deserialization},
		{"invalid UTF-8 message id", relRawMsg(bad).content("x"), sdserr.Deserialization},
		{"invalid UTF-8 channel id", relRaw(nil).str(2, "m").str(3, bad).varint(10, 1).content("x"), sdserr.Deserialization},
		{"invalid UTF-8 sender id", relRaw(nil).str(1, bad).str(2, "m").str(3, relCh).varint(10, 1).content("x"), sdserr.Deserialization},
		{"invalid UTF-8 causal id", relRawMsg("m").entry(11, bad, "", nil).content("x"), sdserr.Deserialization},
		{"invalid UTF-8 repair sender", relRawMsg("m").entry(13, "d", bad, nil).content("x"), sdserr.Deserialization},
		{"too many causal-history entries", manyCausal.content("x"), sdserr.Deserialization},
		{"too many repair requests", manyRepair.content("x"), sdserr.Deserialization},
		{"bloom over the cap", relRawMsg("m").bytes(12, make([]byte, lim.MaxBloomBytes+1)).content("x"), sdserr.Deserialization},
		{"content over the cap", relRawMsg("m").content(strings.Repeat("x", lim.MaxContentBytes+1)), sdserr.MessageTooLarge},
		{"message over the cap", relRawMsg("m").bytes(99, make([]byte, lim.MaxMessageBytes)).content("x"), sdserr.MessageTooLarge},
	}
	p := relFixture(t, DefaultConfig())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := relCapture(t, p)
			u, err := p.UnwrapReceivedMessage(relCtx, c.b)
			if u != nil {
				t.Fatalf("result %+v with error %v", u, err)
			}
			relWantCode(t, err, c.code)
			relSameState(t, c.name, before, relCapture(t, p))
		})
	}
	// The fixture still works.
	if u := p.unwrap(t, relEncode(t, relMsg("bob", relCh, "b2", 2, "x"))); !u.Delivered {
		t.Fatalf("b2: %+v", u)
	}
	if got := p.rec.ids("ready"); len(got) != 2 || got[0] != "b2" || got[1] != "b3" {
		t.Fatalf("ready %v", got)
	}
}

func TestBadInput_UnwrapRejectsEveryTruncation(t *testing.T) {
	p := relFixture(t, DefaultConfig())
	// A valid message using every field.
	full := relMsg("bob", relCh, "new", 9, "the content")
	full.CausalHistory = []*pb.HistoryEntry{relH("b1", "bob", []byte("hint")), relH("a1", "alice", nil)}
	full.RepairRequest = []*pb.HistoryEntry{relH("x", "carol", nil)}
	full.BloomFilter = relPeerBloom(t, "a1")
	b := relEncode(t, full)
	before := relCapture(t, p)
	valid := 0
	for n := 0; n < len(b); n++ {
		prefix := b[:n]
		if _, err := wire.Spec.Decode(prefix, wire.DefaultLimits()); err == nil {
			// A cut at a field boundary is a shorter valid message (sync or ephemeral).
			valid++
			continue
		}
		u, err := p.UnwrapReceivedMessage(relCtx, prefix)
		if err == nil || u != nil || sdserr.CodeOf(err) != sdserr.Deserialization {
			t.Fatalf("truncation to %d of %d bytes: %+v, %v", n, len(b), u, err)
		}
		if p.rec.len() != before.events {
			t.Fatalf("truncation to %d bytes fired events", n)
		}
	}
	relSameState(t, "after every truncation", before, relCapture(t, p))
	// sender, message id, channel, lamport, two causal entries, bloom, repair request.
	if valid > 6 {
		t.Fatalf("%d truncations decode", valid)
	}
	// The whole message is fine.
	if u := p.unwrap(t, b); !u.Delivered {
		t.Fatalf("full message: %+v", u)
	}
}

func TestBadInput_LocalCallsRejectInvalidArguments(t *testing.T) {
	lim := wire.DefaultLimits()
	long := strings.Repeat("x", lim.MaxIDBytes+1)
	bad := "bad\xff"
	cfg := DefaultConfig()
	p := relFixture(t, cfg)
	type call func() error
	wrap := func(ch, id string, content []byte) call {
		return func() error {
			b, err := p.WrapOutgoingMessage(relCtx, ch, id, content)
			if b != nil {
				t.Errorf("bytes returned with error %v", err)
			}
			return err
		}
	}
	eph := func(ch, id string, content []byte) call {
		return func() error {
			b, err := p.WrapEphemeral(relCtx, ch, id, content)
			if b != nil {
				t.Errorf("bytes returned with error %v", err)
			}
			return err
		}
	}
	mark := func(ch string, ids ...string) call {
		return func() error { return p.MarkDependenciesMet(relCtx, ch, ids) }
	}
	valid := relEncode(t, relMsg("bob", relCh, "new", 9, "x"))
	cases := []struct {
		name string
		call call
		code sdserr.Code
	}{
		{"wrap: nil content", wrap(relCh, "new", nil), sdserr.InvalidArgument},
		{"wrap: empty content", wrap(relCh, "new", []byte{}), sdserr.InvalidArgument},
		{"wrap: content over MaxMessageSize", wrap(relCh, "new", make([]byte, cfg.MaxMessageSize+1)), sdserr.MessageTooLarge},
		{"wrap: empty channel id", wrap("", "new", []byte("x")), sdserr.InvalidArgument},
		{"wrap: channel id over the cap", wrap(long, "new", []byte("x")), sdserr.InvalidArgument},
		{"wrap: invalid UTF-8 channel id", wrap(bad, "new", []byte("x")), sdserr.InvalidArgument},
		{"wrap: empty message id", wrap(relCh, "", []byte("x")), sdserr.InvalidArgument},
		{"wrap: message id over the cap", wrap(relCh, long, []byte("x")), sdserr.InvalidArgument},
		{"wrap: invalid UTF-8 message id", wrap(relCh, bad, []byte("x")), sdserr.InvalidArgument},
		{"wrap: id of an own message", wrap(relCh, "a1", []byte("x")), sdserr.InvalidArgument},
		{"wrap: id of a received message", wrap(relCh, "b1", []byte("x")), sdserr.InvalidArgument},
		{"wrap: id of a buffered message", wrap(relCh, "b3", []byte("x")), sdserr.InvalidArgument},
		{"ephemeral: empty content", eph(relCh, "e", nil), sdserr.InvalidArgument},
		{"ephemeral: content over MaxMessageSize", eph(relCh, "e", make([]byte, cfg.MaxMessageSize+1)), sdserr.MessageTooLarge},
		{"ephemeral: empty channel id", eph("", "e", []byte("x")), sdserr.InvalidArgument},
		{"ephemeral: empty message id", eph(relCh, "", []byte("x")), sdserr.InvalidArgument},
		{"ephemeral: invalid UTF-8 message id", eph(relCh, bad, []byte("x")), sdserr.InvalidArgument},
		{"sync: empty channel id", func() error { _, err := p.BuildSyncMessage(relCtx, ""); return err }, sdserr.InvalidArgument},
		{"sync: invalid UTF-8 channel id", func() error { _, err := p.BuildSyncMessage(relCtx, bad); return err }, sdserr.InvalidArgument},
		{"mark: empty channel id", mark("", "x"), sdserr.InvalidArgument},
		{"mark: empty id", mark(relCh, "b2", ""), sdserr.InvalidArgument},
		{"mark: id over the cap", mark(relCh, "b2", long), sdserr.InvalidArgument},
		{"mark: invalid UTF-8 id", mark(relCh, "b2", bad), sdserr.InvalidArgument},
		{"ensure: empty channel id", func() error { return p.EnsureChannel(relCtx, "") }, sdserr.InvalidArgument},
		{"ensure: channel id over the cap", func() error { return p.EnsureChannel(relCtx, long) }, sdserr.InvalidArgument},
		{"remove: empty channel id", func() error { return p.RemoveChannel(relCtx, "") }, sdserr.InvalidArgument},
		{"remove: invalid UTF-8 channel id", func() error { return p.RemoveChannel(relCtx, bad) }, sdserr.InvalidArgument},
		{"unwrap: hint over the cap", func() error {
			_, err := p.UnwrapReceivedMessageWithHint(relCtx, valid, make([]byte, lim.MaxHintBytes+1))
			return err
		}, sdserr.InvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := relCapture(t, p)
			relWantCode(t, c.call(), c.code)
			relSameState(t, c.name, before, relCapture(t, p))
		})
	}
}

func TestBadInput_EncodedMessageTooLargeRollsBack(t *testing.T) {
	// Content within MaxMessageSize, but content + the 18.75 KB bloom over
	// Limits.MaxMessageBytes: the send fails after its clock bump and repair-request
	// attachment, which must be undone.
	cfg := DefaultConfig()
	cfg.MaxMessageSize = 4000
	cfg.Limits.MaxContentBytes = 4000
	cfg.Limits.MaxMessageBytes = 21000
	p := relFixture(t, cfg)
	p.clk.Advance(relTMax) // the repair request for b2 is due
	before := relCapture(t, p)
	_, err := p.WrapOutgoingMessage(relCtx, relCh, "new", make([]byte, 4000))
	relWantCode(t, err, sdserr.MessageTooLarge)
	relSameState(t, "after a too-large send", before, relCapture(t, p))
	_, err = p.WrapEphemeral(relCtx, relCh, "e", make([]byte, 4000))
	if err != nil {
		t.Fatalf("ephemeral (no bloom) of 4000 bytes: %v", err)
	}
	// A smaller message goes out and carries the repair request.
	b := p.wrap(t, relCh, "new", make([]byte, 100))
	if rr := relDecode(t, b).GetRepairRequest(); len(rr) != 1 || rr[0].GetMessageId() != "b2" {
		t.Fatalf("repair_request %v", rr)
	}
}

func TestBadInput_RejectedBeforeAnyChannelIsLoaded(t *testing.T) {
	p := relNew(t, "alice", DefaultConfig())
	for _, b := range [][]byte{nil, {0xff}, relRawMsg("m")[:5]} {
		if _, err := p.UnwrapReceivedMessage(relCtx, b); sdserr.CodeOf(err) != sdserr.Deserialization {
			t.Fatalf("err %v", err)
		}
	}
	if _, err := p.WrapOutgoingMessage(relCtx, "ch", "m", nil); sdserr.CodeOf(err) != sdserr.InvalidArgument {
		t.Fatalf("err %v", err)
	}
	if err := p.MarkDependenciesMet(relCtx, "ch", []string{""}); sdserr.CodeOf(err) != sdserr.InvalidArgument {
		t.Fatalf("err %v", err)
	}
	if got := p.Channels(); len(got) != 0 || p.rec.len() != 0 {
		t.Fatalf("channels %v, events %v", got, p.rec.kinds())
	}
}

func TestBadInput_CancelledContext(t *testing.T) {
	p := relFixture(t, DefaultConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := relCapture(t, p)
	_, err := p.WrapOutgoingMessage(ctx, relCh, "new", []byte("x"))
	relWantCode(t, err, sdserr.Cancelled)
	_, err = p.UnwrapReceivedMessage(ctx, relEncode(t, relMsg("bob", relCh, "b2", 2, "x")))
	relWantCode(t, err, sdserr.Cancelled)
	relWantCode(t, p.MarkDependenciesMet(ctx, relCh, []string{"b2"}), sdserr.Cancelled)
	relWantCode(t, p.RunSweeps(ctx), sdserr.Cancelled)
	relSameState(t, "after cancelled calls", before, relCapture(t, p))
}

func TestBadInput_HugeLamportDoesNotWrapTheClock(t *testing.T) {
	p := relNew(t, "alice", DefaultConfig())
	p.unwrap(t, relEncode(t, relMsg("bob", relCh, "huge", math.MaxUint64, "x")))
	for _, id := range []string{"a1", "a2"} {
		m := relDecode(t, p.wrap(t, relCh, id, []byte("x")))
		if m.GetLamportTimestamp() != math.MaxUint64 {
			t.Fatalf("%s: lamport %d after a peer's 2^64-1: the clock went back", id, m.GetLamportTimestamp())
		}
	}
	if l := p.snap(t, relCh).GetLamportTimestamp(); l != math.MaxUint64 {
		t.Fatalf("channel lamport %d", l)
	}
	s, err := p.BuildSyncMessage(relCtx, relCh)
	if err != nil {
		t.Fatal(err)
	}
	if l := relDecode(t, s).GetLamportTimestamp(); l != math.MaxUint64 {
		t.Fatalf("sync lamport %d", l)
	}
}

// A peer flooding messages whose dependencies never arrive cannot grow the incoming
// buffer or the repair buffer beyond their bounds; the oldest waiting message is
// reported lost.
func TestBadInput_BuffersAreBounded(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.MaxIncomingBuffer = 5
	cfg.MaxRepairBuffer = 3
	var lost []string
	m, err := New("bob", cfg, WithHandler(HandlerFunc(func(ev *pb.Event) {
		if l := ev.GetMessageLost(); l != nil {
			if l.GetDelivered() {
				t.Errorf("evicted message %s reported delivered", l.GetMessageId())
			}
			lost = append(lost, l.GetMessageId())
		}
	})))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := range 20 {
		msg := &pb.SdsMessage{
			SenderId: "mallory", MessageId: fmt.Sprintf("flood-%02d", i), ChannelId: "ch",
			LamportTimestamp: proto.Uint64(uint64(100 + i)), Content: []byte("x"),
			CausalHistory: []*pb.HistoryEntry{{MessageId: fmt.Sprintf("never-%02d", i), SenderId: proto.String("mallory")}},
		}
		b, err := wire.Spec.Encode(msg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.UnwrapReceivedMessage(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := m.Snapshot("ch")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.GetIncoming()) != 5 {
		t.Fatalf("incoming buffer holds %d, want 5", len(snap.GetIncoming()))
	}
	if len(snap.GetOutgoingRepair()) != 3 {
		t.Fatalf("outgoing repair buffer holds %d, want 3", len(snap.GetOutgoingRepair()))
	}
	if len(lost) != 15 || lost[0] != "flood-00" {
		t.Fatalf("lost = %v", lost)
	}
	for _, im := range snap.GetIncoming() {
		if im.GetMessage().GetMessageId() < "flood-15" {
			t.Fatalf("kept an old message %s instead of the newest", im.GetMessage().GetMessageId())
		}
	}
}
