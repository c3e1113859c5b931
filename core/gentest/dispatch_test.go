package gentest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sdskit/sdskit/core/sdserr"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// manager is a ReliabilityManagerServer with a few methods; the others are the nil
// embedded interface, so calling them panics — which is how the panic path is tested.
type manager struct {
	pb.ReliabilityManagerServer
	wrapErr error
	got     *pb.WrapOutgoingMessageRequest
	badUTF8 bool // ListChannels answers a channel id that cannot be marshalled
}

func (m *manager) WrapOutgoingMessage(_ context.Context, req *pb.WrapOutgoingMessageRequest) (*pb.WrapOutgoingMessageResponse, error) {
	m.got = req
	if m.wrapErr != nil {
		return nil, m.wrapErr
	}
	return &pb.WrapOutgoingMessageResponse{WireBytes: append([]byte("wire:"), req.GetContent()...)}, nil
}

func (m *manager) ListChannels(ctx context.Context, _ *pb.ListChannelsRequest) (*pb.ListChannelsResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.badUTF8 {
		return &pb.ListChannelsResponse{ChannelIds: []string{"\xff"}}, nil
	}
	return &pb.ListChannelsResponse{ChannelIds: []string{"a", "b"}}, nil
}

// Close returns nil, nil: an empty response.
func (m *manager) Close(context.Context, *pb.CloseRequest) (*pb.CloseResponse, error) {
	return nil, nil
}

// loopback is a CallFunc that dispatches in process, counting calls.
func loopback(srv pb.ReliabilityManagerServer, calls *[]uint32) pb.CallFunc {
	return func(ctx context.Context, id uint32, req []byte) ([]byte, error) {
		*calls = append(*calls, id)
		return pb.DispatchReliabilityManager(ctx, srv, id, req), nil
	}
}

func decodeResult(t *testing.T, b []byte) *pb.Result {
	t.Helper()
	var r pb.Result
	if err := proto.Unmarshal(b, &r); err != nil {
		t.Fatalf("Result does not decode: %v", err)
	}
	return &r
}

func TestManagerRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := &manager{}
	var calls []uint32
	c := pb.NewReliabilityManagerClient(loopback(srv, &calls))

	resp, err := c.WrapOutgoingMessage(ctx, &pb.WrapOutgoingMessageRequest{ChannelId: "ch", MessageId: "m1", Content: []byte("hi")})
	if err != nil || string(resp.GetWireBytes()) != "wire:hi" {
		t.Fatalf("WrapOutgoingMessage = %v, %v", resp, err)
	}
	if srv.got.GetChannelId() != "ch" || srv.got.GetMessageId() != "m1" {
		t.Fatalf("server got %v", srv.got)
	}
	list, err := c.ListChannels(ctx, &pb.ListChannelsRequest{})
	if err != nil || strings.Join(list.GetChannelIds(), ",") != "a,b" {
		t.Fatalf("ListChannels = %v, %v", list, err)
	}
	if r, err := c.Close(ctx, &pb.CloseRequest{}); err != nil || r == nil {
		t.Fatalf("Close = %v, %v (a nil response arrives as an empty one)", r, err)
	}
	want := []uint32{pb.ReliabilityManager_WrapOutgoingMessage_MethodID, pb.ReliabilityManager_ListChannels_MethodID, pb.ReliabilityManager_Close_MethodID}
	if !reflect.DeepEqual(calls, want) {
		t.Fatalf("method ids %v, want %v", calls, want)
	}
}

// Dispatch writes the response straight into the Result envelope: the bytes must be
// exactly those of marshalling a Result that holds the marshalled response, for a
// response (large or small) and for a nil one.
func TestDispatchResultBytesMatchMarshal(t *testing.T) {
	ctx := context.Background()
	srv := &manager{}
	for _, content := range [][]byte{[]byte("hi"), make([]byte, 19_000)} {
		req, _ := proto.Marshal(&pb.WrapOutgoingMessageRequest{ChannelId: "ch", MessageId: "m1", Content: content})
		got := pb.DispatchReliabilityManager(ctx, srv, pb.ReliabilityManager_WrapOutgoingMessage_MethodID, req)
		resp, _ := proto.Marshal(&pb.WrapOutgoingMessageResponse{WireBytes: append([]byte("wire:"), content...)})
		want, _ := proto.Marshal(&pb.Result{Result: &pb.Result_Value{Value: resp}})
		if string(got) != string(want) {
			t.Fatalf("content of %d bytes: Result bytes differ from marshalling one (%d vs %d bytes)", len(content), len(got), len(want))
		}
	}
	got := pb.DispatchReliabilityManager(ctx, srv, pb.ReliabilityManager_Close_MethodID, nil)
	want, _ := proto.Marshal(&pb.Result{Result: &pb.Result_Value{Value: []byte{}}})
	if string(got) != string(want) {
		t.Fatalf("nil response: Result %x, want %x", got, want)
	}
}

// DispatchInto gives the bytes of Dispatch, in the memory of the last allocation it
// asked for, on every path: a value (small, large, empty), a method's error, a panic, an
// unknown method id, an undecodable request and a response that cannot be marshalled
// (the error Result then needs a second allocation).
func TestDispatchIntoMatchesDispatch(t *testing.T) {
	ctx := context.Background()
	wrap := func(content []byte) []byte {
		req, _ := proto.Marshal(&pb.WrapOutgoingMessageRequest{ChannelId: "ch", MessageId: "m1", Content: content})
		return req
	}
	cases := []struct {
		name   string
		srv    pb.ReliabilityManagerServer
		method uint32
		req    []byte
		code   pb.ErrorCode
		allocs int
	}{
		{"small value", &manager{}, pb.ReliabilityManager_WrapOutgoingMessage_MethodID, wrap([]byte("hi")), 0, 1},
		{"large value", &manager{}, pb.ReliabilityManager_WrapOutgoingMessage_MethodID, wrap(make([]byte, 19_000)), 0, 1},
		{"empty value", &manager{}, pb.ReliabilityManager_Close_MethodID, nil, 0, 1},
		{"method error", &manager{wrapErr: sdserr.New(sdserr.Closed, "", "closed")}, pb.ReliabilityManager_WrapOutgoingMessage_MethodID, wrap([]byte("hi")), sdserr.Closed, 1},
		{"panic", nil, pb.ReliabilityManager_Reset_MethodID, nil, sdserr.Internal, 1},
		{"unknown method id", &manager{}, 999, nil, sdserr.InvalidArgument, 1},
		{"undecodable request", &manager{}, pb.ReliabilityManager_WrapOutgoingMessage_MethodID, []byte{0xff, 0xff}, sdserr.InvalidArgument, 1},
		{"response does not marshal", &manager{badUTF8: true}, pb.ReliabilityManager_ListChannels_MethodID, nil, sdserr.Serialization, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := pb.DispatchReliabilityManager(ctx, tc.srv, tc.method, tc.req)
			var bufs [][]byte
			alloc := func(n int) []byte {
				b := make([]byte, n, n+8) // spare capacity: the Result must not grow past n
				for i := range b {
					b[i] = 0xaa // not zeroed, as C memory is not
				}
				bufs = append(bufs, b)
				return b
			}
			got := pb.DispatchReliabilityManagerInto(ctx, tc.srv, tc.method, tc.req, alloc)
			if string(got) != string(want) {
				t.Fatalf("Result %x, want %x", got, want)
			}
			if len(bufs) != tc.allocs {
				t.Fatalf("%d allocations, want %d", len(bufs), tc.allocs)
			}
			last := bufs[len(bufs)-1]
			if len(got) != len(last) || &got[0] != &last[0] {
				t.Fatalf("the Result (%d bytes) is not the last allocation (%d bytes)", len(got), len(last))
			}
			if c := decodeResult(t, got).GetError().GetCode(); c != tc.code {
				t.Fatalf("code %v, want %v", c, tc.code)
			}
		})
	}
}

func TestManagerErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		wrapErr  error
		call     func(c pb.ReliabilityManagerServer) error
		wantCode pb.ErrorCode
		wantText string
	}{
		{
			name:     "typed core error keeps code, op and message",
			wrapErr:  sdserr.New(sdserr.MessageTooLarge, "WrapOutgoingMessage", "content is 2 MiB"),
			wantCode: sdserr.MessageTooLarge,
			wantText: "WrapOutgoingMessage: MESSAGE_TOO_LARGE: content is 2 MiB",
		},
		{
			name:     "generated error without op gets the method",
			wrapErr:  &pb.Error{Code: sdserr.Closed},
			wantCode: sdserr.Closed,
			wantText: "WrapOutgoingMessage: CLOSED",
		},
		{
			name:     "plain error is INTERNAL",
			wrapErr:  errors.New("boom"),
			wantCode: sdserr.Internal,
			wantText: "WrapOutgoingMessage: INTERNAL: boom",
		},
		{
			name:     "context error is CANCELLED",
			wrapErr:  context.DeadlineExceeded,
			wantCode: sdserr.Cancelled,
			wantText: "WrapOutgoingMessage: CANCELLED: context deadline exceeded",
		},
		{
			name:     "invalid UTF-8 in an error text still travels",
			wrapErr:  errors.New("bad \xff byte"),
			wantCode: sdserr.Internal,
			wantText: "WrapOutgoingMessage: INTERNAL: bad \uFFFD byte",
		},
		{
			name: "panic in the server is INTERNAL",
			call: func(c pb.ReliabilityManagerServer) error {
				_, err := c.EnsureChannel(ctx, &pb.EnsureChannelRequest{ChannelId: "x"}) // not implemented: nil interface
				return err
			},
			wantCode: sdserr.Internal,
			wantText: "EnsureChannel: INTERNAL: panic: runtime error: invalid memory address or nil pointer dereference",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []uint32
			c := pb.NewReliabilityManagerClient(loopback(&manager{wrapErr: tt.wrapErr}, &calls))
			call := tt.call
			if call == nil {
				call = func(c pb.ReliabilityManagerServer) error {
					resp, err := c.WrapOutgoingMessage(ctx, &pb.WrapOutgoingMessageRequest{ChannelId: "ch"})
					if resp != nil {
						t.Errorf("a response with an error: %v", resp)
					}
					return err
				}
			}
			err := call(c)
			var e *pb.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %T %v, want *sdskitv1.Error", err, err)
			}
			if e.GetCode() != tt.wantCode || err.Error() != tt.wantText {
				t.Fatalf("err = %v (%v), want %q (%v)", err, e.GetCode(), tt.wantText, tt.wantCode)
			}
			if !errors.Is(err, &pb.Error{Code: tt.wantCode}) {
				t.Fatal("errors.Is by code failed")
			}
		})
	}
}

func TestDispatchBadInput(t *testing.T) {
	ctx := context.Background()
	srv := &manager{}
	t.Run("unknown method id", func(t *testing.T) {
		r := decodeResult(t, pb.DispatchReliabilityManager(ctx, srv, 999, nil))
		if e := r.GetError(); e.GetCode() != sdserr.InvalidArgument || !strings.Contains(e.GetMessage(), "999") || e.GetOp() != "ReliabilityManager" {
			t.Fatalf("error = %v", e)
		}
	})
	t.Run("undecodable request", func(t *testing.T) {
		r := decodeResult(t, pb.DispatchReliabilityManager(ctx, srv, pb.ReliabilityManager_WrapOutgoingMessage_MethodID, []byte{0xff, 0xff}))
		if e := r.GetError(); e.GetCode() != sdserr.InvalidArgument || e.GetOp() != "WrapOutgoingMessage" || !strings.Contains(e.GetMessage(), "WrapOutgoingMessageRequest") {
			t.Fatalf("error = %v", e)
		}
		if srv.got != nil {
			t.Fatal("the server was called")
		}
	})
	t.Run("nil server never panics", func(t *testing.T) {
		r := decodeResult(t, pb.DispatchReliabilityManager(ctx, nil, pb.ReliabilityManager_Reset_MethodID, nil))
		if r.GetError().GetCode() != sdserr.Internal {
			t.Fatalf("result = %v", r)
		}
	})
	t.Run("empty value is present", func(t *testing.T) {
		r := decodeResult(t, pb.DispatchReliabilityManager(ctx, srv, pb.ReliabilityManager_Close_MethodID, nil))
		if _, ok := r.GetResult().(*pb.Result_Value); !ok {
			t.Fatalf("result = %v, want an (empty) value", r)
		}
	})
}

func TestClientTransport(t *testing.T) {
	ctx := context.Background()
	broken := errors.New("pipe closed")
	tests := []struct {
		name     string
		reply    []byte
		replyErr error
		check    func(t *testing.T, err error)
	}{
		{"transport error unchanged", nil, broken, func(t *testing.T, err error) {
			if err != broken {
				t.Fatalf("err = %v, want the transport's own error", err)
			}
		}},
		{"undecodable result", []byte{0xff}, nil, wantCode(sdserr.Deserialization, "cannot decode the result")},
		{"empty result", []byte{}, nil, wantCode(sdserr.Deserialization, "neither a value nor an error")},
		{"undecodable value", mustMarshal(&pb.Result{Result: &pb.Result_Value{Value: []byte{0xff}}}), nil, wantCode(sdserr.Deserialization, "cannot decode the response")},
		{"empty error", mustMarshal(&pb.Result{Result: &pb.Result_Error{}}), nil, wantCode(sdserr.Internal, "error without a code")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := pb.NewReliabilityManagerClient(func(context.Context, uint32, []byte) ([]byte, error) { return tt.reply, tt.replyErr })
			_, err := c.GetSnapshot(ctx, &pb.GetSnapshotRequest{ChannelId: "x"})
			tt.check(t, err)
		})
	}
	// A request that cannot be encoded (invalid UTF-8 in a string) never reaches the transport.
	c := pb.NewReliabilityManagerClient(func(context.Context, uint32, []byte) ([]byte, error) {
		t.Fatal("transport called")
		return nil, nil
	})
	_, err := c.GetSnapshot(ctx, &pb.GetSnapshotRequest{ChannelId: "\xff"})
	wantCode(sdserr.Serialization, "cannot encode the request")(t, err)
}

func wantCode(code pb.ErrorCode, text string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var e *pb.Error
		if !errors.As(err, &e) || e.GetCode() != code || !strings.Contains(e.GetMessage(), text) {
			t.Fatalf("err = %v, want %v containing %q", err, code, text)
		}
	}
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// TestTablesMatchIDL checks every dispatch table against the IDL's descriptors (not
// against other generated code): one entry per rpc, the method_id option as ID, the
// optional_method option as Optional, and a Go method of that name on the interface.
func TestTablesMatchIDL(t *testing.T) {
	type table struct {
		service string
		descs   []pb.MethodDesc[any]
		iface   reflect.Type
		lookup  func(uint32) (string, bool)
	}
	conv := func(n int, at func(i int) (uint32, string, bool)) []pb.MethodDesc[any] {
		var out []pb.MethodDesc[any]
		for i := range n {
			id, name, opt := at(i)
			out = append(out, pb.MethodDesc[any]{ID: id, Name: name, Optional: opt})
		}
		return out
	}
	tables := []table{
		{"ReliabilityManager", conv(len(pb.ReliabilityManagerMethods), func(i int) (uint32, string, bool) {
			m := pb.ReliabilityManagerMethods[i]
			return m.ID, m.Name, m.Optional
		}), reflect.TypeFor[pb.ReliabilityManagerServer](), func(id uint32) (string, bool) {
			m, ok := pb.LookupReliabilityManagerMethod(id)
			return m.Name, ok
		}},
		{"Persistence", conv(len(pb.PersistenceMethods), func(i int) (uint32, string, bool) {
			m := pb.PersistenceMethods[i]
			return m.ID, m.Name, m.Optional
		}), reflect.TypeFor[pb.Persistence](), func(id uint32) (string, bool) {
			m, ok := pb.LookupPersistenceMethod(id)
			return m.Name, ok
		}},
		{"RetrievalHintProvider", conv(len(pb.RetrievalHintProviderMethods), func(i int) (uint32, string, bool) {
			m := pb.RetrievalHintProviderMethods[i]
			return m.ID, m.Name, m.Optional
		}), reflect.TypeFor[pb.RetrievalHintProvider](), func(id uint32) (string, bool) {
			m, ok := pb.LookupRetrievalHintProviderMethod(id)
			return m.Name, ok
		}},
		{"EventSink", conv(len(pb.EventSinkMethods), func(i int) (uint32, string, bool) {
			m := pb.EventSinkMethods[i]
			return m.ID, m.Name, m.Optional
		}), reflect.TypeFor[pb.EventSink](), func(id uint32) (string, bool) {
			m, ok := pb.LookupEventSinkMethod(id)
			return m.Name, ok
		}},
	}
	tx := reflect.TypeFor[pb.PersistenceTransactions]()
	for _, tb := range tables {
		sd := pb.File_sdskit_v1_api_proto.Services().ByName(protoreflect.Name(tb.service))
		if sd == nil {
			t.Fatalf("no service %s in the IDL", tb.service)
		}
		if len(tb.descs) != sd.Methods().Len() {
			t.Errorf("%s: %d table entries, %d rpcs", tb.service, len(tb.descs), sd.Methods().Len())
			continue
		}
		required := 0
		for i, d := range tb.descs {
			md := sd.Methods().Get(i)
			id := proto.GetExtension(md.Options(), pb.E_MethodId).(uint32)
			opt := proto.GetExtension(md.Options(), pb.E_OptionalMethod).(bool)
			if d.Name != string(md.Name()) || d.ID != id || d.Optional != opt {
				t.Errorf("%s entry %d = {%d %s %v}, IDL says {%d %s %v}", tb.service, i, d.ID, d.Name, d.Optional, id, md.Name(), opt)
			}
			if name, ok := tb.lookup(id); !ok || name != d.Name {
				t.Errorf("%s: Lookup(%d) = %q, %v", tb.service, id, name, ok)
			}
			iface := tb.iface
			if opt {
				iface = tx
			} else {
				required++
			}
			if _, ok := iface.MethodByName(d.Name); !ok {
				t.Errorf("%s has no method %s", iface, d.Name)
			}
		}
		if tb.iface.NumMethod() != required {
			t.Errorf("%s has %d methods, the IDL %d required rpcs", tb.iface, tb.iface.NumMethod(), required)
		}
		if _, ok := tb.lookup(0); ok {
			t.Errorf("%s: method id 0 resolves", tb.service)
		}
	}
	if tx.NumMethod() != 3 {
		t.Errorf("PersistenceTransactions has %d methods", tx.NumMethod())
	}
}

// hints is a RetrievalHintProvider; sink an EventSink.
type hints struct{}

func (hints) GetRetrievalHint(_ context.Context, req *pb.GetRetrievalHintRequest) (*pb.GetRetrievalHintResponse, error) {
	if req.GetMessageId() == "" {
		return nil, sdserr.New(sdserr.NotFound, "", "unknown message")
	}
	return &pb.GetRetrievalHintResponse{RetrievalHint: []byte("hint-" + req.GetMessageId())}, nil
}

type sink struct{ got []string }

func (s *sink) OnEvent(_ context.Context, ev *pb.Event) error {
	s.got = append(s.got, pb.EventName(ev))
	return nil
}

func TestHostServicesRoundTrip(t *testing.T) {
	ctx := context.Background()
	h := pb.NewRetrievalHintProviderClient(func(ctx context.Context, id uint32, req []byte) ([]byte, error) {
		return pb.DispatchRetrievalHintProvider(ctx, hints{}, id, req), nil
	})
	r, err := h.GetRetrievalHint(ctx, &pb.GetRetrievalHintRequest{ChannelId: "c", MessageId: "m"})
	if err != nil || string(r.GetRetrievalHint()) != "hint-m" {
		t.Fatalf("GetRetrievalHint = %v, %v", r, err)
	}
	_, err = h.GetRetrievalHint(ctx, &pb.GetRetrievalHintRequest{ChannelId: "c"})
	if err == nil || err.Error() != "GetRetrievalHint: NOT_FOUND: unknown message" {
		t.Fatalf("err = %v", err)
	}

	s := &sink{}
	es := pb.NewEventSinkClient(func(ctx context.Context, id uint32, req []byte) ([]byte, error) {
		return pb.DispatchEventSink(ctx, s, id, req), nil
	})
	if err := es.OnEvent(ctx, &pb.Event{Event: &pb.Event_SyncDue{SyncDue: &pb.SyncDue{ChannelId: "c"}}}); err != nil {
		t.Fatal(err)
	}
	if len(s.got) != 1 || s.got[0] != "SyncDue" {
		t.Fatalf("sink got %v", s.got)
	}
}

// releasing is a manager that takes its responses back (pb.ResponseReleaser) and wipes
// them, as a server reusing their buffers would.
type releasing struct {
	manager
	released []proto.Message
}

func (r *releasing) ReleaseResponse(resp proto.Message) {
	if w, ok := resp.(*pb.WrapOutgoingMessageResponse); ok {
		clear(w.WireBytes)
	}
	r.released = append(r.released, resp)
}

// A ResponseReleaser gets each response back after it was marshalled: what it does with
// it then does not change the Result. Errors have no response to release.
func TestDispatchReleasesResponses(t *testing.T) {
	ctx := context.Background()
	srv := &releasing{}
	req, _ := proto.Marshal(&pb.WrapOutgoingMessageRequest{ChannelId: "ch", MessageId: "m1", Content: []byte("hi")})
	r := decodeResult(t, pb.DispatchReliabilityManager(ctx, srv, pb.ReliabilityManager_WrapOutgoingMessage_MethodID, req))
	var resp pb.WrapOutgoingMessageResponse
	if err := proto.Unmarshal(r.GetValue(), &resp); err != nil || string(resp.GetWireBytes()) != "wire:hi" {
		t.Fatalf("response %v, %v: the release changed the Result", &resp, err)
	}
	if len(srv.released) != 1 {
		t.Fatalf("%d responses released, want 1", len(srv.released))
	}
	srv.wrapErr = sdserr.New(sdserr.Closed, "", "closed")
	pb.DispatchReliabilityManager(ctx, srv, pb.ReliabilityManager_WrapOutgoingMessage_MethodID, req)
	if len(srv.released) != 1 {
		t.Fatalf("%d responses released, want still 1", len(srv.released))
	}
}
