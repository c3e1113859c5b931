// Package wire is the hardened codec of SDS wire messages: it encodes sdskitv1.SdsMessage
// byte-identically to protobuf (so it interoperates with @waku/sds and nim-sds) and
// decodes untrusted network input under explicit Limits, never panicking.
package wire

import (
	"strconv"

	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Default values of the Limits fields, used by DefaultLimits and for every zero field.
const (
	defaultMaxMessageBytes   = 1<<20 + 256<<10 // 1 MiB + 256 KiB
	defaultMaxContentBytes   = 1 << 20         // 1 MiB
	defaultMaxIDBytes        = 256
	defaultMaxHintBytes      = 512
	defaultMaxCausalHistory  = 1024 // @waku/sds sends 200 entries by default
	defaultMaxRepairRequests = 64
	defaultMaxBloomBytes     = 64 << 10 // 64 KiB
)

// Limits bound everything a decoder accepts from the network. A zero (or negative)
// field means "use the default" of DefaultLimits.
type Limits struct {
	MaxMessageBytes   int // whole encoded message; default 1 MiB + 256 KiB
	MaxContentBytes   int // content field; default 1 MiB
	MaxIDBytes        int // message_id, channel_id, sender_id and every HistoryEntry id/sender; default 256
	MaxHintBytes      int // each retrieval_hint; default 512
	MaxCausalHistory  int // entries in causal_history; default 1024 (@waku/sds sends 200 by default)
	MaxRepairRequests int // entries in repair_request; default 64
	MaxBloomBytes     int // bloom_filter field; default 64 KiB
}

// DefaultLimits returns the default decoding limits, generous enough for every message
// a conforming SDS implementation sends.
func DefaultLimits() Limits {
	return Limits{
		MaxMessageBytes:   defaultMaxMessageBytes,
		MaxContentBytes:   defaultMaxContentBytes,
		MaxIDBytes:        defaultMaxIDBytes,
		MaxHintBytes:      defaultMaxHintBytes,
		MaxCausalHistory:  defaultMaxCausalHistory,
		MaxRepairRequests: defaultMaxRepairRequests,
		MaxBloomBytes:     defaultMaxBloomBytes,
	}
}

// withDefaults returns l with every non-positive field replaced by its default.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	orDefault := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	orDefault(&l.MaxMessageBytes, d.MaxMessageBytes)
	orDefault(&l.MaxContentBytes, d.MaxContentBytes)
	orDefault(&l.MaxIDBytes, d.MaxIDBytes)
	orDefault(&l.MaxHintBytes, d.MaxHintBytes)
	orDefault(&l.MaxCausalHistory, d.MaxCausalHistory)
	orDefault(&l.MaxRepairRequests, d.MaxRepairRequests)
	orDefault(&l.MaxBloomBytes, d.MaxBloomBytes)
	return l
}

// Kind of a decoded message, from field presence.
type Kind int

// The three kinds of SDS messages.
const (
	// KindContent is a message with a lamport timestamp and non-empty content.
	KindContent Kind = iota + 1
	// KindSync is a message with a lamport timestamp and empty or absent content.
	KindSync
	// KindEphemeral is a message without a lamport timestamp; it is never logged or repaired.
	KindEphemeral
)

// String returns "content", "sync" or "ephemeral" ("Kind(n)" for any other value).
func (k Kind) String() string {
	switch k {
	case KindContent:
		return "content"
	case KindSync:
		return "sync"
	case KindEphemeral:
		return "ephemeral"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// KindOf classifies m by field presence: lamport set and content non-empty is a content
// message, lamport set and content empty or absent a sync message, lamport unset an
// ephemeral message. A nil message has Kind 0.
func KindOf(m *sdskitv1.SdsMessage) Kind {
	switch {
	case m == nil:
		return 0
	case m.LamportTimestamp == nil:
		return KindEphemeral
	case len(m.Content) > 0:
		return KindContent
	}
	return KindSync
}

// Codec encodes and decodes one wire profile.
type Codec interface {
	// Name returns the wire profile's name, e.g. "spec".
	Name() string
	// Encode serializes m; it fails with a Serialization error on a nil message or an
	// invalid string field.
	Encode(m *sdskitv1.SdsMessage) ([]byte, error)
	// AppendEncode is Encode appending to dst, grown as needed, so that a caller can
	// encode into a buffer it reuses; on error it returns nil.
	AppendEncode(dst []byte, m *sdskitv1.SdsMessage) ([]byte, error)
	// Decode parses untrusted bytes within lim; the result never aliases b.
	Decode(b []byte, lim Limits) (*sdskitv1.SdsMessage, error)
}

// BloomSharingDecoder is implemented by codecs that can decode without copying the
// bloom_filter field.
type BloomSharingDecoder interface {
	// DecodeSharingBloom is Decode except that the result's BloomFilter aliases b
	// (every other field is still copied). It suits a caller that reads the filter only
	// while b is unchanged and never keeps it, such as the core's receive path: the
	// filter is the bulk of every message (~18.7 KB at the default size).
	DecodeSharingBloom(b []byte, lim Limits) (*sdskitv1.SdsMessage, error)
}

// Spec is the codec of the `spec` profile (field numbers of the public SDS spec). Its
// output is byte-identical to deterministic protobuf marshaling of the same message.
var Spec Codec = specCodec{}
