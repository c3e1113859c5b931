package wire

import (
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sdskit/sdskit/core/sdserr"
	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Field numbers of the spec profile (idl/sdskit/v1/wire.proto).
const (
	fieldSenderID      protowire.Number = 1
	fieldMessageID     protowire.Number = 2
	fieldChannelID     protowire.Number = 3
	fieldLamport       protowire.Number = 10
	fieldCausalHistory protowire.Number = 11
	fieldBloomFilter   protowire.Number = 12
	fieldRepairRequest protowire.Number = 13
	fieldContent       protowire.Number = 20

	entryMessageID     protowire.Number = 1
	entryRetrievalHint protowire.Number = 2
	entrySenderID      protowire.Number = 3
)

const (
	opEncode  = "Encode"
	opDecode  = "Decode"
	opExtract = "ExtractChannelID"
)

// specCodec is the stateless codec of the spec profile; it is safe for concurrent use.
type specCodec struct{}

// Name returns "spec".
func (specCodec) Name() string { return "spec" }

// ---------------------------------------------------------------------------------------
// Encoding

// Encode serializes m with proto3 semantics, fields in ascending number order, into a
// single exactly-sized buffer. Limits are not enforced; unknown fields are not emitted.
func (c specCodec) Encode(m *sdskitv1.SdsMessage) ([]byte, error) { return c.AppendEncode(nil, m) }

// AppendEncode is Encode appending to dst.
func (specCodec) AppendEncode(dst []byte, m *sdskitv1.SdsMessage) ([]byte, error) {
	if m == nil {
		return nil, sdserr.New(sdserr.Serialization, opEncode, "nil message")
	}
	if err := checkEncodable(m); err != nil {
		return nil, err
	}
	size := sizeMessage(m)
	return checkSized(dst, appendMessage(grow(dst, size), m), size)
}

// grow returns dst with room for size more bytes: exactly that for a new buffer, a
// sixteenth more for a reused one (dst not nil) that is too small, so that the slightly
// larger messages that follow still fit.
func grow(dst []byte, size int) []byte {
	if cap(dst)-len(dst) >= size {
		return dst
	}
	n := len(dst) + size
	if dst != nil {
		n += size / 16
	}
	return append(make([]byte, 0, n), dst...)
}

// checkSized returns b, dst with an encoding appended, when that encoding has the size
// computed beforehand (the buffer was grown once, for exactly that).
func checkSized(dst, b []byte, size int) ([]byte, error) {
	if len(b)-len(dst) != size { // cannot happen; guards against a size/append mismatch
		return nil, sdserr.New(sdserr.Internal, opEncode, "encoded %d bytes, computed %d", len(b)-len(dst), size)
	}
	return b, nil
}

// checkEncodable reports invalid UTF-8 in any string field and nil history entries, which
// no conforming decoder would accept.
func checkEncodable(m *sdskitv1.SdsMessage) error {
	for _, s := range [...]struct {
		name, v string
	}{{"sender_id", m.SenderId}, {"message_id", m.MessageId}, {"channel_id", m.ChannelId}} {
		if !utf8.ValidString(s.v) {
			return sdserr.New(sdserr.Serialization, opEncode, "%s: invalid UTF-8", s.name)
		}
	}
	if err := checkEncodableEntries("causal_history", m.CausalHistory); err != nil {
		return err
	}
	return checkEncodableEntries("repair_request", m.RepairRequest)
}

func checkEncodableEntries(list string, entries []*sdskitv1.HistoryEntry) error {
	for i, e := range entries {
		switch {
		case e == nil:
			return sdserr.New(sdserr.Serialization, opEncode, "%s[%d]: nil entry", list, i)
		case !utf8.ValidString(e.MessageId):
			return sdserr.New(sdserr.Serialization, opEncode, "%s[%d].message_id: invalid UTF-8", list, i)
		case e.SenderId != nil && !utf8.ValidString(*e.SenderId):
			return sdserr.New(sdserr.Serialization, opEncode, "%s[%d].sender_id: invalid UTF-8", list, i)
		}
	}
	return nil
}

// sizeString is the encoded size of a proto3 string field emitted only when non-empty.
func sizeString(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func sizeEntry(e *sdskitv1.HistoryEntry) int {
	n := sizeString(entryMessageID, e.MessageId)
	if e.RetrievalHint != nil {
		n += protowire.SizeTag(entryRetrievalHint) + protowire.SizeBytes(len(e.RetrievalHint))
	}
	if e.SenderId != nil {
		n += protowire.SizeTag(entrySenderID) + protowire.SizeBytes(len(*e.SenderId))
	}
	return n
}

func sizeMessage(m *sdskitv1.SdsMessage) int {
	n := sizeString(fieldSenderID, m.SenderId) +
		sizeString(fieldMessageID, m.MessageId) +
		sizeString(fieldChannelID, m.ChannelId)
	if m.LamportTimestamp != nil {
		n += protowire.SizeTag(fieldLamport) + protowire.SizeVarint(*m.LamportTimestamp)
	}
	for _, e := range m.CausalHistory {
		n += protowire.SizeTag(fieldCausalHistory) + protowire.SizeBytes(sizeEntry(e))
	}
	if m.BloomFilter != nil {
		n += protowire.SizeTag(fieldBloomFilter) + protowire.SizeBytes(len(m.BloomFilter))
	}
	for _, e := range m.RepairRequest {
		n += protowire.SizeTag(fieldRepairRequest) + protowire.SizeBytes(sizeEntry(e))
	}
	if m.Content != nil {
		n += protowire.SizeTag(fieldContent) + protowire.SizeBytes(len(m.Content))
	}
	return n
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendEntry(b []byte, num protowire.Number, e *sdskitv1.HistoryEntry) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeEntry(e)))
	b = appendString(b, entryMessageID, e.MessageId)
	if e.RetrievalHint != nil {
		b = appendBytes(b, entryRetrievalHint, e.RetrievalHint)
	}
	if e.SenderId != nil {
		b = protowire.AppendTag(b, entrySenderID, protowire.BytesType)
		b = protowire.AppendString(b, *e.SenderId)
	}
	return b
}

func appendMessage(b []byte, m *sdskitv1.SdsMessage) []byte {
	b = appendString(b, fieldSenderID, m.SenderId)
	b = appendString(b, fieldMessageID, m.MessageId)
	b = appendString(b, fieldChannelID, m.ChannelId)
	if m.LamportTimestamp != nil {
		b = protowire.AppendTag(b, fieldLamport, protowire.VarintType)
		b = protowire.AppendVarint(b, *m.LamportTimestamp)
	}
	for _, e := range m.CausalHistory {
		b = appendEntry(b, fieldCausalHistory, e)
	}
	if m.BloomFilter != nil {
		b = appendBytes(b, fieldBloomFilter, m.BloomFilter)
	}
	for _, e := range m.RepairRequest {
		b = appendEntry(b, fieldRepairRequest, e)
	}
	if m.Content != nil {
		b = appendBytes(b, fieldContent, m.Content)
	}
	return b
}

// ---------------------------------------------------------------------------------------
// Field framing

// fieldPath names the fields of one message in error messages; names are formatted only
// when an error occurs, so the success path never allocates for them.
type fieldPath struct {
	list string // "" for the SdsMessage, else "causal_history" or "repair_request"
	idx  int    // index of the entry in list
}

func (p fieldPath) name(num protowire.Number) string {
	if p.list == "" {
		return messageFieldName(num)
	}
	return fmt.Sprintf("%s[%d].%s", p.list, p.idx, entryFieldName(num))
}

// field is one parsed field record.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64 // value of a varint field
	b   []byte // payload of a length-delimited field; aliases the input
}

// consumeField parses the field record at the start of b and returns it with its total length. Groups and fixed-width values are validated and
// skipped. off is b's offset in the message, used in error messages only.
func consumeField(b []byte, off int, p fieldPath) (field, int, *sdserr.Error) {
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
	case protowire.EndGroupType:
		return field{}, 0, deserr("%s at offset %d: end-group marker without a start-group", p.name(num), off)
	case protowire.Fixed32Type, protowire.Fixed64Type, protowire.StartGroupType:
		m = protowire.ConsumeFieldValue(num, typ, b[n:])
	default:
		return field{}, 0, deserr("%s at offset %d: reserved wire type %d", p.name(num), off, typ)
	}
	if m < 0 {
		return field{}, 0, parseErr(protowire.ParseError(m), "%s at offset %d: malformed %s value",
			p.name(num), off, typeName(typ))
	}
	return f, n + m, nil
}

// want checks that a known field has the expected wire type.
func (f *field) want(typ protowire.Type, p fieldPath) *sdserr.Error {
	if f.typ != typ {
		return deserr("%s: wrong wire type %s, want %s", p.name(f.num), typeName(f.typ), typeName(typ))
	}
	return nil
}

func typeName(t protowire.Type) string {
	switch t {
	case protowire.VarintType:
		return "varint"
	case protowire.Fixed32Type:
		return "fixed32"
	case protowire.Fixed64Type:
		return "fixed64"
	case protowire.BytesType:
		return "length-delimited"
	case protowire.StartGroupType:
		return "start-group"
	case protowire.EndGroupType:
		return "end-group"
	}
	return fmt.Sprintf("reserved(%d)", t)
}

func messageFieldName(num protowire.Number) string {
	switch num {
	case fieldSenderID:
		return "sender_id"
	case fieldMessageID:
		return "message_id"
	case fieldChannelID:
		return "channel_id"
	case fieldLamport:
		return "lamport_timestamp"
	case fieldCausalHistory:
		return "causal_history"
	case fieldBloomFilter:
		return "bloom_filter"
	case fieldRepairRequest:
		return "repair_request"
	case fieldContent:
		return "content"
	}
	return fmt.Sprintf("unknown field %d", num)
}

func entryFieldName(num protowire.Number) string {
	switch num {
	case entryMessageID:
		return "message_id"
	case entryRetrievalHint:
		return "retrieval_hint"
	case entrySenderID:
		return "sender_id"
	}
	return fmt.Sprintf("unknown field %d", num)
}

func deserr(format string, args ...any) *sdserr.Error {
	return sdserr.New(sdserr.Deserialization, "", format, args...)
}

func tooLarge(format string, args ...any) *sdserr.Error {
	return sdserr.New(sdserr.MessageTooLarge, "", format, args...)
}

func parseErr(cause error, format string, args ...any) *sdserr.Error {
	e := deserr(format, args...)
	e.Msg += ": " + cause.Error()
	e.Err = cause
	return e
}

// withOp sets the operation of an error created without one.
func withOp(e *sdserr.Error, op string) error {
	if e == nil {
		return nil
	}
	e.Op = op
	return e
}

// sized fills in lim's defaults and rejects b over MaxMessageBytes, before any decoding.
func sized(b []byte, lim Limits) (Limits, *sdserr.Error) {
	lim = lim.withDefaults()
	if len(b) > lim.MaxMessageBytes {
		return lim, tooLarge("message: %d bytes exceeds MaxMessageBytes (%d)", len(b), lim.MaxMessageBytes)
	}
	return lim, nil
}

// checkID validates an id occurrence: at most MaxIDBytes and valid UTF-8.
func checkID(f *field, lim *Limits, p fieldPath) *sdserr.Error {
	if len(f.b) > lim.MaxIDBytes {
		return deserr("%s: %d bytes exceeds MaxIDBytes (%d)", p.name(f.num), len(f.b), lim.MaxIDBytes)
	}
	if !utf8.Valid(f.b) {
		return deserr("%s: invalid UTF-8", p.name(f.num))
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Decoding
//
// Decoding takes two passes over the input. The first validates everything (framing,
// wire types, limits, UTF-8, required ids) without allocating, and counts the history
// entries; the second allocates exactly what the result needs and copies the values, so
// invalid input costs no allocation and the output never aliases the input.

// entryFields are the winning occurrences of one HistoryEntry's fields, aliasing the input.
type entryFields struct {
	messageID, hint, senderID []byte
	hasHint, hasSender        bool
}

// parseEntry parses an embedded HistoryEntry. With validate set it also checks UTF-8 and
// the required message_id; the second decoding pass skips those checks.
func parseEntry(b []byte, lim *Limits, p fieldPath, validate bool) (entryFields, *sdserr.Error) {
	var ef entryFields
	for off := 0; off < len(b); {
		f, n, err := consumeField(b[off:], off, p)
		if err != nil {
			return ef, err
		}
		off += n
		switch f.num {
		case entryMessageID, entrySenderID:
			if err := f.want(protowire.BytesType, p); err != nil {
				return ef, err
			}
			if validate {
				if err := checkID(&f, lim, p); err != nil {
					return ef, err
				}
			}
			if f.num == entryMessageID {
				ef.messageID = f.b
			} else {
				ef.senderID, ef.hasSender = f.b, true
			}
		case entryRetrievalHint:
			if err := f.want(protowire.BytesType, p); err != nil {
				return ef, err
			}
			if len(f.b) > lim.MaxHintBytes {
				return ef, deserr("%s: %d bytes exceeds MaxHintBytes (%d)", p.name(f.num), len(f.b), lim.MaxHintBytes)
			}
			ef.hint, ef.hasHint = f.b, true
		}
	}
	if validate && len(ef.messageID) == 0 {
		return ef, deserr("%s: missing or empty", p.name(entryMessageID))
	}
	return ef, nil
}

// scanResult holds what the first pass found: the winning occurrence of every singular
// field (aliasing the input) and the number of history entries.
type scanResult struct {
	senderID, messageID, channelID []byte
	lamport                        uint64
	bloom, content                 []byte
	hasLamport, hasBloom           bool
	hasContent                     bool
	nCausal, nRepair               int
}

// scanMessage is the first decoding pass: it validates b completely without allocating.
func scanMessage(b []byte, lim *Limits) (scanResult, *sdserr.Error) {
	var s scanResult
	var top fieldPath
	for off := 0; off < len(b); {
		f, n, err := consumeField(b[off:], off, top)
		if err != nil {
			return s, err
		}
		off += n
		switch f.num {
		case fieldSenderID, fieldMessageID, fieldChannelID:
			if err := f.want(protowire.BytesType, top); err != nil {
				return s, err
			}
			if err := checkID(&f, lim, top); err != nil {
				return s, err
			}
			switch f.num {
			case fieldSenderID:
				s.senderID = f.b
			case fieldMessageID:
				s.messageID = f.b
			default:
				s.channelID = f.b
			}
		case fieldLamport:
			if err := f.want(protowire.VarintType, top); err != nil {
				return s, err
			}
			s.lamport, s.hasLamport = f.v, true
		case fieldCausalHistory:
			if err := f.want(protowire.BytesType, top); err != nil {
				return s, err
			}
			if s.nCausal == lim.MaxCausalHistory {
				return s, deserr("causal_history: more than MaxCausalHistory (%d) entries", lim.MaxCausalHistory)
			}
			if _, err := parseEntry(f.b, lim, fieldPath{"causal_history", s.nCausal}, true); err != nil {
				return s, err
			}
			s.nCausal++
		case fieldRepairRequest:
			if err := f.want(protowire.BytesType, top); err != nil {
				return s, err
			}
			if s.nRepair == lim.MaxRepairRequests {
				return s, deserr("repair_request: more than MaxRepairRequests (%d) entries", lim.MaxRepairRequests)
			}
			if _, err := parseEntry(f.b, lim, fieldPath{"repair_request", s.nRepair}, true); err != nil {
				return s, err
			}
			s.nRepair++
		case fieldBloomFilter:
			if err := f.want(protowire.BytesType, top); err != nil {
				return s, err
			}
			if len(f.b) > lim.MaxBloomBytes {
				return s, deserr("bloom_filter: %d bytes exceeds MaxBloomBytes (%d)", len(f.b), lim.MaxBloomBytes)
			}
			s.bloom, s.hasBloom = f.b, true
		case fieldContent:
			if err := f.want(protowire.BytesType, top); err != nil {
				return s, err
			}
			if len(f.b) > lim.MaxContentBytes {
				return s, tooLarge("content: %d bytes exceeds MaxContentBytes (%d)", len(f.b), lim.MaxContentBytes)
			}
			s.content, s.hasContent = f.b, true
		}
	}
	if len(s.messageID) == 0 {
		return s, deserr("message_id: missing or empty")
	}
	if len(s.channelID) == 0 {
		return s, deserr("channel_id: missing or empty")
	}
	return s, nil
}

// cloneBytes copies v into a new slice that is non-nil even when v is empty.
func cloneBytes(v []byte) []byte {
	c := make([]byte, len(v))
	copy(c, v)
	return c
}

// messageAlloc and entryAlloc co-allocate a message with the storage of its optional
// scalar field, saving one allocation per message and per entry.
type messageAlloc struct {
	m       sdskitv1.SdsMessage
	lamport uint64
}

type entryAlloc struct {
	e      sdskitv1.HistoryEntry
	sender string
}

func buildEntry(ef entryFields) *sdskitv1.HistoryEntry {
	a := &entryAlloc{}
	a.e.MessageId = string(ef.messageID)
	if ef.hasHint {
		a.e.RetrievalHint = cloneBytes(ef.hint)
	}
	if ef.hasSender {
		a.sender = string(ef.senderID)
		a.e.SenderId = &a.sender
	}
	return &a.e
}

// Decode parses b, which is validated completely before anything is allocated.
func (specCodec) Decode(b []byte, lim Limits) (*sdskitv1.SdsMessage, error) {
	m, err := decodeSpec(b, lim, false)
	return m, withOp(err, opDecode)
}

// DecodeSharingBloom is Decode with a BloomFilter that aliases b (see BloomSharingDecoder).
func (specCodec) DecodeSharingBloom(b []byte, lim Limits) (*sdskitv1.SdsMessage, error) {
	m, err := decodeSpec(b, lim, true)
	return m, withOp(err, opDecode)
}

func decodeSpec(b []byte, lim Limits, shareBloom bool) (*sdskitv1.SdsMessage, *sdserr.Error) {
	lim, err := sized(b, lim)
	if err != nil {
		return nil, err
	}
	s, err := scanMessage(b, &lim)
	if err != nil {
		return nil, err
	}

	a := &messageAlloc{}
	m := &a.m
	m.SenderId = string(s.senderID)
	m.MessageId = string(s.messageID)
	m.ChannelId = string(s.channelID)
	if s.hasLamport {
		a.lamport = s.lamport
		m.LamportTimestamp = &a.lamport
	}
	switch {
	case s.hasBloom && shareBloom:
		m.BloomFilter = s.bloom[:len(s.bloom):len(s.bloom)] // capped: an append cannot write into b
		if m.BloomFilter == nil {
			m.BloomFilter = []byte{}
		}
	case s.hasBloom:
		m.BloomFilter = cloneBytes(s.bloom)
	}
	if s.hasContent {
		m.Content = cloneBytes(s.content)
	}
	if s.nCausal == 0 && s.nRepair == 0 {
		return m, nil
	}
	if s.nCausal > 0 {
		m.CausalHistory = make([]*sdskitv1.HistoryEntry, 0, s.nCausal)
	}
	if s.nRepair > 0 {
		m.RepairRequest = make([]*sdskitv1.HistoryEntry, 0, s.nRepair)
	}
	// Second pass: the input is known to be valid, so only the history entries are
	// revisited. Errors are still propagated rather than assumed impossible.
	for off := 0; off < len(b); {
		f, n, err := consumeField(b[off:], off, fieldPath{})
		if err != nil {
			return nil, err
		}
		off += n
		switch f.num {
		case fieldCausalHistory:
			ef, err := parseEntry(f.b, &lim, fieldPath{"causal_history", len(m.CausalHistory)}, false)
			if err != nil {
				return nil, err
			}
			m.CausalHistory = append(m.CausalHistory, buildEntry(ef))
		case fieldRepairRequest:
			ef, err := parseEntry(f.b, &lim, fieldPath{"repair_request", len(m.RepairRequest)}, false)
			if err != nil {
				return nil, err
			}
			m.RepairRequest = append(m.RepairRequest, buildEntry(ef))
		}
	}
	return m, nil
}

// ExtractChannelID returns the channel_id of an encoded spec-profile message (the last
// occurrence of field 3) without decoding the rest. It still validates the framing of
// every field, the wire types of known fields, MaxMessageBytes and the channel id itself
// (non-empty, at most MaxIDBytes, valid UTF-8).
func ExtractChannelID(b []byte, lim Limits) (string, error) {
	id, err := extractChannelID(b, lim)
	return id, withOp(err, opExtract)
}

func extractChannelID(b []byte, lim Limits) (string, *sdserr.Error) {
	lim, err := sized(b, lim)
	if err != nil {
		return "", err
	}
	var channelID []byte
	var top fieldPath
	for off := 0; off < len(b); {
		f, n, err := consumeField(b[off:], off, top)
		if err != nil {
			return "", err
		}
		off += n
		switch f.num {
		case fieldChannelID:
			if err := f.want(protowire.BytesType, top); err != nil {
				return "", err
			}
			if err := checkID(&f, &lim, top); err != nil {
				return "", err
			}
			channelID = f.b
		case fieldLamport:
			if err := f.want(protowire.VarintType, top); err != nil {
				return "", err
			}
		case fieldSenderID, fieldMessageID, fieldCausalHistory, fieldBloomFilter, fieldRepairRequest, fieldContent:
			if err := f.want(protowire.BytesType, top); err != nil {
				return "", err
			}
		}
	}
	if len(channelID) == 0 {
		return "", deserr("channel_id: missing or empty")
	}
	return string(channelID), nil
}
