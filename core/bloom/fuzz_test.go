package bloom

import (
	"encoding/binary"
	"testing"

	"github.com/sdskit/sdskit/core/hash"
)

// FuzzDecode feeds arbitrary bytes and parameters to both decoders: they must never
// panic, must reject parameters out of range, and a filter they accept must re-encode to
// the same bytes and answer membership queries without panicking.
func FuzzDecode(f *testing.F) {
	small, _ := New(7, 100, hash.WakuSDS)
	small.Add("msg1")
	f.Add(small.AppendBigEndian(nil), uint(7), uint(100))
	f.Add(small.AppendLittleEndian(nil), uint(7), uint(100))
	f.Add([]byte{}, uint(10), uint(150000))
	f.Add([]byte{1, 2, 3}, uint(0), uint(0))
	f.Add(make([]byte, 16), uint(64), uint(1<<30))
	f.Fuzz(func(t *testing.T, b []byte, k, m uint) {
		if fb, err := FromBigEndian(b, k, m, hash.WakuSDS); err == nil {
			if k < 1 || k > MaxHashes || m < 1 || m > MaxBits {
				t.Fatalf("accepted k=%d m=%d", k, m)
			}
			if got := fb.AppendBigEndian(nil); string(got) != string(b) {
				t.Fatal("big-endian round trip changed the bytes")
			}
			fb.Test("probe")
		}
		if fl, err := FromLittleEndian(b, k, m, hash.WakuSDS); err == nil {
			fl.Test("probe")
			if got := fl.AppendLittleEndian(nil); string(got) != string(b[:8*(len(b)/8)]) {
				t.Fatal("little-endian round trip changed the bytes")
			}
		}
		if len(b) >= 8 {
			_ = binary.BigEndian.Uint64(b)
		}
	})
}
