package wire

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sdskit/sdskit/core/sdserr"
	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

func TestName(t *testing.T) {
	if got := Spec.Name(); got != "spec" {
		t.Fatalf("Name() = %q, want spec", got)
	}
}

func TestDefaultLimits(t *testing.T) {
	want := Limits{
		MaxMessageBytes:   1<<20 + 256<<10,
		MaxContentBytes:   1 << 20,
		MaxIDBytes:        256,
		MaxHintBytes:      512,
		MaxCausalHistory:  1024,
		MaxRepairRequests: 64,
		MaxBloomBytes:     64 << 10,
	}
	if got := DefaultLimits(); got != want {
		t.Fatalf("DefaultLimits() = %+v, want %+v", got, want)
	}
	if got := (Limits{}).withDefaults(); got != want {
		t.Fatalf("zero Limits = %+v, want defaults", got)
	}
	if got := (Limits{MaxIDBytes: -1, MaxHintBytes: 7}).withDefaults(); got.MaxIDBytes != 256 || got.MaxHintBytes != 7 {
		t.Fatalf("partial Limits = %+v", got)
	}
}

// TestEncodeMatchesProto asserts byte identity with deterministic protobuf marshaling,
// which is what @waku/sds (protons) and nim-sds produce for the same message.
func TestEncodeMatchesProto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		m := randMessage(r, i%2 == 0)
		got := mustEncode(t, m)
		want, err := deterministic.Marshal(m)
		if err != nil {
			t.Fatalf("proto.Marshal: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("message %d: encoding differs from proto.Marshal\n got %x\nwant %x\nmsg %v", i, got, want, m)
		}
		if cap(got) != len(got) {
			t.Fatalf("message %d: output buffer cap %d, len %d: size precomputation is off", i, cap(got), len(got))
		}
	}
}

func TestEncodeFixedVector(t *testing.T) {
	m := &sdskitv1.SdsMessage{
		SenderId:         "s",
		MessageId:        "m",
		ChannelId:        "c",
		LamportTimestamp: ptr(uint64(300)),
		CausalHistory:    []*sdskitv1.HistoryEntry{{MessageId: "a", RetrievalHint: []byte{}, SenderId: ptr("x")}},
		BloomFilter:      []byte{0xff},
		RepairRequest:    []*sdskitv1.HistoryEntry{{MessageId: "b"}},
		Content:          []byte("hi"),
	}
	want := []byte{
		0x0a, 1, 's', 0x12, 1, 'm', 0x1a, 1, 'c',
		0x50, 0xac, 0x02, // lamport 300
		0x5a, 8, 0x0a, 1, 'a', 0x12, 0, 0x1a, 1, 'x',
		0x62, 1, 0xff,
		0x6a, 3, 0x0a, 1, 'b',
		0xa2, 0x01, 2, 'h', 'i', // field 20 needs a two-byte tag
	}
	if got := mustEncode(t, m); !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
	// Lamport 0 is still emitted: it is an explicitly present optional field.
	ephemeralVsZero := mustEncode(t, &sdskitv1.SdsMessage{MessageId: "m", ChannelId: "c", LamportTimestamp: ptr(uint64(0))})
	if !bytes.Equal(ephemeralVsZero, base().varint(10, 0)) {
		t.Fatalf("lamport 0: got %x", ephemeralVsZero)
	}
}

func TestEncodeSingleAllocation(t *testing.T) {
	m := benchMessage()
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Spec.Encode(m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Fatalf("Encode allocates %v times per call, want 1", allocs)
	}
}

func TestEncodeErrors(t *testing.T) {
	bad := string([]byte{0xff, 'a'})
	cases := []struct {
		name string
		m    *sdskitv1.SdsMessage
		frag string
	}{
		{"nil message", nil, "nil message"},
		{"sender_id", &sdskitv1.SdsMessage{SenderId: bad, MessageId: "m", ChannelId: "c"}, "sender_id: invalid UTF-8"},
		{"message_id", &sdskitv1.SdsMessage{MessageId: bad, ChannelId: "c"}, "message_id: invalid UTF-8"},
		{"channel_id", &sdskitv1.SdsMessage{MessageId: "m", ChannelId: bad}, "channel_id: invalid UTF-8"},
		{"causal entry id", &sdskitv1.SdsMessage{MessageId: "m", ChannelId: "c",
			CausalHistory: []*sdskitv1.HistoryEntry{{MessageId: "ok"}, {MessageId: bad}}}, "causal_history[1].message_id: invalid UTF-8"},
		{"causal entry sender", &sdskitv1.SdsMessage{MessageId: "m", ChannelId: "c",
			CausalHistory: []*sdskitv1.HistoryEntry{{MessageId: "ok", SenderId: &bad}}}, "causal_history[0].sender_id: invalid UTF-8"},
		{"repair entry id", &sdskitv1.SdsMessage{MessageId: "m", ChannelId: "c",
			RepairRequest: []*sdskitv1.HistoryEntry{{MessageId: bad}}}, "repair_request[0].message_id: invalid UTF-8"},
		{"repair entry sender", &sdskitv1.SdsMessage{MessageId: "m", ChannelId: "c",
			RepairRequest: []*sdskitv1.HistoryEntry{{MessageId: "ok", SenderId: &bad}}}, "repair_request[0].sender_id: invalid UTF-8"},
		{"nil causal entry", &sdskitv1.SdsMessage{MessageId: "m", ChannelId: "c",
			CausalHistory: []*sdskitv1.HistoryEntry{nil}}, "causal_history[0]: nil entry"},
		{"nil repair entry", &sdskitv1.SdsMessage{MessageId: "m", ChannelId: "c",
			RepairRequest: []*sdskitv1.HistoryEntry{{MessageId: "x"}, nil}}, "repair_request[1]: nil entry"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Spec.Encode(tc.m)
			if b != nil {
				t.Fatalf("Encode returned %x with an error", b)
			}
			checkErr(t, err, "Encode", sdserr.Serialization, tc.frag)
			if tc.m != nil && !strings.Contains(tc.name, "nil") {
				if _, err := proto.Marshal(tc.m); err == nil {
					t.Fatalf("proto.Marshal accepts what Encode rejects")
				}
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		m := randMessage(r, true)
		b := mustEncode(t, m)
		got := mustDecode(t, b, Limits{})
		if !proto.Equal(got, m) {
			t.Fatalf("message %d: round trip differs\n got %v\nwant %v", i, got, m)
		}
		if again := mustEncode(t, got); !bytes.Equal(again, b) {
			t.Fatalf("message %d: re-encoding differs", i)
		}
	}
}

// TestDecodeProtoOutput decodes what the reference protobuf implementation produces.
func TestDecodeProtoOutput(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 3000 {
		m := randMessage(r, true)
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := mustDecode(t, b, Limits{})
		if !proto.Equal(got, m) {
			t.Fatalf("message %d: decoding proto.Marshal output differs\n got %v\nwant %v", i, got, m)
		}
		// And the reference decoder agrees with ours on our own output.
		var ref sdskitv1.SdsMessage
		if err := proto.Unmarshal(mustEncode(t, m), &ref); err != nil || !proto.Equal(&ref, m) {
			t.Fatalf("message %d: proto.Unmarshal of Encode output: %v, equal=%v", i, err, proto.Equal(&ref, m))
		}
	}
}

func TestPresencePreserved(t *testing.T) {
	b := base().
		varint(10, 0).
		bytes(11, entry("e").bytes(2, nil).str(3, "")).
		bytes(11, entry("f")).
		bytes(12, nil).
		bytes(20, nil)
	m := mustDecode(t, b, Limits{})
	switch {
	case m.LamportTimestamp == nil || *m.LamportTimestamp != 0:
		t.Fatalf("lamport_timestamp 0 lost: %v", m.LamportTimestamp)
	case m.BloomFilter == nil || len(m.BloomFilter) != 0:
		t.Fatalf("empty bloom_filter lost: %#v", m.BloomFilter)
	case m.Content == nil || len(m.Content) != 0:
		t.Fatalf("empty content lost: %#v", m.Content)
	case m.CausalHistory[0].RetrievalHint == nil || len(m.CausalHistory[0].RetrievalHint) != 0:
		t.Fatalf("empty retrieval_hint lost: %#v", m.CausalHistory[0].RetrievalHint)
	case m.CausalHistory[0].SenderId == nil || *m.CausalHistory[0].SenderId != "":
		t.Fatalf("empty entry sender_id lost: %v", m.CausalHistory[0].SenderId)
	case m.CausalHistory[1].RetrievalHint != nil || m.CausalHistory[1].SenderId != nil:
		t.Fatalf("absent optional fields decoded as present: %v", m.CausalHistory[1])
	case KindOf(m) != KindSync:
		t.Fatalf("KindOf = %v, want sync", KindOf(m))
	}
	if !bytes.Equal(mustEncode(t, m), b) {
		t.Fatalf("re-encoding lost presence: %x", mustEncode(t, m))
	}
	// Absent optionals stay absent.
	m = mustDecode(t, base(), Limits{})
	if m.LamportTimestamp != nil || m.BloomFilter != nil || m.Content != nil || m.CausalHistory != nil || m.RepairRequest != nil {
		t.Fatalf("absent fields decoded as present: %v", m)
	}
}

func TestLastOccurrenceWins(t *testing.T) {
	b := raw(nil).
		str(1, "s1").str(2, "m1").str(3, "c1").varint(10, 7).bytes(12, []byte{1}).bytes(20, []byte("a")).
		bytes(11, entry("x").str(1, "y").bytes(2, []byte{1}).bytes(2, []byte{2}).str(3, "p").str(3, "q")).
		str(1, "s2").str(2, "m2").str(3, "c2").varint(10, 9).bytes(12, []byte{2}).bytes(20, []byte("b"))
	m := mustDecode(t, b, Limits{})
	want := &sdskitv1.SdsMessage{
		SenderId: "s2", MessageId: "m2", ChannelId: "c2", LamportTimestamp: ptr(uint64(9)),
		CausalHistory: []*sdskitv1.HistoryEntry{{MessageId: "y", RetrievalHint: []byte{2}, SenderId: ptr("q")}},
		BloomFilter:   []byte{2}, Content: []byte("b"),
	}
	if !proto.Equal(m, want) {
		t.Fatalf("got %v\nwant %v", m, want)
	}
	ch, err := ExtractChannelID(b, Limits{})
	if err != nil || ch != "c2" {
		t.Fatalf("ExtractChannelID = %q, %v; want c2", ch, err)
	}
	// A later empty occurrence of a required id wins too, and is rejected.
	_, err = Spec.Decode(base().str(2, ""), Limits{})
	checkErr(t, err, "Decode", sdserr.Deserialization, "message_id: missing or empty")
}

func TestRepeatedFieldsInOrder(t *testing.T) {
	// Interleaved with other fields, out of field-number order.
	b := raw(nil).
		bytes(13, entry("r1")).bytes(11, entry("c1")).str(3, "c").
		bytes(11, entry("c2")).bytes(13, entry("r2")).str(2, "m").bytes(11, entry("c3"))
	m := mustDecode(t, b, Limits{})
	var got []string
	for _, e := range m.CausalHistory {
		got = append(got, e.MessageId)
	}
	for _, e := range m.RepairRequest {
		got = append(got, e.MessageId)
	}
	if strings.Join(got, ",") != "c1,c2,c3,r1,r2" {
		t.Fatalf("entries = %v", got)
	}
	if cap(m.CausalHistory) != 3 || cap(m.RepairRequest) != 2 {
		t.Fatalf("entry slices not exactly sized: cap %d, %d", cap(m.CausalHistory), cap(m.RepairRequest))
	}
}

func TestUnknownFieldsSkipped(t *testing.T) {
	unknown := raw(nil).
		varint(4, 1<<63).fixed32(5, 7).fixed64(6, 8).str(7, "x").
		group(8, raw(nil).varint(1, 1).group(2, raw(nil).str(3, "deep")).fixed32(4, 1)).
		group(9, nil).
		// Known field numbers of SdsMessage inside an unknown group belong to the group.
		group(99, raw(nil).str(2, "inner").varint(10, 5)).
		varint(protowire.MaxValidNumber, 1)
	b := raw(nil).cat(unknown).str(2, "m").cat(unknown).str(3, "c").
		bytes(11, raw(nil).cat(unknown).str(1, "e").cat(unknown).bytes(2, []byte{9}).cat(unknown)).
		cat(unknown)
	m := mustDecode(t, b, Limits{})
	want := &sdskitv1.SdsMessage{MessageId: "m", ChannelId: "c",
		CausalHistory: []*sdskitv1.HistoryEntry{{MessageId: "e", RetrievalHint: []byte{9}}}}
	if !proto.Equal(m, want) {
		t.Fatalf("got %v\nwant %v", m, want)
	}
	if len(m.ProtoReflect().GetUnknown()) != 0 {
		t.Fatalf("unknown fields retained")
	}
	if ch, err := ExtractChannelID(b, Limits{}); err != nil || ch != "c" {
		t.Fatalf("ExtractChannelID = %q, %v", ch, err)
	}
}

func TestKindOf(t *testing.T) {
	cases := []struct {
		m    *sdskitv1.SdsMessage
		want Kind
	}{
		{&sdskitv1.SdsMessage{LamportTimestamp: ptr(uint64(1)), Content: []byte("x")}, KindContent},
		{&sdskitv1.SdsMessage{LamportTimestamp: ptr(uint64(0)), Content: []byte("x")}, KindContent},
		{&sdskitv1.SdsMessage{LamportTimestamp: ptr(uint64(1))}, KindSync},
		{&sdskitv1.SdsMessage{LamportTimestamp: ptr(uint64(1)), Content: []byte{}}, KindSync},
		{&sdskitv1.SdsMessage{Content: []byte("x")}, KindEphemeral},
		{&sdskitv1.SdsMessage{}, KindEphemeral},
		{nil, 0},
	}
	for i, tc := range cases {
		if got := KindOf(tc.m); got != tc.want {
			t.Errorf("case %d: KindOf = %v, want %v", i, got, tc.want)
		}
	}
	// Kinds survive the wire.
	for _, tc := range cases[:6] {
		tc.m.MessageId, tc.m.ChannelId = "m", "c"
		if got := KindOf(mustDecode(t, mustEncode(t, tc.m), Limits{})); got != tc.want {
			t.Errorf("decoded KindOf = %v, want %v", got, tc.want)
		}
	}
	for k, s := range map[Kind]string{KindContent: "content", KindSync: "sync", KindEphemeral: "ephemeral", 0: "Kind(0)", 9: "Kind(9)"} {
		if k.String() != s {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), k.String(), s)
		}
	}
}

// TestNoAliasing mutates the input after decoding; the decoded message must not change.
func TestNoAliasing(t *testing.T) {
	m := &sdskitv1.SdsMessage{
		SenderId: "sender", MessageId: "msg", ChannelId: "chan", LamportTimestamp: ptr(uint64(5)),
		CausalHistory: []*sdskitv1.HistoryEntry{{MessageId: "dep", RetrievalHint: []byte("hint"), SenderId: ptr("who")}},
		BloomFilter:   []byte("bloombloom"),
		RepairRequest: []*sdskitv1.HistoryEntry{{MessageId: "rep", RetrievalHint: []byte("h2")}},
		Content:       []byte("payload"),
	}
	b := mustEncode(t, m)
	got := mustDecode(t, b, Limits{})
	for i := range b {
		b[i] = 0xAA
	}
	if !proto.Equal(got, m) {
		t.Fatalf("decoded message changed with its input buffer: %v", got)
	}
	// Empty present fields must not alias either (appending to them must be safe).
	b = base().bytes(12, nil).bytes(20, nil)
	got = mustDecode(t, b, Limits{})
	_ = append(got.BloomFilter, 1, 2, 3)
	_ = append(got.Content, 1, 2, 3)
	if !bytes.Equal(b, base().bytes(12, nil).bytes(20, nil)) {
		t.Fatalf("appending to decoded slices wrote into the input")
	}
}

// TestDecodeReusedBuffer decodes successive messages from one reused buffer.
func TestDecodeReusedBuffer(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	buf := make([]byte, 0, 1<<16)
	var msgs, decoded []*sdskitv1.SdsMessage
	for range 50 {
		m := randMessage(r, true)
		m.BloomFilter, m.Content = nil, nil // keep it within the buffer
		buf = append(buf[:0], mustEncode(t, m)...)
		msgs = append(msgs, m)
		decoded = append(decoded, mustDecode(t, buf, Limits{}))
	}
	for i := range msgs {
		if !proto.Equal(msgs[i], decoded[i]) {
			t.Fatalf("message %d changed after its buffer was reused", i)
		}
	}
}

// AppendEncode gives Encode's bytes after whatever dst holds, reuses dst's capacity
// without allocating, and leaves nothing behind on error.
func TestAppendEncode(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []Codec{Spec, Nim} {
		buf := make([]byte, 0, 64<<10)
		for i := range 200 {
			m := randMessage(r, false)
			m.LamportTimestamp = ptr(uint64(i)) // the nim profile has no ephemeral messages
			want, err := c.Encode(m)
			if err != nil {
				t.Fatalf("%s: Encode: %v", c.Name(), err)
			}
			got, err := c.AppendEncode(append(buf[:0], "prefix"...), m)
			if err != nil || string(got[:6]) != "prefix" || !bytes.Equal(got[6:], want) {
				t.Fatalf("%s message %d: AppendEncode = %x, %v; want prefix + %x", c.Name(), i, got, err, want)
			}
			if &got[0] != &buf[:1][0] {
				t.Fatalf("%s message %d: AppendEncode did not reuse the buffer", c.Name(), i)
			}
			if grown, _ := c.AppendEncode([]byte("p"), m); !bytes.Equal(grown[1:], want) || grown[0] != 'p' {
				t.Fatalf("%s message %d: growing a short buffer lost its content", c.Name(), i)
			}
		}
		m := randMessage(r, false)
		m.LamportTimestamp = ptr(uint64(1))
		if allocs := testing.AllocsPerRun(50, func() { _, _ = c.AppendEncode(buf[:0], m) }); allocs != 0 {
			t.Fatalf("%s: AppendEncode into a large enough buffer allocates %.0f times", c.Name(), allocs)
		}
		bad := &sdskitv1.SdsMessage{MessageId: "\xff", LamportTimestamp: ptr(uint64(1))}
		if b, err := c.AppendEncode(buf[:0], bad); b != nil || sdserr.CodeOf(err) != sdserr.Serialization {
			t.Fatalf("%s: AppendEncode of invalid UTF-8 = %x, %v", c.Name(), b, err)
		}
	}
}
