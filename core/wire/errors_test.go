package wire

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sdskit/sdskit/core/sdserr"
	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

var invalidUTF8 = string([]byte{'a', 0xc3, 0x28}) // 0xc3 0x28 is an invalid 2-byte sequence

// TestDecodeMalformed covers every rejection that is not a limit.
func TestDecodeMalformed(t *testing.T) {
	varint10 := func(last byte) []byte { // 10-byte varint whose final byte is last
		return append(bytes.Repeat([]byte{0xff}, 9), last)
	}
	deepGroups := func(depth int) raw {
		var r raw
		for range depth {
			r = r.tag(50, protowire.StartGroupType)
		}
		for range depth {
			r = r.tag(50, protowire.EndGroupType)
		}
		return r
	}
	cases := []struct {
		name string
		in   []byte
		frag []string
	}{
		// Empty and missing required ids.
		{"empty input", nil, []string{"message_id: missing or empty"}},
		{"no message_id", raw(nil).str(3, "c"), []string{"message_id: missing or empty"}},
		{"empty message_id", raw(nil).str(2, "").str(3, "c"), []string{"message_id: missing or empty"}},
		{"no channel_id", raw(nil).str(2, "m"), []string{"channel_id: missing or empty"}},
		{"empty channel_id", base().str(3, ""), []string{"channel_id: missing or empty"}},
		{"causal entry without id", base().bytes(11, entry("a")).bytes(11, raw(nil).bytes(2, []byte{1})),
			[]string{"causal_history[1].message_id: missing or empty"}},
		{"causal entry empty id", base().bytes(11, entry("")), []string{"causal_history[0].message_id: missing or empty"}},
		{"causal entry empty", base().bytes(11, nil), []string{"causal_history[0].message_id: missing or empty"}},
		{"repair entry empty id", base().bytes(13, entry("")), []string{"repair_request[0].message_id: missing or empty"}},

		// Invalid UTF-8, including in an occurrence a later one overrides.
		{"utf8 sender_id", base().str(1, invalidUTF8), []string{"sender_id: invalid UTF-8"}},
		{"utf8 message_id", raw(nil).str(2, invalidUTF8).str(3, "c"), []string{"message_id: invalid UTF-8"}},
		{"utf8 channel_id", raw(nil).str(2, "m").str(3, invalidUTF8), []string{"channel_id: invalid UTF-8"}},
		{"utf8 overridden channel_id", raw(nil).str(3, invalidUTF8).cat(base()), []string{"channel_id: invalid UTF-8"}},
		{"utf8 surrogate", base().str(1, "\xed\xa0\x80"), []string{"sender_id: invalid UTF-8"}},
		{"utf8 causal id", base().bytes(11, entry(invalidUTF8)), []string{"causal_history[0].message_id: invalid UTF-8"}},
		{"utf8 causal sender", base().bytes(11, entry("a").str(3, invalidUTF8)), []string{"causal_history[0].sender_id: invalid UTF-8"}},
		{"utf8 repair id", base().bytes(13, entry("a")).bytes(13, entry(invalidUTF8)), []string{"repair_request[1].message_id: invalid UTF-8"}},
		{"utf8 repair sender", base().bytes(13, entry("a").str(3, invalidUTF8)), []string{"repair_request[0].sender_id: invalid UTF-8"}},

		// Known fields with the wrong wire type.
		{"sender_id varint", base().varint(1, 1), []string{"sender_id: wrong wire type varint, want length-delimited"}},
		{"message_id fixed32", base().fixed32(2, 1), []string{"message_id: wrong wire type fixed32"}},
		{"channel_id fixed64", base().fixed64(3, 1), []string{"channel_id: wrong wire type fixed64"}},
		{"channel_id group", base().group(3, nil), []string{"channel_id: wrong wire type start-group"}},
		{"lamport bytes", base().bytes(10, []byte{1}), []string{"lamport_timestamp: wrong wire type length-delimited, want varint"}},
		{"lamport fixed64", base().fixed64(10, 1), []string{"lamport_timestamp: wrong wire type fixed64, want varint"}},
		{"causal varint", base().varint(11, 1), []string{"causal_history: wrong wire type varint"}},
		{"causal group", base().group(11, entry("a")), []string{"causal_history: wrong wire type start-group"}},
		{"bloom varint", base().varint(12, 1), []string{"bloom_filter: wrong wire type varint"}},
		{"repair fixed32", base().fixed32(13, 1), []string{"repair_request: wrong wire type fixed32"}},
		{"content varint", base().varint(20, 1), []string{"content: wrong wire type varint"}},
		{"entry id varint", base().bytes(11, entry("a").varint(1, 1)), []string{"causal_history[0].message_id: wrong wire type varint"}},
		{"entry hint fixed64", base().bytes(13, entry("a").fixed64(2, 1)), []string{"repair_request[0].retrieval_hint: wrong wire type fixed64"}},
		{"entry sender group", base().bytes(11, entry("a").group(3, nil)), []string{"causal_history[0].sender_id: wrong wire type start-group"}},

		// Malformed tags.
		{"field number 0", base().cat([]byte{0x02, 0x00}), []string{"field tag at offset 6", "invalid field number"}},
		{"field number too large", base().cat(protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3)),
			[]string{"field number 536870912 out of range"}},
		{"tag varint overflow", base().cat(varint10(0x02)), []string{"field tag at offset 6", "overflow"}},
		{"tag field number beyond int32", base().cat(protowire.AppendVarint(nil, 1<<40)), []string{"field tag at offset 6"}},
		{"truncated tag", base().cat([]byte{0xa2}), []string{"field tag at offset 6", "unexpected EOF"}},
		{"reserved wire type 6", base().tag(1, 6), []string{"sender_id at offset 6: reserved wire type 6"}},
		{"reserved wire type 7", base().tag(99, 7), []string{"unknown field 99 at offset 6: reserved wire type 7"}},
		{"entry field number 0", base().bytes(11, entry("a").cat([]byte{0})), []string{"field tag at offset 3", "invalid field number"}},

		// Malformed values: varints and lengths.
		{"lamport truncated", base().tag(10, protowire.VarintType).cat([]byte{0x80}), []string{"lamport_timestamp at offset 6: malformed varint value", "unexpected EOF"}},
		{"lamport overflow", base().tag(10, protowire.VarintType).cat(varint10(0x02)), []string{"lamport_timestamp", "overflow"}},
		{"unknown varint truncated", base().tag(4, protowire.VarintType), []string{"unknown field 4", "unexpected EOF"}},
		{"fixed32 truncated", base().tag(4, protowire.Fixed32Type).cat([]byte{1, 2, 3}), []string{"unknown field 4", "fixed32", "unexpected EOF"}},
		{"fixed64 truncated", base().tag(4, protowire.Fixed64Type).cat([]byte{1, 2, 3, 4, 5, 6, 7}), []string{"fixed64", "unexpected EOF"}},
		{"length past end", base().tag(20, protowire.BytesType).cat([]byte{5, 'a', 'b', 'c', 'd'}), []string{"content at offset 6", "unexpected EOF"}},
		{"huge length", base().tag(20, protowire.BytesType).cat(protowire.AppendVarint(nil, 1<<62)), []string{"content", "unexpected EOF"}},
		{"max uint64 length", base().tag(12, protowire.BytesType).cat(varint10(0x01)), []string{"bloom_filter", "unexpected EOF"}},
		{"length overflow", base().tag(12, protowire.BytesType).cat(varint10(0x7f)), []string{"bloom_filter", "overflow"}},
		{"huge int32 length", base().tag(2, protowire.BytesType).cat(protowire.AppendVarint(nil, 1<<31-1)), []string{"message_id", "unexpected EOF"}},
		{"huge entry length", base().tag(11, protowire.BytesType).cat(protowire.AppendVarint(nil, 1<<40)).cat(entry("a")),
			[]string{"causal_history", "unexpected EOF"}},
		{"huge length inside entry", base().bytes(11, entry("a").tag(2, protowire.BytesType).cat(protowire.AppendVarint(nil, 1<<50))),
			[]string{"causal_history[0].retrieval_hint at offset 3", "unexpected EOF"}},
		{"truncated inside entry", base().bytes(13, entry("abc")[:4]), []string{"repair_request[0].message_id", "unexpected EOF"}},

		// Groups.
		{"stray end group", base().tag(50, protowire.EndGroupType), []string{"unknown field 50 at offset 6: end-group marker without a start-group"}},
		{"end group of known field", base().tag(3, protowire.EndGroupType), []string{"channel_id at offset 6: end-group marker without a start-group"}},
		{"unterminated group", base().tag(50, protowire.StartGroupType).varint(1, 1), []string{"unknown field 50", "unexpected EOF"}},
		{"mismatched end group", base().tag(50, protowire.StartGroupType).tag(51, protowire.EndGroupType), []string{"mismatching end group"}},
		{"group too deep", base().cat(deepGroups(20000)), []string{"unknown field 50", "start-group"}},
		{"group in entry unterminated", base().bytes(11, entry("a").tag(9, protowire.StartGroupType)), []string{"causal_history[0].unknown field 9"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Spec.Decode(tc.in, Limits{})
			if m != nil {
				t.Fatalf("Decode returned a message with an error")
			}
			checkErr(t, err, "Decode", sdserr.Deserialization, tc.frag...)
		})
	}
}

// TestTruncatedPrefixes decodes every prefix of valid messages: a prefix that ends inside
// a field record must fail; one that ends between records is itself a valid encoding.
func TestTruncatedPrefixes(t *testing.T) {
	full := mustEncode(t, &sdskitv1.SdsMessage{
		SenderId: "sender", MessageId: "msg-1", ChannelId: "chan", LamportTimestamp: ptr(uint64(1) << 40),
		CausalHistory: []*sdskitv1.HistoryEntry{
			{MessageId: "dep-1", RetrievalHint: []byte("hash-1"), SenderId: ptr("alice")},
			{MessageId: "dep-2", RetrievalHint: []byte{}},
		},
		BloomFilter:   bytes.Repeat([]byte{0x5a}, 200), // two-byte length prefix
		RepairRequest: []*sdskitv1.HistoryEntry{{MessageId: "lost", SenderId: ptr("bob")}},
		Content:       []byte("hello"),
	})
	withUnknown := raw(nil).str(3, "ch").group(7, raw(nil).varint(1, 300).str(2, "x")).str(2, "id").fixed64(9, 1).fixed32(8, 2)
	for _, msg := range [][]byte{full, withUnknown} {
		boundaries := map[int]bool{0: true}
		for off := 0; off < len(msg); {
			_, _, n := protowire.ConsumeField(msg[off:])
			if n < 0 {
				t.Fatalf("test message is malformed")
			}
			off += n
			boundaries[off] = true
		}
		for n := range len(msg) + 1 {
			prefix := bytes.Clone(msg[:n])
			got, err := Spec.Decode(prefix, Limits{})
			ch, chErr := ExtractChannelID(prefix, Limits{})
			if !boundaries[n] {
				checkErr(t, err, "Decode", sdserr.Deserialization, "unexpected EOF")
				checkErr(t, chErr, "ExtractChannelID", sdserr.Deserialization, "unexpected EOF")
				continue
			}
			var ref sdskitv1.SdsMessage
			if err := proto.Unmarshal(prefix, &ref); err != nil {
				t.Fatalf("prefix %d: proto.Unmarshal: %v", n, err)
			}
			stripUnknown(&ref)
			if requiredIDsPresent(&ref) {
				if err != nil {
					t.Fatalf("prefix %d: %v", n, err)
				}
				if !proto.Equal(got, &ref) {
					t.Fatalf("prefix %d: got %v, want %v", n, got, &ref)
				}
			} else {
				checkErr(t, err, "Decode", sdserr.Deserialization, "missing or empty")
			}
			if ref.ChannelId != "" {
				if chErr != nil || ch != ref.ChannelId {
					t.Fatalf("prefix %d: ExtractChannelID = %q, %v", n, ch, chErr)
				}
			} else {
				checkErr(t, chErr, "ExtractChannelID", sdserr.Deserialization, "channel_id: missing or empty")
			}
		}
	}
}

// padTo appends an unknown length-delimited field so that the message is exactly n bytes.
func padTo(r raw, n int) raw {
	for pad := n - len(r) - 2; pad >= 0; pad-- {
		if p := r.bytes(15, make([]byte, pad)); len(p) == n {
			return p
		}
	}
	panic(fmt.Sprintf("cannot pad %d bytes to %d", len(r), n))
}

func manyEntries(num protowire.Number, n int) raw {
	r := base()
	for i := range n {
		r = r.bytes(num, entry(fmt.Sprint(i)))
	}
	return r
}

// TestLimits checks every limit: a value at the limit is accepted, one more is rejected.
func TestLimits(t *testing.T) {
	id := func(n int) string { return strings.Repeat("i", n) }
	blob := func(n int) []byte { return bytes.Repeat([]byte{0xb1}, n) }
	cases := []struct {
		name  string
		limit func(*Limits) *int
		build func(n int) []byte
		code  sdserr.Code
		frag  string
	}{
		{"message bytes", func(l *Limits) *int { return &l.MaxMessageBytes },
			func(n int) []byte { return padTo(base(), n) }, sdserr.MessageTooLarge, "MaxMessageBytes"},
		{"content bytes", func(l *Limits) *int { return &l.MaxContentBytes },
			func(n int) []byte { return base().bytes(20, blob(n)) }, sdserr.MessageTooLarge, "content: "},
		{"sender_id", func(l *Limits) *int { return &l.MaxIDBytes },
			func(n int) []byte { return base().str(1, id(n)) }, sdserr.Deserialization, "sender_id: "},
		{"message_id", func(l *Limits) *int { return &l.MaxIDBytes },
			func(n int) []byte { return raw(nil).str(2, id(n)).str(3, "c") }, sdserr.Deserialization, "message_id: "},
		{"channel_id", func(l *Limits) *int { return &l.MaxIDBytes },
			func(n int) []byte { return raw(nil).str(2, "m").str(3, id(n)) }, sdserr.Deserialization, "channel_id: "},
		{"causal message_id", func(l *Limits) *int { return &l.MaxIDBytes },
			func(n int) []byte { return base().bytes(11, entry(id(n))) }, sdserr.Deserialization, "causal_history[0].message_id: "},
		{"causal sender_id", func(l *Limits) *int { return &l.MaxIDBytes },
			func(n int) []byte { return base().bytes(11, entry("e").str(3, id(n))) }, sdserr.Deserialization, "causal_history[0].sender_id: "},
		{"repair message_id", func(l *Limits) *int { return &l.MaxIDBytes },
			func(n int) []byte { return base().bytes(13, entry(id(n))) }, sdserr.Deserialization, "repair_request[0].message_id: "},
		{"repair sender_id", func(l *Limits) *int { return &l.MaxIDBytes },
			func(n int) []byte { return base().bytes(13, entry("e").str(3, id(n))) }, sdserr.Deserialization, "repair_request[0].sender_id: "},
		{"causal hint", func(l *Limits) *int { return &l.MaxHintBytes },
			func(n int) []byte { return base().bytes(11, entry("e").bytes(2, blob(n))) }, sdserr.Deserialization, "causal_history[0].retrieval_hint: "},
		{"repair hint", func(l *Limits) *int { return &l.MaxHintBytes },
			func(n int) []byte { return base().bytes(13, entry("e").bytes(2, blob(n))) }, sdserr.Deserialization, "repair_request[0].retrieval_hint: "},
		{"bloom bytes", func(l *Limits) *int { return &l.MaxBloomBytes },
			func(n int) []byte { return base().bytes(12, blob(n)) }, sdserr.Deserialization, "bloom_filter: "},
		{"causal entries", func(l *Limits) *int { return &l.MaxCausalHistory },
			func(n int) []byte { return manyEntries(11, n) }, sdserr.Deserialization, "more than MaxCausalHistory"},
		{"repair entries", func(l *Limits) *int { return &l.MaxRepairRequests },
			func(n int) []byte { return manyEntries(13, n) }, sdserr.Deserialization, "more than MaxRepairRequests"},
	}
	for _, tc := range cases {
		for _, custom := range []bool{false, true} {
			name := tc.name + "/default"
			var lim Limits // zero: every default
			if custom {
				name = tc.name + "/custom"
				*tc.limit(&lim) = 40
			}
			t.Run(name, func(t *testing.T) {
				n := *tc.limit(ptr(lim.withDefaults()))
				m, err := Spec.Decode(tc.build(n), lim)
				if err != nil {
					t.Fatalf("at the limit (%d): %v", n, err)
				}
				if _, err := ExtractChannelID(tc.build(n), lim); err != nil {
					t.Fatalf("ExtractChannelID at the limit: %v", err)
				}
				if tc.name == "content bytes" && len(m.Content) != n {
					t.Fatalf("content has %d bytes", len(m.Content))
				}
				_, err = Spec.Decode(tc.build(n+1), lim)
				checkErr(t, err, "Decode", tc.code, tc.frag, fmt.Sprint(n))
			})
		}
	}
}

func TestExtractChannelIDLimits(t *testing.T) {
	lim := Limits{MaxIDBytes: 5, MaxMessageBytes: 30}
	_, err := ExtractChannelID(raw(nil).str(3, "123456"), lim)
	checkErr(t, err, "ExtractChannelID", sdserr.Deserialization, "channel_id: 6 bytes exceeds MaxIDBytes (5)")
	_, err = ExtractChannelID(padTo(base(), 31), lim)
	checkErr(t, err, "ExtractChannelID", sdserr.MessageTooLarge, "MaxMessageBytes (30)")
	_, err = ExtractChannelID(raw(nil).str(3, invalidUTF8), lim)
	checkErr(t, err, "ExtractChannelID", sdserr.Deserialization, "channel_id: invalid UTF-8")
	_, err = ExtractChannelID(base().bytes(10, nil), lim)
	checkErr(t, err, "ExtractChannelID", sdserr.Deserialization, "lamport_timestamp: wrong wire type")
	_, err = ExtractChannelID(base().varint(20, 1), lim)
	checkErr(t, err, "ExtractChannelID", sdserr.Deserialization, "content: wrong wire type")
	// Only framing is checked outside field 3: an invalid entry does not matter.
	if ch, err := ExtractChannelID(raw(nil).str(3, "c").bytes(11, entry("")), lim); err != nil || ch != "c" {
		t.Fatalf("ExtractChannelID = %q, %v", ch, err)
	}
}

// TestLimitsFailEarly shows that an over-limit count fails before the rest of the input is
// looked at and without allocating per entry.
func TestLimitsFailEarly(t *testing.T) {
	b := manyEntries(11, 100_000).cat([]byte{0xff}) // garbage after the entries
	_, err := Spec.Decode(b, Limits{MaxMessageBytes: len(b)})
	checkErr(t, err, "Decode", sdserr.Deserialization, "more than MaxCausalHistory (1024)")
	// The least of three measurements: AllocsPerRun counts every allocation of the
	// process, and a busy machine adds some of the runtime's own now and then.
	decode := func() { _, _ = Spec.Decode(b, Limits{MaxMessageBytes: len(b)}) }
	allocs := testing.AllocsPerRun(50, decode)
	for range 2 {
		allocs = min(allocs, testing.AllocsPerRun(50, decode))
	}
	if allocs > 4 { // the error value and its message only
		t.Fatalf("rejecting the message allocated %v times", allocs)
	}
}

func TestDecodeGroupsAccepted(t *testing.T) {
	// Nested unknown groups up to protowire's recursion limit are skipped.
	var r raw
	for range 1000 {
		r = r.tag(50, protowire.StartGroupType)
	}
	for range 1000 {
		r = r.tag(50, protowire.EndGroupType)
	}
	b := base().cat(r).bytes(11, entry("a").cat(r))
	m := mustDecode(t, b, Limits{})
	if m.MessageId != "m" || len(m.CausalHistory) != 1 || m.CausalHistory[0].MessageId != "a" {
		t.Fatalf("got %v", m)
	}
}
