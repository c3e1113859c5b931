package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/sds"
	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

// Host is what the application implements on its side of the boundary; every field is
// optional. Persistence is required when CreateRequest selects host persistence.
type Host struct {
	Persistence pb.Persistence
	Hints       pb.RetrievalHintProvider
	Events      pb.EventSink
	// Clock overrides the wall clock (tests, simulators).
	Clock clock.Clock
	// Logger overrides slog.Default().
	Logger *slog.Logger
}

// SQLiteOpener opens the embedded SQLite backend; it is set by the SQLite package's
// registration so that this package does not depend on it (and callers that never use
// SQLite do not link it).
var SQLiteOpener func(ctx context.Context, path, synchronous string) (store.Backend, io.Closer, error)

// Server implements the generated ReliabilityManagerServer over the Go engine.
type Server struct {
	m         *sds.Manager
	closer    io.Closer // the backend, when the server opened it
	closeOnce sync.Once
	closeErr  error
}

var _ pb.ReliabilityManagerServer = (*Server)(nil)

// Create builds a manager from an IDL CreateRequest: INVALID_ARGUMENT for a bad config
// or persistence choice, PERSISTENCE when the backend cannot be opened.
func Create(ctx context.Context, req *pb.CreateRequest, host Host) (*Server, error) {
	const op = "Create"
	cfg, err := ConfigFromProto(req.GetConfig())
	if err != nil {
		return nil, err
	}
	backend, closer, err := openBackend(ctx, req.GetPersistence(), host)
	if err != nil {
		return nil, err
	}
	opts := []sds.Option{sds.WithBackend(backend)}
	if host.Clock != nil {
		opts = append(opts, sds.WithClock(host.Clock))
	}
	if host.Logger != nil {
		opts = append(opts, sds.WithLogger(host.Logger))
	}
	if host.Events != nil {
		sink := host.Events
		opts = append(opts, sds.WithHandler(sds.HandlerFunc(func(ev *pb.Event) {
			// Events are notifications: a sink error cannot undo a committed operation.
			if err := sink.OnEvent(context.Background(), ev); err != nil && host.Logger != nil {
				host.Logger.Warn("sdskit: event sink failed", "err", err)
			}
		})))
	}
	if req.GetHostHintProvider() {
		if host.Hints == nil {
			closeQuietly(closer)
			return nil, sdserr.New(sdserr.InvalidArgument, op, "host_hint_provider is set but no RetrievalHintProvider was given")
		}
		hints := host.Hints
		opts = append(opts, sds.WithHintProvider(sds.HintProviderFunc(func(ctx context.Context, ch, id string) ([]byte, error) {
			resp, err := hints.GetRetrievalHint(ctx, &pb.GetRetrievalHintRequest{ChannelId: ch, MessageId: id})
			return resp.GetRetrievalHint(), err
		})))
	}
	m, err := sds.New(req.GetParticipantId(), cfg, opts...)
	if err != nil {
		closeQuietly(closer)
		return nil, err
	}
	return &Server{m: m, closer: closer}, nil
}

func openBackend(ctx context.Context, choice *pb.PersistenceChoice, host Host) (store.Backend, io.Closer, error) {
	const op = "Create"
	switch k := choice.GetKind().(type) {
	case nil, *pb.PersistenceChoice_None_:
		return store.Noop{}, nil, nil
	case *pb.PersistenceChoice_Memory_:
		return store.NewMemory(), nil, nil
	case *pb.PersistenceChoice_Sqlite_:
		if k.Sqlite.GetPath() == "" {
			return nil, nil, sdserr.New(sdserr.InvalidArgument, op, "persistence.sqlite.path must not be empty")
		}
		if SQLiteOpener == nil {
			return nil, nil, sdserr.New(sdserr.InvalidArgument, op, "the SQLite backend is not linked into this build")
		}
		b, c, err := SQLiteOpener(ctx, k.Sqlite.GetPath(), k.Sqlite.GetSynchronous())
		if err != nil {
			return nil, nil, sdserr.From(op, sdserr.Persistence, err)
		}
		return b, c, nil
	case *pb.PersistenceChoice_Host_:
		if host.Persistence == nil {
			return nil, nil, sdserr.New(sdserr.InvalidArgument, op, "host persistence selected but no Persistence implementation was given")
		}
		return store.FromPersistence(host.Persistence), nil, nil
	default:
		return nil, nil, sdserr.New(sdserr.InvalidArgument, op, "unknown persistence choice %T", k)
	}
}

func closeQuietly(c io.Closer) {
	if c != nil {
		_ = c.Close()
	}
}

// Manager returns the engine behind the server (for in-process Go callers).
func (s *Server) Manager() *sds.Manager { return s.m }

// EnsureChannel implements the IDL method.
func (s *Server) EnsureChannel(ctx context.Context, req *pb.EnsureChannelRequest) (*pb.EnsureChannelResponse, error) {
	return &pb.EnsureChannelResponse{}, s.m.EnsureChannel(ctx, req.GetChannelId())
}

// RemoveChannel implements the IDL method.
func (s *Server) RemoveChannel(ctx context.Context, req *pb.RemoveChannelRequest) (*pb.RemoveChannelResponse, error) {
	return &pb.RemoveChannelResponse{}, s.m.RemoveChannel(ctx, req.GetChannelId())
}

// WrapOutgoingMessage implements the IDL method.
func (s *Server) WrapOutgoingMessage(ctx context.Context, req *pb.WrapOutgoingMessageRequest) (*pb.WrapOutgoingMessageResponse, error) {
	buf := wireBuffer()
	b, err := s.m.AppendWrapOutgoingMessage(ctx, buf, req.GetChannelId(), req.GetMessageId(), req.GetContent())
	if err != nil {
		recycleWire(buf)
		return nil, err
	}
	return &pb.WrapOutgoingMessageResponse{WireBytes: b}, nil
}

// WrapEphemeral implements the IDL method.
func (s *Server) WrapEphemeral(ctx context.Context, req *pb.WrapEphemeralRequest) (*pb.WrapEphemeralResponse, error) {
	b, err := s.m.WrapEphemeral(ctx, req.GetChannelId(), req.GetMessageId(), req.GetContent())
	if err != nil {
		return nil, err
	}
	return &pb.WrapEphemeralResponse{WireBytes: b}, nil
}

// BuildSyncMessage implements the IDL method.
func (s *Server) BuildSyncMessage(ctx context.Context, req *pb.BuildSyncMessageRequest) (*pb.BuildSyncMessageResponse, error) {
	buf := wireBuffer()
	b, err := s.m.AppendBuildSyncMessage(ctx, buf, req.GetChannelId())
	if err != nil {
		recycleWire(buf)
		return nil, err
	}
	return &pb.BuildSyncMessageResponse{WireBytes: b}, nil
}

// ReleaseResponse implements pb.ResponseReleaser: the generated dispatch (the C and wasm
// glue) hands back each response once marshalled, and the wire bytes of a wrapped or
// sync message go back to the buffers the next one is encoded into. Reused memory is
// still in cache where fresh heap is not: a wrap over the C ABI takes ~40 % less time.
// Responses returned to Go callers (sdk-go) never come back and stay theirs.
func (s *Server) ReleaseResponse(resp proto.Message) {
	switch r := resp.(type) {
	case *pb.WrapOutgoingMessageResponse:
		if r != nil {
			recycleWire(r.WireBytes)
			r.WireBytes = nil
		}
	case *pb.BuildSyncMessageResponse:
		if r != nil {
			recycleWire(r.WireBytes)
			r.WireBytes = nil
		}
	}
}

// wireBuffers holds the released buffers of encoded messages (*[]byte, empty).
var wireBuffers sync.Pool

// maxRecycledWire bounds the buffers kept: a message with a large content is rare, and
// keeping its buffer would pin the memory (until the pool's next two collections).
const maxRecycledWire = 256 << 10

// wireBuffer returns an empty buffer to encode a message into (nil when none is free).
func wireBuffer() []byte {
	if p, ok := wireBuffers.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return nil
}

// recycleWire makes b's memory available to the next wireBuffer; b must no longer be used.
func recycleWire(b []byte) {
	if cap(b) == 0 || cap(b) > maxRecycledWire {
		return
	}
	b = b[:0]
	wireBuffers.Put(&b)
}

// UnwrapReceivedMessage implements the IDL method.
func (s *Server) UnwrapReceivedMessage(ctx context.Context, req *pb.UnwrapReceivedMessageRequest) (*pb.UnwrapReceivedMessageResponse, error) {
	r, err := s.m.UnwrapReceivedMessageWithHint(ctx, req.GetData(), req.GetRetrievalHint())
	if err != nil {
		return nil, err
	}
	return &pb.UnwrapReceivedMessageResponse{
		ChannelId:        r.ChannelID,
		MessageId:        r.MessageID,
		SenderId:         r.SenderID,
		Kind:             KindToProto(r.Kind),
		LamportTimestamp: r.Lamport,
		Content:          r.Content,
		Delivered:        r.Delivered,
		Missing:          r.Missing,
	}, nil
}

// KindToProto maps the engine's message kind to the IDL's.
func KindToProto(k sds.Kind) pb.MessageKind {
	switch k {
	case sds.KindContent:
		return pb.MessageKind_MESSAGE_KIND_CONTENT
	case sds.KindSync:
		return pb.MessageKind_MESSAGE_KIND_SYNC
	case sds.KindEphemeral:
		return pb.MessageKind_MESSAGE_KIND_EPHEMERAL
	case sds.KindDuplicate:
		return pb.MessageKind_MESSAGE_KIND_DUPLICATE
	}
	return pb.MessageKind_MESSAGE_KIND_UNSPECIFIED
}

// MarkDependenciesMet implements the IDL method.
func (s *Server) MarkDependenciesMet(ctx context.Context, req *pb.MarkDependenciesMetRequest) (*pb.MarkDependenciesMetResponse, error) {
	return &pb.MarkDependenciesMetResponse{}, s.m.MarkDependenciesMet(ctx, req.GetChannelId(), req.GetMessageIds())
}

// RunSweeps implements the IDL method.
func (s *Server) RunSweeps(ctx context.Context, _ *pb.RunSweepsRequest) (*pb.RunSweepsResponse, error) {
	if err := s.m.RunSweeps(ctx); err != nil {
		// Several channels may have failed: report the first typed error, keep all text.
		var e *sdserr.Error
		if errors.As(err, &e) {
			return nil, &sdserr.Error{Code: e.Code, Op: "RunSweeps", Msg: err.Error(), Err: err}
		}
		return nil, err
	}
	return &pb.RunSweepsResponse{}, nil
}

// StartPeriodicTasks implements the IDL method; the tasks run until Close.
func (s *Server) StartPeriodicTasks(_ context.Context, _ *pb.StartPeriodicTasksRequest) (*pb.StartPeriodicTasksResponse, error) {
	// Not the caller's ctx: across an FFI boundary the request context ends with the call.
	return &pb.StartPeriodicTasksResponse{}, s.m.StartPeriodicTasks(context.Background())
}

// Reset implements the IDL method.
func (s *Server) Reset(ctx context.Context, _ *pb.ResetRequest) (*pb.ResetResponse, error) {
	return &pb.ResetResponse{}, s.m.Reset(ctx)
}

// Close implements the IDL method: it closes the manager, then the backend the server
// opened (idempotent).
func (s *Server) Close(_ context.Context, _ *pb.CloseRequest) (*pb.CloseResponse, error) {
	s.closeOnce.Do(func() {
		if err := s.m.Close(); err != nil {
			s.closeErr = err
			return
		}
		if s.closer != nil {
			if err := s.closer.Close(); err != nil {
				s.closeErr = sdserr.Wrap(sdserr.Persistence, "Close", fmt.Errorf("closing the backend: %w", err))
			}
		}
	})
	if s.closeErr != nil {
		return nil, s.closeErr
	}
	return &pb.CloseResponse{}, nil
}

// GetSnapshot implements the IDL method.
func (s *Server) GetSnapshot(_ context.Context, req *pb.GetSnapshotRequest) (*pb.GetSnapshotResponse, error) {
	snap, err := s.m.Snapshot(req.GetChannelId())
	if err != nil {
		return nil, err
	}
	return &pb.GetSnapshotResponse{Snapshot: snap}, nil
}

// ListChannels implements the IDL method.
func (s *Server) ListChannels(_ context.Context, _ *pb.ListChannelsRequest) (*pb.ListChannelsResponse, error) {
	return &pb.ListChannelsResponse{ChannelIds: s.m.Channels()}, nil
}
