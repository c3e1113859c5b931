// Package profile holds the wire profiles: everything the SDS specification leaves open
// and deployed implementations disagree on — field layout, bloom-filter layout and hash,
// SDS-R hash and Lamport units. A channel speaks exactly one profile.
package profile

import (
	"encoding/binary"
	"fmt"
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

// ByName returns the profile called name ("" means spec).
func ByName(name string) (*Profile, error) {
	switch name {
	case "", Spec.Name:
		return Spec, nil
	}
	return nil, fmt.Errorf("unknown wire profile %q (known: spec)", name)
}
