package gentest

import (
	"context"
	"testing"
	"unsafe"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// recorder is a ReliabilityManagerServer keeping the last request of the methods whose
// requests are decoded without copying (only string and bytes fields) and of one that
// has other fields (MarkDependenciesMet: a repeated string).
type recorder struct {
	pb.ReliabilityManagerServer
	got proto.Message
}

func (r *recorder) WrapOutgoingMessage(_ context.Context, req *pb.WrapOutgoingMessageRequest) (*pb.WrapOutgoingMessageResponse, error) {
	r.got = req
	return &pb.WrapOutgoingMessageResponse{}, nil
}

func (r *recorder) UnwrapReceivedMessage(_ context.Context, req *pb.UnwrapReceivedMessageRequest) (*pb.UnwrapReceivedMessageResponse, error) {
	r.got = req
	return &pb.UnwrapReceivedMessageResponse{}, nil
}

func (r *recorder) ListChannels(_ context.Context, req *pb.ListChannelsRequest) (*pb.ListChannelsResponse, error) {
	r.got = req
	return &pb.ListChannelsResponse{}, nil
}

func (r *recorder) MarkDependenciesMet(_ context.Context, req *pb.MarkDependenciesMetRequest) (*pb.MarkDependenciesMetResponse, error) {
	r.got = req
	return &pb.MarkDependenciesMetResponse{}, nil
}

var decodedRequests = []struct {
	method uint32
	new    func() proto.Message
}{
	{pb.ReliabilityManager_WrapOutgoingMessage_MethodID, func() proto.Message { return new(pb.WrapOutgoingMessageRequest) }},
	{pb.ReliabilityManager_UnwrapReceivedMessage_MethodID, func() proto.Message { return new(pb.UnwrapReceivedMessageRequest) }},
	{pb.ReliabilityManager_ListChannels_MethodID, func() proto.Message { return new(pb.ListChannelsRequest) }},
	{pb.ReliabilityManager_MarkDependenciesMet_MethodID, func() proto.Message { return new(pb.MarkDependenciesMetRequest) }},
}

// checkDecoding dispatches data to every recorded method and compares the request the
// server got with what proto.Unmarshal makes of data: the same error or the same
// message, nil bytes fields included.
func checkDecoding(t *testing.T, data []byte) {
	t.Helper()
	for _, d := range decodedRequests {
		srv := &recorder{}
		res := decodeResult(t, pb.DispatchReliabilityManager(context.Background(), srv, d.method, data))
		want := d.new()
		if err := proto.Unmarshal(data, want); err != nil {
			if res.GetError() == nil || srv.got != nil {
				t.Fatalf("method %d, input %x: proto.Unmarshal fails (%v) but the dispatch decoded %v", d.method, data, err, srv.got)
			}
			continue
		}
		if res.GetError() != nil || srv.got == nil {
			t.Fatalf("method %d, input %x: decodes with proto.Unmarshal but the dispatch answered %v", d.method, data, res.GetError())
		}
		if !proto.Equal(srv.got, want) {
			t.Fatalf("method %d, input %x: the server got %v, proto.Unmarshal gives %v", d.method, data, srv.got, want)
		}
		if w, ok := srv.got.(*pb.UnwrapReceivedMessageRequest); ok {
			if (w.Data == nil) != (want.(*pb.UnwrapReceivedMessageRequest).Data == nil) {
				t.Fatalf("input %x: Data nil = %v, proto.Unmarshal's %v", data, w.Data == nil, want.(*pb.UnwrapReceivedMessageRequest).Data == nil)
			}
		}
	}
}

// The requests of string and bytes fields only are decoded by generated code that
// aliases the input: it must agree with proto.Unmarshal on every input, falling back
// to it for what it does not handle.
func TestAliasingDecodersAgreeWithUnmarshal(t *testing.T) {
	enc := func(m proto.Message) []byte { b, _ := proto.Marshal(m); return b }
	field := func(num protowire.Number, typ protowire.Type, v []byte) []byte {
		return append(protowire.AppendTag(nil, num, typ), v...)
	}
	str := func(num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
	}
	cat := func(parts ...[]byte) (b []byte) {
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	inputs := [][]byte{
		nil,
		{},
		enc(&pb.WrapOutgoingMessageRequest{ChannelId: "ch", MessageId: "m1", Content: []byte("hi")}),
		enc(&pb.UnwrapReceivedMessageRequest{Data: make([]byte, 19_000), RetrievalHint: []byte{1}}),
		enc(&pb.MarkDependenciesMetRequest{ChannelId: "ch", MessageIds: []string{"a", "b"}}),
		str(1, ""),                           // a present but empty field: nil bytes, "" string
		cat(str(1, "first"), str(1, "last")), // the last occurrence wins
		cat(str(1, "x"), str(1, "")),         // ... also when empty
		str(2, "\xff\xfe"),                   // invalid UTF-8 in a string field
		str(9, "unknown"),                    // an unknown field
		field(1, protowire.VarintType, protowire.AppendVarint(nil, 7)), // a known field with another wire type
		field(1, protowire.Fixed32Type, []byte{1, 2, 3, 4}),
		{0x0a, 0x05, 'a'}, // a length past the end
		{0x0a},            // a tag without its value
		{0x00, 0x01},      // field number 0
		{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // an overlong varint
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	for _, in := range inputs {
		checkDecoding(t, in)
	}
}

// The bytes fields alias the request, with their capacity ending where the field ends:
// an append by the server cannot overwrite the rest of the request.
func TestAliasingDecoderAliases(t *testing.T) {
	data := []byte("a received message")
	req, _ := proto.Marshal(&pb.UnwrapReceivedMessageRequest{Data: data, RetrievalHint: []byte("hint")})
	srv := &recorder{}
	pb.DispatchReliabilityManager(context.Background(), srv, pb.ReliabilityManager_UnwrapReceivedMessage_MethodID, req)
	got := srv.got.(*pb.UnwrapReceivedMessageRequest)
	if string(got.Data) != string(data) || unsafe.SliceData(got.Data) != &req[2] {
		t.Fatalf("Data %q does not alias the request", got.Data)
	}
	if cap(got.Data) != len(got.Data) {
		t.Fatalf("Data has capacity %d past its %d bytes", cap(got.Data), len(got.Data))
	}
}

// FuzzAliasingDecoders checks the generated decoders against proto.Unmarshal on
// arbitrary input.
func FuzzAliasingDecoders(f *testing.F) {
	for _, seed := range [][]byte{
		{},
		{0x0a, 0x02, 'c', 'h', 0x12, 0x01, 'm', 0x1a, 0x01, 'x'},
		{0x0a, 0x00, 0x12, 0x02, 0xff, 0xfe},
		{0x08, 0x01},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecoding(t, data) })
}
