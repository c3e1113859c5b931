package wire

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// tightLimits are small enough for fuzz inputs to hit every limit.
var tightLimits = Limits{
	MaxMessageBytes: 512, MaxContentBytes: 16, MaxIDBytes: 8, MaxHintBytes: 4,
	MaxCausalHistory: 3, MaxRepairRequests: 2, MaxBloomBytes: 8,
}

func fuzzSeeds(f *testing.F) {
	f.Add([]byte(nil))
	f.Add([]byte(base()))
	f.Add(mustEncode(f, benchMessage())[:200])
	f.Add(mustEncode(f, &sdskitv1.SdsMessage{
		SenderId: "s", MessageId: "m", ChannelId: "c", LamportTimestamp: ptr(uint64(1)),
		CausalHistory: []*sdskitv1.HistoryEntry{{MessageId: "a", RetrievalHint: []byte{1}, SenderId: ptr("x")}},
		BloomFilter:   []byte{1, 2, 3},
		RepairRequest: []*sdskitv1.HistoryEntry{{MessageId: "b", RetrievalHint: []byte{}}},
		Content:       []byte("hi"),
	}))
	f.Add([]byte(base().group(7, raw(nil).varint(1, 1)).fixed32(8, 1).fixed64(9, 2)))
	f.Add([]byte(base().bytes(11, entry("a")).bytes(11, entry("a")[:2])))
}

// FuzzDecode: Decode never panics; whatever it accepts, the reference protobuf decoder
// accepts with the same result, and Encode reproduces a message that decodes identically.
func FuzzDecode(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		m, err := Spec.Decode(b, Limits{})
		if !bytes.Equal(in, b) {
			t.Fatalf("Decode modified its input")
		}
		var ref sdskitv1.SdsMessage
		refErr := proto.Unmarshal(b, &ref)

		// Tight limits only ever reject more, never decode differently.
		if tm, terr := Spec.Decode(b, tightLimits); terr == nil {
			if err != nil || !proto.Equal(tm, m) {
				t.Fatalf("tight limits accepted what defaults reject or decoded differently: %v", err)
			}
		}

		if err != nil {
			if m != nil {
				t.Fatalf("message returned with error %v", err)
			}
			// Liberal acceptance: valid protobuf without unknown fields (so no known field
			// with a wrong wire type), with all required ids and too short to exceed any
			// limit must be accepted.
			if refErr == nil && !hasUnknown(&ref) && requiredIDsPresent(&ref) && len(b) <= 256 {
				t.Fatalf("rejected valid protobuf %v: %v", &ref, err)
			}
			return
		}
		if refErr != nil {
			t.Fatalf("accepted what proto.Unmarshal rejects (%v): %v", refErr, m)
		}
		stripUnknown(&ref)
		if !proto.Equal(m, &ref) {
			t.Fatalf("decoding differs from proto.Unmarshal\n got %v\nwant %v", m, &ref)
		}

		enc, err := Spec.Encode(m)
		if err != nil {
			t.Fatalf("Encode of a decoded message: %v", err)
		}
		if want, _ := deterministic.Marshal(m); !bytes.Equal(enc, want) {
			t.Fatalf("Encode differs from proto.Marshal\n got %x\nwant %x", enc, want)
		}
		m2, err := Spec.Decode(enc, Limits{})
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if !proto.Equal(m, m2) {
			t.Fatalf("round trip differs\n got %v\nwant %v", m2, m)
		}
		if KindOf(m) != KindOf(m2) {
			t.Fatalf("kind changed in round trip")
		}
		if len(enc) > len(b) {
			t.Fatalf("canonical encoding (%d bytes) longer than the input (%d bytes)", len(enc), len(b))
		}
	})
}

// FuzzExtractChannelID: ExtractChannelID never panics and agrees with Decode whenever
// Decode succeeds.
func FuzzExtractChannelID(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, lim := range []Limits{{}, tightLimits} {
			ch, chErr := ExtractChannelID(b, lim)
			if chErr != nil && ch != "" {
				t.Fatalf("channel id %q returned with error %v", ch, chErr)
			}
			m, err := Spec.Decode(b, lim)
			if err != nil {
				continue
			}
			if chErr != nil {
				t.Fatalf("Decode succeeded but ExtractChannelID failed: %v", chErr)
			}
			if ch != m.ChannelId {
				t.Fatalf("ExtractChannelID = %q, Decode channel_id = %q", ch, m.ChannelId)
			}
		}
	})
}
