package wire

import (
	"bytes"
	"encoding/hex"
	"testing"

	"google.golang.org/protobuf/proto"

	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

func nimFuzzSeeds(f *testing.F) {
	f.Add([]byte(nil))
	f.Add([]byte(nimBase()))
	for _, g := range nimGolden {
		b, _ := hex.DecodeString(g.hex)
		f.Add(b)
	}
	full, err := Nim.Encode(&sdskitv1.SdsMessage{
		SenderId: "s", MessageId: "m", ChannelId: "c", LamportTimestamp: ptr(uint64(1)),
		CausalHistory: []*sdskitv1.HistoryEntry{{MessageId: "a", RetrievalHint: []byte{1}, SenderId: ptr("x")}},
		BloomFilter:   NimBloom{Bits: make([]byte, 16), Capacity: 10, ErrorRateMicros: 10000, K: 7, M: 100}.Append(nil),
		RepairRequest: []*sdskitv1.HistoryEntry{{MessageId: "b"}},
		Content:       []byte("hi"),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add(full[:len(full)/2])
	f.Add([]byte(nimBase().group(9, raw(nil).varint(1, 1)).fixed32(8, 1).fixed64(9, 2)))
	f.Add([]byte(nimBase().bytes(2, []byte{1}).varint(1, 1).bytes(3, entry("a")[:2])))
	f.Add(mustEncode(f, &sdskitv1.SdsMessage{SenderId: "s", MessageId: "m", ChannelId: "c", LamportTimestamp: ptr(uint64(1))}))
}

// FuzzNimDecode: the nim codec never panics; whatever it accepts the reference protobuf
// decoder with nim-sds's schema decodes identically, Encode reproduces a message that
// decodes identically, and valid protobuf with every required field is accepted.
func FuzzNimDecode(f *testing.F) {
	nimFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		m, err := Nim.Decode(b, Limits{})
		if !bytes.Equal(in, b) {
			t.Fatalf("Decode modified its input")
		}
		if tm, terr := Nim.Decode(b, tightLimits); terr == nil {
			want := m
			if m != nil && len(m.BloomFilter) > tightLimits.MaxBloomBytes { // ignored under the tight limit
				want = proto.Clone(m).(*sdskitv1.SdsMessage)
				want.BloomFilter = nil
			}
			if err != nil || !proto.Equal(tm, want) {
				t.Fatalf("tight limits accepted what defaults reject or decoded differently: %v", err)
			}
		}
		if err != nil {
			if m != nil {
				t.Fatalf("message returned with error %v", err)
			}
			if ref, refErr := oracleDecode(b); refErr == nil && len(b) <= 256 && nimOracleAccepts(ref) {
				t.Fatalf("rejected a valid nim message %v: %v", ref, err)
			}
			return
		}
		checkNimOracle(t, b, m)
		enc, err := Nim.Encode(m)
		if err != nil {
			t.Fatalf("Encode of a decoded message: %v", err)
		}
		m2, err := Nim.Decode(enc, Limits{})
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if !proto.Equal(nimNormal(m), m2) { // an absent bloom_filter is re-encoded empty
			t.Fatalf("round trip differs\n got %v\nwant %v", m2, m)
		}
		if enc2, _ := Nim.Encode(m2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not canonical")
		}
	})
}

// FuzzNimBloom: DecodeNimBloom never panics, and what it accepts re-encodes canonically
// to bytes that decode to the same values.
func FuzzNimBloom(f *testing.F) {
	f.Add([]byte(nil))
	g, _ := hex.DecodeString("0a1000004992040000000000000000000000100a18904e20072864")
	f.Add(g)
	f.Add(g[:len(g)-2])
	f.Add([]byte(raw(nil).bytes(1, nil).varint(2, 1).varint(3, 1).varint(4, 1).varint(5, 1).group(6, nil)))
	f.Fuzz(func(t *testing.T, b []byte) {
		nb, err := DecodeNimBloom(b)
		if err != nil {
			if nb.Bits != nil || nb.K != 0 || nb.M != 0 {
				t.Fatalf("values returned with error %v", err)
			}
			return
		}
		enc := nb.Append(nil)
		nb2, err := DecodeNimBloom(enc)
		if err != nil {
			t.Fatalf("re-decoding %x: %v", enc, err)
		}
		if !bytes.Equal(nb.Bits, nb2.Bits) || nb.Capacity != nb2.Capacity || nb.ErrorRateMicros != nb2.ErrorRateMicros || nb.K != nb2.K || nb.M != nb2.M {
			t.Fatalf("round trip %+v → %+v", nb, nb2)
		}
		if len(enc) > len(b) {
			t.Fatalf("canonical encoding (%d bytes) longer than the input (%d bytes)", len(enc), len(b))
		}
	})
}
