package store

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// ErrInvalidBatch is wrapped by every error that rejects a malformed batch: a nil batch,
// an empty op, an op without its request or entity, or an op of another channel. It is
// the generated sdskitv1.ErrInvalidPersistenceBatch, so the generated adapter's checks
// and the core's own wrap the same sentinel.
var ErrInvalidBatch = pb.ErrInvalidPersistenceBatch

// validateBatch checks the shape of a batch before any of it is applied, so that a
// malformed batch is rejected as a whole.
func validateBatch(batch *pb.PersistenceBatch) error {
	if batch == nil {
		return fmt.Errorf("%w: nil batch", ErrInvalidBatch)
	}
	for i, op := range batch.GetOps() {
		if err := validateOp(batch.GetChannelId(), op); err != nil {
			return fmt.Errorf("%w: op %d: %w", ErrInvalidBatch, i, err)
		}
	}
	return nil
}

// validateOp checks one op: its oneof is set, its request and the entity it saves are
// present, and it belongs to the batch's channel.
func validateOp(channelID string, op *pb.PersistenceOp) error {
	name := OpName(op)
	if name == "" {
		return errors.New("empty op (no operation set)")
	}
	req := opRequest(op)
	if req == nil {
		return fmt.Errorf("%s: nil request", name)
	}
	if got := req.GetChannelId(); got != channelID {
		return fmt.Errorf("%s: channel_id %q does not match the batch's channel_id %q", name, got, channelID)
	}
	missing := false
	switch o := op.GetOp().(type) {
	case *pb.PersistenceOp_AppendLogEntry:
		missing = o.AppendLogEntry.GetMessage() == nil
	case *pb.PersistenceOp_SaveOutgoing:
		missing = o.SaveOutgoing.GetMessage().GetMessage() == nil
	case *pb.PersistenceOp_SaveIncoming:
		missing = o.SaveIncoming.GetMessage().GetMessage() == nil
	case *pb.PersistenceOp_SaveOutgoingRepair:
		missing = o.SaveOutgoingRepair.GetEntry().GetEntry() == nil
	case *pb.PersistenceOp_SaveIncomingRepair:
		missing = o.SaveIncomingRepair.GetEntry().GetEntry() == nil
	}
	if missing {
		return fmt.Errorf("%s: nothing to save (nil message or entry)", name)
	}
	return nil
}

// channelScoped is what every request of the contract has in common.
type channelScoped interface {
	GetChannelId() string
}

// opRequest returns the request carried by op, or nil when the oneof is unset or holds
// a nil request.
func opRequest(op *pb.PersistenceOp) channelScoped {
	switch o := op.GetOp().(type) {
	case *pb.PersistenceOp_SaveLamport:
		if o.SaveLamport != nil {
			return o.SaveLamport
		}
	case *pb.PersistenceOp_AppendLogEntry:
		if o.AppendLogEntry != nil {
			return o.AppendLogEntry
		}
	case *pb.PersistenceOp_RemoveLogEntry:
		if o.RemoveLogEntry != nil {
			return o.RemoveLogEntry
		}
	case *pb.PersistenceOp_SetRetrievalHint:
		if o.SetRetrievalHint != nil {
			return o.SetRetrievalHint
		}
	case *pb.PersistenceOp_SaveOutgoing:
		if o.SaveOutgoing != nil {
			return o.SaveOutgoing
		}
	case *pb.PersistenceOp_RemoveOutgoing:
		if o.RemoveOutgoing != nil {
			return o.RemoveOutgoing
		}
	case *pb.PersistenceOp_SaveIncoming:
		if o.SaveIncoming != nil {
			return o.SaveIncoming
		}
	case *pb.PersistenceOp_RemoveIncoming:
		if o.RemoveIncoming != nil {
			return o.RemoveIncoming
		}
	case *pb.PersistenceOp_SaveOutgoingRepair:
		if o.SaveOutgoingRepair != nil {
			return o.SaveOutgoingRepair
		}
	case *pb.PersistenceOp_RemoveOutgoingRepair:
		if o.RemoveOutgoingRepair != nil {
			return o.RemoveOutgoingRepair
		}
	case *pb.PersistenceOp_SaveIncomingRepair:
		if o.SaveIncomingRepair != nil {
			return o.SaveIncomingRepair
		}
	case *pb.PersistenceOp_RemoveIncomingRepair:
		if o.RemoveIncomingRepair != nil {
			return o.RemoveIncomingRepair
		}
	case *pb.PersistenceOp_DropChannel:
		if o.DropChannel != nil {
			return o.DropChannel
		}
	}
	return nil
}

// sortLog orders a log oldest-first: ascending lamport timestamp (unset counts as 0),
// then message id.
func sortLog(log []*pb.SdsMessage) {
	slices.SortStableFunc(log, compareLog)
}

// compareLog is the log order of sortLog.
func compareLog(a, b *pb.SdsMessage) int {
	if c := cmp.Compare(a.GetLamportTimestamp(), b.GetLamportTimestamp()); c != 0 {
		return c
	}
	return strings.Compare(a.GetMessageId(), b.GetMessageId())
}
