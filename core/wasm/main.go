//go:build js && wasm

// Command wasm is the WebAssembly glue of the sdskit core (GOOS=js GOARCH=wasm): a thin
// layer over core/glue that hands JavaScript one small object,
//
//	{
//	  abiVersion: number, idlHash: string,
//	  create(createRequest: Uint8Array, host?: Host): Promise<{handle: number, result: Uint8Array}>,
//	  call(handle: number, methodId: number, request: Uint8Array): Promise<Uint8Array>,
//	  close(handle: number): Promise<Uint8Array>,
//	  live(): Promise<number>,
//	  testing: { bloom(ids, capacity, errorRate): Promise<Uint8Array>,
//	             bloomContains(bytes, id, capacity, errorRate): Promise<boolean> },
//	  fast: boolean, stageAddr: number, stageSize: number,   // the fast path, below
//	}
//
// where Host is
//
//	{ persistence?, transactions?, batches?, hints?, events?: boolean,
//	  call?(service: string, methodId: number, request: Uint8Array): Uint8Array | undefined | Promise<…>,
//	  nowMs?(): number }
//
// Payloads are the IDL's protobuf messages: request bytes in, sdskit.v1.Result bytes out
// (create's result carries a CreateResponse or the Error). Every exported function
// returns a Promise at once and does its work in a goroutine: blocking inside a js.FuncOf
// callback would stop the JavaScript event loop and kill the runtime. The promises never
// reject — every failure, bad arguments included, is an Error inside the Result bytes.
//
// Host services (persistence, retrieval hints, events) are one JavaScript function,
// host.call, answering Result bytes, or a Promise of them: the goroutine of the calling
// operation attaches then/catch and waits on a channel, so the event loop keeps running
// and other channels' calls proceed meanwhile. Calls into a host service may overlap
// (glue.Options.ConcurrentHost), but never two for the same channel: the core holds a
// channel's lock across its persistence batch. A host function that throws,
// rejects or answers something other than a Uint8Array fails that host call; the core
// reports a failed persistence call as PERSISTENCE and rolls the operation back. An
// answer of undefined is a success without a value (Result{value: Empty}). With
// host.batches, the core sends each persistence batch as one call: method id 0
// (glue.BatchMethodID) of the Persistence service with a PersistenceBatch, which the host
// applies against its typed backend (see glue.Options.BatchPersistence).
// host.nowMs, when present, replaces the wall clock (Unix milliseconds; tests).
//
// Fast path. Every crossing of syscall/js costs tens of microseconds (the js.Value
// bookkeeping of the callback machinery), so a loader may pass, as the program's second
// argument, the name of a global helper object
//
//	{ promise(id): Promise, settle(id, ptr, len), host(fn, service, methodId, ptr, len) }
//
// Then call() resolves through settle (the loader copies the Result bytes out of the
// module's memory at ptr), host functions are called through host (which copies the
// request out of memory), and call() accepts the request as a length instead of a
// Uint8Array: the loader has written it into the staging buffer at api.stageAddr (at most
// api.stageSize bytes) right before the call. Nothing else changes; without the helper
// everything works through Uint8Arrays.
//
// Synchronous calls. A manager whose host offers no persistence and no retrieval hints
// (its only host service is the event sink) never waits for a Promise, so its calls can
// run to completion inside one WebAssembly export, without syscall/js: the module exports
//
//	sdskitCallSync(handle, methodId, requestLength: i32) → i32
//
// which runs the call on the request staged at api.stageAddr and returns the length of
// its Result bytes, found at api.syncResultAddr (a pointer) — or -1 when the manager is
// not eligible, in which case the loader makes the ordinary call() with the request still
// staged (always for StartPeriodicTasks, Reset and Close). api.syncResultAddr holds four
// little-endian uint32: the Result's address and length, then the address and length of
// the call's events — the event-sink calls it made, queued instead of crossing into
// JavaScript, each a (method id, length) pair of uint32 and the request bytes — which the
// loader hands to the manager's host.call before resolving the call. api.syncSeqAddr
// points at a counter every completed synchronous call increments: a loader that finds
// it unchanged must not trust the answer. The loader must not call the export while the
// module is running — from a host callback, say —, so it defers calls made from host
// callbacks. About 60 ns per crossing instead of tens of microseconds.
//
// Startup: the loader passes the name of a global callback as the program's first
// argument; main calls it with the object and then parks forever.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall/js"
	"time"
	"unsafe"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/glue"
	"github.com/sdskit/sdskit/core/profile"
	"github.com/sdskit/sdskit/core/sdserr"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

var (
	registry   = glue.NewRegistry()
	jsPromise  = js.Global().Get("Promise")
	jsUint8    = js.Global().Get("Uint8Array")
	jsObject   = js.Global().Get("Object")
	pendingJob func(resolve, reject js.Value) // handed from newPromise to executor
	executor   js.Func

	// fast is the loader's helper object (see the package doc); fastOn says it is there.
	fast    struct{ promise, settle, host js.Value }
	fastOn  bool
	fastSeq float64 // ids of the promises made by fast.promise

	// stage is where a fast loader writes a request before call(handle, methodId, len).
	stage [256 << 10]byte

	// okEmpty is Result{value: Empty}: what an undefined host answer means.
	okEmpty = glue.ValueResult(&pb.Empty{})

	// syncManagers are the handles sdskitCallSync may run (managers whose only host
	// service is the event sink), with their per-manager synchronous-call flag.
	syncManagers sync.Map // uint64 → *syncState
	// syncResult is the Result of the last synchronous call (kept until the next one),
	// syncResultPtr its address and length, syncSeq the completed-call counter; the
	// loader reads the last three from memory.
	syncResult []byte
	// syncEvents holds the event-sink calls of the last synchronous call, each as
	// (method id, length: little-endian uint32) and the request bytes.
	syncEvents    []byte
	syncResultPtr [4]uint32 // Result address and length, events address and length
	syncSeq       uint32
)

// syncState marks a manager's synchronous call in progress: its event-sink calls are
// then queued for the loader (queueEvent) instead of crossing into JavaScript.
type syncState struct{ active bool }

func (s *syncState) run(f func() []byte) []byte {
	s.active = true
	defer func() { s.active = false }()
	return f()
}

// callSync runs one call of an eligible manager to completion (see the package doc).
//
//go:wasmexport sdskitCallSync
func callSync(handle, methodID, reqLen uint32) int32 {
	switch methodID {
	case pb.ReliabilityManager_StartPeriodicTasks_MethodID, pb.ReliabilityManager_Reset_MethodID, pb.ReliabilityManager_Close_MethodID:
		// They start or stop the periodic goroutine, whose timers are only armed on the
		// scheduler's way back to the event loop, which an export does not take.
		return -1
	}
	v, ok := syncManagers.Load(uint64(handle))
	if !ok || int(reqLen) > len(stage) {
		return -1
	}
	st := v.(*syncState)
	// No copy of the request: nothing can write the staging buffer before this call
	// returns (the loader defers calls made meanwhile), and decoding copies what it keeps.
	req := stage[:reqLen:reqLen]
	syncEvents = syncEvents[:0]
	out := st.run(func() []byte { return registry.Call(context.Background(), uint64(handle), methodID, req) })
	syncResult = out
	syncResultPtr = [4]uint32{addrOf(out), uint32(len(out)), addrOf(syncEvents), uint32(len(syncEvents))}
	syncSeq++
	return int32(len(out))
}

// addrOf is the address of b's first byte in the module's memory (0 when empty).
func addrOf(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

// queueEvent records an event-sink call made during a synchronous call; the loader
// delivers the queue once the call has returned (before resolving it).
func queueEvent(methodID uint32, req []byte) {
	syncEvents = binary.LittleEndian.AppendUint32(syncEvents, methodID)
	syncEvents = binary.LittleEndian.AppendUint32(syncEvents, uint32(len(req)))
	syncEvents = append(syncEvents, req...)
}

// serviceIndex numbers the host services for the fast host helper.
var serviceIndex = map[string]int{pb.Persistence_ServiceName: 0, pb.RetrievalHintProvider_ServiceName: 1, pb.EventSink_ServiceName: 2}

func main() {
	// One executor serves every Promise: newPromise sets pendingJob right before
	// `new Promise(executor)`, which calls the executor synchronously.
	executor = js.FuncOf(func(_ js.Value, args []js.Value) any {
		job := pendingJob
		pendingJob = nil
		if job != nil && len(args) >= 2 {
			job(args[0], args[1])
		}
		return nil
	})
	api := jsObject.New()
	api.Set("abiVersion", pb.ABIVersion)
	api.Set("idlHash", pb.IDLHash)
	api.Set("create", js.FuncOf(create))
	api.Set("call", js.FuncOf(call))
	api.Set("close", js.FuncOf(closeHandle))
	api.Set("live", js.FuncOf(func(js.Value, []js.Value) any {
		return async(func() any { return registry.Len() })
	}))
	testing := jsObject.New()
	testing.Set("bloom", js.FuncOf(bloomEncode))
	testing.Set("bloomContains", js.FuncOf(bloomContains))
	api.Set("testing", testing)
	api.Set("stageAddr", float64(uintptr(unsafe.Pointer(&stage[0]))))
	api.Set("stageSize", len(stage))
	api.Set("syncResultAddr", float64(uintptr(unsafe.Pointer(&syncResultPtr[0]))))
	api.Set("syncSeqAddr", float64(uintptr(unsafe.Pointer(&syncSeq))))

	if len(os.Args) >= 3 {
		if h := js.Global().Get(os.Args[2]); h.Type() == js.TypeObject &&
			h.Get("promise").Type() == js.TypeFunction && h.Get("settle").Type() == js.TypeFunction && h.Get("host").Type() == js.TypeFunction {
			fast.promise, fast.settle, fast.host = h.Get("promise"), h.Get("settle"), h.Get("host")
			fastOn = true
		}
	}
	api.Set("fast", fastOn)

	if len(os.Args) < 2 || js.Global().Get(os.Args[1]).Type() != js.TypeFunction {
		fmt.Fprintln(os.Stderr, "sdskit wasm: start me with the name of a global ready callback as argument 1")
		os.Exit(2)
	}
	js.Global().Get(os.Args[1]).Invoke(api)
	select {} // serve calls forever
}

// jobs hands work to idle workers: goroutines whose stacks have already grown to what a
// call needs (a fresh goroutine per call spends much of its time growing its stack).
var (
	jobs = make(chan func())
	idle atomic.Int32
)

// maxIdle bounds the workers kept waiting after a burst of concurrent calls.
const maxIdle = 32

// submit runs f on an idle worker, or on a new one; it never blocks.
func submit(f func()) {
	select {
	case jobs <- f:
	default:
		go worker(f)
	}
}

func worker(f func()) {
	for {
		f()
		if idle.Add(1) > maxIdle {
			idle.Add(-1)
			return
		}
		f = <-jobs
		idle.Add(-1)
	}
}

// newPromise returns a Promise whose executor runs job synchronously (job must not block:
// it starts a goroutine).
func newPromise(job func(resolve, reject js.Value)) js.Value {
	pendingJob = job
	return jsPromise.New(executor)
}

// async runs f in a goroutine and returns a Promise of its result. A panic in f becomes a
// rejection (f itself turns every expected failure into Result bytes).
func async(f func() any) js.Value {
	return newPromise(func(resolve, reject js.Value) {
		submit(func() {
			var out any
			defer func() {
				if p := recover(); p != nil {
					reject.Invoke(js.Global().Get("Error").New(fmt.Sprintf("sdskit wasm: panic: %v", p)))
					return
				}
				resolve.Invoke(out)
			}()
			out = f()
		})
	})
}

// asyncResult runs f in a goroutine and resolves with its Result bytes; a panic becomes
// an INTERNAL error Result.
func asyncResult(op string, f func() []byte) js.Value {
	if fastOn {
		fastSeq++
		id := fastSeq
		p := fast.promise.Invoke(id)
		submit(func() {
			var out []byte
			defer func() {
				if p := recover(); p != nil {
					out = glue.ErrorResult(sdserr.New(sdserr.Internal, op, "panic: %v", p))
				}
				fast.settle.Invoke(id, ptrOf(out), len(out))
				runtime.KeepAlive(out)
			}()
			out = f()
		})
		return p
	}
	return newPromise(func(resolve, _ js.Value) {
		submit(func() {
			var out []byte
			defer func() {
				if p := recover(); p != nil {
					out = glue.ErrorResult(sdserr.New(sdserr.Internal, op, "panic: %v", p))
				}
				resolve.Invoke(toJS(out))
			}()
			out = f()
		})
	})
}

// invalid returns a resolved Promise of an INVALID_ARGUMENT Result.
func invalid(op, format string, args ...any) js.Value {
	res := glue.ErrorResult(sdserr.New(sdserr.InvalidArgument, op, format, args...))
	return jsPromise.Call("resolve", toJS(res))
}

// ptrOf is the address of b's first byte in the module's memory (0 when empty).
func ptrOf(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	return float64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

func toJS(b []byte) js.Value {
	u := jsUint8.New(len(b))
	js.CopyBytesToJS(u, b)
	return u
}

// bytesArg copies a Uint8Array argument into Go memory.
func bytesArg(v js.Value) ([]byte, bool) {
	if v.Type() != js.TypeObject || !v.InstanceOf(jsUint8) {
		return nil, false
	}
	b := make([]byte, v.Get("length").Int())
	js.CopyBytesToGo(b, v)
	return b, true
}

// uintArg reads a non-negative integral number argument below 2^53.
func uintArg(v js.Value) (uint64, bool) {
	if v.Type() != js.TypeNumber {
		return 0, false
	}
	f := v.Float()
	if f < 0 || f != float64(uint64(f)) || f > 1<<53 {
		return 0, false
	}
	return uint64(f), true
}

func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

// create(createRequest, host?) → Promise<{handle, result}>.
func create(_ js.Value, args []js.Value) any {
	const op = "Create"
	reply := func(handle uint64, result []byte) js.Value {
		o := jsObject.New()
		o.Set("handle", float64(handle))
		o.Set("result", toJS(result))
		return o
	}
	req, ok := bytesArg(arg(args, 0))
	if !ok {
		return jsPromise.Call("resolve", reply(0, glue.ErrorResult(sdserr.New(sdserr.InvalidArgument, op, "createRequest must be a Uint8Array"))))
	}
	host := arg(args, 1)
	var caps glue.Capabilities
	var hostCall glue.HostCall
	st := &syncState{}
	// JavaScript hosts run on one event loop and await Promises: calls into a host
	// service may overlap (calls of one channel never do), so a slow call for one
	// channel does not hold up the others.
	opts := glue.Options{ConcurrentHost: true}
	if host.Type() == js.TypeObject {
		caps = glue.Capabilities{
			Persistence:  host.Get("persistence").Truthy(),
			Transactions: host.Get("transactions").Truthy(),
			Hints:        host.Get("hints").Truthy(),
			Events:       host.Get("events").Truthy(),
		}
		if fn := host.Get("call"); fn.Type() == js.TypeFunction {
			hostCall = jsHostCall(fn, st)
		} else if caps != (glue.Capabilities{}) {
			return jsPromise.Call("resolve", reply(0, glue.ErrorResult(sdserr.New(sdserr.InvalidArgument, op, "host declares services but host.call is not a function"))))
		}
		opts.BatchPersistence = host.Get("batches").Truthy()
		if now := host.Get("nowMs"); now.Type() == js.TypeFunction {
			opts.Clock = jsClock{now}
		}
	} else if !host.IsUndefined() && !host.IsNull() {
		return jsPromise.Call("resolve", reply(0, glue.ErrorResult(sdserr.New(sdserr.InvalidArgument, op, "host must be an object"))))
	}
	return async(func() any {
		h, res := registry.CreateWithOptions(context.Background(), req, caps, hostCall, opts)
		if h != 0 && !caps.Persistence && !caps.Hints && h <= 1<<31-1 {
			syncManagers.Store(h, st)
		}
		return reply(h, res)
	})
}

// call(handle, methodId, request) → Promise<Result bytes>.
func call(_ js.Value, args []js.Value) any {
	const op = "Call"
	h, ok := uintArg(arg(args, 0))
	if !ok {
		return invalid(op, "handle must be a non-negative integer")
	}
	id, ok := uintArg(arg(args, 1))
	if !ok || id > 1<<32-1 {
		return invalid(op, "methodId must be a uint32")
	}
	var req []byte
	if n, isLen := uintArg(arg(args, 2)); isLen && fastOn {
		if n > uint64(len(stage)) {
			return invalid(op, "staged request of %d bytes is over the %d-byte staging buffer", n, len(stage))
		}
		req = append([]byte(nil), stage[:n]...) // the next call reuses the buffer
	} else if req, ok = bytesArg(arg(args, 2)); !ok {
		return invalid(op, "request must be a Uint8Array")
	}
	return asyncResult(op, func() []byte {
		return registry.Call(context.Background(), h, uint32(id), req)
	})
}

// close(handle) → Promise<Result bytes>.
func closeHandle(_ js.Value, args []js.Value) any {
	const op = "Close"
	h, ok := uintArg(arg(args, 0))
	if !ok {
		return invalid(op, "handle must be a non-negative integer")
	}
	syncManagers.Delete(h)
	return asyncResult(op, func() []byte { return registry.Close(context.Background(), h) })
}

// jsHostCall adapts a JavaScript host function to glue.HostCall. It runs in the
// goroutine of the operation that needs the host, never in a js.FuncOf callback, so it
// may wait for a Promise — except during a synchronous call of its manager (st).
func jsHostCall(fn js.Value, st *syncState) glue.HostCall {
	return func(ctx context.Context, service string, methodID uint32, req []byte) (res []byte, err error) {
		if st.active {
			if service == pb.EventSink_ServiceName {
				queueEvent(methodID, req) // a notification: delivered after the call
				return okEmpty, nil
			}
			return nil, fmt.Errorf("host %s method %d called during a synchronous call", service, methodID)
		}
		v, err := invokeHost(fn, service, methodID, req)
		if err != nil {
			return nil, err
		}
		if isThenable(v) {
			if v, err = await(ctx, v); err != nil {
				return nil, fmt.Errorf("host %s method %d rejected: %w", service, methodID, err)
			}
		}
		if v.IsUndefined() {
			return okEmpty, nil
		}
		out, ok := bytesArg(v)
		if !ok {
			return nil, fmt.Errorf("host %s method %d answered %s, not Result bytes (a Uint8Array)", service, methodID, v.Type())
		}
		return out, nil
	}
}

// invokeHost calls fn, turning a synchronous throw into an error.
func invokeHost(fn js.Value, service string, methodID uint32, req []byte) (v js.Value, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("host %s method %d threw: %s", service, methodID, describe(p))
		}
	}()
	if fastOn {
		v = fast.host.Invoke(fn, serviceIndex[service], methodID, ptrOf(req), len(req))
		runtime.KeepAlive(req)
		return v, nil
	}
	return fn.Invoke(service, methodID, toJS(req)), nil
}

func isThenable(v js.Value) bool {
	t := v.Type()
	return (t == js.TypeObject || t == js.TypeFunction) && v.Get("then").Type() == js.TypeFunction
}

// await waits, in the calling goroutine, for a thenable to settle.
func await(ctx context.Context, p js.Value) (js.Value, error) {
	type settled struct {
		v  js.Value
		ok bool
	}
	ch := make(chan settled, 1)
	onOK := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- settled{arg(a, 0), true}; return nil })
	onErr := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- settled{arg(a, 0), false}; return nil })
	defer onOK.Release()
	defer onErr.Release()
	if err := thenCall(p, onOK, onErr); err != nil {
		return js.Undefined(), err
	}
	select {
	case s := <-ch:
		if !s.ok {
			return js.Undefined(), errors.New(describe(js.Error{Value: s.v}))
		}
		return s.v, nil
	case <-ctx.Done():
		return js.Undefined(), ctx.Err()
	}
}

func thenCall(p js.Value, onOK, onErr js.Func) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("then() threw: %s", describe(r))
		}
	}()
	p.Call("then", onOK, onErr)
	return nil
}

// describe renders a thrown JavaScript value (an Error's message, or its string form).
func describe(p any) (s string) {
	defer func() {
		if recover() != nil {
			s = fmt.Sprint(p)
		}
	}()
	if e, ok := p.(js.Error); ok {
		v := e.Value
		if v.Type() == js.TypeObject && v.Get("message").Type() == js.TypeString {
			return v.Get("message").String()
		}
		return js.Global().Get("String").Invoke(v).String()
	}
	return fmt.Sprint(p)
}

// jsClock reads Unix milliseconds from a synchronous JavaScript function.
type jsClock struct{ now js.Value }

func (c jsClock) Now() time.Time {
	return time.UnixMilli(int64(c.now.Invoke().Float()))
}

// bloom(ids, capacity, errorRate) → Promise<Uint8Array>: a spec-profile bloom filter
// holding ids (conformance runners build received messages with it).
func bloomEncode(_ js.Value, args []js.Value) any {
	ids, capacity, rate := arg(args, 0), arg(args, 1), arg(args, 2)
	return async(func() any {
		f, err := specFilter(capacity, rate)
		if err != nil {
			panic(err)
		}
		for i := 0; i < ids.Length(); i++ {
			f.Add(ids.Index(i).String())
		}
		return toJS(profile.Spec.EncodeBloom(f))
	})
}

// bloomContains(bytes, id, capacity, errorRate) → Promise<boolean>.
func bloomContains(_ js.Value, args []js.Value) any {
	b, _ := bytesArg(arg(args, 0))
	id, capacity, rate := arg(args, 1).String(), arg(args, 2), arg(args, 3)
	return async(func() any {
		k, m, err := bloomSize(capacity, rate)
		if err != nil {
			panic(err)
		}
		f, err := profile.Spec.DecodeBloom(b, k, m)
		if err != nil {
			panic(err)
		}
		return f.Test(id)
	})
}

func bloomSize(capacity, rate js.Value) (k, m uint, err error) {
	c, p := 10000, 0.001
	if capacity.Type() == js.TypeNumber {
		c = capacity.Int()
	}
	if rate.Type() == js.TypeNumber {
		p = rate.Float()
	}
	return bloom.Size(c, p)
}

func specFilter(capacity, rate js.Value) (*bloom.Filter, error) {
	k, m, err := bloomSize(capacity, rate)
	if err != nil {
		return nil, err
	}
	return bloom.New(k, m, profile.Spec.Hash)
}
