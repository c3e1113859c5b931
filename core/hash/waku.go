package hash

import (
	"math/bits"
)

// MurmurHash3 (x86, 32-bit) constants.
const (
	murmurC1 = 0xcc9e2d51
	murmurC2 = 0x1b873593
	murmurN  = 0xe6546b64
	murmurF1 = 0x85ebca6b
	murmurF2 = 0xc2b2ae35
)

func murmurMixK(k uint32) uint32 {
	k *= murmurC1
	k = bits.RotateLeft32(k, 15)
	return k * murmurC2
}

func murmurFinal(h uint32, n uint32) uint32 {
	h ^= n
	h ^= h >> 16
	h *= murmurF1
	h ^= h >> 13
	h *= murmurF2
	h ^= h >> 16
	return h
}

// murmur32 is MurmurHash3_x86_32 with seed 0 over the bytes of s.
func murmur32(s string) uint32 {
	var h uint32
	n := len(s)
	i := 0
	for ; i+4 <= n; i += 4 {
		k := uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
		h ^= murmurMixK(k)
		h = bits.RotateLeft32(h, 13)
		h = h*5 + murmurN
	}
	var k uint32
	for j := n - i - 1; j >= 0; j-- {
		k = k<<8 | uint32(s[i+j])
	}
	h ^= murmurMixK(k)
	return murmurFinal(h, uint32(n))
}

// WakuSDS returns the string hash used by the @waku/sds 0.0.8 bloom filter:
// MurmurHash3_x86_32 (seed 0) of the UTF-8 bytes of s, sign-extended from 32 bits.
// For ASCII strings it equals the JavaScript value exactly; see WakuSDSJS for non-ASCII input.
func WakuSDS(s string) int64 {
	return int64(int32(murmur32(s)))
}

// WakuSDSJS replicates the @waku/sds 0.0.8 JavaScript hash bit for bit for any string,
// including its treatment of non-ASCII text (one 16-bit element per code point).
func WakuSDSJS(s string) int64 {
	// The JS wrapper turns the string into Array.from(s).map(c => c.charCodeAt(0)):
	// one element per code point, holding the first UTF-16 code unit (0..0xFFFF).
	// The Nim murmur code then ORs each element into the block word after an
	// 8-bit shift, so elements above 0xFF bleed into neighbouring bytes.
	var (
		h, k  uint32
		n     uint32
		block [4]uint32
		fill  int
	)
	for _, r := range s { // invalid UTF-8 bytes decode as U+FFFD, like TextDecoder
		u := uint32(r)
		if r >= 0x10000 {
			u = 0xD800 + (uint32(r)-0x10000)>>10
		}
		block[fill] = u
		fill++
		n++
		if fill == 4 {
			k = 0
			for j := 3; j >= 0; j-- {
				k = k<<8 | block[j]
			}
			h ^= murmurMixK(k)
			h = bits.RotateLeft32(h, 13)
			h = h*5 + murmurN
			fill = 0
		}
	}
	k = 0
	for j := fill - 1; j >= 0; j-- {
		k = k<<8 | block[j]
	}
	h ^= murmurMixK(k)
	return int64(int32(murmurFinal(h, n)))
}

// WakuHashN returns bit position i of item in a @waku/sds bloom filter of m bits:
// |a + i*b| mod m with a = |WakuSDS(item)| mod m and b = |WakuSDS(item+" b")| mod m.
// It uses |m| and returns 0 when m == 0 (the JavaScript throws); the arithmetic is exact.
func WakuHashN(item string, i, m int) int {
	return hashN(WakuSDS, item, i, m)
}

// WakuHashNJS is WakuHashN built on WakuSDSJS, i.e. bit-exact with the JavaScript
// bloom filter for non-ASCII items too.
func WakuHashNJS(item string, i, m int) int {
	return hashN(WakuSDSJS, item, i, m)
}

func absU64(x int64) uint64 {
	if x < 0 {
		return uint64(-x) // -MinInt64 wraps to MinInt64, whose uint64 is 2^63 = |x|
	}
	return uint64(x)
}

func hashN(h func(string) int64, item string, i, m int) int {
	mod := absU64(int64(m))
	if mod == 0 {
		return 0
	}
	a := absU64(h(item)) % mod
	b := absU64(h(item+" b")) % mod
	// |a + i*b| computed exactly in 128 bits, then reduced modulo m.
	hi, lo := bits.Mul64(absU64(int64(i)), b)
	if i >= 0 {
		var c uint64
		lo, c = bits.Add64(lo, a, 0)
		hi += c
	} else if hi == 0 && lo <= a {
		lo = a - lo
	} else {
		var br uint64
		lo, br = bits.Sub64(lo, a, 0)
		hi -= br
	}
	return int(bits.Rem64(hi, lo, mod))
}
