// Package glue holds what the C and WebAssembly glue layers share: a registry of
// managers addressed by integer handles, created from IDL CreateRequest bytes and called
// by method id with protobuf request bytes, answering IDL Result bytes — so the ABI
// never changes when the API grows, only the generated code does. Host services
// (persistence, retrieval hints, events) are reached through one HostCall per manager.
package glue

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/sdskit/sdskit/core/api"
	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/sdserr"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

// HostCall performs one call into a host-implemented service (pb.Persistence_ServiceName,
// pb.RetrievalHintProvider_ServiceName or pb.EventSink_ServiceName) and returns its
// Result bytes. The glue serialises calls per service and manager: at most one is in
// flight at a time.
type HostCall func(ctx context.Context, service string, methodID uint32, req []byte) ([]byte, error)

// Capabilities says which host services a host implements.
type Capabilities struct {
	Persistence  bool // the Persistence service (required when CreateRequest selects host persistence)
	Transactions bool // its optional Begin/Commit/Rollback group
	Hints        bool // RetrievalHintProvider
	Events       bool // EventSink
}

// Registry maps handles to managers; it is safe for concurrent use. Handle 0 is never
// issued, so hosts can use it as "none".
type Registry struct {
	mu      sync.Mutex
	next    uint64
	servers map[uint64]*api.Server
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{servers: make(map[uint64]*api.Server)} }

// Options are per-manager settings outside the IDL, for hosts that drive time
// themselves (conformance runners, simulators) or route the core's logs.
type Options struct {
	// Clock overrides the wall clock.
	Clock clock.Clock
	// Logger overrides slog.Default().
	Logger *slog.Logger
	// ConcurrentHost lets calls into one host service overlap instead of serialising
	// them: for hosts that accept concurrent calls, such as JavaScript's single-threaded
	// event loop awaiting Promises, so that a slow call for one channel does not hold up
	// the other channels. The core never overlaps two calls for the same channel.
	ConcurrentHost bool
	// BatchPersistence sends each persistence batch to the host as one call instead of
	// one call per operation: method BatchMethodID of the Persistence service, whose
	// request is a PersistenceBatch and whose value is Empty. The host applies the batch
	// against its typed Persistence (Begin, the ops in order, Commit; Rollback when an op
	// fails). LoadAllForChannel stays a call of its own. Caps.Transactions is then ignored.
	BatchPersistence bool
}

// Create decodes a CreateRequest, builds the manager with the host's services and
// returns its handle, or 0 and Result bytes carrying the error.
func (r *Registry) Create(ctx context.Context, createReq []byte, caps Capabilities, call HostCall) (handle uint64, result []byte) {
	return r.CreateWithOptions(ctx, createReq, caps, call, Options{})
}

// CreateWithOptions is Create with per-manager Options.
func (r *Registry) CreateWithOptions(ctx context.Context, createReq []byte, caps Capabilities, call HostCall, opts Options) (handle uint64, result []byte) {
	defer func() {
		if p := recover(); p != nil {
			handle, result = 0, ErrorResult(sdserr.New(sdserr.Internal, "Create", "panic: %v", p))
		}
	}()
	var req pb.CreateRequest
	if err := proto.Unmarshal(createReq, &req); err != nil {
		return 0, ErrorResult(sdserr.New(sdserr.InvalidArgument, "Create", "CreateRequest does not decode: %v", err))
	}
	host := api.Host{Clock: opts.Clock, Logger: opts.Logger}
	lane := serialised
	if opts.ConcurrentHost {
		lane = concurrent
	}
	if call != nil {
		if caps.Persistence {
			pc := lane(call, pb.Persistence_ServiceName) // one lane for the whole service
			p := pb.NewPersistenceClient(pc)
			if opts.BatchPersistence || req.GetHostPersistenceBatches() {
				host.Persistence = newBatching(pc, p)
			} else if caps.Transactions {
				host.Persistence = struct {
					pb.Persistence
					pb.PersistenceTransactions
				}{p, pb.NewPersistenceTransactionsClient(pc)}
			} else {
				host.Persistence = p
			}
		}
		if caps.Hints {
			host.Hints = pb.NewRetrievalHintProviderClient(lane(call, pb.RetrievalHintProvider_ServiceName))
		}
		if caps.Events {
			host.Events = pb.NewEventSinkClient(lane(call, pb.EventSink_ServiceName))
		}
	}
	srv, err := api.Create(ctx, &req, host)
	if err != nil {
		return 0, ErrorResult(err)
	}
	r.mu.Lock()
	r.next++
	h := r.next
	r.servers[h] = srv
	r.mu.Unlock()
	return h, ValueResult(&pb.CreateResponse{})
}

// serialised turns a HostCall into a pb.CallFunc for one service, with one call in flight.
func serialised(call HostCall, service string) pb.CallFunc {
	var mu sync.Mutex
	return func(ctx context.Context, methodID uint32, req []byte) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		return call(ctx, service, methodID, req)
	}
}

// concurrent turns a HostCall into a pb.CallFunc for one service, without serialising.
func concurrent(call HostCall, service string) pb.CallFunc {
	return func(ctx context.Context, methodID uint32, req []byte) ([]byte, error) {
		return call(ctx, service, methodID, req)
	}
}

// Call dispatches one ReliabilityManager method on the manager behind handle and returns
// Result bytes. Unknown handles give INVALID_ARGUMENT; a Close call also releases the
// handle.
func (r *Registry) Call(ctx context.Context, handle uint64, methodID uint32, req []byte) []byte {
	return r.CallInto(ctx, handle, methodID, req, nil)
}

// CallInto is Call writing the Result into memory from alloc (see pb.Alloc; the Go heap
// when nil). req is not retained after CallInto returns.
func (r *Registry) CallInto(ctx context.Context, handle uint64, methodID uint32, req []byte, alloc pb.Alloc) []byte {
	r.mu.Lock()
	srv := r.servers[handle]
	r.mu.Unlock()
	if srv == nil {
		return alloc.Place(ErrorResult(sdserr.New(sdserr.InvalidArgument, "Call", "unknown or closed manager handle %d", handle)))
	}
	out := pb.DispatchReliabilityManagerInto(ctx, srv, methodID, req, alloc)
	if methodID == pb.ReliabilityManager_Close_MethodID {
		r.mu.Lock()
		delete(r.servers, handle)
		r.mu.Unlock()
	}
	return out
}

// Close closes and releases the manager behind handle (idempotent: an unknown handle
// is INVALID_ARGUMENT, which hosts may ignore on double close).
func (r *Registry) Close(ctx context.Context, handle uint64) []byte {
	req, _ := proto.Marshal(&pb.CloseRequest{})
	return r.Call(ctx, handle, pb.ReliabilityManager_Close_MethodID, req)
}

// Len returns the number of live managers.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.servers)
}

// ValueResult encodes a Result carrying m.
func ValueResult(m proto.Message) []byte {
	v, err := proto.Marshal(m)
	if err != nil {
		return ErrorResult(sdserr.New(sdserr.Serialization, "Result", "%v", err))
	}
	out, _ := proto.Marshal(&pb.Result{Result: &pb.Result_Value{Value: v}})
	return out
}

// ErrorResult encodes a Result carrying err as a typed Error.
func ErrorResult(err error) []byte {
	out, mErr := proto.Marshal(&pb.Result{Result: &pb.Result_Error{Error: pb.ErrorFrom(err)}})
	if mErr != nil { // an Error always encodes; keep the host informed regardless
		return []byte(fmt.Sprintf("sdskit: cannot encode error %v: %v", err, mErr))
	}
	return out
}
