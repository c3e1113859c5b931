// Package bloom holds the bloom filters of SDS: a filter whose bit storage and membership
// tests use github.com/bits-and-blooms/bloom/v3, with bit locations computed by
// Kirsch–Mitzenmacher double hashing over a profile-supplied string hash (so that the
// bits match what other SDS implementations set), and a rolling filter that bounds the
// number of ids a channel's summary holds.
package bloom

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	bbloom "github.com/bits-and-blooms/bloom/v3"
)

// Hasher is a profile's string hash, interpreted as a signed 64-bit value.
type Hasher func(string) int64

// Limits on filter parameters accepted from anywhere (config or network): they keep a
// hostile peer from making us allocate or hash without bound.
const (
	MaxBits   = 1 << 24 // 2 MiB of bits
	MaxHashes = 32
)

// ErrInvalidParams reports filter parameters out of range.
var ErrInvalidParams = errors.New("invalid bloom filter parameters")

// Size returns the number of hash functions k and of bits m that hold capacity items at
// the given false-positive rate: bits per item = ceil(-ln p / ln²2), k = round(ln2 ·
// bits per item), m = capacity · bits per item (the sizing @waku/sds and nim-sds share).
func Size(capacity int, errorRate float64) (k, m uint, err error) {
	if capacity <= 0 || !(errorRate > 0 && errorRate < 1) {
		return 0, 0, fmt.Errorf("%w: capacity %d, error rate %v", ErrInvalidParams, capacity, errorRate)
	}
	perItem := math.Ceil(-math.Log(errorRate) / (math.Ln2 * math.Ln2))
	k = uint(math.Round(math.Ln2 * perItem))
	mm := float64(capacity) * perItem
	if k < 1 || k > MaxHashes || mm > MaxBits {
		return 0, 0, fmt.Errorf("%w: capacity %d at error rate %v needs k=%d, m=%.0f", ErrInvalidParams, capacity, errorRate, k, mm)
	}
	return k, uint(mm), nil
}

// Words returns the number of 64-bit words a filter of m bits serialises to: 1 + m/64,
// one more than strictly needed when m is a multiple of 64, as both peers do.
func Words(m uint) int { return 1 + int(m/64) }

// Filter is a bloom filter of m bits and k hashes over a profile's string hash.
type Filter struct {
	bits *bbloom.BloomFilter
	k, m uint
	hash Hasher
	// capacity and errorRate are the sizing the filter was built for, carried only so a
	// layout that serialises them (the nim profile's) can: membership needs k and m alone.
	capacity  int
	errorRate float64
}

// New returns an empty filter; it fails when k or m is out of range or hash is nil.
func New(k, m uint, hash Hasher) (*Filter, error) {
	if err := checkParams(k, m); err != nil {
		return nil, err
	}
	if hash == nil {
		return nil, fmt.Errorf("%w: nil hash", ErrInvalidParams)
	}
	// The bitset is sized to whole serialised words so every stored bit round-trips.
	return &Filter{bits: bbloom.New(uint(Words(m))*64, k), k: k, m: m, hash: hash}, nil
}

func checkParams(k, m uint) error {
	if k < 1 || k > MaxHashes || m < 1 || m > MaxBits {
		return fmt.Errorf("%w: k=%d, m=%d (want 1..%d hashes, 1..%d bits)", ErrInvalidParams, k, m, MaxHashes, MaxBits)
	}
	return nil
}

// K returns the number of hash functions.
func (f *Filter) K() uint { return f.k }

// M returns the number of bits that locations are reduced modulo.
func (f *Filter) M() uint { return f.m }

// Sizing returns the capacity and false-positive rate the filter was sized for, or
// zeros when it was built from k and m alone.
func (f *Filter) Sizing() (capacity int, errorRate float64) { return f.capacity, f.errorRate }

// SetSizing records the capacity and false-positive rate the filter stands for (see
// Sizing); it does not change k, m or the bits.
func (f *Filter) SetSizing(capacity int, errorRate float64) {
	f.capacity, f.errorRate = capacity, errorRate
}

// Add inserts an id.
func (f *Filter) Add(id string) {
	a, b := f.seeds(id)
	f.addSeeds(a, b)
}

// addSeeds sets the bits of the id whose seeds are a and b.
func (f *Filter) addSeeds(a, b uint64) {
	bs := f.bits.BitSet()
	m := uint64(f.m)
	for i, loc := uint(0), a; i < f.k; i++ {
		bs.Set(uint(loc))
		loc = nextLocation(loc, b, m)
	}
}

// Test reports whether id may be in the filter (false means certainly not).
func (f *Filter) Test(id string) bool {
	a, b := f.seeds(id)
	return f.TestSeeds(a, b)
}

// TestSeeds is Test of the id whose seeds are a and b.
func (f *Filter) TestSeeds(a, b uint64) bool {
	bs := f.bits.BitSet()
	m := uint64(f.m)
	for i, loc := uint(0), a; i < f.k; i++ {
		if !bs.Test(uint(loc)) {
			return false
		}
		loc = nextLocation(loc, b, m)
	}
	return true
}

// Locations returns the k bit positions of id, in hash order.
func (f *Filter) Locations(id string) []uint {
	a, b := f.seeds(id)
	out := make([]uint, f.k)
	for i, loc := 0, a; i < len(out); i++ {
		out[i] = uint(loc)
		loc = nextLocation(loc, b, uint64(f.m))
	}
	return out
}

func (f *Filter) seeds(id string) (a, b uint64) { return seedsOf(f.hash, f.m, id) }

func seedsOf(hash Hasher, m uint, id string) (a, b uint64) {
	mm := uint64(m)
	return absU64(hash(id)) % mm, absU64(hash(id+" b")) % mm
}

// Tester is what a received filter is used for: membership tests.
type Tester interface {
	Test(id string) bool
}

// SeedTester is a Tester that also tests an id by its hash seeds (Rolling.Seeds of a
// filter with the same sizing and hash), which skips the two hashes Test computes.
type SeedTester interface {
	Tester
	TestSeeds(a, b uint64) bool
}

// View is a read-only filter over words serialised by AppendBigEndian, tested in place:
// a receiver tests a few ids against every received filter (~18.7 KB at the default
// size), which it need not decode for that.
type View struct {
	b    []byte
	k, m uint
	hash Hasher
}

// ViewBigEndian accepts exactly what FromBigEndian accepts and returns a view of b,
// which must not change while the view is in use.
func ViewBigEndian(b []byte, k, m uint, hash Hasher) (*View, error) {
	if len(b)%8 != 0 || len(b)/8 != Words(m) {
		return nil, fmt.Errorf("%w: %d bytes for m=%d (want %d)", ErrInvalidParams, len(b), m, 8*Words(m))
	}
	if err := checkWords(len(b)/8, k, m, hash); err != nil {
		return nil, err
	}
	return &View{b: b, k: k, m: m, hash: hash}, nil
}

// Test reports whether id may be in the filter, as Filter.Test does after decoding.
func (v *View) Test(id string) bool {
	a, b := seedsOf(v.hash, v.m, id)
	return v.TestSeeds(a, b)
}

// TestSeeds is Test of the id whose seeds are a and b.
func (v *View) TestSeeds(a, b uint64) bool {
	m := uint64(v.m)
	for i, loc := uint(0), a; i < v.k; i++ {
		// Bit loc is bit loc%64 (from the least significant end) of word loc/64, whose
		// eight big-endian bytes hold bits 63..56 first.
		if v.b[8*(loc/64)+7-(loc%64)/8]&(1<<(loc%8)) == 0 {
			return false
		}
		loc = nextLocation(loc, b, m)
	}
	return true
}

// nextLocation returns (loc + b) mod m for loc, b < m. The i-th bit position of an id
// is |a + i·b| mod m (a, b < m; no overflow for the bounded k and m, so the absolute
// value is the identity), computed as a, then a+b, a+2b, ... reduced step by step:
// no division, which the positions of every insertion and test would otherwise cost.
func nextLocation(loc, b, m uint64) uint64 {
	if loc += b; loc >= m {
		loc -= m
	}
	return loc
}

func absU64(x int64) uint64 {
	if x < 0 {
		return uint64(-x) // |MinInt64| = 2^63 still fits in uint64
	}
	return uint64(x)
}

// Word returns the filter's i-th 64-bit word (as in Words, without the copy).
func (f *Filter) Word(i int) uint64 {
	if src := f.bits.BitSet().Words(); i >= 0 && i < len(src) {
		return src[i]
	}
	return 0
}

// Clear removes every id.
func (f *Filter) Clear() { f.bits.ClearAll() }

// Words returns the filter's 64-bit words (bit i lives in word i/64 at bit i%64 from the
// least significant end). The slice is a copy.
func (f *Filter) Words() []uint64 {
	src := f.bits.BitSet().Words()
	out := make([]uint64, Words(f.m))
	copy(out, src)
	return out
}

// AppendBigEndian appends the words, each as 8 big-endian bytes (the `spec` layout).
func (f *Filter) AppendBigEndian(dst []byte) []byte {
	src := f.bits.BitSet().Words()
	n := Words(f.m)
	// Grow once and store in place: this runs for every message sent (~2 300 words at
	// the default size), where appending word by word is several times slower.
	off := len(dst)
	dst = slices.Grow(dst, 8*n)[:off+8*n]
	out := dst[off:]
	have := min(len(src), n)
	for i, w := range src[:have] {
		binary.BigEndian.PutUint64(out[8*i:8*i+8], w)
	}
	clear(out[8*have:])
	return dst
}

// AppendLittleEndian appends the words, each as 8 little-endian bytes (the `nim` layout).
func (f *Filter) AppendLittleEndian(dst []byte) []byte {
	src := f.bits.BitSet().Words()
	n := Words(f.m)
	for i := 0; i < n; i++ {
		var w uint64
		if i < len(src) {
			w = src[i]
		}
		dst = binary.LittleEndian.AppendUint64(dst, w)
	}
	return dst
}

// FromWords builds a filter from serialised words; it fails when the parameters are out
// of range or the number of words does not equal Words(m).
func FromWords(words []uint64, k, m uint, hash Hasher) (*Filter, error) {
	if err := checkWords(len(words), k, m, hash); err != nil {
		return nil, err
	}
	own := make([]uint64, len(words))
	copy(own, words)
	return fromOwnedWords(own, k, m, hash), nil
}

func checkWords(n int, k, m uint, hash Hasher) error {
	if err := checkParams(k, m); err != nil {
		return err
	}
	if hash == nil {
		return fmt.Errorf("%w: nil hash", ErrInvalidParams)
	}
	if n != Words(m) {
		return fmt.Errorf("%w: %d words for m=%d (want %d)", ErrInvalidParams, n, m, Words(m))
	}
	return nil
}

// fromOwnedWords wraps words, which the filter takes over, after checkWords.
func fromOwnedWords(words []uint64, k, m uint, hash Hasher) *Filter {
	return &Filter{bits: bbloom.FromWithM(words, uint(len(words))*64, k), k: k, m: m, hash: hash}
}

// decodeWords validates the parameters and decodes 8-byte words into a filter without
// an intermediate copy (a received filter is decoded on every message).
func decodeWords(b []byte, k, m uint, hash Hasher, bigEndian bool) (*Filter, error) {
	n := len(b) / 8
	if err := checkWords(n, k, m, hash); err != nil {
		return nil, err
	}
	words := make([]uint64, n)
	for i := range words {
		if bigEndian {
			words[i] = binary.BigEndian.Uint64(b[8*i:])
		} else {
			words[i] = binary.LittleEndian.Uint64(b[8*i:])
		}
	}
	return fromOwnedWords(words, k, m, hash), nil
}

// FromBigEndian decodes the `spec` layout for a filter of k hashes and m bits.
func FromBigEndian(b []byte, k, m uint, hash Hasher) (*Filter, error) {
	if len(b)%8 != 0 || len(b)/8 != Words(m) {
		return nil, fmt.Errorf("%w: %d bytes for m=%d (want %d)", ErrInvalidParams, len(b), m, 8*Words(m))
	}
	return decodeWords(b, k, m, hash, true)
}

// FromLittleEndian decodes the `nim` layout's word bytes for a filter of k hashes and m
// bits (a trailing partial word is ignored, as nim-sds does).
func FromLittleEndian(b []byte, k, m uint, hash Hasher) (*Filter, error) {
	n := len(b) / 8
	if n != Words(m) {
		return nil, fmt.Errorf("%w: %d bytes for m=%d (want %d)", ErrInvalidParams, len(b), m, 8*Words(m))
	}
	return decodeWords(b[:8*n], k, m, hash, false)
}
