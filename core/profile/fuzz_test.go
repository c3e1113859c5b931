package profile

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/wire"
)

// FuzzNimDecodeBloom: a received nim bloom filter never panics the decoder; what decodes
// has parameters in range, answers membership, and re-encodes to a filter that decodes
// to the same bits and parameters.
func FuzzNimDecodeBloom(f *testing.F) {
	f.Add([]byte(nil))
	g, _ := hex.DecodeString("0a1000004992040000000000000000000000100a18904e20072864")
	f.Add(g)
	f.Add([]byte{0x0a, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 1, 0x18, 1, 0x20, 7, 0x28, 128, 1})
	f.Add([]byte{0x0a, 24, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 0x10, 1, 0x18, 1, 0x20, 3, 0x28, 64})
	f.Add([]byte{0x0a, 0, 0x10, 1, 0x18, 1, 0x20, 7, 0x28, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		fl, err := Nim.DecodeBloom(b, 10, 150000)
		if !bytes.Equal(in, b) {
			t.Fatal("DecodeBloom modified its input")
		}
		if err != nil {
			if fl != nil {
				t.Fatalf("filter returned with error %v", err)
			}
			return
		}
		if fl.K() < 1 || fl.K() > bloom.MaxHashes || fl.M() < 1 || fl.M() > bloom.MaxBits {
			t.Fatalf("parameters out of range: k=%d m=%d", fl.K(), fl.M())
		}
		fl.Test("msg1")
		enc := Nim.EncodeBloom(fl)
		again, err := Nim.DecodeBloom(enc, 0, 0)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if again.K() != fl.K() || again.M() != fl.M() || !equalWords(again.Words(), fl.Words()) {
			t.Fatal("round trip changed the filter")
		}
		nb, _ := wire.DecodeNimBloom(b)
		wantMicros := nb.ErrorRateMicros
		if wantMicros >= 1_000_000 { // not a rate: carried as unknown (0)
			wantMicros = 0
		}
		if _, e := fl.Sizing(); nimErrorRateMicros(e) != wantMicros {
			t.Fatalf("error rate %d micros re-encodes as %d", nb.ErrorRateMicros, nimErrorRateMicros(e))
		}
		c1, e1 := fl.Sizing()
		if c2, e2 := again.Sizing(); c1 != c2 || e1 != e2 {
			t.Fatalf("sizing %d/%v became %d/%v", c1, e1, c2, e2)
		}
		if !bytes.Equal(Nim.EncodeBloom(again), enc) {
			t.Fatal("encoding is not canonical")
		}
	})
}

func equalWords(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
