package wire

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sdskit/sdskit/core/sdserr"
	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// raw builds wire bytes field by field, for inputs the encoder would never produce.
type raw []byte

func (r raw) str(num protowire.Number, s string) raw {
	r = protowire.AppendTag(r, num, protowire.BytesType)
	return protowire.AppendString(r, s)
}

func (r raw) bytes(num protowire.Number, v []byte) raw {
	r = protowire.AppendTag(r, num, protowire.BytesType)
	return protowire.AppendBytes(r, v)
}

func (r raw) varint(num protowire.Number, v uint64) raw {
	r = protowire.AppendTag(r, num, protowire.VarintType)
	return protowire.AppendVarint(r, v)
}

func (r raw) fixed32(num protowire.Number, v uint32) raw {
	r = protowire.AppendTag(r, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(r, v)
}

func (r raw) fixed64(num protowire.Number, v uint64) raw {
	r = protowire.AppendTag(r, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(r, v)
}

func (r raw) group(num protowire.Number, inner raw) raw {
	r = protowire.AppendTag(r, num, protowire.StartGroupType)
	r = append(r, inner...)
	return protowire.AppendTag(r, num, protowire.EndGroupType)
}

// tag appends a bare tag (for truncated or malformed records).
func (r raw) tag(num protowire.Number, typ protowire.Type) raw {
	return protowire.AppendTag(r, num, typ)
}

// cat appends other wire bytes.
func (r raw) cat(other []byte) raw { return append(r, other...) }

// base is the smallest valid message: message_id "m", channel_id "c".
func base() raw { return raw(nil).str(2, "m").str(3, "c") }

// entry is an embedded HistoryEntry with the given message id.
func entry(id string) raw { return raw(nil).str(1, id) }

func ptr[T any](v T) *T { return &v }

func mustDecode(t *testing.T, b []byte, lim Limits) *sdskitv1.SdsMessage {
	t.Helper()
	m, err := Spec.Decode(b, lim)
	if err != nil {
		t.Fatalf("Decode: unexpected error: %v", err)
	}
	return m
}

func mustEncode(t testing.TB, m *sdskitv1.SdsMessage) []byte {
	t.Helper()
	b, err := Spec.Encode(m)
	if err != nil {
		t.Fatalf("Encode: unexpected error: %v", err)
	}
	return b
}

// checkErr asserts that err is an *sdserr.Error with the given op and code whose message
// contains every fragment.
func checkErr(t *testing.T, err error, op string, code sdserr.Code, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s error, got nil", code)
	}
	var e *sdserr.Error
	if !errors.As(err, &e) {
		t.Fatalf("want *sdserr.Error, got %T: %v", err, err)
	}
	if e.Code != code || e.Op != op {
		t.Fatalf("want op %q code %s, got op %q code %s (%v)", op, code, e.Op, e.Code, err)
	}
	if !errors.Is(err, sdserr.Is(code)) {
		t.Fatalf("errors.Is(err, %s) is false for %v", code, err)
	}
	for _, f := range fragments {
		if !strings.Contains(e.Msg, f) {
			t.Fatalf("error %q does not mention %q", e.Msg, f)
		}
	}
}

var deterministic = proto.MarshalOptions{Deterministic: true}

// runes mixes ASCII with 2-, 3- and 4-byte UTF-8 sequences.
var runes = []rune("abcxyz019-_/ éü日本語🙂𝄞")

func randString(r *rand.Rand, minLen, maxLen int) string {
	n := minLen + r.IntN(maxLen-minLen+1)
	var sb strings.Builder
	for range n {
		sb.WriteRune(runes[r.IntN(len(runes))])
	}
	return sb.String()
}

// randBytes returns nil, an empty slice or random bytes, sometimes long enough to need a
// multi-byte length prefix.
func randBytes(r *rand.Rand, maxLen int) []byte {
	switch r.IntN(6) {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		maxLen = min(maxLen, 300) + 1
	default:
		maxLen = min(maxLen, 40) + 1
	}
	b := make([]byte, r.IntN(maxLen))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randEntry(r *rand.Rand, valid bool) *sdskitv1.HistoryEntry {
	minLen := 0
	if valid {
		minLen = 1
	}
	e := &sdskitv1.HistoryEntry{MessageId: randString(r, minLen, 24)}
	if r.IntN(3) > 0 {
		e.RetrievalHint = randBytes(r, 64)
	}
	switch r.IntN(3) {
	case 0:
		e.SenderId = ptr("")
	case 1:
		e.SenderId = ptr(randString(r, 1, 16))
	}
	return e
}

// randMessage returns a random message; with valid set it satisfies every default limit
// and has the required ids, so Decode must accept its encoding.
func randMessage(r *rand.Rand, valid bool) *sdskitv1.SdsMessage {
	minLen := 0
	if valid {
		minLen = 1
	}
	m := &sdskitv1.SdsMessage{
		SenderId:  randString(r, 0, 20),
		MessageId: randString(r, minLen, 40),
		ChannelId: randString(r, minLen, 20),
	}
	switch r.IntN(4) {
	case 0:
	case 1:
		m.LamportTimestamp = ptr(uint64(0))
	default:
		m.LamportTimestamp = ptr(r.Uint64() >> r.IntN(64))
	}
	for range r.IntN(6) {
		m.CausalHistory = append(m.CausalHistory, randEntry(r, valid))
	}
	if r.IntN(3) > 0 {
		m.BloomFilter = randBytes(r, 1<<16)
	}
	if r.IntN(10) == 0 {
		m.BloomFilter = make([]byte, 18752)
	}
	for range r.IntN(3) {
		m.RepairRequest = append(m.RepairRequest, randEntry(r, valid))
	}
	if r.IntN(4) > 0 {
		m.Content = randBytes(r, 1<<20)
	}
	return m
}

// stripUnknown removes the unknown fields proto.Unmarshal retains, which this codec drops.
func stripUnknown(m *sdskitv1.SdsMessage) {
	m.ProtoReflect().SetUnknown(nil)
	for _, e := range m.CausalHistory {
		e.ProtoReflect().SetUnknown(nil)
	}
	for _, e := range m.RepairRequest {
		e.ProtoReflect().SetUnknown(nil)
	}
}

// hasUnknown reports whether proto.Unmarshal kept unknown fields anywhere in m.
func hasUnknown(m *sdskitv1.SdsMessage) bool {
	if len(m.ProtoReflect().GetUnknown()) > 0 {
		return true
	}
	for _, list := range [][]*sdskitv1.HistoryEntry{m.CausalHistory, m.RepairRequest} {
		for _, e := range list {
			if len(e.ProtoReflect().GetUnknown()) > 0 {
				return true
			}
		}
	}
	return false
}

// requiredIDsPresent reports whether m has every id Decode requires.
func requiredIDsPresent(m *sdskitv1.SdsMessage) bool {
	if m.MessageId == "" || m.ChannelId == "" {
		return false
	}
	for _, list := range [][]*sdskitv1.HistoryEntry{m.CausalHistory, m.RepairRequest} {
		for _, e := range list {
			if e.MessageId == "" {
				return false
			}
		}
	}
	return true
}
