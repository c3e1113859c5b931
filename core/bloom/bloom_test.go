package bloom_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/hash"
)

// The spec profile's hash; the nim profile's FarmHash is exercised as well where the
// property does not depend on the hash.
var specHash bloom.Hasher = hash.WakuSDSJS

var hashes = []struct {
	name string
	h    bloom.Hasher
}{
	{"waku", hash.WakuSDSJS},
	{"nim", hash.NimFarm},
}

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// randomStrings returns n distinct random strings of length l over letters (the fixture
// of nim-sds's tests/test_bloom.nim, with a Go RNG seeded 2882).
func randomStrings(rng *rand.Rand, n, l int, exclude map[string]bool) []string {
	seen := make(map[string]bool, n)
	out := make([]string, 0, n)
	b := make([]byte, l)
	for len(out) < n {
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		s := string(b)
		if seen[s] || exclude[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

func mustNew(t *testing.T, capacity int, errorRate float64, h bloom.Hasher) *bloom.Filter {
	t.Helper()
	k, m, err := bloom.Size(capacity, errorRate)
	if err != nil {
		t.Fatalf("Size(%d, %v): %v", capacity, errorRate, err)
	}
	f, err := bloom.New(k, m, h)
	if err != nil {
		t.Fatalf("New(%d, %d): %v", k, m, err)
	}
	return f
}

// bigFilter is the suite fixture: capacity 10 000, error rate 0.001, 10 000 random
// 8-letter strings inserted.
func bigFilter(t *testing.T, h bloom.Hasher) (*bloom.Filter, []string) {
	t.Helper()
	f := mustNew(t, 10000, 0.001, h)
	items := randomStrings(rand.New(rand.NewPCG(2882, 2882)), 10000, 8, nil)
	for _, s := range items {
		f.Add(s)
	}
	return f, items
}

func TestBloomFilter_InitializationParameters(t *testing.T) {
	k, m, err := bloom.Size(10000, 0.001)
	if err != nil {
		t.Fatal(err)
	}
	if k != 10 || m != 150000 {
		t.Fatalf("Size(10000, 0.001) = (%d, %d), want (10, 150000)", k, m)
	}
	if m/10000 != 15 {
		t.Fatalf("m/capacity = %d, want 15", m/10000)
	}
	f, err := bloom.New(k, m, specHash)
	if err != nil {
		t.Fatal(err)
	}
	if f.K() != 10 || f.M() != 150000 {
		t.Fatalf("filter k=%d m=%d", f.K(), f.M())
	}
	// 1 + m/64 words: 2344 words = 18 752 bytes in the spec layout.
	if got := bloom.Words(150000); got != 2344 {
		t.Fatalf("Words(150000) = %d, want 2344", got)
	}
	if got := len(f.Words()); got != 2344 {
		t.Fatalf("len(Words()) = %d", got)
	}
	if got := len(f.AppendBigEndian(nil)); got != 8*2344 {
		t.Fatalf("big-endian size %d", got)
	}
	if got := len(f.AppendLittleEndian(nil)); got != 8*2344 {
		t.Fatalf("little-endian size %d", got)
	}
}

func TestBloomFilter_Words(t *testing.T) {
	for _, c := range []struct {
		m    uint
		want int
	}{{1, 1}, {63, 1}, {64, 2}, {65, 2}, {127, 2}, {128, 3}, {150000, 2344}} {
		if got := bloom.Words(c.m); got != c.want {
			t.Errorf("Words(%d) = %d, want %d (1 + m/64)", c.m, got, c.want)
		}
	}
}

func TestBloomFilter_BasicOperations(t *testing.T) {
	for _, h := range hashes {
		t.Run(h.name, func(t *testing.T) {
			big, _ := bigFilter(t, h.h)
			if big.Test("nonexistent") {
				t.Error(`"nonexistent" found in the big filter`)
			}
			f := mustNew(t, 100, 0.01, h.h)
			if f.Test("test string") {
				t.Error("empty filter contains an item")
			}
			f.Add("test string")
			if !f.Test("test string") {
				t.Error(`"test string" not found after Add`)
			}
			if f.Test("different string") {
				t.Error(`"different string" found`)
			}
			if len(f.Locations("test string")) != int(f.K()) {
				t.Error("Locations must return k positions")
			}
			for _, l := range f.Locations("test string") {
				if l >= f.M() {
					t.Errorf("location %d ≥ m %d", l, f.M())
				}
			}
			f.Clear()
			if f.Test("test string") {
				t.Error("Clear kept an item")
			}
		})
	}
}

func TestBloomFilter_ErrorRate(t *testing.T) {
	for _, h := range hashes {
		t.Run(h.name, func(t *testing.T) {
			f, items := bigFilter(t, h.h)
			in := make(map[string]bool, len(items))
			for _, s := range items {
				in[s] = true
			}
			absent := randomStrings(rand.New(rand.NewPCG(7, 7)), 5000, 9, in)
			fp := 0
			for _, s := range absent {
				if f.Test(s) {
					fp++
				}
			}
			rate := float64(fp) / float64(len(absent))
			if rate >= 1.5*0.001 {
				t.Fatalf("false-positive rate %.5f (%d/5000) ≥ 1.5 × 0.001", rate, fp)
			}
		})
	}
}

func TestBloomFilter_PerfectRecall(t *testing.T) {
	for _, h := range hashes {
		t.Run(h.name, func(t *testing.T) {
			f, items := bigFilter(t, h.h)
			for _, s := range items {
				if !f.Test(s) {
					t.Fatalf("inserted %q not found", s)
				}
			}
		})
	}
}

// nim's k/m specification test checks getMOverNBitsForK; our Size derives both k and the
// bits per item from the error rate, so the port asserts that derivation and its limits.
func TestBloomFilter_KMBitsSpecification(t *testing.T) {
	for _, c := range []struct {
		capacity int
		rate     float64
		k, m     uint
	}{
		{1000, 0.1, 3, 5000},   // ceil(-ln .1/ln²2) = 5 bits per item
		{1000, 0.01, 7, 10000}, // 10 bits per item
		{1000, 0.001, 10, 15000},
		{10000, 0.001, 10, 150000},
		{1, 0.5, 1, 2},
	} {
		k, m, err := bloom.Size(c.capacity, c.rate)
		if err != nil || k != c.k || m != c.m {
			t.Errorf("Size(%d, %v) = (%d, %d, %v), want (%d, %d)", c.capacity, c.rate, k, m, err, c.k, c.m)
		}
	}
	for _, c := range []struct {
		name     string
		capacity int
		rate     float64
	}{
		{"zero capacity", 0, 0.01},
		{"negative capacity", -1, 0.01},
		{"zero error rate", 100, 0},
		{"error rate 1", 100, 1},
		{"negative error rate", 100, -0.1},
		{"NaN error rate", 100, math.NaN()},
		{"too many bits", 2_000_000, 0.001},
		{"too many hashes", 100, 1e-12},
	} {
		if _, _, err := bloom.Size(c.capacity, c.rate); !errors.Is(err, bloom.ErrInvalidParams) {
			t.Errorf("%s: Size(%d, %v) err = %v, want ErrInvalidParams", c.name, c.capacity, c.rate, err)
		}
	}
	for _, c := range []struct {
		k, m uint
		h    bloom.Hasher
	}{
		{0, 100, specHash}, {bloom.MaxHashes + 1, 100, specHash}, {3, 0, specHash},
		{3, bloom.MaxBits + 1, specHash}, {3, 100, nil},
	} {
		if _, err := bloom.New(c.k, c.m, c.h); !errors.Is(err, bloom.ErrInvalidParams) {
			t.Errorf("New(%d, %d, hash nil=%v) err = %v, want ErrInvalidParams", c.k, c.m, c.h == nil, err)
		}
	}
	if _, err := bloom.New(bloom.MaxHashes, bloom.MaxBits, specHash); err != nil {
		t.Errorf("New at the limits: %v", err)
	}
}

func TestBloomFilter_DifferentPatternsOfStrings(t *testing.T) {
	f := mustNew(t, 10000, 0.01, specHash)
	patterns := []string{
		"x",
		strings.Repeat("a", 1000),
		"!@#$%^&*()_+-=[]{}|;':\",./<>?",
		"unicode: 日本語 ✓ émoji 🎉",
		strings.Repeat("ab", 50),
		"",
	}
	for _, p := range patterns {
		f.Add(p)
	}
	for _, p := range patterns {
		if !f.Test(p) {
			t.Errorf("pattern %q not found", p)
		}
	}
	rng := rand.New(rand.NewPCG(2882, 1))
	var items []string
	in := map[string]bool{}
	for i := 0; i < 10000; i++ {
		s := fmt.Sprintf("%dtest%d", i, rng.Uint32())
		items = append(items, s)
		in[s] = true
		f.Add(s)
	}
	for _, s := range items {
		if !f.Test(s) {
			t.Fatalf("%q not found", s)
		}
	}
	fp := 0
	for i := 0; i < 5000; i++ {
		s := fmt.Sprintf("absent-%d-%d", i, rng.Uint64())
		if in[s] {
			continue
		}
		if f.Test(s) {
			fp++
		}
	}
	if rate := float64(fp) / 5000; rate >= 0.015 {
		t.Fatalf("false-positive rate %.4f ≥ 0.015", rate)
	}
}

func TestBloomFilter_BigEndianRoundTrip(t *testing.T) {
	f, items := bigFilter(t, specHash)
	b := f.AppendBigEndian([]byte{0xAA}) // appends after existing bytes
	if b[0] != 0xAA || len(b) != 1+8*bloom.Words(f.M()) {
		t.Fatalf("AppendBigEndian layout: len %d", len(b))
	}
	g, err := bloom.FromBigEndian(b[1:], f.K(), f.M(), specHash)
	if err != nil {
		t.Fatal(err)
	}
	if !slicesEqual(f.Words(), g.Words()) {
		t.Fatal("words differ after the round trip")
	}
	for _, s := range items[:500] {
		if !g.Test(s) {
			t.Fatalf("%q lost in the round trip", s)
		}
	}
	if !bytes.Equal(g.AppendBigEndian(nil), b[1:]) {
		t.Fatal("re-encoding differs")
	}
	// Word i is 8 big-endian bytes; bit j of the filter is bit j%64 of word j/64.
	w := f.Words()
	for i := 0; i < len(w); i += 97 {
		if got := binary.BigEndian.Uint64(b[1+8*i:]); got != w[i] {
			t.Fatalf("word %d: %x, want %x", i, got, w[i])
		}
	}
	// Little-endian layout of the same words round-trips too.
	le := f.AppendLittleEndian(nil)
	h, err := bloom.FromLittleEndian(le, f.K(), f.M(), specHash)
	if err != nil {
		t.Fatal(err)
	}
	if !slicesEqual(f.Words(), h.Words()) {
		t.Fatal("little-endian round trip differs")
	}
	// FromWords copies its input.
	words := f.Words()
	fw, err := bloom.FromWords(words, f.K(), f.M(), specHash)
	if err != nil {
		t.Fatal(err)
	}
	clear(words)
	if !fw.Test(items[0]) {
		t.Fatal("FromWords aliases its input")
	}
}

func slicesEqual(a, b []uint64) bool {
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

func TestBloomFilter_DecodersRejectBadInput(t *testing.T) {
	const k, m = 10, 150000
	n := bloom.Words(m)
	good := make([]byte, 8*n)
	if _, err := bloom.FromBigEndian(good, k, m, specHash); err != nil {
		t.Fatalf("valid input rejected: %v", err)
	}
	for _, c := range []struct {
		name string
		b    []byte
		k, m uint
		h    bloom.Hasher
	}{
		{"empty", nil, k, m, specHash},
		{"one word short", good[:8*(n-1)], k, m, specHash},
		{"one word long", make([]byte, 8*(n+1)), k, m, specHash},
		{"partial word", good[:8*n-3], k, m, specHash},
		{"partial extra word", append(append([]byte{}, good...), 1, 2, 3), k, m, specHash},
		{"k zero", good, 0, m, specHash},
		{"k too large", good, bloom.MaxHashes + 1, m, specHash},
		{"m zero", good[:8], k, 0, specHash},
		{"m too large", good, k, bloom.MaxBits + 1, specHash},
		{"nil hash", good, k, m, nil},
	} {
		if _, err := bloom.FromBigEndian(c.b, c.k, c.m, c.h); !errors.Is(err, bloom.ErrInvalidParams) {
			t.Errorf("FromBigEndian %s: err = %v", c.name, err)
		}
		if c.name == "partial extra word" { // the nim layout ignores a trailing partial word
			if _, err := bloom.FromLittleEndian(c.b, c.k, c.m, c.h); err != nil {
				t.Errorf("FromLittleEndian %s: %v", c.name, err)
			}
			continue
		}
		if _, err := bloom.FromLittleEndian(c.b, c.k, c.m, c.h); !errors.Is(err, bloom.ErrInvalidParams) {
			t.Errorf("FromLittleEndian %s: err = %v", c.name, err)
		}
	}
	words := make([]uint64, n)
	for _, c := range []struct {
		name string
		w    []uint64
		k, m uint
		h    bloom.Hasher
	}{
		{"short", words[:n-1], k, m, specHash},
		{"long", append(append([]uint64{}, words...), 0), k, m, specHash},
		{"nil", nil, k, m, specHash},
		{"k zero", words, 0, m, specHash},
		{"k too large", words, 33, m, specHash},
		{"m zero", words[:1], k, 0, specHash},
		{"m too large", words, k, bloom.MaxBits + 1, specHash},
		{"nil hash", words, k, m, nil},
	} {
		if _, err := bloom.FromWords(c.w, c.k, c.m, c.h); !errors.Is(err, bloom.ErrInvalidParams) {
			t.Errorf("FromWords %s: err = %v", c.name, err)
		}
	}
}

func TestRollingBloomFilter_RollsAtCapacityKeepingNewest80Percent(t *testing.T) {
	r, err := bloom.NewRolling(100, 0.001, specHash)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 101)
	for i := range ids {
		ids[i] = fmt.Sprintf("id-%03d", i)
	}
	for _, id := range ids[:100] {
		r.Add(id)
	}
	if r.Len() != 100 {
		t.Fatalf("Len at capacity = %d, want 100 (no roll yet)", r.Len())
	}
	for _, id := range ids[:100] {
		if !r.Test(id) {
			t.Fatalf("%s missing before the roll", id)
		}
	}
	r.Add(ids[100]) // capacity + 1: rebuilt from the newest 80
	if r.Len() != 80 {
		t.Fatalf("Len after roll = %d, want 80", r.Len())
	}
	for _, id := range ids[21:] {
		if !r.Test(id) {
			t.Fatalf("newest id %s lost by the roll", id)
		}
	}
	for _, id := range ids[:21] {
		if r.Test(id) {
			t.Errorf("oldest id %s survived the roll", id)
		}
	}
}

func TestRollingBloomFilter_DuplicatesNotCounted(t *testing.T) {
	r, err := bloom.NewRolling(10, 0.01, specHash)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		r.Add("same")
	}
	if r.Len() != 1 {
		t.Fatalf("Len = %d after adding one id 100 times", r.Len())
	}
	for i := 0; i < 9; i++ {
		r.Add(fmt.Sprint("x", i))
		r.Add("same")
	}
	if r.Len() != 10 || !r.Test("same") || !r.Test("x0") {
		t.Fatalf("Len = %d; duplicates must not trigger a roll", r.Len())
	}
}

func TestRollingBloomFilter_WireSizeConstant(t *testing.T) {
	r, err := bloom.NewRolling(50, 0.001, specHash)
	if err != nil {
		t.Fatal(err)
	}
	k, m, _ := bloom.Size(50, 0.001)
	want := 8 * bloom.Words(m)
	if r.Filter().K() != k || r.Filter().M() != m {
		t.Fatalf("rolling filter k=%d m=%d, want %d, %d", r.Filter().K(), r.Filter().M(), k, m)
	}
	for i := 0; i < 500; i++ {
		r.Add(fmt.Sprint("msg-", i))
		if got := len(r.Filter().AppendBigEndian(nil)); got != want {
			t.Fatalf("after %d adds the encoding is %d bytes, want %d", i+1, got, want)
		}
		if r.Len() > 50 {
			t.Fatalf("Len %d over capacity", r.Len())
		}
	}
	if !r.Test("msg-499") {
		t.Fatal("newest id missing")
	}
}

func TestRollingBloomFilter_SmallCapacityKeepsAtLeastOne(t *testing.T) {
	r, err := bloom.NewRolling(2, 0.001, specHash)
	if err != nil {
		t.Fatal(err)
	}
	r.Add("msg1")
	r.Add("msg2")
	r.Add("msg3")
	if r.Len() != 1 || !r.Test("msg3") || r.Test("msg1") || r.Test("msg2") {
		t.Fatalf("capacity 2 roll: len %d, msg3 %v msg1 %v msg2 %v", r.Len(), r.Test("msg3"), r.Test("msg1"), r.Test("msg2"))
	}
	if _, err := bloom.NewRolling(0, 0.001, specHash); !errors.Is(err, bloom.ErrInvalidParams) {
		t.Fatalf("NewRolling(0) err = %v", err)
	}
}

// A filter of the same sizing and hash tests an id by the seeds a Rolling keeps for it
// exactly as by the id; the seeds go when the id rolls out.
func TestTestSeedsAgreesWithTest(t *testing.T) {
	r, err := bloom.NewRolling(10, 0.01, specHash)
	if err != nil {
		t.Fatal(err)
	}
	other, err := bloom.New(r.Filter().K(), r.Filter().M(), specHash)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		id := fmt.Sprint("id", i)
		r.Add(id)
		if i%2 == 0 {
			other.Add(id)
		}
	}
	view, err := bloom.ViewBigEndian(other.AppendBigEndian(nil), other.K(), other.M(), specHash)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		id := fmt.Sprint("id", i)
		a, b, ok := r.Seeds(id)
		if !ok {
			t.Fatalf("no seeds for %s", id)
		}
		for _, f := range []bloom.SeedTester{other, view} {
			if f.TestSeeds(a, b) != f.Test(id) {
				t.Fatalf("%T: TestSeeds(%s) = %v, Test = %v", f, id, f.TestSeeds(a, b), f.Test(id))
			}
		}
		if i%2 == 0 && !view.TestSeeds(a, b) {
			t.Fatalf("%s was added but TestSeeds says no", id)
		}
	}
	if _, _, ok := r.Seeds("never added"); ok {
		t.Fatal("seeds of an id never added")
	}
	r.Add("id10") // over capacity: the oldest ids roll out
	if _, _, ok := r.Seeds("id0"); ok {
		t.Fatal("seeds of an id that rolled out")
	}
}
