package store

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

// InjectedError is the error of a failure injected with FailOp or FailNth; tests find it
// with errors.As.
type InjectedError struct {
	Op string // the contract name of the op that was made to fail
}

// Error returns "injected failure: <Op>".
func (e *InjectedError) Error() string { return "injected failure: " + e.Op }

// Memory is the in-memory Backend every test relies on. It applies each batch
// atomically, injects failures by op name, counts calls and can be inspected and
// cloned; it is safe for concurrent use.
//
// Counters distinguish method calls from op attempts: Batches and Loads count every
// call of Apply and Load, while Calls counts the ops the store attempted — in Apply the
// ops of a well-formed batch in order, up to and including the first failing one, and in
// Load the read itself. A done context, FailAll or a malformed batch stops a call before
// any op is attempted.
//
// RemoveLogEntry also deletes the message's retrieval hint, as the contract says.
// Stored messages are clones of what Apply received and Load hands out clones, so
// callers may reuse or mutate their messages freely.
type Memory struct {
	mu       sync.Mutex
	channels map[string]*memChannel

	failAll error
	failOps map[string]bool // ops that fail on every call
	failNth map[string]int  // ops that fail once, on the given call from now (1 = next)

	calls   map[string]int
	drops   map[string]int
	batches int
	loads   int
}

// NewMemory returns an empty in-memory store without failures.
func NewMemory() *Memory {
	return &Memory{
		channels: map[string]*memChannel{},
		failOps:  map[string]bool{},
		failNth:  map[string]int{},
		calls:    map[string]int{},
		drops:    map[string]int{},
	}
}

var _ Backend = (*Memory)(nil)

// Apply applies every op of the batch or none of them. A malformed batch is rejected
// with ErrInvalidBatch and an injected failure with an *InjectedError; either way the
// stored state is left exactly as it was.
func (m *Memory) Apply(ctx context.Context, batch *pb.PersistenceBatch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batches++
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory store: apply: %w", err)
	}
	if m.failAll != nil {
		return m.failAll
	}
	if err := validateBatch(batch); err != nil {
		return fmt.Errorf("memory store: %w", err)
	}
	channelID := batch.GetChannelId()
	var undo undoLog
	for _, op := range batch.GetOps() {
		name := OpName(op)
		if name == OpDropChannel {
			m.drops[channelID]++
		}
		if err := m.attempt(name); err != nil {
			undo.rollback()
			return err
		}
		m.applyOp(channelID, op, &undo)
	}
	if ch := m.channels[channelID]; ch != nil && ch.empty() {
		delete(m.channels, channelID)
	}
	return nil
}

// Load returns a clone of everything stored for the channel, the log oldest-first.
func (m *Memory) Load(ctx context.Context, channelID string) (*pb.ChannelSnapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory store: load: %w", err)
	}
	if m.failAll != nil {
		return nil, m.failAll
	}
	if err := m.attempt(OpLoadAllForChannel); err != nil {
		return nil, err
	}
	return m.snapshot(channelID), nil
}

// attempt counts one attempt of the op and reports whether an injected failure hits it.
// Must hold mu.
func (m *Memory) attempt(name string) error {
	m.calls[name]++
	fail := m.failOps[name]
	if n, ok := m.failNth[name]; ok {
		if n <= 1 {
			delete(m.failNth, name)
			fail = true
		} else {
			m.failNth[name] = n - 1
		}
	}
	if fail {
		return &InjectedError{Op: name}
	}
	return nil
}

// applyOp applies one validated op, recording how to undo it. Must hold mu.
func (m *Memory) applyOp(channelID string, op *pb.PersistenceOp, undo *undoLog) {
	switch o := op.GetOp().(type) {
	case *pb.PersistenceOp_SaveLamport:
		ch := m.channelForWrite(channelID, undo)
		oldHas, oldValue := ch.hasLamport, ch.lamport
		undo.add(func() { ch.hasLamport, ch.lamport = oldHas, oldValue })
		ch.hasLamport, ch.lamport = true, o.SaveLamport.GetLamportTimestamp()
	case *pb.PersistenceOp_AppendLogEntry:
		msg := clone(o.AppendLogEntry.GetMessage())
		mapPut(m.channelForWrite(channelID, undo).log, msg.GetMessageId(), msg, undo)
	case *pb.PersistenceOp_RemoveLogEntry:
		if ch := m.channels[channelID]; ch != nil {
			id := o.RemoveLogEntry.GetMessageId()
			mapDelete(ch.log, id, undo)
			mapDelete(ch.hints, id, undo) // the hint goes with its message
		}
	case *pb.PersistenceOp_SetRetrievalHint:
		r := o.SetRetrievalHint
		mapPut(m.channelForWrite(channelID, undo).hints, r.GetMessageId(), slices.Clone(r.GetRetrievalHint()), undo)
	case *pb.PersistenceOp_SaveOutgoing:
		e := clone(o.SaveOutgoing.GetMessage())
		m.channelForWrite(channelID, undo).outgoing.put(e.GetMessage().GetMessageId(), e, undo)
	case *pb.PersistenceOp_RemoveOutgoing:
		if ch := m.channels[channelID]; ch != nil {
			ch.outgoing.remove(o.RemoveOutgoing.GetMessageId(), undo)
		}
	case *pb.PersistenceOp_SaveIncoming:
		e := clone(o.SaveIncoming.GetMessage())
		m.channelForWrite(channelID, undo).incoming.put(e.GetMessage().GetMessageId(), e, undo)
	case *pb.PersistenceOp_RemoveIncoming:
		if ch := m.channels[channelID]; ch != nil {
			ch.incoming.remove(o.RemoveIncoming.GetMessageId(), undo)
		}
	case *pb.PersistenceOp_SaveOutgoingRepair:
		e := clone(o.SaveOutgoingRepair.GetEntry())
		m.channelForWrite(channelID, undo).outgoingRepair.put(e.GetEntry().GetMessageId(), e, undo)
	case *pb.PersistenceOp_RemoveOutgoingRepair:
		if ch := m.channels[channelID]; ch != nil {
			ch.outgoingRepair.remove(o.RemoveOutgoingRepair.GetMessageId(), undo)
		}
	case *pb.PersistenceOp_SaveIncomingRepair:
		e := clone(o.SaveIncomingRepair.GetEntry())
		m.channelForWrite(channelID, undo).incomingRepair.put(e.GetEntry().GetMessageId(), e, undo)
	case *pb.PersistenceOp_RemoveIncomingRepair:
		if ch := m.channels[channelID]; ch != nil {
			ch.incomingRepair.remove(o.RemoveIncomingRepair.GetMessageId(), undo)
		}
	case *pb.PersistenceOp_DropChannel:
		mapDelete(m.channels, channelID, undo)
	}
}

// channelForWrite returns the channel's tables, creating them (undoably) if needed.
// Must hold mu.
func (m *Memory) channelForWrite(channelID string, undo *undoLog) *memChannel {
	ch := m.channels[channelID]
	if ch == nil {
		ch = newMemChannel()
		mapPut(m.channels, channelID, ch, undo)
	}
	return ch
}

// snapshot builds the channel's snapshot from clones. Must hold mu.
func (m *Memory) snapshot(channelID string) *pb.ChannelSnapshot {
	s := &pb.ChannelSnapshot{ChannelId: channelID}
	ch := m.channels[channelID]
	if ch == nil {
		return s
	}
	s.LamportTimestamp = ch.lamport
	for _, msg := range ch.log {
		s.Log = append(s.Log, clone(msg))
	}
	sortLog(s.Log)
	s.Outgoing = ch.outgoing.values()
	s.Incoming = ch.incoming.values()
	s.OutgoingRepair = ch.outgoingRepair.values()
	s.IncomingRepair = ch.incomingRepair.values()
	for _, id := range slices.Sorted(maps.Keys(ch.hints)) {
		s.RetrievalHints = append(s.RetrievalHints, &pb.RetrievalHint{MessageId: id, RetrievalHint: slices.Clone(ch.hints[id])})
	}
	return s
}

// Snapshot returns what Load would return for the channel, without counting a call and
// without failure injection.
func (m *Memory) Snapshot(channelID string) *pb.ChannelSnapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshot(channelID)
}

// Channels returns the ids of the channels with any stored state, sorted.
func (m *Memory) Channels() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.channels))
}

// HasLamport reports whether a Lamport clock row exists for the channel.
func (m *Memory) HasLamport(channelID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.channels[channelID]
	return ch != nil && ch.hasLamport
}

// Clone returns a new Memory holding a copy of the stored state, with fresh counters and
// no failures; the two evolve independently (as a process restart over the same data).
func (m *Memory) Clone() *Memory {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMemory()
	for id, ch := range m.channels {
		c.channels[id] = ch.clone()
	}
	return c
}

// FailOp makes every attempt of the named op fail until HealOp or ClearFailures. It
// panics on a name that is not a contract op.
func (m *Memory) FailOp(name string) {
	mustBeOp(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failOps[name] = true
}

// FailNth makes only the n-th attempt of the named op from now on fail (n ≥ 1, once),
// replacing any earlier FailNth of that op. It panics on an unknown op or n < 1.
func (m *Memory) FailNth(name string, n int) {
	mustBeOp(name)
	if n < 1 {
		panic(fmt.Sprintf("store: FailNth(%q, %d): n must be at least 1", name, n))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failNth[name] = n
}

// HealOp removes the FailOp and FailNth failures of the named op.
func (m *Memory) HealOp(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.failOps, name)
	delete(m.failNth, name)
}

// FailAll makes every Apply and Load fail with err, simulating a dead backend; nil
// revives it.
func (m *Memory) FailAll(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failAll = err
}

// ClearFailures removes every injected failure, FailAll included.
func (m *Memory) ClearFailures() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.failOps)
	clear(m.failNth)
	m.failAll = nil
}

// Calls returns how many times an op of that name was attempted (see Memory), failed
// attempts included.
func (m *Memory) Calls(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[name]
}

// Batches returns how many times Apply was called.
func (m *Memory) Batches() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.batches
}

// Loads returns how many times Load was called.
func (m *Memory) Loads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loads
}

// DropChannelCalls returns how many DropChannel ops were attempted for the channel.
func (m *Memory) DropChannelCalls(channelID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.drops[channelID]
}

// ResetCounters sets every counter back to zero; stored state and failures stay.
func (m *Memory) ResetCounters() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.calls)
	clear(m.drops)
	m.batches, m.loads = 0, 0
}

// mustBeOp panics unless name is one of the 14 contract op names.
func mustBeOp(name string) {
	if !slices.Contains(AllOps, name) {
		panic(fmt.Sprintf("store: unknown op name %q", name))
	}
}

// memChannel is the stored state of one channel. Stored messages are never mutated in
// place, so copies of a memChannel may share them.
type memChannel struct {
	hasLamport     bool
	lamport        uint64
	log            map[string]*pb.SdsMessage
	hints          map[string][]byte
	outgoing       *orderedTable[*pb.UnacknowledgedMessage]
	incoming       *orderedTable[*pb.IncomingMessage]
	outgoingRepair *orderedTable[*pb.OutgoingRepairEntry]
	incomingRepair *orderedTable[*pb.IncomingRepairEntry]
}

// newMemChannel returns a channel with empty tables.
func newMemChannel() *memChannel {
	return &memChannel{
		log:            map[string]*pb.SdsMessage{},
		hints:          map[string][]byte{},
		outgoing:       newOrderedTable[*pb.UnacknowledgedMessage](),
		incoming:       newOrderedTable[*pb.IncomingMessage](),
		outgoingRepair: newOrderedTable[*pb.OutgoingRepairEntry](),
		incomingRepair: newOrderedTable[*pb.IncomingRepairEntry](),
	}
}

// empty reports whether the channel stores nothing at all.
func (ch *memChannel) empty() bool {
	return !ch.hasLamport && len(ch.log) == 0 && len(ch.hints) == 0 &&
		len(ch.outgoing.rows) == 0 && len(ch.incoming.rows) == 0 &&
		len(ch.outgoingRepair.rows) == 0 && len(ch.incomingRepair.rows) == 0
}

// clone copies the channel's tables; the immutable stored messages are shared.
func (ch *memChannel) clone() *memChannel {
	return &memChannel{
		hasLamport:     ch.hasLamport,
		lamport:        ch.lamport,
		log:            maps.Clone(ch.log),
		hints:          maps.Clone(ch.hints),
		outgoing:       ch.outgoing.clone(),
		incoming:       ch.incoming.clone(),
		outgoingRepair: ch.outgoingRepair.clone(),
		incomingRepair: ch.incomingRepair.clone(),
	}
}

// orderedTable is a keyed table that remembers insertion order; an upsert of an existing
// key keeps its position.
type orderedTable[T proto.Message] struct {
	next uint64 // sequence number of the next new row
	rows map[string]orderedRow[T]
}

// orderedRow is one row of an orderedTable with its insertion sequence number.
type orderedRow[T proto.Message] struct {
	seq uint64
	val T
}

// newOrderedTable returns an empty table.
func newOrderedTable[T proto.Message]() *orderedTable[T] {
	return &orderedTable[T]{rows: map[string]orderedRow[T]{}}
}

// put upserts the row of key, keeping the position of an existing row.
func (t *orderedTable[T]) put(key string, val T, undo *undoLog) {
	row := orderedRow[T]{val: val}
	if old, ok := t.rows[key]; ok {
		row.seq = old.seq
	} else {
		row.seq = t.next
		t.next++
		undo.add(func() { t.next-- })
	}
	mapPut(t.rows, key, row, undo)
}

// remove deletes the row of key, if any.
func (t *orderedTable[T]) remove(key string, undo *undoLog) {
	mapDelete(t.rows, key, undo)
}

// values returns clones of the rows in insertion order.
func (t *orderedTable[T]) values() []T {
	if len(t.rows) == 0 {
		return nil
	}
	rows := slices.Collect(maps.Values(t.rows))
	slices.SortFunc(rows, func(a, b orderedRow[T]) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = clone(r.val)
	}
	return out
}

// clone copies the table; the immutable row values are shared.
func (t *orderedTable[T]) clone() *orderedTable[T] {
	return &orderedTable[T]{next: t.next, rows: maps.Clone(t.rows)}
}

// undoLog records how to revert the writes of a batch, in the order they were made.
type undoLog struct{ steps []func() }

// add records one step that reverts the latest write.
func (u *undoLog) add(step func()) { u.steps = append(u.steps, step) }

// rollback reverts every recorded write, newest first.
func (u *undoLog) rollback() {
	for i := len(u.steps) - 1; i >= 0; i-- {
		u.steps[i]()
	}
	u.steps = nil
}

// mapPut sets m[key] = val and records how to restore the previous value.
func mapPut[V any](m map[string]V, key string, val V, undo *undoLog) {
	old, had := m[key]
	m[key] = val
	undo.add(func() {
		if had {
			m[key] = old
		} else {
			delete(m, key)
		}
	})
}

// mapDelete deletes m[key], if present, and records how to restore it.
func mapDelete[V any](m map[string]V, key string, undo *undoLog) {
	old, had := m[key]
	if !had {
		return
	}
	delete(m, key)
	undo.add(func() { m[key] = old })
}

// clone deep-copies a protobuf message, keeping its static type.
func clone[T proto.Message](msg T) T {
	return proto.Clone(msg).(T)
}
