// Package store holds the persistence contract as the core sees it — one atomic batch of
// writes per protocol operation plus a snapshot read — and the backends that ship with
// the core: no-op and an in-memory store with failure injection for tests.
package store

import (
	"context"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Backend is what the core calls. It is safe for concurrent use by several channels;
// the core never issues two calls for the same channel at once.
//
// Apply must apply every op of the batch or none of them; on failure it returns an
// error describing the backend's problem (the core reports it as PERSISTENCE and rolls
// back its memory). Load returns the channel's snapshot, an empty one for an unknown
// channel; its log must be oldest-first (ascending lamport, then message id).
// Backends must not retain the batch or snapshot messages after returning unless they
// clone them; the core treats both as immutable once handed over.
type Backend interface {
	Apply(ctx context.Context, batch *pb.PersistenceBatch) error
	Load(ctx context.Context, channelID string) (*pb.ChannelSnapshot, error)
}

// Op names, exactly as the persistence contract spells them; failure injection and call
// counters use them.
const (
	OpSaveLamport          = "SaveLamport"
	OpAppendLogEntry       = "AppendLogEntry"
	OpRemoveLogEntry       = "RemoveLogEntry"
	OpSetRetrievalHint     = "SetRetrievalHint"
	OpSaveOutgoing         = "SaveOutgoing"
	OpRemoveOutgoing       = "RemoveOutgoing"
	OpSaveIncoming         = "SaveIncoming"
	OpRemoveIncoming       = "RemoveIncoming"
	OpSaveOutgoingRepair   = "SaveOutgoingRepair"
	OpRemoveOutgoingRepair = "RemoveOutgoingRepair"
	OpSaveIncomingRepair   = "SaveIncomingRepair"
	OpRemoveIncomingRepair = "RemoveIncomingRepair"
	OpDropChannel          = "DropChannel"
	OpLoadAllForChannel    = "LoadAllForChannel"
)

// AllOps lists the 14 operations in contract order.
var AllOps = []string{
	OpSaveLamport, OpAppendLogEntry, OpRemoveLogEntry, OpSetRetrievalHint,
	OpSaveOutgoing, OpRemoveOutgoing, OpSaveIncoming, OpRemoveIncoming,
	OpSaveOutgoingRepair, OpRemoveOutgoingRepair, OpSaveIncomingRepair,
	OpRemoveIncomingRepair, OpDropChannel, OpLoadAllForChannel,
}

// OpName returns the contract name of a write op ("" for an empty op); the mapping is
// generated from the IDL (sdskitv1.PersistenceOpName).
func OpName(op *pb.PersistenceOp) string { return pb.PersistenceOpName(op) }

// Noop is the default backend: it accepts every write and loads empty snapshots.
type Noop struct{}

// Apply accepts the batch and stores nothing.
func (Noop) Apply(context.Context, *pb.PersistenceBatch) error { return nil }

// Load returns an empty snapshot.
func (Noop) Load(_ context.Context, channelID string) (*pb.ChannelSnapshot, error) {
	return &pb.ChannelSnapshot{ChannelId: channelID}, nil
}
