// Command cabi is the C glue of the sdskit core: built with
//
//	go build -buildmode=c-shared -o build/libsdskit.so ./core/cabi
//
// it is the shared library every non-Go, non-wasm SDK loads (the Python SDK with
// ctypes). Its ABI is declared by gen/c/sdskit.h, generated from the IDL (ABI version,
// IDL hash, error codes, service names, method ids, capability bits, prototypes); this
// package includes that header, so the compiler checks every export against it.
//
// The ABI is handle-based and its payloads are the IDL's protobuf messages: a manager is
// created from CreateRequest bytes and called by method id with request bytes; every
// answer is sdskit.v1.Result bytes (the response or a typed Error) in a buffer the host
// releases with sdskit_free. Every int32_t status is the Result's error code (0 for a
// value). The core keeps no pointer the host passes in beyond the call that received it:
// a request is read in place while its call runs and must stay unchanged until then.
//
// Host services (persistence, retrieval hints, events) are begin-style: the core calls
// the host's begin(user_data, token, service, method_id, req, len) through a C
// trampoline; begin returns at once and the host later calls sdskit_complete(token,
// result) exactly once, from any thread (also from inside begin). The Go side waits for
// the completion in the goroutine of the operation that needs it, holding none of the
// engine's locks; core/glue keeps one call in flight per host service and manager. A
// token that is unknown or already completed is an INVALID_ARGUMENT status, never a
// crash.
//
// Every export recovers panics into an INTERNAL Result: a panic never crosses into the
// host. NULL pointers, unknown handles, unknown method ids, unknown capability bits and
// clocks are INVALID_ARGUMENT; a call on a closed manager is CLOSED, while closing it
// again succeeds (Close is idempotent, as in the Go SDK and the conformance scenarios).
// See docs/python.md for the host side and core/cabi/ctest for a C host.
//
// The Go runtime cannot be unloaded and does not survive fork(): load the library once
// per process, and start child processes with spawn/forkserver. Its collector runs at
// GOGC=400 unless the GOGC environment variable says otherwise (see init).
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../gen/c
#include <stdlib.h>
#include "sdskit.h"
#include "trampoline.h"
*/
import "C"

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"time"
	"unsafe"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/glue"
	"github.com/sdskit/sdskit/core/profile"
	"github.com/sdskit/sdskit/core/sdserr"
	_ "github.com/sdskit/sdskit/core/store/sqlite" // the embedded SQLite backend (PersistenceChoice.sqlite)
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func main() {}

// Limits of what a host may pass in one call (C.GoBytes takes an int).
const maxInput = 1<<31 - 1

// defaultGCPercent is the collector's target when the host does not set GOGC. The live
// heap of the library is small (the IDL's descriptors, the managers' bounded state)
// while every call allocates the ~19 KB messages it returns, so the default of 100
// collects every few dozen calls; at 400 a Python wrap costs about a third less
// (docs/benchmarks.md) for a few MB more of heap.
const defaultGCPercent = 400

func init() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

var (
	registry = glue.NewRegistry()
	calls    = &pendingCalls{waiting: map[uint64]chan []byte{}}
	clocks   = &clockTable{byHandle: map[uint64]*clock.Manual{}}
	idlHash  = C.CString(pb.IDLHash) // static: handed out by sdskit_idl_hash, never freed

	serviceNamesMu sync.Mutex
	serviceNames   = map[string]*C.char{} // static C strings of the host service names
)

// --- exports ----------------------------------------------------------------------

//export sdskit_abi_version
func sdskit_abi_version() C.uint32_t { return C.uint32_t(pb.ABIVersion) }

//export sdskit_idl_hash
func sdskit_idl_hash() *C.sdskit_cchar { return (*C.sdskit_cchar)(idlHash) }

//export sdskit_create
func sdskit_create(req *C.sdskit_cbytes, reqLen C.size_t, begin C.sdskit_begin_fn, userData unsafe.Pointer,
	caps C.uint32_t, clk C.uint64_t, outHandle *C.uint64_t, outResult *C.sdskit_buf) (rc C.int32_t) {
	const op = "Create"
	defer recoverInto(op, outResult, &rc)
	if outHandle == nil {
		return fail(outResult, sdserr.New(sdserr.InvalidArgument, op, "out_handle is NULL"))
	}
	*outHandle = 0
	in, err := input(op, "req", req, reqLen)
	if err != nil {
		return fail(outResult, err)
	}
	gcaps, err := capabilities(uint32(caps))
	if err != nil {
		return fail(outResult, err)
	}
	var hostCall glue.HostCall
	if gcaps != (glue.Capabilities{}) {
		if begin == nil {
			return fail(outResult, sdserr.New(sdserr.InvalidArgument, op, "caps name host services but begin is NULL"))
		}
		h := &host{begin: begin, userData: C.uintptr_t(uintptr(userData))}
		hostCall = h.call
	}
	var opts glue.Options
	if clk != 0 {
		c := clocks.get(uint64(clk))
		if c == nil {
			return fail(outResult, sdserr.New(sdserr.InvalidArgument, op, "unknown clock handle %d", uint64(clk)))
		}
		opts.Clock = c
	}
	h, res := registry.CreateWithOptions(context.Background(), in, gcaps, hostCall, opts)
	if h != 0 {
		liveHandles.Store(h, struct{}{})
	}
	*outHandle = C.uint64_t(h)
	return answer(outResult, res)
}

//export sdskit_call
func sdskit_call(handle C.uint64_t, methodID C.uint32_t, req *C.sdskit_cbytes, reqLen C.size_t, outResult *C.sdskit_buf) (rc C.int32_t) {
	const op = "Call"
	defer recoverInto(op, outResult, &rc)
	if outResult == nil {
		return C.int32_t(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT)
	}
	// The request is read in place: dispatch decodes it (bytes fields may alias it while
	// the call runs) and the core copies whatever it keeps, so the host's buffer need not
	// be copied first.
	in, err := view(op, "req", req, reqLen)
	if err != nil {
		return fail(outResult, err)
	}
	var a cAlloc
	return a.answer(outResult, call(uint64(handle), uint32(methodID), in, a.alloc))
}

// Handles of live and of closed managers: calls on a closed one are CLOSED and a second
// close succeeds (Close is idempotent, as in the Go SDK and the conformance scenarios),
// while a handle that was never issued is INVALID_ARGUMENT.
var liveHandles, closedHandles sync.Map

// call dispatches a method on a manager, answering CLOSED for a closed one. The Result
// of the dispatch is in memory from alloc (nil: the Go heap); the others in the Go heap.
func call(handle uint64, methodID uint32, req []byte, alloc pb.Alloc) []byte {
	isClose := methodID == pb.ReliabilityManager_Close_MethodID
	if _, closed := closedHandles.Load(handle); closed {
		if isClose {
			return glue.ValueResult(&pb.CloseResponse{})
		}
		name := "Call"
		if m, ok := pb.LookupReliabilityManagerMethod(methodID); ok {
			name = m.Name
		}
		return glue.ErrorResult(sdserr.New(sdserr.Closed, name, "the manager is closed"))
	}
	if _, live := liveHandles.Load(handle); live && isClose {
		// Tombstone first: concurrent calls see CLOSED, never an unknown handle.
		if _, already := closedHandles.LoadOrStore(handle, struct{}{}); already {
			return glue.ValueResult(&pb.CloseResponse{})
		}
		liveHandles.Delete(handle)
	}
	return registry.CallInto(context.Background(), handle, methodID, req, alloc)
}

//export sdskit_close
func sdskit_close(handle C.uint64_t, outResult *C.sdskit_buf) (rc C.int32_t) {
	defer recoverInto("Close", outResult, &rc)
	req, _ := proto.Marshal(&pb.CloseRequest{})
	return answer(outResult, call(uint64(handle), pb.ReliabilityManager_Close_MethodID, req, nil))
}

//export sdskit_complete
func sdskit_complete(token C.uint64_t, result *C.sdskit_cbytes, resultLen C.size_t) (rc C.int32_t) {
	defer recoverInto("Complete", nil, &rc)
	in, err := input("Complete", "result", result, resultLen)
	if err != nil {
		return code(err)
	}
	if !calls.complete(uint64(token), in) {
		return C.int32_t(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT)
	}
	return 0
}

//export sdskit_free
func sdskit_free(data *C.uint8_t) {
	defer func() { _ = recover() }()
	if data != nil {
		C.free(unsafe.Pointer(data))
	}
}

//export sdskit_clock_new
func sdskit_clock_new(startUnixMs C.int64_t) (h C.uint64_t) {
	defer func() {
		if recover() != nil {
			h = 0
		}
	}()
	return C.uint64_t(clocks.add(clock.NewManual(time.UnixMilli(int64(startUnixMs)))))
}

//export sdskit_clock_advance
func sdskit_clock_advance(clk C.uint64_t, ms C.int64_t) (rc C.int32_t) {
	defer recoverInto("ClockAdvance", nil, &rc)
	c := clocks.get(uint64(clk))
	if c == nil || ms < 0 {
		return C.int32_t(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT)
	}
	c.Advance(time.Duration(ms) * time.Millisecond)
	return 0
}

//export sdskit_clock_set
func sdskit_clock_set(clk C.uint64_t, unixMs C.int64_t) (rc C.int32_t) {
	defer recoverInto("ClockSet", nil, &rc)
	c := clocks.get(uint64(clk))
	if c == nil {
		return C.int32_t(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT)
	}
	c.Set(time.UnixMilli(int64(unixMs)))
	return 0
}

//export sdskit_clock_now
func sdskit_clock_now(clk C.uint64_t) (ms C.int64_t) {
	defer func() {
		if recover() != nil {
			ms = -1
		}
	}()
	c := clocks.get(uint64(clk))
	if c == nil {
		return -1
	}
	return C.int64_t(c.Now().UnixMilli())
}

//export sdskit_clock_free
func sdskit_clock_free(clk C.uint64_t) (rc C.int32_t) {
	defer recoverInto("ClockFree", nil, &rc)
	if !clocks.remove(uint64(clk)) {
		return C.int32_t(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT)
	}
	return 0
}

//export sdskit_testing_bloom
func sdskit_testing_bloom(idsJSON *C.sdskit_cchar, idsLen C.size_t, capacity C.uint32_t, errorRate C.double, out *C.sdskit_buf) (rc C.int32_t) {
	const op = "TestingBloom"
	defer recoverInto(op, out, &rc)
	if out == nil {
		return C.int32_t(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT)
	}
	raw, err := input(op, "ids_json", (*C.sdskit_cbytes)(unsafe.Pointer(idsJSON)), idsLen)
	if err != nil {
		return fail(out, err)
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		return fail(out, sdserr.New(sdserr.InvalidArgument, op, "ids_json is not a JSON array of strings: %v", err))
	}
	f, err := specFilter(capacity, errorRate)
	if err != nil {
		return fail(out, sdserr.New(sdserr.InvalidArgument, op, "%v", err))
	}
	for _, id := range ids {
		f.Add(id)
	}
	res, err := proto.Marshal(&pb.Result{Result: &pb.Result_Value{Value: profile.Spec.EncodeBloom(f)}})
	if err != nil {
		return fail(out, sdserr.New(sdserr.Serialization, op, "%v", err))
	}
	return answer(out, res)
}

//export sdskit_testing_bloom_contains
func sdskit_testing_bloom_contains(b *C.sdskit_cbytes, bLen C.size_t, id *C.sdskit_cchar, idLen C.size_t,
	capacity C.uint32_t, errorRate C.double, outContains *C.int32_t) (rc C.int32_t) {
	const op = "TestingBloomContains"
	defer recoverInto(op, nil, &rc)
	if outContains == nil {
		return C.int32_t(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT)
	}
	raw, err := input(op, "bloom", b, bLen)
	if err != nil {
		return code(err)
	}
	idb, err := input(op, "id", (*C.sdskit_cbytes)(unsafe.Pointer(id)), idLen)
	if err != nil {
		return code(err)
	}
	k, m, err := bloomSize(capacity, errorRate)
	if err != nil {
		return C.int32_t(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT)
	}
	f, err := profile.Spec.DecodeBloom(raw, k, m)
	if err != nil {
		return C.int32_t(pb.ErrorCode_ERROR_CODE_DESERIALIZATION)
	}
	*outContains = 0
	if f.Test(string(idb)) {
		*outContains = 1
	}
	return 0
}

// --- helpers ------------------------------------------------------------------------

// input copies a host buffer into Go memory; NULL is allowed only with length 0.
func input(op, name string, p *C.sdskit_cbytes, n C.size_t) ([]byte, error) {
	v, err := view(op, name, p, n)
	return bytes.Clone(v), err
}

// view is the host buffer itself, valid until the export returns: only for what is not
// retained beyond it. NULL is allowed only with length 0.
func view(op, name string, p *C.sdskit_cbytes, n C.size_t) ([]byte, error) {
	switch {
	case n == 0:
		return nil, nil
	case p == nil:
		return nil, sdserr.New(sdserr.InvalidArgument, op, "%s is NULL but its length is %d", name, uint64(n))
	case uint64(n) > maxInput:
		return nil, sdserr.New(sdserr.MessageTooLarge, op, "%s is %d bytes, over the ABI limit of %d", name, uint64(n), maxInput)
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)), nil
}

// answer hands Result bytes to the host and returns their status.
func answer(out *C.sdskit_buf, result []byte) C.int32_t {
	if out != nil {
		out.data = (*C.uint8_t)(C.CBytes(result))
		out.len = C.size_t(len(result))
	}
	return C.int32_t(resultCode(result))
}

// cAlloc is the pb.Alloc of one call: it hands out C memory, so that the dispatch
// marshals a Result (~19 KB for a message) where the host reads it, instead of into the
// Go heap and then copying it. Only its last allocation is live; an earlier one (a
// response that failed to marshal) is freed when the next is made.
type cAlloc struct{ p unsafe.Pointer }

func (a *cAlloc) alloc(n int) []byte {
	a.release()
	p := C.malloc(C.size_t(max(n, 1)))
	if p == nil {
		panic(fmt.Sprintf("cannot allocate %d bytes of C memory", n))
	}
	a.p = p
	return unsafe.Slice((*byte)(p), n)
}

func (a *cAlloc) release() {
	if a.p != nil {
		C.free(a.p)
		a.p = nil
	}
}

// answer hands the Result to the host: in place when it is a's allocation, else (a
// Result the glue made in the Go heap) as a copy, a's allocation then being freed.
func (a *cAlloc) answer(out *C.sdskit_buf, result []byte) C.int32_t {
	if a.p == nil || len(result) == 0 || unsafe.Pointer(&result[0]) != a.p {
		a.release()
		return answer(out, result)
	}
	out.data = (*C.uint8_t)(a.p)
	out.len = C.size_t(len(result))
	a.p = nil
	return C.int32_t(resultCode(result))
}

// fail hands an error Result to the host and returns its code.
func fail(out *C.sdskit_buf, err error) C.int32_t { return answer(out, glue.ErrorResult(err)) }

// code is the status of an error.
func code(err error) C.int32_t { return C.int32_t(pb.ErrorFrom(err).GetCode()) }

// recoverInto turns a panic of an export into an INTERNAL status (and Result, when the
// export has a result buffer). Deferred first in every export.
func recoverInto(op string, out *C.sdskit_buf, rc *C.int32_t) {
	if p := recover(); p != nil {
		err := sdserr.New(sdserr.Internal, op, "panic: %v", p)
		if out != nil {
			*rc = fail(out, err)
			return
		}
		*rc = code(err)
	}
}

// resultCode returns the error code of encoded Result bytes (0 for a value), without
// decoding the value.
func resultCode(b []byte) pb.ErrorCode {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return pb.ErrorCode_ERROR_CODE_INTERNAL
		}
		b = b[n:]
		if num == 2 && typ == protowire.BytesType { // Result.error
			e, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return pb.ErrorCode_ERROR_CODE_INTERNAL
			}
			return errorCode(e)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return pb.ErrorCode_ERROR_CODE_INTERNAL
		}
		b = b[n:]
	}
	return 0
}

// errorCode returns Error.code of an encoded Error (INTERNAL when it has none).
func errorCode(b []byte) pb.ErrorCode {
	c := pb.ErrorCode_ERROR_CODE_INTERNAL
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return pb.ErrorCode_ERROR_CODE_INTERNAL
		}
		b = b[n:]
		if num == 1 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return pb.ErrorCode_ERROR_CODE_INTERNAL
			}
			if v != 0 {
				c = pb.ErrorCode(int32(v))
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return pb.ErrorCode_ERROR_CODE_INTERNAL
		}
		b = b[n:]
	}
	return c
}

// capabilities maps the caps word (SDSKIT_CAP_* of the generated header) to the glue's.
func capabilities(caps uint32) (glue.Capabilities, error) {
	known := uint32(C.SDSKIT_CAP_PERSISTENCE | C.SDSKIT_CAP_PERSISTENCE_TRANSACTIONS |
		C.SDSKIT_CAP_RETRIEVAL_HINT_PROVIDER | C.SDSKIT_CAP_EVENT_SINK)
	if caps&^known != 0 {
		return glue.Capabilities{}, sdserr.New(sdserr.InvalidArgument, "Create", "unknown capability bits 0x%x", caps&^known)
	}
	c := glue.Capabilities{
		Persistence:  caps&C.SDSKIT_CAP_PERSISTENCE != 0,
		Transactions: caps&C.SDSKIT_CAP_PERSISTENCE_TRANSACTIONS != 0,
		Hints:        caps&C.SDSKIT_CAP_RETRIEVAL_HINT_PROVIDER != 0,
		Events:       caps&C.SDSKIT_CAP_EVENT_SINK != 0,
	}
	if c.Transactions && !c.Persistence {
		return glue.Capabilities{}, sdserr.New(sdserr.InvalidArgument, "Create", "the Transactions capability needs the Persistence capability")
	}
	return c, nil
}

// host is the host side of one manager: its begin function and user data.
type host struct {
	begin    C.sdskit_begin_fn
	userData C.uintptr_t
}

// call is the manager's glue.HostCall: it registers a token, calls begin (holding no
// lock) and waits for sdskit_complete of that token.
func (h *host) call(ctx context.Context, service string, methodID uint32, req []byte) ([]byte, error) {
	svc := serviceName(service)
	tok, ch := calls.add()
	var p *C.sdskit_cbytes
	if len(req) > 0 {
		p = (*C.sdskit_cbytes)(unsafe.Pointer(&req[0])) // pinned for the call; the host copies
	}
	C.sdskit_cabi_invoke_begin(h.begin, h.userData, C.uint64_t(tok), svc, C.uint32_t(methodID), p, C.size_t(len(req)))
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		calls.drop(tok)
		return nil, fmt.Errorf("host %s method %d: %w", service, methodID, ctx.Err())
	}
}

// serviceName returns the static C string of a service name.
func serviceName(s string) *C.char {
	serviceNamesMu.Lock()
	defer serviceNamesMu.Unlock()
	c, ok := serviceNames[s]
	if !ok {
		c = C.CString(s)
		serviceNames[s] = c
	}
	return c
}

// pendingCalls are the host calls waiting for sdskit_complete, by token. Tokens are
// never reused.
type pendingCalls struct {
	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan []byte
}

func (p *pendingCalls) add() (uint64, chan []byte) {
	ch := make(chan []byte, 1)
	p.mu.Lock()
	p.next++
	tok := p.next
	p.waiting[tok] = ch
	p.mu.Unlock()
	return tok, ch
}

// complete delivers the result of token; false when the token is unknown or done.
func (p *pendingCalls) complete(tok uint64, result []byte) bool {
	p.mu.Lock()
	ch, ok := p.waiting[tok]
	delete(p.waiting, tok)
	p.mu.Unlock()
	if ok {
		if result == nil {
			result = []byte{}
		}
		ch <- result // buffered: never blocks
	}
	return ok
}

func (p *pendingCalls) drop(tok uint64) {
	p.mu.Lock()
	delete(p.waiting, tok)
	p.mu.Unlock()
}

// clockTable holds the manual clocks by handle (0 is never issued).
type clockTable struct {
	mu       sync.Mutex
	next     uint64
	byHandle map[uint64]*clock.Manual
}

func (t *clockTable) add(c *clock.Manual) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	t.byHandle[t.next] = c
	return t.next
}

func (t *clockTable) get(h uint64) *clock.Manual {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byHandle[h]
}

func (t *clockTable) remove(h uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.byHandle[h]
	delete(t.byHandle, h)
	return ok
}

func bloomSize(capacity C.uint32_t, rate C.double) (k, m uint, err error) {
	c, p := 10000, 0.001
	if capacity != 0 {
		c = int(capacity)
	}
	if rate != 0 {
		p = float64(rate)
	}
	return bloom.Size(c, p)
}

func specFilter(capacity C.uint32_t, rate C.double) (*bloom.Filter, error) {
	k, m, err := bloomSize(capacity, rate)
	if err != nil {
		return nil, err
	}
	return bloom.New(k, m, profile.Spec.Hash)
}
