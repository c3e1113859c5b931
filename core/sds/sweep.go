package sds

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/sdskit/sdskit/core/sdserr"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

// MarkDependenciesMet records ids as satisfied out of band (e.g. fetched from a store):
// they count as present in the local log from now on (for waiting messages and for
// later ones), pending SDS-R work for them is dropped, and the messages they unblock are
// delivered in causal order.
func (m *Manager) MarkDependenciesMet(ctx context.Context, channelID string, ids []string) error {
	const op = "MarkDependenciesMet"
	for _, id := range ids {
		if err := m.checkID(op, "message id", id); err != nil {
			return err
		}
	}
	return m.run(ctx, op, channelID, func(t *txn) error {
		for _, id := range ids {
			t.orepRemove(id)
			t.irepRemove(id)
			if t.s.log.has(id) {
				continue
			}
			if e := t.s.in[id]; e != nil {
				// We hold the message itself, only its own dependencies are missing: the
				// application vouches for it, so deliver it.
				t.inRemove(id)
				t.deliver(e.im.GetMessage())
				continue
			}
			// A stub entry: no content; it takes the channel's current Lamport time so that
			// eviction treats it as recent (with none it would sort oldest and a full log
			// would evict it at once), and it is never offered in causal histories or repairs.
			stub := &pb.SdsMessage{MessageId: id, ChannelId: t.ch, LamportTimestamp: proto.Uint64(t.s.lamport)}
			t.logInsert(stub)
			t.bloomAdds = append(t.bloomAdds, id)
			for _, msg := range t.unblock(id) {
				t.deliver(msg)
			}
		}
		return nil
	})
}

// RunSweeps runs every timer-driven duty that is due at the manager clock's current
// time, on every loaded channel: resends and give-ups, lost-message timeouts, SDS-R
// responses and expiries, and SyncDue events. Each channel's changes are one batch; a
// channel whose batch fails keeps its memory unchanged, reports PersistenceFailed and
// is retried on the next call. The returned error joins those failures.
func (m *Manager) RunSweeps(ctx context.Context) error {
	const op = "RunSweeps"
	if err := m.enter(op); err != nil {
		return err
	}
	ids := m.Channels()
	m.leave()
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return sdserr.Wrap(sdserr.Cancelled, op, err)
		}
		if err := m.sweepChannel(ctx, id); err != nil {
			if sdserr.CodeOf(err) == sdserr.Closed {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) sweepChannel(ctx context.Context, channelID string) error {
	const op = "Sweep"
	if err := m.enter(op); err != nil {
		return err
	}
	defer m.drain()
	defer m.leave()
	c, err := m.loaded(op, channelID)
	if err != nil {
		return nil // removed meanwhile
	}
	defer c.mu.Unlock()
	t := m.begin(c, op)
	t.sweepIncoming()
	t.sweepOutgoing()
	t.sweepRepairs()
	if err := t.commit(ctx); err != nil {
		// Memory stays as it was — the sync timer included — and PersistenceFailed is the
		// only event: the next tick retries everything, SyncDue too.
		m.log.Warn("sds: sweep could not persist; will retry", "channel", channelID, "err", err)
		m.enqueue([]*pb.Event{{Event: &pb.Event_PersistenceFailed{PersistenceFailed: &pb.PersistenceFailed{
			ChannelId: channelID, Operation: op, Detail: err.Error()}}}})
		return err
	}
	evs := t.events
	if !t.now.Before(c.st.nextSync) {
		c.st.nextSync = t.now.Add(m.syncDelay())
		evs = append(evs, &pb.Event{Event: &pb.Event_SyncDue{SyncDue: &pb.SyncDue{ChannelId: channelID}}})
	}
	m.enqueue(evs)
	return nil
}

// sweepIncoming delivers buffered messages left without missing dependencies and handles
// messages that waited longer than IncomingTimeout.
func (t *txn) sweepIncoming() {
	s, m := t.s, t.m
	var ready, expired []*inEntry
	for _, e := range s.in {
		switch {
		case len(e.missing) == 0:
			ready = append(ready, e)
		case m.cfg.IncomingTimeout > 0 && !t.now.Before(time.UnixMilli(e.im.GetReceivedAtUnixMs()).Add(m.cfg.IncomingTimeout)):
			expired = append(expired, e)
		}
	}
	byLog := func(a, b *inEntry) int { return logCmp(a.im.GetMessage(), b.im.GetMessage()) }
	slices.SortFunc(ready, byLog)
	slices.SortFunc(expired, byLog)
	for _, e := range ready {
		id := e.im.GetMessage().GetMessageId()
		if s.in[id] != e {
			continue
		}
		t.inRemove(id)
		t.deliver(e.im.GetMessage())
	}
	for _, e := range expired {
		id := e.im.GetMessage().GetMessageId()
		if s.in[id] == nil { // delivered by an earlier cascade of this sweep
			continue
		}
		t.lose(s.in[id], m.cfg.LostPolicy == LostDeliver)
	}
}

// lose reports a buffered message as lost (MessageLost naming the dependencies that
// never arrived) and then delivers it anyway or drops it.
func (t *txn) lose(e *inEntry, deliver bool) {
	s := t.s
	id := e.im.GetMessage().GetMessageId()
	var missing []*pb.HistoryEntry
	for _, h := range e.im.GetMessage().GetCausalHistory() {
		if _, ok := e.missing[h.GetMessageId()]; ok {
			missing = append(missing, h)
		}
	}
	t.emit(&pb.Event{Event: &pb.Event_MessageLost{MessageLost: &pb.MessageLost{
		ChannelId: t.ch, MessageId: id, Missing: missing, Delivered: deliver}}})
	t.inRemove(id)
	if deliver {
		t.deliver(e.im.GetMessage())
		return
	}
	if hint, ok := s.hints[id]; ok {
		delete(s.hints, id)
		t.onUndo(func() { s.hints[id] = hint })
		// The contract has no hint removal of its own: RemoveLogEntry (of a message
		// that is not in the log) deletes the stored hint, so that it cannot come
		// back after a restart if the message arrives again.
		t.push(&pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveLogEntry{
			RemoveLogEntry: &pb.RemoveLogEntryRequest{ChannelId: t.ch, MessageId: id}}})
	}
}

// sweepOutgoing requests resends of overdue unacknowledged messages, with exponential
// backoff, and gives up after MaxResendAttempts. A resend is the message as first sent
// (id, Lamport timestamp, causal history, repair requests, content) carrying the
// channel's current bloom filter: it acknowledges what arrived since, and its bytes
// differ from the first broadcast, so transports that drop repeated payloads (a relay's
// seen-cache) still carry it.
func (t *txn) sweepOutgoing() {
	m := t.m
	now := t.nowMs()
	for _, e := range slices.Clone(t.s.out) {
		u := e.u
		if u.GetNextResendAtUnixMs() > now {
			continue
		}
		id := u.GetMessage().GetMessageId()
		attempts := u.GetResendAttempts()
		if int(attempts) >= m.cfg.MaxResendAttempts {
			t.outRemove(id)
			t.emit(&pb.Event{Event: &pb.Event_MessageUnacknowledged{MessageUnacknowledged: &pb.MessageUnacknowledged{
				ChannelId: t.ch, MessageId: id, ResendAttempts: attempts}}})
			continue
		}
		wire, err := t.reencode(u.GetMessage())
		if err != nil {
			// Cannot happen for a message this manager wrapped (same fields, same filter
			// size); the entry keeps its schedule so that it is not lost silently.
			m.log.Error("sds: cannot re-encode an unacknowledged message for a resend", "channel", t.ch, "message", id, "err", err)
			continue
		}
		attempts++
		nu := shallowClone(u)
		nu.WireBytes = nil // kept by earlier builds; resends no longer read it
		nu.ResendAttempts = attempts
		nu.NextResendAtUnixMs = t.now.Add(m.resendDelay(attempts)).UnixMilli()
		t.outPut(nu)
		t.emit(&pb.Event{Event: &pb.Event_ResendRequested{ResendRequested: &pb.ResendRequested{
			ChannelId: t.ch, MessageId: id, WireBytes: wire, Attempt: attempts}}})
	}
}

// reencode encodes a stored message (kept without its bloom filter) with the channel's
// current filter.
func (t *txn) reencode(stored *pb.SdsMessage) ([]byte, error) {
	return t.m.encode("Sweep", nil, withBloom(stored, t.encodeBloom()))
}

// resendDelay is the wait after the attempts-th resend: ResendInterval · Backoff^attempts,
// capped at MaxResendInterval.
func (m *Manager) resendDelay(attempts uint32) time.Duration {
	d := float64(m.cfg.ResendInterval)
	for i := uint32(0); i < attempts && d < float64(m.cfg.MaxResendInterval); i++ {
		d *= m.cfg.ResendBackoff
	}
	return min(time.Duration(d), m.cfg.MaxResendInterval)
}

// sweepRepairs emits RepairReady for due SDS-R responses and drops outgoing requests
// that stayed unsent for longer than T_max after they became due.
func (t *txn) sweepRepairs() {
	s, m := t.s, t.m
	now := t.nowMs()
	for _, id := range sortedKeys(s.irep) {
		e := s.irep[id]
		if e.GetRespondAtUnixMs() > now {
			continue
		}
		t.irepRemove(id)
		t.emit(&pb.Event{Event: &pb.Event_RepairReady{RepairReady: &pb.RepairReady{
			ChannelId: t.ch, MessageId: id, WireBytes: e.GetCachedMessage()}}})
	}
	var keep retryPolicy
	for _, id := range sortedKeys(s.orep) {
		// A request nothing carried for T_max is dropped (nim-sds), unless the retry
		// policy keeps it for a buffered message that would otherwise wait forever.
		if now-s.orep[id].GetRequestAtUnixMs() > m.cfg.RepairTMax.Milliseconds() && !keep.keeps(t, id) {
			t.orepRemove(id)
		}
	}
}

// StartPeriodicTasks runs RunSweeps every SweepInterval on a background goroutine until
// Close or ctx ends. Calling it again while running is a no-op; after ctx ended it starts
// the tasks again.
func (m *Manager) StartPeriodicTasks(ctx context.Context) error {
	const op = "StartPeriodicTasks"
	if err := m.enter(op); err != nil {
		return err
	}
	defer m.leave()
	m.taskMu.Lock()
	defer m.taskMu.Unlock()
	if m.taskCancel != nil && m.taskCtx.Err() == nil {
		return nil
	}
	if m.taskCancel != nil {
		m.taskCancel() // the previous task's context ended: release it
	}
	ctx, cancel := context.WithCancel(ctx)
	m.taskCtx, m.taskCancel = ctx, cancel
	go func() {
		tick := time.NewTicker(m.cfg.SweepInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := m.RunSweeps(ctx); err != nil {
					if sdserr.CodeOf(err) == sdserr.Closed || sdserr.CodeOf(err) == sdserr.Cancelled {
						return
					}
					m.log.Debug("sds: periodic sweep", "err", err)
				}
			}
		}
	}()
	return nil
}
