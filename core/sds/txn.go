package sds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sdskit/sdskit/core/sdserr"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// txn collects one public operation's changes to a channel: the in-memory mutations
// (with their undo), the persistence ops (sent as one batch), the events (published only
// after commit) and the bloom insertions (applied only after commit, since the bloom is
// derived state that is never persisted).
type txn struct {
	m         *Manager
	ch        string
	s         *state
	op        string
	now       time.Time
	ops       []*pb.PersistenceOp
	undo      []func()
	events    []*pb.Event
	bloomAdds []string
	// unrefAdds are messages delivered without a waiting dependant, unrefRefs the ids
	// content messages named in their causal histories: applied to state.unreferenced
	// after commit, like the bloom insertions.
	unrefAdds, unrefRefs []string
	lamport              bool // the clock changed: one SaveLamport goes first in the batch

	// Inline storage for the common small operation (a send or a delivery), which then
	// allocates no slice for its undo journal, bloom insertion or unreferenced-set changes.
	undoBuf     [6]func()
	addBuf      [1]string
	unrefAddBuf [1]string
	unrefRefBuf [4]string
}

func (m *Manager) begin(ch *channel, op string) *txn {
	t := &txn{m: m, ch: ch.id, s: ch.st, op: op, now: m.clock.Now()}
	t.undo, t.bloomAdds = t.undoBuf[:0], t.addBuf[:0]
	t.unrefAdds, t.unrefRefs = t.unrefAddBuf[:0], t.unrefRefBuf[:0]
	return t
}

func (t *txn) nowMs() int64 { return t.now.UnixMilli() }

func (t *txn) emit(ev *pb.Event) { t.events = append(t.events, ev) }

func (t *txn) push(op *pb.PersistenceOp) { t.ops = append(t.ops, op) }

// persist reports whether persistence ops must be built: with the no-op backend (the
// default) the batch would be thrown away, so building it is skipped altogether.
func (t *txn) persist() bool { return !t.m.noBackend }

func (t *txn) onUndo(f func()) { t.undo = append(t.undo, f) }

// commit persists the batch; on failure it undoes every mutation and returns
// PERSISTENCE. The caller publishes t.events only after a nil return.
func (t *txn) commit(ctx context.Context) error {
	ops := t.ops
	if t.lamport && t.persist() {
		ops = append([]*pb.PersistenceOp{{Op: &pb.PersistenceOp_SaveLamport{
			SaveLamport: &pb.SaveLamportRequest{ChannelId: t.ch, LamportTimestamp: t.s.lamport}}}}, ops...)
	}
	if len(ops) > 0 {
		batch := &pb.PersistenceBatch{ChannelId: t.ch, Ops: ops, Operation: t.op}
		if err := t.m.apply(ctx, batch); err != nil {
			t.rollback()
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return sdserr.Wrap(sdserr.Cancelled, t.op, err)
			}
			return sdserr.Wrap(sdserr.Persistence, t.op, err)
		}
	}
	for _, id := range t.bloomAdds {
		t.s.addToBloom(id, t.m.prof)
	}
	for _, id := range t.unrefAdds { // both empty with SyncUnreferencedRounds 0
		t.s.unreferenced[id] = t.nowMs()
	}
	for _, id := range t.unrefRefs {
		delete(t.s.unreferenced, id)
	}
	return nil
}

// unreferencedAdd records that id joined the log with no message referencing it yet.
func (t *txn) unreferencedAdd(id string) {
	if t.m.cfg.SyncUnreferencedRounds > 0 {
		t.unrefAdds = append(t.unrefAdds, id)
	}
}

// referenced records that a content message names the ids of history.
func (t *txn) referenced(history []*pb.HistoryEntry) {
	if t.m.cfg.SyncUnreferencedRounds == 0 {
		return
	}
	for _, e := range history {
		t.unrefRefs = append(t.unrefRefs, e.GetMessageId())
	}
}

func (t *txn) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
	t.undo, t.ops, t.events, t.bloomAdds, t.unrefAdds, t.unrefRefs = nil, nil, nil, nil, nil, nil
}

// apply hands a batch to the backend, turning a backend panic into an error so that a
// broken backend can never take the core down.
func (m *Manager) apply(ctx context.Context, batch *pb.PersistenceBatch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("backend panicked: %v", r)
		}
	}()
	return m.backend.Apply(ctx, batch)
}

// --- mutations -----------------------------------------------------------------------

func (t *txn) setLamport(v uint64) {
	old := t.s.lamport
	if v == old {
		return
	}
	t.s.lamport = v
	t.lamport = true
	t.onUndo(func() { t.s.lamport = old })
}

// logInsert adds a message to the local log (persisted without its bloom) and evicts the
// oldest entries beyond MaxMessageHistory.
func (t *txn) logInsert(msg *pb.SdsMessage) {
	s := t.s
	msg = stripBloom(msg)
	id := msg.GetMessageId()
	s.log.insert(msg)
	t.onUndo(func() { s.log.remove(id) })
	if t.persist() {
		t.push(&pb.PersistenceOp{Op: &pb.PersistenceOp_AppendLogEntry{
			AppendLogEntry: &pb.AppendLogEntryRequest{ChannelId: t.ch, Message: msg}}})
	}
	for s.log.len() > t.m.cfg.MaxMessageHistory {
		t.logRemove(s.log.entries[0].GetMessageId())
	}
}

func (t *txn) logRemove(id string) {
	s := t.s
	old := s.log.remove(id)
	if old == nil {
		return
	}
	t.onUndo(func() { s.log.insert(old) })
	if hint, ok := s.hints[id]; ok {
		delete(s.hints, id)
		t.onUndo(func() { s.hints[id] = hint })
	}
	if t.persist() {
		t.push(&pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveLogEntry{
			RemoveLogEntry: &pb.RemoveLogEntryRequest{ChannelId: t.ch, MessageId: id}}})
	}
}

func (t *txn) setHint(id string, hint []byte) {
	s := t.s
	old, had := s.hints[id]
	s.hints[id] = hint
	t.onUndo(func() {
		if had {
			s.hints[id] = old
		} else {
			delete(s.hints, id)
		}
	})
	if t.persist() {
		t.push(&pb.PersistenceOp{Op: &pb.PersistenceOp_SetRetrievalHint{
			SetRetrievalHint: &pb.SetRetrievalHintRequest{ChannelId: t.ch, MessageId: id, RetrievalHint: hint}}})
	}
}

// outPut inserts or replaces an outgoing entry; a replacement keeps its position.
func (t *txn) outPut(u *pb.UnacknowledgedMessage) {
	s := t.s
	id := u.GetMessage().GetMessageId()
	if e, ok := s.outByID[id]; ok {
		old := e.u
		e.u = u
		t.onUndo(func() { e.u = old })
	} else {
		e := &outEntry{u: u}
		s.out = append(s.out, e)
		s.outByID[id] = e
		t.onUndo(func() {
			if i := s.outIndex(id); i >= 0 {
				s.out = append(s.out[:i:i], s.out[i+1:]...)
			}
			delete(s.outByID, id)
		})
	}
	if t.persist() {
		t.push(&pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoing{
			SaveOutgoing: &pb.SaveOutgoingRequest{ChannelId: t.ch, Message: u}}})
	}
}

func (t *txn) outRemove(id string) {
	s := t.s
	e, ok := s.outByID[id]
	if !ok {
		return
	}
	// In place: an acknowledgement of many messages at once (a peer's bloom filter or
	// sync message) must not copy the whole buffer for each of them.
	i := slices.Index(s.out, e)
	s.out = slices.Delete(s.out, i, i+1)
	delete(s.outByID, id)
	t.onUndo(func() {
		s.out = slices.Insert(s.out, i, e)
		s.outByID[id] = e
	})
	if t.persist() {
		t.push(&pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoing{
			RemoveOutgoing: &pb.RemoveOutgoingRequest{ChannelId: t.ch, MessageId: id}}})
	}
}

// inPut inserts or replaces an incoming entry and keeps the dependency index in step.
func (t *txn) inPut(im *pb.IncomingMessage) {
	s := t.s
	id := im.GetMessage().GetMessageId()
	old := s.in[id]
	if old != nil {
		s.unindexIncoming(old)
	}
	e := newInEntry(im)
	s.in[id] = e
	s.indexIncoming(e)
	t.onUndo(func() {
		s.unindexIncoming(e)
		if old != nil {
			s.in[id] = old
			s.indexIncoming(old)
		} else {
			delete(s.in, id)
		}
	})
	if t.persist() {
		t.push(&pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncoming{
			SaveIncoming: &pb.SaveIncomingRequest{ChannelId: t.ch, Message: im}}})
	}
}

func (t *txn) inRemove(id string) {
	s := t.s
	old := s.in[id]
	if old == nil {
		return
	}
	s.unindexIncoming(old)
	delete(s.in, id)
	t.onUndo(func() {
		s.in[id] = old
		s.indexIncoming(old)
	})
	if t.persist() {
		t.push(&pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncoming{
			RemoveIncoming: &pb.RemoveIncomingRequest{ChannelId: t.ch, MessageId: id}}})
	}
}

func (t *txn) orepPut(e *pb.OutgoingRepairEntry) {
	s := t.s
	id := e.GetEntry().GetMessageId()
	old, had := s.orep[id]
	s.orep[id] = e
	t.onUndo(func() {
		if had {
			s.orep[id] = old
		} else {
			delete(s.orep, id)
		}
	})
	if t.persist() {
		t.push(&pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoingRepair{
			SaveOutgoingRepair: &pb.SaveOutgoingRepairRequest{ChannelId: t.ch, Entry: e}}})
	}
}

// orepRemove deletes an outgoing repair entry; an absent id costs no persistence op.
func (t *txn) orepRemove(id string) {
	s := t.s
	old, had := s.orep[id]
	if !had {
		return
	}
	delete(s.orep, id)
	t.onUndo(func() { s.orep[id] = old })
	if t.persist() {
		t.push(&pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoingRepair{
			RemoveOutgoingRepair: &pb.RemoveOutgoingRepairRequest{ChannelId: t.ch, MessageId: id}}})
	}
}

func (t *txn) irepPut(e *pb.IncomingRepairEntry) {
	s := t.s
	id := e.GetEntry().GetMessageId()
	old, had := s.irep[id]
	s.irep[id] = e
	t.onUndo(func() {
		if had {
			s.irep[id] = old
		} else {
			delete(s.irep, id)
		}
	})
	if t.persist() {
		t.push(&pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncomingRepair{
			SaveIncomingRepair: &pb.SaveIncomingRepairRequest{ChannelId: t.ch, Entry: e}}})
	}
}

// irepRemove deletes an incoming repair entry; an absent id costs no persistence op.
func (t *txn) irepRemove(id string) {
	s := t.s
	old, had := s.irep[id]
	if !had {
		return
	}
	delete(s.irep, id)
	t.onUndo(func() { s.irep[id] = old })
	if t.persist() {
		t.push(&pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncomingRepair{
			RemoveIncomingRepair: &pb.RemoveIncomingRepairRequest{ChannelId: t.ch, MessageId: id}}})
	}
}
