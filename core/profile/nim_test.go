package profile

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/bloom"
)

// nim-sds-behaviour.md §3.6: the empty default filter (capacity 10000, error 0.001).
func TestNimGoldenEmptyDefaultBloom(t *testing.T) {
	r, err := bloom.NewRolling(10000, 0.001, Nim.Hash)
	if err != nil {
		t.Fatal(err)
	}
	b := Nim.EncodeBloom(r.Filter())
	if len(b) != 18768 {
		t.Fatalf("encoded default bloom is %d bytes, want 18768", len(b))
	}
	if got := hex.EncodeToString(b[:4]); got != "0ac09201" {
		t.Fatalf("starts %s, want 0ac09201", got)
	}
	if got := hex.EncodeToString(b[len(b)-12:]); got != "10904e18e807200a28f09309" {
		t.Fatalf("ends %s, want 10904e18e807200a28f09309", got)
	}
	if !bytes.Equal(b[4:4+18752], make([]byte, 18752)) {
		t.Fatal("an empty filter has set bits")
	}
	if a := Nim.AppendBloom([]byte{0xee}, r.Filter()); !bytes.Equal(a[1:], b) || a[0] != 0xee {
		t.Fatal("AppendBloom differs from EncodeBloom")
	}
}

// §3.6 and Appendix A: bloom(10, 0.01) after insert("msg1").
func TestNimGoldenSmallBloom(t *testing.T) {
	r, err := bloom.NewRolling(10, 0.01, Nim.Hash)
	if err != nil {
		t.Fatal(err)
	}
	f := r.Filter()
	if f.K() != 7 || f.M() != 100 {
		t.Fatalf("k=%d m=%d, want 7, 100", f.K(), f.M())
	}
	if got := f.Locations("msg1"); !slices.Equal(got, []uint{16, 19, 22, 25, 28, 31, 34}) {
		t.Fatalf("positions of msg1 %v", got)
	}
	r.Add("msg1")
	const golden = "0a1000004992040000000000000000000000100a18904e20072864"
	if got := hex.EncodeToString(Nim.EncodeBloom(f)); got != golden {
		t.Fatalf("EncodeBloom\n got %s\nwant %s", got, golden)
	}
	g, _ := hex.DecodeString(golden)
	d, err := Nim.DecodeBloom(g, 99, 99) // our own parameters do not matter: the layout carries them
	if err != nil || d.K() != 7 || d.M() != 100 || !d.Test("msg1") || d.Test("msg2") {
		t.Fatalf("DecodeBloom: %v", err)
	}
	if c, e := d.Sizing(); c != 10 || e != 0.01 {
		t.Fatalf("decoded sizing %d, %v", c, e)
	}
	if got := hex.EncodeToString(Nim.EncodeBloom(d)); got != golden {
		t.Fatalf("re-encoding a decoded filter: %s", got)
	}
}

// Appendix A: positions of "msg1" in the default filter (k 10, m 150 000).
func TestNimGoldenDefaultPositions(t *testing.T) {
	r, err := bloom.NewRolling(10000, 0.001, Nim.Hash)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint{72816, 148619, 74422, 225, 76028, 1831, 77634, 3437, 79240, 5043}
	if got := r.Filter().Locations("msg1"); !slices.Equal(got, want) {
		t.Fatalf("positions %v, want %v", got, want)
	}
	r.Add("msg1")
	b := Nim.EncodeBloom(r.Filter())
	for _, p := range want { // little-endian words: bit p is bit p%8 of byte p/8 of the words
		if b[4+p/8]&(1<<(p%8)) == 0 {
			t.Fatalf("bit %d not set in the encoding", p)
		}
	}
}

// Appendix A through the profile: SDS-R delays and groups.
func TestNimSDSRVectors(t *testing.T) {
	tMin, tMax := 30*time.Second, 300*time.Second
	for _, c := range []struct {
		got, want time.Duration
	}{
		{Nim.TReq("alice", "m1", tMin, tMax), 198167 * time.Millisecond},
		{Nim.TReq("bob", "m1", tMin, tMax), 105515 * time.Millisecond},
		{Nim.TResp("bob", "alice", "m1", tMax), 47732 * time.Millisecond},
		{Nim.TResp("carol", "alice", "m1", tMax), 8988 * time.Millisecond},
		{Nim.TResp("alice", "alice", "m1", tMax), 0},
	} {
		if c.got != c.want {
			t.Errorf("got %v, want %v", c.got, c.want)
		}
	}
	if Nim.InResponseGroup("bob", "alice", "m1", 10) || !Nim.InResponseGroup("alice", "alice", "m1", 10) {
		t.Error("response groups differ from Appendix A")
	}
}

// nim-sds sends max(unix seconds, L) + 1; the engine sends max(LamportNow, L + 1).
func TestNimLamportIsSecondsPlusOne(t *testing.T) {
	now := time.UnixMilli(1_700_000_123_456)
	if got := Nim.LamportNow(now); got != 1_700_000_124 {
		t.Fatalf("LamportNow = %d", got)
	}
	for _, l := range []uint64{0, 5, 1_700_000_123, 1_700_000_124, 1_800_000_000} {
		nimRule := max(uint64(now.Unix()), l) + 1
		if ours := max(Nim.LamportNow(now), l+1); ours != nimRule {
			t.Fatalf("L=%d: engine rule %d, nim-sds %d", l, ours, nimRule)
		}
	}
	if got := Nim.LamportNow(time.Unix(-5, 0)); got != 0 {
		t.Fatalf("pre-epoch LamportNow = %d", got)
	}
}

func TestNimPatchBloom(t *testing.T) {
	r, err := bloom.NewRolling(100, 0.01, Nim.Hash)
	if err != nil {
		t.Fatal(err)
	}
	enc := Nim.EncodeBloom(r.Filter())
	r.Add("x")
	for _, loc := range r.AppendLocations(nil, "x") {
		if !Nim.PatchBloom(enc, r.Filter(), int(loc/64)) {
			t.Fatal("PatchBloom refused its own encoding")
		}
	}
	if !bytes.Equal(enc, Nim.EncodeBloom(r.Filter())) {
		t.Fatal("patched encoding differs from a fresh one")
	}
	other, _ := bloom.NewRolling(1000, 0.01, Nim.Hash)
	if Nim.PatchBloom(enc, other.Filter(), 0) || Nim.PatchBloom(enc, r.Filter(), -1) || Nim.PatchBloom(enc, r.Filter(), bloom.Words(r.Filter().M())) || Nim.PatchBloom(enc[:10], r.Filter(), 0) {
		t.Fatal("PatchBloom accepted a mismatched encoding or word")
	}
}

// Receiving is liberal: a filter of other parameters that decodes is used with its
// own parameters; one that does not decode is reported unusable, never a panic.
func TestNimDecodeBloomLiberal(t *testing.T) {
	mk := func(capacity int, rate float64, ids ...string) []byte {
		r, err := bloom.NewRolling(capacity, rate, Nim.Hash)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			r.Add(id)
		}
		return Nim.EncodeBloom(r.Filter())
	}
	// A nim-sds filter after its first roll: capacity 12 000 (m 180 000).
	big := mk(12000, 0.001, "a", "b")
	f, err := Nim.DecodeBloom(big, 10, 150000)
	if err != nil || f.M() != 180000 || !f.Test("a") || !f.Test("b") || f.Test("c") {
		t.Fatalf("larger filter: %v", err)
	}
	// One word more or less than 1 + m/64 (m = 128: bits fit in two words).
	r, _ := bloom.NewRolling(10, 0.01, Nim.Hash)
	f0, _ := bloom.New(7, 128, Nim.Hash)
	f0.Add("z")
	enc := Nim.EncodeBloom(f0) // 3 words
	words := enc[2 : 2+24]
	for _, n := range []int{16, 32} {
		w := make([]byte, n)
		copy(w, words)
		var b []byte
		b = append(b, 0x0a, byte(n))
		b = append(b, w...)
		b = append(b, 0x10, 1, 0x18, 1, 0x20, 7, 0x28, 128, 1)
		g, err := Nim.DecodeBloom(b, r.Filter().K(), r.Filter().M())
		if err != nil || !g.Test("z") {
			t.Fatalf("%d bytes of words: %v", n, err)
		}
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"garbage":        []byte("not a bloom"),
		"spec layout":    Spec.EncodeBloom(r.Filter()),
		"truncated":      big[:len(big)-3],
		"too few words":  {0x0a, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 1, 0x18, 1, 0x20, 7, 0x28, 100},
		"k = 0":          {0x0a, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 1, 0x18, 1, 0x20, 0, 0x28, 100},
		"m = 0":          {0x0a, 0, 0x10, 1, 0x18, 1, 0x20, 7, 0x28, 0},
		"huge k":         {0x0a, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 1, 0x18, 1, 0x20, 0xff, 0xff, 0x03, 0x28, 100},
		"huge m":         {0x0a, 0, 0x10, 1, 0x18, 1, 0x20, 7, 0x28, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"missing fields": {0x0a, 0},
	} {
		if _, err := Nim.DecodeBloom(b, 10, 150000); err == nil {
			t.Errorf("%s: decoded", name)
		} else if !strings.Contains(err.Error(), "bloom") {
			t.Errorf("%s: error %v does not say what failed", name, err)
		}
	}
	// The spec profile cannot use a nim filter either (it has no header to go by).
	if _, err := Spec.DecodeBloom(mk(10000, 0.001, "a"), 10, 150000); err == nil {
		t.Error("spec profile decoded a nim filter")
	}
}

func TestNimBloomOfUnsizedFilter(t *testing.T) {
	f, _ := bloom.New(7, 100, Nim.Hash)
	b := Nim.EncodeBloom(f)
	if !strings.HasSuffix(hex.EncodeToString(b), "1000180020072864") {
		t.Fatalf("unsized filter trailer %x, want capacity 0 and error rate 0", b[len(b)-8:])
	}
}

// Every error rate nim-sds can send survives decoding and re-encoding exactly, although
// micros / 10⁶ · 10⁶ truncates to micros − 1 for about one value in 90.
func TestNimErrorRateRoundTrip(t *testing.T) {
	for micros := uint64(1); micros < nimErrorRateScale; micros++ {
		if got := nimErrorRateMicros(nimErrorRate(micros)); got != micros {
			t.Fatalf("%d micros re-encode as %d", micros, got)
		}
	}
	for _, micros := range []uint64{0, nimErrorRateScale, 1 << 63} {
		if r := nimErrorRate(micros); r != 0 {
			t.Fatalf("nimErrorRate(%d) = %v, want 0", micros, r)
		}
	}
}
