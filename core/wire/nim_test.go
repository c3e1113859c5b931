package wire

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sdskit/sdskit/core/sdserr"
	sdskitv1 "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// The golden encodings of nim-sds-behaviour.md §3.7, produced from nim-sds's encoder.
var nimGolden = []struct {
	name string
	msg  *sdskitv1.SdsMessage
	hex  string
}{
	{
		name: "empty content and bloom are emitted",
		msg:  &sdskitv1.SdsMessage{MessageId: "m1", LamportTimestamp: ptr(uint64(1)), ChannelId: "ch"},
		hex:  "0a026d311001220263682a003200",
	},
	{
		name: "causal history, sender and repair request",
		msg: &sdskitv1.SdsMessage{
			MessageId: "m2", LamportTimestamp: ptr(uint64(5)), ChannelId: "ch", Content: []byte{1, 2, 3},
			CausalHistory: []*sdskitv1.HistoryEntry{{MessageId: "m1", SenderId: ptr("alice")}},
			SenderId:      "bob",
			RepairRequest: []*sdskitv1.HistoryEntry{{MessageId: "m0", RetrievalHint: []byte{0x09}, SenderId: ptr("carol")}},
		},
		hex: "0a026d3210051a0b0a026d311a05616c696365220263682a0301020332003a03626f626a0e0a026d301201091a056361726f6c",
	},
}

func TestNimGoldenEncodings(t *testing.T) {
	for _, g := range nimGolden {
		t.Run(g.name, func(t *testing.T) {
			b, err := Nim.Encode(g.msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(b); got != g.hex {
				t.Fatalf("Encode\n got %s\nwant %s", got, g.hex)
			}
			want, _ := hex.DecodeString(g.hex)
			m, err := Nim.Decode(want, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(m, nimNormal(g.msg)) {
				t.Fatalf("Decode\n got %v\nwant %v", m, nimNormal(g.msg))
			}
		})
	}
}

// §3.7: nim-sds casts its int64 Lamport clock to uint64, so −1 is a 10-byte varint.
func TestNimGoldenNegativeLamport(t *testing.T) {
	minus1 := uint64(1<<64 - 1)
	b, err := Nim.Encode(&sdskitv1.SdsMessage{MessageId: "m", LamportTimestamp: &minus1, ChannelId: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hex.EncodeToString(b), "10ffffffffffffffffff01") {
		t.Fatalf("lamport −1 not encoded as 10 ff…ff 01: %x", b)
	}
	m, err := Nim.Decode(b, Limits{})
	if err != nil || m.GetLamportTimestamp() != minus1 {
		t.Fatalf("Decode: %v, %v", m, err)
	}
}

// nimNormal is m as the nim codec decodes it: content and bloom always present, empty
// hints and senders of history entries absent (nim-sds does not write them).
func nimNormal(m *sdskitv1.SdsMessage) *sdskitv1.SdsMessage {
	n := proto.Clone(m).(*sdskitv1.SdsMessage)
	if n.Content == nil {
		n.Content = []byte{}
	}
	if n.BloomFilter == nil {
		n.BloomFilter = []byte{}
	}
	for _, e := range append(append([]*sdskitv1.HistoryEntry(nil), n.CausalHistory...), n.RepairRequest...) {
		if len(e.RetrievalHint) == 0 {
			e.RetrievalHint = nil
		}
		if e.GetSenderId() == "" {
			e.SenderId = nil
		}
	}
	return n
}

func TestNimEncodeRejectsEphemeralAndNil(t *testing.T) {
	_, err := Nim.Encode(&sdskitv1.SdsMessage{MessageId: "m", ChannelId: "c", Content: []byte("x")})
	checkErr(t, err, opEncode, sdserr.Serialization, "ephemeral")
	_, err = Nim.Encode(nil)
	checkErr(t, err, opEncode, sdserr.Serialization, "nil")
	_, err = Nim.Encode(&sdskitv1.SdsMessage{MessageId: "m\xff", ChannelId: "c", LamportTimestamp: ptr(uint64(1))})
	checkErr(t, err, opEncode, sdserr.Serialization, "UTF-8")
}

// nimBase is a minimal valid nim message: ids, lamport and content.
func nimBase() raw { return raw(nil).str(1, "m").varint(2, 7).str(4, "c").bytes(5, nil) }

func TestNimDecodeRules(t *testing.T) {
	t.Run("required fields", func(t *testing.T) {
		for _, c := range []struct {
			name string
			b    raw
			frag string
		}{
			{"no message_id", raw(nil).varint(2, 7).str(4, "c").bytes(5, nil), "message_id"},
			{"empty message_id", raw(nil).str(1, "").varint(2, 7).str(4, "c").bytes(5, nil), "message_id"},
			{"no lamport", raw(nil).str(1, "m").str(4, "c").bytes(5, nil), "lamport_timestamp"},
			{"lamport as bytes only", raw(nil).str(1, "m").bytes(2, []byte{7}).str(4, "c").bytes(5, nil), "lamport_timestamp"},
			{"no channel_id", raw(nil).str(1, "m").varint(2, 7).bytes(5, nil), "channel_id"},
			{"no content", raw(nil).str(1, "m").varint(2, 7).str(4, "c"), "content"},
			{"content as varint only", raw(nil).str(1, "m").varint(2, 7).str(4, "c").varint(5, 1), "content"},
			{"entry without id", nimBase().bytes(3, raw(nil).str(3, "s")), "causal_history[0].message_id"},
			{"repair entry with empty id", nimBase().bytes(13, entry("")), "repair_request[0].message_id"},
			{"group", nimBase().group(9, nil), "wire type"},
			{"end group", nimBase().tag(9, protowire.EndGroupType), "wire type"},
			{"truncated", nimBase()[:len(nimBase())-3], "offset"},
			{"invalid UTF-8 id", raw(nil).str(1, "m\xff").varint(2, 7).str(4, "c").bytes(5, nil), "UTF-8"},
		} {
			_, err := Nim.Decode(c.b, Limits{})
			checkErr(t, err, opDecode, sdserr.Deserialization, c.frag)
		}
	})
	t.Run("minprotobuf rules", func(t *testing.T) {
		// Last occurrence wins; occurrences of known fields with another wire type and
		// unknown fields (fixed32/64 too) are skipped.
		b := raw(nil).varint(1, 3).str(1, "old").str(1, "m").bytes(2, []byte("x")).varint(2, 7).varint(2, 9).
			str(4, "c").fixed32(8, 1).fixed64(12, 2).bytes(5, []byte("a")).bytes(5, []byte("z")).varint(6, 1).
			bytes(3, entry("h1")).varint(3, 5).str(7, "s").bytes(99, []byte("?"))
		m, err := Nim.Decode(b, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		want := &sdskitv1.SdsMessage{MessageId: "m", LamportTimestamp: ptr(uint64(9)), ChannelId: "c", Content: []byte("z"),
			SenderId: "s", CausalHistory: []*sdskitv1.HistoryEntry{{MessageId: "h1"}}}
		if !proto.Equal(m, want) {
			t.Fatalf("got %v\nwant %v", m, want)
		}
	})
	t.Run("limits", func(t *testing.T) {
		lim := Limits{MaxMessageBytes: 200, MaxContentBytes: 4, MaxIDBytes: 3, MaxHintBytes: 2, MaxCausalHistory: 1, MaxRepairRequests: 1, MaxBloomBytes: 5}
		for _, c := range []struct {
			b    raw
			code sdserr.Code
			frag string
		}{
			{nimBase().bytes(5, []byte("12345")), sdserr.MessageTooLarge, "MaxContentBytes"},
			{nimBase().str(1, "long"), sdserr.Deserialization, "MaxIDBytes"},
			{nimBase().str(7, "long"), sdserr.Deserialization, "MaxIDBytes"},
			{nimBase().bytes(3, entry("a").bytes(2, []byte("abc"))), sdserr.Deserialization, "MaxHintBytes"},
			{nimBase().bytes(3, entry("a")).bytes(3, entry("b")), sdserr.Deserialization, "MaxCausalHistory"},
			{nimBase().bytes(13, entry("a")).bytes(13, entry("b")), sdserr.Deserialization, "MaxRepairRequests"},
			{nimBase().bytes(99, make([]byte, 200)), sdserr.MessageTooLarge, "MaxMessageBytes"},
		} {
			_, err := Nim.Decode(c.b, lim)
			checkErr(t, err, opDecode, c.code, c.frag)
		}
		// The same inputs within the defaults are fine.
		if _, err := Nim.Decode(nimBase().bytes(5, []byte("12345")).bytes(6, make([]byte, 6)), Limits{}); err != nil {
			t.Fatal(err)
		}
		// A bloom over MaxBloomBytes is dropped, not fatal (receiving is liberal), also
		// when an earlier occurrence was within the limit: the last one wins.
		for _, b := range []raw{nimBase().bytes(6, make([]byte, 6)), nimBase().bytes(6, []byte{1}).bytes(6, make([]byte, 6))} {
			for _, share := range []bool{false, true} {
				var m *sdskitv1.SdsMessage
				var err error
				if share {
					m, err = Nim.(BloomSharingDecoder).DecodeSharingBloom(b, lim)
				} else {
					m, err = Nim.Decode(b, lim)
				}
				if err != nil || m.BloomFilter != nil || m.MessageId != "m" {
					t.Fatalf("oversized bloom (share %v): %v, %v", share, m, err)
				}
			}
		}
		if m, err := Nim.Decode(nimBase().bytes(6, make([]byte, 5)), lim); err != nil || len(m.BloomFilter) != 5 {
			t.Fatalf("bloom at MaxBloomBytes: %v, %v", m, err)
		}
	})
	t.Run("sharing bloom", func(t *testing.T) {
		b := nimBase().bytes(6, []byte{1, 2, 3})
		m, err := Nim.(BloomSharingDecoder).DecodeSharingBloom(b, Limits{})
		if err != nil || !bytes.Equal(m.BloomFilter, []byte{1, 2, 3}) || cap(m.BloomFilter) != 3 {
			t.Fatalf("%v %v", m, err)
		}
		m2, _ := Nim.Decode(b, Limits{})
		b[len(b)-1] = 9
		if m2.BloomFilter[2] != 3 {
			t.Fatal("Decode aliases its input")
		}
	})
}

// A message of one profile fed to the other profile's decoder is rejected with a typed
// error: the required fields of each sit where the other has a field of another type.
func TestNimAndSpecRejectEachOther(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 300; i++ {
		m := randMessage(r, true)
		if m.LamportTimestamp == nil {
			m.LamportTimestamp = ptr(uint64(i))
		}
		nb, err := Nim.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Spec.Decode(nb, Limits{})
		checkErr(t, err, opDecode, sdserr.Deserialization)
		sb := mustEncode(t, m)
		if got, err := Nim.Decode(sb, Limits{}); err == nil {
			t.Fatalf("nim decoder accepted a spec message %x as %v", sb, got)
		} else {
			checkErr(t, err, opDecode, sdserr.Deserialization)
		}
	}
}

func TestNimRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		m := randMessage(r, true)
		if m.LamportTimestamp == nil {
			m.LamportTimestamp = ptr(r.Uint64())
		}
		b, err := Nim.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > DefaultLimits().MaxMessageBytes {
			continue
		}
		got, err := Nim.Decode(b, Limits{})
		if err != nil {
			t.Fatalf("Decode(Encode(%v)): %v", m, err)
		}
		if !proto.Equal(got, nimNormal(m)) {
			t.Fatalf("round trip\n got %v\nwant %v", got, nimNormal(m))
		}
		checkNimOracle(t, b, got)
	}
}

// nimSchema is nim-sds's message layout as a protobuf schema (proto2, every string as
// bytes), decoded by the reference protobuf implementation as an oracle: it too skips
// occurrences of a known field with another wire type (as unknown fields).
var nimSchema = func() protoreflect.MessageDescriptor {
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	bytesT := descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum()
	f := func(name string, num int32, label *descriptorpb.FieldDescriptorProto_Label, typ *descriptorpb.FieldDescriptorProto_Type, msg string) *descriptorpb.FieldDescriptorProto {
		d := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: label, Type: typ}
		if msg != "" {
			d.TypeName = proto.String(msg)
		}
		return d
	}
	msgT := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	fd := &descriptorpb.FileDescriptorProto{
		Name: proto.String("nimsds_test.proto"), Package: proto.String("nimsds"), Syntax: proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("HistoryEntry"), Field: []*descriptorpb.FieldDescriptorProto{
				f("message_id", 1, opt, bytesT, ""), f("retrieval_hint", 2, opt, bytesT, ""), f("sender_id", 3, opt, bytesT, "")}},
			{Name: proto.String("SdsMessage"), Field: []*descriptorpb.FieldDescriptorProto{
				f("message_id", 1, opt, bytesT, ""),
				f("lamport_timestamp", 2, opt, descriptorpb.FieldDescriptorProto_TYPE_UINT64.Enum(), ""),
				f("causal_history", 3, rep, msgT, ".nimsds.HistoryEntry"),
				f("channel_id", 4, opt, bytesT, ""), f("content", 5, opt, bytesT, ""), f("bloom_filter", 6, opt, bytesT, ""),
				f("sender_id", 7, opt, bytesT, ""),
				f("repair_request", 13, rep, msgT, ".nimsds.HistoryEntry")}},
		},
	}
	file, err := protodesc.NewFile(fd, nil)
	if err != nil {
		panic(err)
	}
	return file.Messages().ByName("SdsMessage")
}()

// oracleDecode decodes b with the reference implementation and the nim schema.
func oracleDecode(b []byte) (*dynamicpb.Message, error) {
	m := dynamicpb.NewMessage(nimSchema)
	return m, proto.Unmarshal(b, m)
}

func oracleBytes(m protoreflect.Message, name protoreflect.Name) ([]byte, bool) {
	fd := m.Descriptor().Fields().ByName(name)
	return m.Get(fd).Bytes(), m.Has(fd)
}

// checkNimOracle asserts that what the nim codec decoded from b equals the reference
// decoding of b with the nim schema.
func checkNimOracle(t *testing.T, b []byte, got *sdskitv1.SdsMessage) {
	t.Helper()
	ref, err := oracleDecode(b)
	if err != nil {
		t.Fatalf("nim codec accepted what the reference decoder rejects (%v): %x", err, b)
	}
	str := func(m protoreflect.Message, name protoreflect.Name) string {
		v, _ := oracleBytes(m, name)
		return string(v)
	}
	lam := ref.Get(nimSchema.Fields().ByName("lamport_timestamp")).Uint()
	content, _ := oracleBytes(ref, "content")
	bloomV, hasBloom := oracleBytes(ref, "bloom_filter")
	if len(bloomV) > DefaultLimits().MaxBloomBytes { // ignored by the nim codec
		bloomV, hasBloom = nil, false
	}
	if got.MessageId != str(ref, "message_id") || got.ChannelId != str(ref, "channel_id") ||
		got.SenderId != str(ref, "sender_id") || got.GetLamportTimestamp() != lam ||
		!bytes.Equal(got.Content, content) || !bytes.Equal(got.BloomFilter, bloomV) || (got.BloomFilter != nil) != hasBloom {
		t.Fatalf("nim decoding differs from the reference\n got %v\nwant %v", got, ref)
	}
	for _, list := range []struct {
		name protoreflect.Name
		got  []*sdskitv1.HistoryEntry
	}{{"causal_history", got.CausalHistory}, {"repair_request", got.RepairRequest}} {
		l := ref.Get(nimSchema.Fields().ByName(list.name)).List()
		if l.Len() != len(list.got) {
			t.Fatalf("%s: %d entries, reference %d", list.name, len(list.got), l.Len())
		}
		for i, e := range list.got {
			re := l.Get(i).Message()
			hint, _ := oracleBytes(re, "retrieval_hint")
			if e.MessageId != str(re, "message_id") || e.GetSenderId() != str(re, "sender_id") || !bytes.Equal(e.RetrievalHint, hint) ||
				(e.RetrievalHint != nil) != (len(hint) > 0) || (e.SenderId != nil) != (str(re, "sender_id") != "") {
				t.Fatalf("%s[%d] = %v, reference %v", list.name, i, e, re)
			}
		}
	}
}

// nimOracleAccepts reports whether a nim-sds receiver of the reference decoding must be
// accepted by us: no unknown or skipped fields anywhere, every required field present
// with a valid non-empty id.
func nimOracleAccepts(ref *dynamicpb.Message) bool {
	if len(ref.GetUnknown()) > 0 {
		return false
	}
	for _, n := range []protoreflect.Name{"message_id", "lamport_timestamp", "channel_id", "content"} {
		if !ref.Has(nimSchema.Fields().ByName(n)) {
			return false
		}
	}
	for _, n := range []protoreflect.Name{"message_id", "channel_id", "sender_id"} {
		v, _ := oracleBytes(ref, n)
		if !utf8.Valid(v) || (n != "sender_id" && len(v) == 0) {
			return false
		}
	}
	for _, n := range []protoreflect.Name{"causal_history", "repair_request"} {
		l := ref.Get(nimSchema.Fields().ByName(n)).List()
		for i := 0; i < l.Len(); i++ {
			e := l.Get(i).Message()
			id, _ := oracleBytes(e, "message_id")
			s, _ := oracleBytes(e, "sender_id")
			if len(e.GetUnknown()) > 0 || len(id) == 0 || !utf8.Valid(id) || !utf8.Valid(s) {
				return false
			}
		}
	}
	return true
}

func TestNimBloomMessage(t *testing.T) {
	// §3.6: bloom(10, 0.01) after insert("msg1") (bits 16, 19, …, 34 in 2 words).
	const golden = "0a1000004992040000000000000000000000100a18904e20072864"
	bits := make([]byte, 16)
	for _, p := range []int{16, 19, 22, 25, 28, 31, 34} {
		bits[p/8] |= 1 << (p % 8)
	}
	nb := NimBloom{Bits: bits, Capacity: 10, ErrorRateMicros: 10000, K: 7, M: 100}
	if got := hex.EncodeToString(nb.Append(nil)); got != golden {
		t.Fatalf("Append\n got %s\nwant %s", got, golden)
	}
	b, _ := hex.DecodeString(golden)
	dec, err := DecodeNimBloom(b)
	if err != nil || !bytes.Equal(dec.Bits, bits) || dec.Capacity != 10 || dec.ErrorRateMicros != 10000 || dec.K != 7 || dec.M != 100 {
		t.Fatalf("DecodeNimBloom = %+v, %v", dec, err)
	}
	// Every field is required (a zero-length field 1 counts as present).
	full := raw(nil).bytes(1, nil).varint(2, 1).varint(3, 1).varint(4, 1).varint(5, 1)
	if _, err := DecodeNimBloom(full); err != nil {
		t.Fatal(err)
	}
	for num := protowire.Number(1); num <= 5; num++ {
		var r raw
		for n := protowire.Number(1); n <= 5; n++ {
			switch {
			case n == num:
				r = r.fixed32(n, 1) // another wire type: skipped, so missing
			case n == 1:
				r = r.bytes(1, nil)
			default:
				r = r.varint(n, 1)
			}
		}
		_, err := DecodeNimBloom(r)
		checkErr(t, err, "DecodeNimBloom", sdserr.Deserialization, "missing")
	}
	_, err = DecodeNimBloom(nil)
	checkErr(t, err, "DecodeNimBloom", sdserr.Deserialization, "empty")
	_, err = DecodeNimBloom(full.group(6, nil))
	checkErr(t, err, "DecodeNimBloom", sdserr.Deserialization, "wire type")
	_, err = DecodeNimBloom(full[:len(full)-1])
	checkErr(t, err, "DecodeNimBloom", sdserr.Deserialization)
}
