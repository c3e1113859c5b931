package store

// This file holds the persistence contract as typed operations and its adapter to
// Backend. It is deliberately mechanical: a later change generates it from the IDL
// (idl/sdskit/v1/state.proto), so keep one method and one dispatch case per operation.

import (
	"context"
	"errors"
	"fmt"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Persistence is the persistence contract as 14 typed operations (what host backends
// implement); each write upserts or deletes one row, and removals of absent rows succeed.
type Persistence interface {
	// SaveLamport upserts the channel's Lamport clock.
	SaveLamport(ctx context.Context, req *pb.SaveLamportRequest) error
	// AppendLogEntry upserts a message of the local log, keyed (channel, message id).
	AppendLogEntry(ctx context.Context, req *pb.AppendLogEntryRequest) error
	// RemoveLogEntry deletes a message from the local log, and its retrieval hint.
	RemoveLogEntry(ctx context.Context, req *pb.RemoveLogEntryRequest) error
	// SetRetrievalHint upserts the retrieval hint of a log message.
	SetRetrievalHint(ctx context.Context, req *pb.SetRetrievalHintRequest) error
	// SaveOutgoing upserts an outgoing-buffer entry; an update keeps its insertion position.
	SaveOutgoing(ctx context.Context, req *pb.SaveOutgoingRequest) error
	// RemoveOutgoing deletes an outgoing-buffer entry.
	RemoveOutgoing(ctx context.Context, req *pb.RemoveOutgoingRequest) error
	// SaveIncoming upserts an incoming-buffer entry, keyed by its message id.
	SaveIncoming(ctx context.Context, req *pb.SaveIncomingRequest) error
	// RemoveIncoming deletes an incoming-buffer entry.
	RemoveIncoming(ctx context.Context, req *pb.RemoveIncomingRequest) error
	// SaveOutgoingRepair upserts an outgoing repair entry, keyed by entry.entry.message_id.
	SaveOutgoingRepair(ctx context.Context, req *pb.SaveOutgoingRepairRequest) error
	// RemoveOutgoingRepair deletes an outgoing repair entry.
	RemoveOutgoingRepair(ctx context.Context, req *pb.RemoveOutgoingRepairRequest) error
	// SaveIncomingRepair upserts an incoming repair entry, keyed by entry.entry.message_id.
	SaveIncomingRepair(ctx context.Context, req *pb.SaveIncomingRepairRequest) error
	// RemoveIncomingRepair deletes an incoming repair entry.
	RemoveIncomingRepair(ctx context.Context, req *pb.RemoveIncomingRepairRequest) error
	// DropChannel wipes everything persisted for a channel.
	DropChannel(ctx context.Context, req *pb.DropChannelRequest) error
	// LoadAllForChannel returns the channel's snapshot (empty for an unknown channel).
	LoadAllForChannel(ctx context.Context, req *pb.LoadAllForChannelRequest) (*pb.ChannelSnapshot, error)
}

// Transactional is implemented by backends that can group writes: the writes between
// Begin and Commit of a channel take effect together, and Rollback discards them.
type Transactional interface {
	// Begin starts a transaction for the channel's next batch.
	Begin(ctx context.Context, channelID string) error
	// Commit makes the transaction's writes durable.
	Commit(ctx context.Context, channelID string) error
	// Rollback discards the transaction's writes.
	Rollback(ctx context.Context, channelID string) error
}

// PanicError is the error FromPersistence returns when a host method panics.
type PanicError struct {
	Op    string // the method that panicked, e.g. "SaveOutgoing" or "Commit"
	Value any    // the value passed to panic
}

// Error returns "backend panicked in <Op>: <Value>".
func (e *PanicError) Error() string { return fmt.Sprintf("backend panicked in %s: %v", e.Op, e.Value) }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// FromPersistence adapts a typed Persistence to a Backend: each batch becomes the typed
// calls in order, inside Begin/Commit when p also implements Transactional, with
// Rollback on the first error.
//
// Without Transactional a failed batch may be left partially applied (the writes before
// the failing one stay), breaking Backend's all-or-nothing rule: such a backend is only
// crash-safe if it is itself atomic. Errors are wrapped as
// "<Op>: <cause>", a panicking host method becomes a *PanicError, malformed batches are
// rejected (ErrInvalidBatch) before any host call, and an empty batch makes no call.
// Load returns the host's snapshot with its log sorted oldest-first.
func FromPersistence(p Persistence) Backend {
	if p == nil {
		panic("store: FromPersistence(nil)")
	}
	tx, _ := p.(Transactional)
	return &persistenceBackend{p: p, tx: tx}
}

// persistenceBackend is the Backend FromPersistence returns.
type persistenceBackend struct {
	p  Persistence
	tx Transactional // nil when p has no transactions
}

// Apply makes the batch's typed calls, inside a transaction when the host has them.
func (b *persistenceBackend) Apply(ctx context.Context, batch *pb.PersistenceBatch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("persistence: apply: %w", err)
	}
	if err := validateBatch(batch); err != nil {
		return fmt.Errorf("persistence: %w", err)
	}
	if len(batch.GetOps()) == 0 {
		return nil
	}
	channelID := batch.GetChannelId()
	if b.tx != nil {
		if err := guard("Begin", func() error { return b.tx.Begin(ctx, channelID) }); err != nil {
			return err
		}
	}
	for _, op := range batch.GetOps() {
		err := guard(OpName(op), func() error { return dispatch(ctx, b.p, op) })
		if err == nil {
			continue
		}
		if b.tx != nil {
			// Roll back even when ctx is what failed the op.
			rbCtx := context.WithoutCancel(ctx)
			if rbErr := guard("Rollback", func() error { return b.tx.Rollback(rbCtx, channelID) }); rbErr != nil {
				return errors.Join(err, rbErr)
			}
		}
		return err
	}
	if b.tx != nil {
		return guard("Commit", func() error { return b.tx.Commit(ctx, channelID) })
	}
	return nil
}

// Load calls LoadAllForChannel and normalizes its snapshot.
func (b *persistenceBackend) Load(ctx context.Context, channelID string) (*pb.ChannelSnapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("persistence: load: %w", err)
	}
	var snap *pb.ChannelSnapshot
	err := guard(OpLoadAllForChannel, func() error {
		var err error
		snap, err = b.p.LoadAllForChannel(ctx, &pb.LoadAllForChannelRequest{ChannelId: channelID})
		return err
	})
	if err != nil {
		return nil, err
	}
	if snap == nil {
		return &pb.ChannelSnapshot{ChannelId: channelID}, nil
	}
	switch snap.GetChannelId() {
	case channelID:
	case "":
		snap.ChannelId = channelID
	default:
		return nil, fmt.Errorf("%s: returned the snapshot of channel %q instead of %q", OpLoadAllForChannel, snap.GetChannelId(), channelID)
	}
	sortLog(snap.Log)
	return snap, nil
}

// guard runs one host method, wrapping its error as "<op>: <err>" and turning a panic
// into a *PanicError.
func guard(op string, call func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Op: op, Value: v}
		}
	}()
	if err := call(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// dispatch makes the typed call of one validated write op.
func dispatch(ctx context.Context, p Persistence, op *pb.PersistenceOp) error {
	switch o := op.GetOp().(type) {
	case *pb.PersistenceOp_SaveLamport:
		return p.SaveLamport(ctx, o.SaveLamport)
	case *pb.PersistenceOp_AppendLogEntry:
		return p.AppendLogEntry(ctx, o.AppendLogEntry)
	case *pb.PersistenceOp_RemoveLogEntry:
		return p.RemoveLogEntry(ctx, o.RemoveLogEntry)
	case *pb.PersistenceOp_SetRetrievalHint:
		return p.SetRetrievalHint(ctx, o.SetRetrievalHint)
	case *pb.PersistenceOp_SaveOutgoing:
		return p.SaveOutgoing(ctx, o.SaveOutgoing)
	case *pb.PersistenceOp_RemoveOutgoing:
		return p.RemoveOutgoing(ctx, o.RemoveOutgoing)
	case *pb.PersistenceOp_SaveIncoming:
		return p.SaveIncoming(ctx, o.SaveIncoming)
	case *pb.PersistenceOp_RemoveIncoming:
		return p.RemoveIncoming(ctx, o.RemoveIncoming)
	case *pb.PersistenceOp_SaveOutgoingRepair:
		return p.SaveOutgoingRepair(ctx, o.SaveOutgoingRepair)
	case *pb.PersistenceOp_RemoveOutgoingRepair:
		return p.RemoveOutgoingRepair(ctx, o.RemoveOutgoingRepair)
	case *pb.PersistenceOp_SaveIncomingRepair:
		return p.SaveIncomingRepair(ctx, o.SaveIncomingRepair)
	case *pb.PersistenceOp_RemoveIncomingRepair:
		return p.RemoveIncomingRepair(ctx, o.RemoveIncomingRepair)
	case *pb.PersistenceOp_DropChannel:
		return p.DropChannel(ctx, o.DropChannel)
	}
	return fmt.Errorf("%w: empty op", ErrInvalidBatch)
}
