package wire

import (
	"testing"

	"google.golang.org/protobuf/proto"

	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// benchMessage is a typical content message: 100-byte content, 2 causal entries and an
// 18752-byte bloom filter (the @waku/sds default filter size).
func benchMessage() *sdskitv1.SdsMessage {
	content := make([]byte, 100)
	bloom := make([]byte, 18752)
	for i := range bloom {
		bloom[i] = byte(i * 7)
	}
	return &sdskitv1.SdsMessage{
		SenderId:         "c7a3b1f0-sender",
		MessageId:        "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
		ChannelId:        "/my-app/1/chat/proto",
		LamportTimestamp: ptr(uint64(1_718_000_000_123)),
		CausalHistory: []*sdskitv1.HistoryEntry{
			{MessageId: "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0", RetrievalHint: make([]byte, 32), SenderId: ptr("peer-1")},
			{MessageId: "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", RetrievalHint: make([]byte, 32)},
		},
		BloomFilter: bloom,
		Content:     content,
	}
}

func BenchmarkEncode(b *testing.B) {
	m := benchMessage()
	b.Run("spec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Spec.Encode(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto", func(b *testing.B) { // reference: the generic protobuf runtime
		b.ReportAllocs()
		for b.Loop() {
			if _, err := deterministic.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	enc := mustEncode(b, benchMessage())
	b.Run("spec", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := Spec.Decode(enc, Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto", func(b *testing.B) { // reference: the generic protobuf runtime, no limits
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			var m sdskitv1.SdsMessage
			if err := proto.Unmarshal(enc, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
