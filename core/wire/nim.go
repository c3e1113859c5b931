package wire

import (
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sdskit/sdskit/core/sdserr"
	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Field numbers of the nim profile (nim-sds sds/protobuf.nim). HistoryEntry uses the
// same numbers as the spec profile.
const (
	nimMessageID     protowire.Number = 1
	nimLamport       protowire.Number = 2
	nimCausalHistory protowire.Number = 3
	nimChannelID     protowire.Number = 4
	nimContent       protowire.Number = 5
	nimBloomFilter   protowire.Number = 6
	nimSenderID      protowire.Number = 7
	nimRepairRequest protowire.Number = 13

	nimBloomBits      protowire.Number = 1
	nimBloomCapacity  protowire.Number = 2
	nimBloomErrorRate protowire.Number = 3
	nimBloomK         protowire.Number = 4
	nimBloomM         protowire.Number = 5
)

// Nim is the codec of the `nim` profile: nim-sds's field numbers, with message_id,
// lamport_timestamp, channel_id, content and bloom_filter always emitted (nim-sds
// rejects a message without fields 1, 2, 4 or 5). Decoding follows nim-sds's
// minprotobuf rules (last occurrence wins, an occurrence of a known field with another
// wire type is skipped, groups are rejected) under Limits.
var Nim Codec = nimCodec{}

// nimCodec is the stateless codec of the nim profile; it is safe for concurrent use.
type nimCodec struct{}

// Name returns "nim".
func (nimCodec) Name() string { return "nim" }

// Encode serializes m in nim-sds's field order (1, 2, 3…, 4, 5, 6, 7, 13…). A message
// without a Lamport timestamp (ephemeral) cannot be expressed: nim-sds requires field 2.
func (c nimCodec) Encode(m *sdskitv1.SdsMessage) ([]byte, error) { return c.AppendEncode(nil, m) }

// AppendEncode is Encode appending to dst.
func (nimCodec) AppendEncode(dst []byte, m *sdskitv1.SdsMessage) ([]byte, error) {
	if m == nil {
		return nil, sdserr.New(sdserr.Serialization, opEncode, "nil message")
	}
	if m.LamportTimestamp == nil {
		return nil, sdserr.New(sdserr.Serialization, opEncode, "the nim profile has no ephemeral messages (lamport_timestamp is required)")
	}
	if err := checkEncodable(m); err != nil {
		return nil, err
	}
	size := nimSizeMessage(m)
	return checkSized(dst, nimAppendMessage(grow(dst, size), m), size)
}

func nimSizeBytes(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

// nimSizeEntry is the size of an embedded HistoryEntry: message_id always, hint and
// sender only when non-empty (as nim-sds writes them).
func nimSizeEntry(e *sdskitv1.HistoryEntry) int {
	n := nimSizeBytes(entryMessageID, len(e.MessageId))
	if len(e.RetrievalHint) > 0 {
		n += nimSizeBytes(entryRetrievalHint, len(e.RetrievalHint))
	}
	if s := e.GetSenderId(); s != "" {
		n += nimSizeBytes(entrySenderID, len(s))
	}
	return n
}

func nimSizeMessage(m *sdskitv1.SdsMessage) int {
	n := nimSizeBytes(nimMessageID, len(m.MessageId)) +
		protowire.SizeTag(nimLamport) + protowire.SizeVarint(*m.LamportTimestamp) +
		nimSizeBytes(nimChannelID, len(m.ChannelId)) +
		nimSizeBytes(nimContent, len(m.Content)) +
		nimSizeBytes(nimBloomFilter, len(m.BloomFilter))
	for _, e := range m.CausalHistory {
		n += nimSizeBytes(nimCausalHistory, nimSizeEntry(e))
	}
	if m.SenderId != "" {
		n += nimSizeBytes(nimSenderID, len(m.SenderId))
	}
	for _, e := range m.RepairRequest {
		n += nimSizeBytes(nimRepairRequest, nimSizeEntry(e))
	}
	return n
}

func nimAppendEntry(b []byte, num protowire.Number, e *sdskitv1.HistoryEntry) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(nimSizeEntry(e)))
	b = protowire.AppendTag(b, entryMessageID, protowire.BytesType)
	b = protowire.AppendString(b, e.MessageId)
	if len(e.RetrievalHint) > 0 {
		b = appendBytes(b, entryRetrievalHint, e.RetrievalHint)
	}
	if s := e.GetSenderId(); s != "" {
		b = protowire.AppendTag(b, entrySenderID, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	return b
}

func nimAppendMessage(b []byte, m *sdskitv1.SdsMessage) []byte {
	b = protowire.AppendTag(b, nimMessageID, protowire.BytesType)
	b = protowire.AppendString(b, m.MessageId)
	b = protowire.AppendTag(b, nimLamport, protowire.VarintType)
	b = protowire.AppendVarint(b, *m.LamportTimestamp)
	for _, e := range m.CausalHistory {
		b = nimAppendEntry(b, nimCausalHistory, e)
	}
	b = protowire.AppendTag(b, nimChannelID, protowire.BytesType)
	b = protowire.AppendString(b, m.ChannelId)
	b = appendBytes(b, nimContent, m.Content)
	b = appendBytes(b, nimBloomFilter, m.BloomFilter)
	if m.SenderId != "" {
		b = protowire.AppendTag(b, nimSenderID, protowire.BytesType)
		b = protowire.AppendString(b, m.SenderId)
	}
	for _, e := range m.RepairRequest {
		b = nimAppendEntry(b, nimRepairRequest, e)
	}
	return b
}

// ---------------------------------------------------------------------------------------
// Decoding

// nimField parses the field record at the start of b like minprotobuf: wire types 0, 1,
// 2 and 5 are accepted, groups and reserved wire types fail the whole message.
func nimField(b []byte, off int, name func(protowire.Number) string) (field, int, *sdserr.Error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return field{}, 0, parseErr(protowire.ParseError(n), "field tag at offset %d", off)
	}
	if num > protowire.MaxValidNumber {
		return field{}, 0, deserr("field tag at offset %d: field number %d out of range", off, num)
	}
	f := field{num: num, typ: typ}
	var m int
	switch typ {
	case protowire.VarintType:
		f.v, m = protowire.ConsumeVarint(b[n:])
	case protowire.BytesType:
		f.b, m = protowire.ConsumeBytes(b[n:])
	case protowire.Fixed32Type, protowire.Fixed64Type:
		m = protowire.ConsumeFieldValue(num, typ, b[n:])
	default:
		return field{}, 0, deserr("%s at offset %d: unsupported wire type %s", name(num), off, typeName(typ))
	}
	if m < 0 {
		return field{}, 0, parseErr(protowire.ParseError(m), "%s at offset %d: malformed %s value",
			name(num), off, typeName(typ))
	}
	return f, n + m, nil
}

func nimMessageFieldName(num protowire.Number) string {
	switch num {
	case nimMessageID:
		return "message_id"
	case nimLamport:
		return "lamport_timestamp"
	case nimCausalHistory:
		return "causal_history"
	case nimChannelID:
		return "channel_id"
	case nimContent:
		return "content"
	case nimBloomFilter:
		return "bloom_filter"
	case nimSenderID:
		return "sender_id"
	case nimRepairRequest:
		return "repair_request"
	}
	return "unknown field " + strconv.Itoa(int(num))
}

// checkNimID validates an id: at most MaxIDBytes and valid UTF-8 (nim-sds ids are
// bytes; ours are strings that must survive protobuf persistence).
func checkNimID(what string, v []byte, lim *Limits) *sdserr.Error {
	if len(v) > lim.MaxIDBytes {
		return deserr("%s: %d bytes exceeds MaxIDBytes (%d)", what, len(v), lim.MaxIDBytes)
	}
	if !utf8.Valid(v) {
		return deserr("%s: invalid UTF-8", what)
	}
	return nil
}

// nimParseEntry parses an embedded HistoryEntry; message_id is required and non-empty.
func nimParseEntry(b []byte, lim *Limits, list string, idx int, validate bool) (entryFields, *sdserr.Error) {
	var ef entryFields
	var hasID bool
	name := func(num protowire.Number) string {
		return list + "[" + strconv.Itoa(idx) + "]." + entryFieldName(num)
	}
	for off := 0; off < len(b); {
		f, n, err := nimField(b[off:], off, name)
		if err != nil {
			return ef, err
		}
		off += n
		if f.typ != protowire.BytesType {
			continue // minprotobuf skips an occurrence of another wire type
		}
		switch f.num {
		case entryMessageID:
			ef.messageID, hasID = f.b, true
		case entryRetrievalHint:
			ef.hint, ef.hasHint = f.b, true
		case entrySenderID:
			ef.senderID, ef.hasSender = f.b, true
		}
	}
	if !validate {
		return ef, nil
	}
	if !hasID || len(ef.messageID) == 0 {
		return ef, deserr("%s: missing or empty", name(entryMessageID))
	}
	if err := checkNimID(name(entryMessageID), ef.messageID, lim); err != nil {
		return ef, err
	}
	if ef.hasSender {
		if err := checkNimID(name(entrySenderID), ef.senderID, lim); err != nil {
			return ef, err
		}
	}
	if len(ef.hint) > lim.MaxHintBytes {
		return ef, deserr("%s: %d bytes exceeds MaxHintBytes (%d)", name(entryRetrievalHint), len(ef.hint), lim.MaxHintBytes)
	}
	// nim-sds writes hint and sender only when non-empty: empty ones mean "absent".
	ef.hasHint = ef.hasHint && len(ef.hint) > 0
	ef.hasSender = ef.hasSender && len(ef.senderID) > 0
	return ef, nil
}

// nimScan is the first decoding pass: every field validated, nothing allocated. The
// winning (last) occurrences of singular fields are kept; limits and checks apply to
// the winners, so a skipped or overridden occurrence is only framed.
func nimScan(b []byte, lim *Limits) (scanResult, *sdserr.Error) {
	var s scanResult
	var hasID, hasChannel bool
	for off := 0; off < len(b); {
		f, n, err := nimField(b[off:], off, nimMessageFieldName)
		if err != nil {
			return s, err
		}
		off += n
		if f.num == nimLamport {
			if f.typ == protowire.VarintType {
				s.lamport, s.hasLamport = f.v, true
			}
			continue
		}
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case nimMessageID:
			s.messageID, hasID = f.b, true
		case nimChannelID:
			s.channelID, hasChannel = f.b, true
		case nimSenderID:
			s.senderID = f.b
		case nimContent:
			s.content, s.hasContent = f.b, true
		case nimBloomFilter:
			s.bloom, s.hasBloom = f.b, true
		case nimCausalHistory:
			if s.nCausal == lim.MaxCausalHistory {
				return s, deserr("causal_history: more than MaxCausalHistory (%d) entries", lim.MaxCausalHistory)
			}
			if _, err := nimParseEntry(f.b, lim, "causal_history", s.nCausal, true); err != nil {
				return s, err
			}
			s.nCausal++
		case nimRepairRequest:
			if s.nRepair == lim.MaxRepairRequests {
				return s, deserr("repair_request: more than MaxRepairRequests (%d) entries", lim.MaxRepairRequests)
			}
			if _, err := nimParseEntry(f.b, lim, "repair_request", s.nRepair, true); err != nil {
				return s, err
			}
			s.nRepair++
		}
	}
	switch {
	case !hasID || len(s.messageID) == 0:
		return s, deserr("message_id: missing or empty")
	case !s.hasLamport:
		return s, deserr("lamport_timestamp: missing (required by the nim profile)")
	case !hasChannel || len(s.channelID) == 0:
		return s, deserr("channel_id: missing or empty")
	case !s.hasContent:
		return s, deserr("content: missing (required by the nim profile)")
	}
	for _, id := range [...]struct {
		what string
		v    []byte
	}{{"message_id", s.messageID}, {"channel_id", s.channelID}, {"sender_id", s.senderID}} {
		if err := checkNimID(id.what, id.v, lim); err != nil {
			return s, err
		}
	}
	if len(s.content) > lim.MaxContentBytes {
		return s, tooLarge("content: %d bytes exceeds MaxContentBytes (%d)", len(s.content), lim.MaxContentBytes)
	}
	if len(s.bloom) > lim.MaxBloomBytes {
		// Dropped, not fatal: a nim-sds peer configured with a larger capacity sends a
		// larger filter (2.25 bytes per id after its first roll), and a bloom only adds
		// acknowledgements, so receiving stays liberal and the message is not lost.
		s.bloom, s.hasBloom = nil, false
	}
	return s, nil
}

// Decode parses b, which is validated completely before anything is allocated. The
// result always has a Lamport timestamp and a non-nil Content (an empty content makes it
// a sync message); BloomFilter is nil only when field 6 is absent or longer than
// MaxBloomBytes (an oversized filter is ignored, the message is not rejected).
func (nimCodec) Decode(b []byte, lim Limits) (*sdskitv1.SdsMessage, error) {
	m, err := decodeNim(b, lim, false)
	return m, withOp(err, opDecode)
}

// DecodeSharingBloom is Decode with a BloomFilter that aliases b (see BloomSharingDecoder).
func (nimCodec) DecodeSharingBloom(b []byte, lim Limits) (*sdskitv1.SdsMessage, error) {
	m, err := decodeNim(b, lim, true)
	return m, withOp(err, opDecode)
}

func decodeNim(b []byte, lim Limits, shareBloom bool) (*sdskitv1.SdsMessage, *sdserr.Error) {
	lim, err := sized(b, lim)
	if err != nil {
		return nil, err
	}
	s, err := nimScan(b, &lim)
	if err != nil {
		return nil, err
	}
	a := &messageAlloc{lamport: s.lamport}
	m := &a.m
	m.SenderId = string(s.senderID)
	m.MessageId = string(s.messageID)
	m.ChannelId = string(s.channelID)
	m.LamportTimestamp = &a.lamport
	m.Content = cloneBytes(s.content)
	switch {
	case s.hasBloom && shareBloom:
		m.BloomFilter = s.bloom[:len(s.bloom):len(s.bloom)] // capped: an append cannot write into b
		if m.BloomFilter == nil {
			m.BloomFilter = []byte{}
		}
	case s.hasBloom:
		m.BloomFilter = cloneBytes(s.bloom)
	}
	if s.nCausal > 0 {
		m.CausalHistory = make([]*sdskitv1.HistoryEntry, 0, s.nCausal)
	}
	if s.nRepair > 0 {
		m.RepairRequest = make([]*sdskitv1.HistoryEntry, 0, s.nRepair)
	}
	if s.nCausal == 0 && s.nRepair == 0 {
		return m, nil
	}
	for off := 0; off < len(b); {
		f, n, err := nimField(b[off:], off, nimMessageFieldName)
		if err != nil {
			return nil, err
		}
		off += n
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case nimCausalHistory:
			ef, err := nimParseEntry(f.b, &lim, "causal_history", len(m.CausalHistory), true)
			if err != nil {
				return nil, err
			}
			m.CausalHistory = append(m.CausalHistory, buildEntry(ef))
		case nimRepairRequest:
			ef, err := nimParseEntry(f.b, &lim, "repair_request", len(m.RepairRequest), true)
			if err != nil {
				return nil, err
			}
			m.RepairRequest = append(m.RepairRequest, buildEntry(ef))
		}
	}
	return m, nil
}

// ---------------------------------------------------------------------------------------
// The nested bloom-filter message of field 6

// NimBloom is the nim profile's bloom_filter payload, a nested message: 1 bits (64-bit
// words, 8 little-endian bytes each), 2 capacity, 3 error rate × 10⁶ (truncated), 4 the
// number of hashes k, 5 the number of bits m. All five fields are always emitted and
// required on decode, as in nim-sds.
type NimBloom struct {
	Bits            []byte // the words' bytes; aliases the input after DecodeNimBloom
	Capacity        uint64
	ErrorRateMicros uint64
	K, M            uint64
}

// AppendNimBloomBitsHeader appends the tag and length of field 1 for bitsLen bytes of
// words; the caller appends the words and then AppendNimBloomParams, so the words are
// written once, straight into the output.
func AppendNimBloomBitsHeader(dst []byte, bitsLen int) []byte {
	dst = protowire.AppendTag(dst, nimBloomBits, protowire.BytesType)
	return protowire.AppendVarint(dst, uint64(bitsLen))
}

// NimBloomBitsHeaderLen is the length of what AppendNimBloomBitsHeader appends.
func NimBloomBitsHeaderLen(bitsLen int) int {
	return protowire.SizeTag(nimBloomBits) + protowire.SizeVarint(uint64(bitsLen))
}

// AppendNimBloomParams appends fields 2 to 5 of the nested bloom message.
func AppendNimBloomParams(dst []byte, capacity, errorRateMicros, k, m uint64) []byte {
	for _, f := range [...]struct {
		num protowire.Number
		v   uint64
	}{{nimBloomCapacity, capacity}, {nimBloomErrorRate, errorRateMicros}, {nimBloomK, k}, {nimBloomM, m}} {
		dst = protowire.AppendTag(dst, f.num, protowire.VarintType)
		dst = protowire.AppendVarint(dst, f.v)
	}
	return dst
}

// Append appends the encoded nested message.
func (nb NimBloom) Append(dst []byte) []byte {
	dst = AppendNimBloomBitsHeader(dst, len(nb.Bits))
	dst = append(dst, nb.Bits...)
	return AppendNimBloomParams(dst, nb.Capacity, nb.ErrorRateMicros, nb.K, nb.M)
}

// DecodeNimBloom parses a nim bloom_filter payload with minprotobuf's rules (last
// occurrence wins, other wire types skipped); empty input, malformed framing or a
// missing field is a Deserialization error. The parameters are not range-checked here:
// that is the filter's job. Bits aliases b.
func DecodeNimBloom(b []byte) (NimBloom, error) {
	nb, err := decodeNimBloom(b)
	if err != nil {
		return NimBloom{}, withOp(err, "DecodeNimBloom")
	}
	return nb, nil
}

func decodeNimBloom(b []byte) (NimBloom, *sdserr.Error) {
	var nb NimBloom
	if len(b) == 0 {
		return nb, deserr("bloom_filter: empty")
	}
	var seen [6]bool
	name := func(num protowire.Number) string {
		switch num {
		case nimBloomBits:
			return "bloom_filter.bits"
		case nimBloomCapacity:
			return "bloom_filter.capacity"
		case nimBloomErrorRate:
			return "bloom_filter.error_rate"
		case nimBloomK:
			return "bloom_filter.k"
		case nimBloomM:
			return "bloom_filter.m"
		}
		return "bloom_filter.unknown field " + strconv.Itoa(int(num))
	}
	for off := 0; off < len(b); {
		f, n, err := nimField(b[off:], off, name)
		if err != nil {
			return nb, err
		}
		off += n
		switch {
		case f.num == nimBloomBits && f.typ == protowire.BytesType:
			nb.Bits = f.b
		case f.num >= nimBloomCapacity && f.num <= nimBloomM && f.typ == protowire.VarintType:
			*[...]*uint64{&nb.Capacity, &nb.ErrorRateMicros, &nb.K, &nb.M}[f.num-nimBloomCapacity] = f.v
		default:
			continue
		}
		seen[f.num] = true
	}
	for num := nimBloomBits; num <= nimBloomM; num++ {
		if !seen[num] {
			return NimBloom{}, deserr("%s: missing", name(num))
		}
	}
	if nb.Bits == nil {
		nb.Bits = []byte{}
	}
	return nb, nil
}
