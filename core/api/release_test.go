package api

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/sdskit/sdskit/core/internal/race"
	"github.com/sdskit/sdskit/core/wire"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

func newServer(t *testing.T, participant string) *Server {
	t.Helper()
	s, err := Create(context.Background(), &pb.CreateRequest{ParticipantId: participant}, Host{})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { _, _ = s.Close(context.Background(), &pb.CloseRequest{}) })
	return s
}

// dispatch calls method through the generated dispatch (which releases responses to
// the server) and decodes the response of its Result into resp.
func dispatch(t testing.TB, s *Server, method uint32, req, resp proto.Message) {
	in, _ := proto.Marshal(req)
	var res pb.Result
	if err := proto.Unmarshal(pb.DispatchReliabilityManager(context.Background(), s, method, in), &res); err != nil {
		t.Fatalf("Result does not decode: %v", err)
	}
	if e := res.GetError(); e != nil {
		t.Fatalf("method %d: %v", method, e)
	}
	if err := proto.Unmarshal(res.GetValue(), resp); err != nil {
		t.Fatalf("response does not decode: %v", err)
	}
}

// Messages encoded into recycled buffers are each intact, also when several goroutines
// wrap, build sync messages and so release buffers at once (run with -race): every
// Result decodes to the message it was asked for.
func TestRecycledWireBuffersStayIntact(t *testing.T) {
	s := newServer(t, "alice")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			ch := fmt.Sprintf("ch%d", g)
			for i := range 150 {
				id := fmt.Sprintf("m%d-%d", g, i)
				var w pb.WrapOutgoingMessageResponse
				dispatch(t, s, pb.ReliabilityManager_WrapOutgoingMessage_MethodID,
					&pb.WrapOutgoingMessageRequest{ChannelId: ch, MessageId: id, Content: []byte(id)}, &w)
				m, err := wire.Spec.Decode(w.GetWireBytes(), wire.Limits{})
				if err != nil || m.GetMessageId() != id || m.GetChannelId() != ch || string(m.GetContent()) != id {
					t.Errorf("wrap %s: decoded %v, %v", id, m, err)
					return
				}
				var sync pb.BuildSyncMessageResponse
				dispatch(t, s, pb.ReliabilityManager_BuildSyncMessage_MethodID, &pb.BuildSyncMessageRequest{ChannelId: ch}, &sync)
				if m, err := wire.Spec.Decode(sync.GetWireBytes(), wire.Limits{}); err != nil || m.GetChannelId() != ch || len(m.GetContent()) != 0 {
					t.Errorf("sync on %s: decoded %v, %v", ch, m, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A dispatched wrap encodes into a released buffer: per wrap, the heap grows by about
// one message (the Result the dispatch returns), not two (a fresh encoding as well).
func TestDispatchReusesWireBuffers(t *testing.T) {
	s := newServer(t, "alice")
	var w pb.WrapOutgoingMessageResponse
	dispatch(t, s, pb.ReliabilityManager_WrapOutgoingMessage_MethodID,
		&pb.WrapOutgoingMessageRequest{ChannelId: "ch", MessageId: "warm", Content: []byte("x")}, &w)
	size := len(w.GetWireBytes())
	const n = 200
	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i], _ = proto.Marshal(&pb.WrapOutgoingMessageRequest{ChannelId: "ch", MessageId: fmt.Sprint("m", i), Content: []byte("x")})
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, in := range reqs {
		pb.DispatchReliabilityManager(context.Background(), s, pb.ReliabilityManager_WrapOutgoingMessage_MethodID, in)
	}
	runtime.ReadMemStats(&after)
	perWrap := float64(after.TotalAlloc-before.TotalAlloc) / n
	// Under the race detector sync.Pool drops a share of what it is given on purpose.
	if !race.Enabled && perWrap > 1.5*float64(size) {
		t.Fatalf("a dispatched wrap allocates %.0f bytes for a %d-byte message: the encoding is not reusing released buffers", perWrap, size)
	}
	// A Go caller keeps its response: nothing is released, and the bytes stay valid.
	r1, err := s.WrapOutgoingMessage(context.Background(), &pb.WrapOutgoingMessageRequest{ChannelId: "ch", MessageId: "go1", Content: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	keep := string(r1.GetWireBytes())
	for i := range 20 {
		dispatch(t, s, pb.ReliabilityManager_WrapOutgoingMessage_MethodID,
			&pb.WrapOutgoingMessageRequest{ChannelId: "ch", MessageId: fmt.Sprint("after", i), Content: []byte("y")}, &w)
	}
	if string(r1.GetWireBytes()) != keep {
		t.Fatal("a response returned to a Go caller was overwritten")
	}
}

// ReleaseResponse ignores responses it has nothing to recycle from, typed nils included.
func TestReleaseResponseOddValues(t *testing.T) {
	s := newServer(t, "alice")
	for _, r := range []proto.Message{nil, (*pb.WrapOutgoingMessageResponse)(nil), (*pb.BuildSyncMessageResponse)(nil), &pb.WrapOutgoingMessageResponse{}, &pb.ListChannelsResponse{}} {
		s.ReleaseResponse(r)
	}
}
