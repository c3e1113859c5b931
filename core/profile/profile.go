// Package profile holds the wire profiles: everything the SDS specification leaves open
// and deployed implementations disagree on — field layout, bloom-filter layout and hash,
// SDS-R hash and Lamport units. A channel speaks exactly one profile.
package profile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/hash"
	"github.com/sdskit/sdskit/core/wire"
)

// Profile is one wire profile.
type Profile struct {
	// Name identifies the profile in configuration ("spec", "nim").
	Name string
	// Codec encodes and decodes SdsMessage bytes.
	Codec wire.Codec
	// Hash is the string hash of the bloom filter.
	Hash bloom.Hasher
	// EncodeBloom serialises a filter for the bloom_filter field.
	EncodeBloom func(f *bloom.Filter) []byte
	// AppendBloom is EncodeBloom appending to dst, so that a caller can reuse a buffer
	// (every message carries the filter, ~18.7 KB at the default size).
	AppendBloom func(dst []byte, f *bloom.Filter) []byte
	// PatchBloom updates word i of a filter f encoded by AppendBloom (after f changed
	// only in that word); false means the layout cannot be patched, encode afresh.
	PatchBloom func(enc []byte, f *bloom.Filter, i int) bool
	// DecodeBloom parses a received bloom_filter field; ownK and ownM are our filter's
	// parameters, for layouts that do not carry their own. An error means "unusable":
	// the message is still processed without bloom acknowledgements.
	DecodeBloom func(b []byte, ownK, ownM uint) (*bloom.Filter, error)
	// ViewBloom, when set, is DecodeBloom for a filter that is only tested, without
	// copying b (which must not change while the result is used).
	ViewBloom func(b []byte, ownK, ownM uint) (bloom.Tester, error)
	// TReq is the SDS-R delay before we may request a missing message.
	TReq func(participantID, messageID string, tMin, tMax time.Duration) time.Duration
	// TResp is the SDS-R delay before we rebroadcast a requested message.
	TResp func(participantID, senderID, messageID string, tMax time.Duration) time.Duration
	// InResponseGroup reports whether we answer a repair request for a message of senderID.
	InResponseGroup func(participantID, senderID, messageID string, numGroups int) bool
	// LamportNow converts wall-clock time into the profile's Lamport unit.
	LamportNow func(now time.Time) uint64
}

// Spec is the default profile: the public SDS specification's field numbers, millisecond
// Lamport timestamps, and the bloom filter and SDS-R hashing of @waku/sds 0.0.8 (bloom
// words big-endian without header, MurmurHash3-based bit locations, SHA-256 for SDS-R).
var Spec = &Profile{
	Name:        "spec",
	Codec:       wire.Spec,
	Hash:        hash.WakuSDSJS,
	EncodeBloom: func(f *bloom.Filter) []byte { return f.AppendBigEndian(make([]byte, 0, 8*bloom.Words(f.M()))) },
	AppendBloom: func(dst []byte, f *bloom.Filter) []byte { return f.AppendBigEndian(dst) },
	PatchBloom: func(enc []byte, f *bloom.Filter, i int) bool {
		if i < 0 || 8*i+8 > len(enc) {
			return false
		}
		binary.BigEndian.PutUint64(enc[8*i:8*i+8], f.Word(i))
		return true
	},
	DecodeBloom: func(b []byte, k, m uint) (*bloom.Filter, error) {
		// The layout has no header: a filter of another size cannot be interpreted.
		return bloom.FromBigEndian(b, k, m, hash.WakuSDSJS)
	},
	ViewBloom: func(b []byte, k, m uint) (bloom.Tester, error) {
		v, err := bloom.ViewBigEndian(b, k, m, hash.WakuSDSJS)
		if err != nil {
			return nil, err
		}
		return v, nil
	},
	TReq:            hash.WakuTReq,
	TResp:           hash.WakuTResp,
	InResponseGroup: hash.WakuInResponseGroup,
	LamportNow: func(now time.Time) uint64 {
		if ms := now.UnixMilli(); ms > 0 {
			return uint64(ms)
		}
		return 0
	},
}

// Nim is the profile of nim-sds (libsds): its field numbers with fields 1, 2, 4, 5 and 6
// always emitted, its nested bloom message (little-endian words plus capacity, error
// rate, k and m), Nim 2.2's string hash (FarmHash Fingerprint64 as int64) for bloom bit
// locations and SDS-R, and second-based Lamport timestamps. docs/wire-profiles.md pins
// every detail.
var Nim = &Profile{
	Name:        "nim",
	Codec:       wire.Nim,
	Hash:        hash.NimFarm,
	EncodeBloom: func(f *bloom.Filter) []byte { return appendNimBloom(make([]byte, 0, nimBloomLen(f)), f) },
	AppendBloom: appendNimBloom,
	PatchBloom: func(enc []byte, f *bloom.Filter, i int) bool {
		n := bloom.Words(f.M())
		hdr := wire.NimBloomBitsHeaderLen(8 * n)
		// The encoding must be one of f's size: its field-1 header says so.
		var want [16]byte // a tag and a varint length: no heap allocation per patched word
		if i < 0 || i >= n || len(enc) < hdr+8*n || !bytes.Equal(wire.AppendNimBloomBitsHeader(want[:0], 8*n), enc[:hdr]) {
			return false
		}
		binary.LittleEndian.PutUint64(enc[hdr+8*i:], f.Word(i))
		return true
	},
	DecodeBloom:     decodeNimBloom,
	TReq:            hash.NimTReq,
	TResp:           hash.NimTResp,
	InResponseGroup: hash.NimInResponseGroup,
	LamportNow: func(now time.Time) uint64 {
		// nim-sds sends max(unix seconds, L) + 1, the engine max(LamportNow, L + 1):
		// seconds + 1 makes the two rules give the same timestamp.
		if s := now.Unix(); s > 0 {
			return uint64(s) + 1
		}
		return 0
	},
}

// nimErrorRateScale is the fixed-point scale of the error rate in the nim bloom message.
const nimErrorRateScale = 1_000_000

func nimBloomLen(f *bloom.Filter) int {
	n := 8 * bloom.Words(f.M())
	return wire.NimBloomBitsHeaderLen(n) + n + 4*(1+10) // four varint fields: tag + at most 10 bytes
}

// appendNimBloom appends f as nim-sds serialises a filter. A filter without a recorded
// sizing (built from k and m alone) carries capacity and error rate 0: nim-sds reads
// both but uses neither for membership.
func appendNimBloom(dst []byte, f *bloom.Filter) []byte {
	capacity, errorRate := f.Sizing()
	dst = wire.AppendNimBloomBitsHeader(dst, 8*bloom.Words(f.M()))
	dst = f.AppendLittleEndian(dst)
	return wire.AppendNimBloomParams(dst, uint64(max(capacity, 0)), nimErrorRateMicros(errorRate), uint64(f.K()), uint64(f.M()))
}

// nimErrorRateMicros is nim-sds's uint64(errorRate × 10⁶): a float product truncated.
func nimErrorRateMicros(errorRate float64) uint64 {
	if !(errorRate > 0 && errorRate < 1) {
		return 0
	}
	return uint64(errorRate * nimErrorRateScale)
}

// decodeNimBloom decodes a received nim bloom message with its own k and m (ownK and
// ownM do not matter: the layout carries its parameters). Words beyond the m bits are
// ignored and missing trailing words are an error, so a filter is usable exactly when
// every bit position it can produce is present.
func decodeNimBloom(b []byte, _, _ uint) (*bloom.Filter, error) {
	nb, err := wire.DecodeNimBloom(b)
	if err != nil {
		return nil, fmt.Errorf("nim bloom filter: %w", err)
	}
	if nb.K < 1 || nb.K > bloom.MaxHashes || nb.M < 1 || nb.M > bloom.MaxBits {
		return nil, fmt.Errorf("nim bloom filter: %w: k=%d, m=%d", bloom.ErrInvalidParams, nb.K, nb.M)
	}
	k, m := uint(nb.K), uint(nb.M)
	need := 8 * int((m+63)/64) // bytes holding bits 0..m-1
	if len(nb.Bits) < need {
		return nil, fmt.Errorf("nim bloom filter: %w: %d bytes of words for m=%d (want at least %d)", bloom.ErrInvalidParams, len(nb.Bits), m, need)
	}
	words := nb.Bits
	if want := 8 * bloom.Words(m); len(words) != want {
		// nim-sds always sends 1 + m/64 words; another count is padded or cut to it.
		w := make([]byte, want)
		copy(w, words[:min(len(words), want)])
		words = w
	}
	f, err := bloom.FromLittleEndian(words, k, m, hash.NimFarm)
	if err != nil {
		return nil, fmt.Errorf("nim bloom filter: %w", err)
	}
	f.SetSizing(int(min(nb.Capacity, uint64(1<<31-1))), nimErrorRate(nb.ErrorRateMicros))
	return f, nil
}

// nimErrorRate inverts nimErrorRateMicros: the smallest rate that encodes back to micros
// (micros / 10⁶ alone does not for one value in 90, e.g. 249), or 0 when micros is not a
// rate in (0, 1).
func nimErrorRate(micros uint64) float64 {
	if micros == 0 || micros >= nimErrorRateScale {
		return 0
	}
	r := float64(micros) / nimErrorRateScale
	for i := 0; i < 4 && nimErrorRateMicros(r) < micros; i++ { // one step suffices; bounded anyway
		r = math.Nextafter(r, 1)
	}
	return r
}

// ByName returns the profile called name ("" means spec).
func ByName(name string) (*Profile, error) {
	switch name {
	case "", Spec.Name:
		return Spec, nil
	case Nim.Name:
		return Nim, nil
	}
	return nil, fmt.Errorf("unknown wire profile %q (known: spec, nim)", name)
}
