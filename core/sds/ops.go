package sds

import (
	"context"
	"slices"

	"github.com/sdskit/sdskit/core/sdserr"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// run executes one public operation on one channel: it enters the manager, locks (and if
// needed bootstraps) the channel, runs body inside a txn, commits, enqueues the events
// under the lock and delivers them after every lock is released.
func (m *Manager) run(ctx context.Context, op, channelID string, body func(t *txn) error) error {
	if err := m.enter(op); err != nil {
		return err
	}
	defer m.drain() // runs after leave: handlers never run inside an operation
	defer m.leave()
	if err := m.checkID(op, "channel id", channelID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return sdserr.Wrap(sdserr.Cancelled, op, err)
	}
	c, err := m.acquire(ctx, op, channelID, true)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	t := m.begin(c, op)
	if err := body(t); err != nil {
		t.rollback()
		return err
	}
	if err := t.commit(ctx); err != nil {
		return err
	}
	m.enqueue(t.events)
	return nil
}

// EnsureChannel loads the channel from the backend if it is not in memory yet
// (PERSISTENCE if the load fails; nothing is installed then).
func (m *Manager) EnsureChannel(ctx context.Context, channelID string) error {
	return m.run(ctx, "EnsureChannel", channelID, func(*txn) error { return nil })
}

// RemoveChannel drops the channel's persisted state with one DropChannel call — also when
// the channel is not loaded — and then forgets it in memory. On failure nothing changes.
func (m *Manager) RemoveChannel(ctx context.Context, channelID string) error {
	const op = "RemoveChannel"
	if err := m.enter(op); err != nil {
		return err
	}
	defer m.leave()
	if err := m.checkID(op, "channel id", channelID); err != nil {
		return err
	}
	return m.drop(ctx, op, channelID)
}

func (m *Manager) drop(ctx context.Context, op, channelID string) error {
	c, err := m.acquire(ctx, op, channelID, false)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	batch := &pb.PersistenceBatch{ChannelId: channelID, Operation: op, Ops: []*pb.PersistenceOp{{
		Op: &pb.PersistenceOp_DropChannel{DropChannel: &pb.DropChannelRequest{ChannelId: channelID}}}}}
	if err := m.apply(ctx, batch); err != nil {
		if c.st == nil { // a placeholder made by acquire: do not keep it around
			m.forget(c)
		}
		return sdserr.Wrap(sdserr.Persistence, op, err)
	}
	m.forget(c)
	m.mu.Lock()
	delete(m.touched, channelID)
	m.mu.Unlock()
	return nil
}

// Reset drops every channel this manager has loaded or touched, one DropChannel each. It
// stops at the first failure (PERSISTENCE): channels dropped before it stay dropped, the
// failing one and the rest are unchanged, and calling Reset again finishes the job.
func (m *Manager) Reset(ctx context.Context) error {
	const op = "Reset"
	if err := m.enter(op); err != nil {
		return err
	}
	defer m.leave()
	m.mu.Lock()
	ids := make([]string, 0, len(m.touched))
	for id := range m.touched {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		if err := m.drop(ctx, op, id); err != nil {
			return err
		}
	}
	return nil
}

// knows reports whether id is already in the channel's log or buffers.
func (s *state) knows(id string) bool {
	if s.log.has(id) {
		return true
	}
	if _, ok := s.in[id]; ok {
		return true
	}
	_, ok := s.outByID[id]
	return ok
}
