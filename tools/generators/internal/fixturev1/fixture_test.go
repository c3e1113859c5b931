package fixturev1_test

// The goldens of the generator are this package; these tests prove they behave, on an
// IDL other than sdskit's (another scope field, two capabilities, sparse method ids).
// The sdskit IDL's generated code is tested in core/gentest.

import (
	"context"
	"errors"
	"slices"
	"testing"

	fx "github.com/sdskit/sdskit/tools/generators/internal/fixturev1"
	"google.golang.org/protobuf/proto"
)

// counter is a CounterServer.
type counter struct{ values map[string]int64 }

func (c *counter) Add(_ context.Context, req *fx.AddRequest) (*fx.AddResponse, error) {
	if req.GetName() == "" {
		return nil, &fx.Error{Code: fx.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, Message: "no name"}
	}
	c.values[req.GetName()] += req.GetDelta()
	return &fx.AddResponse{Value: c.values[req.GetName()]}, nil
}

func (c *counter) Get(_ context.Context, req *fx.GetRequest) (*fx.GetResponse, error) {
	v, ok := c.values[req.GetName()]
	if !ok {
		panic("no such counter")
	}
	return &fx.GetResponse{Value: v}, nil
}

func (c *counter) Clear(context.Context, *fx.ClearRequest) error {
	clear(c.values)
	return nil
}

func loopback(srv fx.CounterServer) fx.CallFunc {
	return func(ctx context.Context, id uint32, req []byte) ([]byte, error) {
		return fx.DispatchCounter(ctx, srv, id, req), nil
	}
}

func TestCounterRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := &counter{values: map[string]int64{}}
	c := fx.NewCounterClient(loopback(srv))
	if r, err := c.Add(ctx, &fx.AddRequest{Name: "a", Delta: 5}); err != nil || r.GetValue() != 5 {
		t.Fatalf("Add = %v, %v", r, err)
	}
	if r, err := c.Get(ctx, &fx.GetRequest{Name: "a"}); err != nil || r.GetValue() != 5 {
		t.Fatalf("Get = %v, %v", r, err)
	}
	if err := c.Clear(ctx, &fx.ClearRequest{}); err != nil || len(srv.values) != 0 {
		t.Fatalf("Clear = %v, values %v", err, srv.values)
	}
	// A typed error keeps its code and gets the method as op.
	_, err := c.Add(ctx, &fx.AddRequest{})
	var e *fx.Error
	if !errors.As(err, &e) || e.GetCode() != fx.ErrorCode_ERROR_CODE_INVALID_ARGUMENT || err.Error() != "Add: INVALID_ARGUMENT: no name" {
		t.Fatalf("Add error = %v", err)
	}
	// A panic is INTERNAL.
	_, err = c.Get(ctx, &fx.GetRequest{Name: "missing"})
	if !errors.As(err, &e) || e.GetCode() != fx.ErrorCode_ERROR_CODE_INTERNAL || err.Error() != "Get: INTERNAL: panic: no such counter" {
		t.Fatalf("Get error = %v", err)
	}
	// Sparse ids: 7 is Clear, 3 is nothing.
	if m, ok := fx.LookupCounterMethod(7); !ok || m.Name != "Clear" {
		t.Fatalf("Lookup(7) = %v, %v", m, ok)
	}
	var res fx.Result
	if err := proto.Unmarshal(fx.DispatchCounter(ctx, srv, 3, nil), &res); err != nil || res.GetError().GetCode() != fx.ErrorCode_ERROR_CODE_INVALID_ARGUMENT {
		t.Fatalf("unknown id: %v %v", res.GetError(), err)
	}
}

// store is a Store with both capabilities, recording calls.
type store struct {
	calls  []string
	failOn string
}

func (s *store) hit(name string) error {
	s.calls = append(s.calls, name)
	if name == s.failOn {
		return errors.New("boom")
	}
	return nil
}
func (s *store) Put(_ context.Context, r *fx.PutRequest) error { return s.hit("Put " + r.GetKey()) }
func (s *store) Delete(_ context.Context, r *fx.DeleteRequest) error {
	return s.hit("Delete " + r.GetKey())
}
func (s *store) LoadBucket(_ context.Context, r *fx.LoadBucketRequest) (*fx.Bucket, error) {
	return nil, s.hit("LoadBucket " + r.GetBucket())
}
func (s *store) Begin(_ context.Context, r *fx.BeginRequest) error {
	return s.hit("Begin " + r.GetBucket())
}
func (s *store) Commit(_ context.Context, r *fx.CommitRequest) error {
	return s.hit("Commit " + r.GetBucket())
}
func (s *store) Rollback(_ context.Context, r *fx.RollbackRequest) error {
	return s.hit("Rollback " + r.GetBucket())
}
func (s *store) Compact(context.Context, *fx.CompactRequest) error { return s.hit("Compact") }

func put(bucket, key string) *fx.StoreOp {
	return &fx.StoreOp{Op: &fx.StoreOp_Put{Put: &fx.PutRequest{Bucket: bucket, Key: key}}}
}

func del(bucket, key string) *fx.StoreOp {
	return &fx.StoreOp{Op: &fx.StoreOp_Delete{Delete: &fx.DeleteRequest{Bucket: bucket, Key: key}}}
}

func TestStoreBatchAdapter(t *testing.T) {
	ctx := context.Background()
	s := &store{}
	// Through the wire: the host is reached via its clients, as the glue will do it.
	call := func(ctx context.Context, id uint32, req []byte) ([]byte, error) {
		return fx.DispatchStore(ctx, s, id, req), nil
	}
	host := struct {
		fx.Store
		fx.StoreTransactions
	}{fx.NewStoreClient(call), fx.NewStoreTransactionsClient(call)}
	a := fx.NewStoreBatchAdapter(host)
	if err := a.Apply(ctx, &fx.StoreBatch{Bucket: "b", Ops: []*fx.StoreOp{put("b", "k1"), del("b", "k0")}}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Begin b", "Put k1", "Delete k0", "Commit b"}; !slices.Equal(s.calls, want) {
		t.Fatalf("calls %v, want %v", s.calls, want)
	}

	// The scope is the bucket: an op of another bucket is rejected before any call.
	s.calls = nil
	err := a.Apply(ctx, &fx.StoreBatch{Bucket: "b", Ops: []*fx.StoreOp{put("b", "k1"), put("c", "k2")}})
	if !errors.Is(err, fx.ErrInvalidStoreBatch) || len(s.calls) != 0 {
		t.Fatalf("err %v, calls %v", err, s.calls)
	}
	if err.Error() != `invalid store batch: op 1: Put: bucket "c" does not match the batch's bucket "b"` {
		t.Fatalf("err text %q", err)
	}

	// First error: rollback; the host's error travels as an *Error through the wire.
	s.calls, s.failOn = nil, "Delete k0"
	err = a.Apply(ctx, &fx.StoreBatch{Bucket: "b", Ops: []*fx.StoreOp{put("b", "k1"), del("b", "k0"), put("b", "k2")}})
	var e *fx.Error
	if !errors.As(err, &e) || e.GetCode() != fx.ErrorCode_ERROR_CODE_INTERNAL || err.Error() != "Delete: Delete: INTERNAL: boom" {
		t.Fatalf("err = %v", err)
	}
	if want := []string{"Begin b", "Put k1", "Delete k0", "Rollback b"}; !slices.Equal(s.calls, want) {
		t.Fatalf("calls %v, want %v", s.calls, want)
	}

	// Load fills the bucket of a nil result and never opens a transaction.
	s.calls, s.failOn = nil, ""
	b, err := a.Load(ctx, "b")
	if err != nil || b.GetBucket() != "b" || !slices.Equal(s.calls, []string{"LoadBucket b"}) {
		t.Fatalf("Load = %v, %v, calls %v", b, err, s.calls)
	}

	// A second capability, offered on its own.
	s.calls = nil
	if err := fx.NewStoreMaintenanceClient(call).Compact(ctx, &fx.CompactRequest{}); err != nil || !slices.Equal(s.calls, []string{"Compact"}) {
		t.Fatalf("Compact = %v, calls %v", err, s.calls)
	}
}

func TestMissingCapability(t *testing.T) {
	ctx := context.Background()
	var p fx.Store = &struct{ fx.Store }{&store{}}
	if _, ok := p.(fx.StoreTransactions); ok {
		t.Fatal("setup: p offers transactions")
	}
	call := func(ctx context.Context, id uint32, req []byte) ([]byte, error) {
		return fx.DispatchStore(ctx, p, id, req), nil
	}
	err := fx.NewStoreMaintenanceClient(call).Compact(ctx, &fx.CompactRequest{})
	var e *fx.Error
	if !errors.As(err, &e) || e.GetCode() != fx.ErrorCode_ERROR_CODE_INVALID_ARGUMENT ||
		e.GetMessage() != "this Store implementation does not offer the optional Maintenance capability (Store.Compact)" {
		t.Fatalf("err = %v", err)
	}
	// Without transactions the adapter makes the plain calls only.
	s := &store{}
	a := fx.NewStoreBatchAdapter(struct{ fx.Store }{s})
	if err := a.Apply(ctx, &fx.StoreBatch{Bucket: "b", Ops: []*fx.StoreOp{put("b", "k")}}); err != nil || !slices.Equal(s.calls, []string{"Put k"}) {
		t.Fatalf("err %v calls %v", err, s.calls)
	}
}

type added struct {
	fx.UnimplementedEventHandler
	got []string
}

func (a *added) OnAdded(ev *fx.Added) { a.got = append(a.got, ev.GetName()) }

func TestEvents(t *testing.T) {
	h := &added{}
	fx.DispatchEvent(h, &fx.Event{Event: &fx.Event_Added{Added: &fx.Added{Name: "x"}}})
	fx.DispatchEvent(h, &fx.Event{Event: &fx.Event_Cleared{Cleared: &fx.Cleared{}}}) // ignored by the embedded base
	fx.DispatchEvent(h, &fx.Event{})
	fx.DispatchEvent(h, nil)
	if !slices.Equal(h.got, []string{"x"}) {
		t.Fatalf("got %v", h.got)
	}
	if n := fx.EventName(&fx.Event{Event: &fx.Event_Cleared{Cleared: &fx.Cleared{}}}); n != "Cleared" {
		t.Fatalf("EventName = %q", n)
	}
}
