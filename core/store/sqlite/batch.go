package sqlite

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// opKind says which statements an encoded op runs.
type opKind int

const (
	kindSaveLamport opKind = iota
	kindAppendLog
	kindRemoveLog
	kindSetHint
	kindSaveRow   // upsert into one of the ordered tables
	kindDeleteRow // delete from one of the ordered tables
	kindDropChannel
)

// encodedOp is one write of a batch, ready to bind: encoding happens before the
// transaction starts, so that the database lock is held only for the SQL itself.
type encodedOp struct {
	name    string // contract name, for errors
	kind    opKind
	table   int // tbl* for kindSaveRow and kindDeleteRow
	id      string
	lamport uint64
	blob    []byte
}

// marshal is the encoding of every stored message: deterministic, so that equal
// messages give equal blobs.
var marshal = proto.MarshalOptions{Deterministic: true}

// encodeBatch turns a validated batch into encoded ops.
func encodeBatch(batch *pb.PersistenceBatch) ([]encodedOp, error) {
	out := make([]encodedOp, 0, len(batch.GetOps()))
	for i, op := range batch.GetOps() {
		r := encodedOp{name: store.OpName(op)}
		var msg proto.Message
		switch o := op.GetOp().(type) {
		case *pb.PersistenceOp_SaveLamport:
			r.kind, r.lamport = kindSaveLamport, o.SaveLamport.GetLamportTimestamp()
		case *pb.PersistenceOp_AppendLogEntry:
			m := o.AppendLogEntry.GetMessage()
			r.kind, r.id, r.lamport, msg = kindAppendLog, m.GetMessageId(), m.GetLamportTimestamp(), m
		case *pb.PersistenceOp_RemoveLogEntry:
			r.kind, r.id = kindRemoveLog, o.RemoveLogEntry.GetMessageId()
		case *pb.PersistenceOp_SetRetrievalHint:
			r.kind, r.id, r.blob = kindSetHint, o.SetRetrievalHint.GetMessageId(), o.SetRetrievalHint.GetRetrievalHint()
			if r.blob == nil {
				r.blob = []byte{}
			}
		case *pb.PersistenceOp_SaveOutgoing:
			e := o.SaveOutgoing.GetMessage()
			r.kind, r.table, r.id, msg = kindSaveRow, tblOutgoing, e.GetMessage().GetMessageId(), e
		case *pb.PersistenceOp_RemoveOutgoing:
			r.kind, r.table, r.id = kindDeleteRow, tblOutgoing, o.RemoveOutgoing.GetMessageId()
		case *pb.PersistenceOp_SaveIncoming:
			e := o.SaveIncoming.GetMessage()
			r.kind, r.table, r.id, msg = kindSaveRow, tblIncoming, e.GetMessage().GetMessageId(), e
		case *pb.PersistenceOp_RemoveIncoming:
			r.kind, r.table, r.id = kindDeleteRow, tblIncoming, o.RemoveIncoming.GetMessageId()
		case *pb.PersistenceOp_SaveOutgoingRepair:
			e := o.SaveOutgoingRepair.GetEntry()
			r.kind, r.table, r.id, msg = kindSaveRow, tblOutgoingRepair, e.GetEntry().GetMessageId(), e
		case *pb.PersistenceOp_RemoveOutgoingRepair:
			r.kind, r.table, r.id = kindDeleteRow, tblOutgoingRepair, o.RemoveOutgoingRepair.GetMessageId()
		case *pb.PersistenceOp_SaveIncomingRepair:
			e := o.SaveIncomingRepair.GetEntry()
			r.kind, r.table, r.id, msg = kindSaveRow, tblIncomingRepair, e.GetEntry().GetMessageId(), e
		case *pb.PersistenceOp_RemoveIncomingRepair:
			r.kind, r.table, r.id = kindDeleteRow, tblIncomingRepair, o.RemoveIncomingRepair.GetMessageId()
		case *pb.PersistenceOp_DropChannel:
			r.kind = kindDropChannel
		}
		if msg != nil {
			b, err := marshal.Marshal(msg)
			if err != nil {
				return nil, fmt.Errorf("op %d (%s): cannot encode message %q: %w", i, r.name, r.id, err)
			}
			if b == nil {
				b = []byte{}
			}
			r.blob = b
		}
		out = append(out, r)
	}
	return out, nil
}

// validateBatch rejects a malformed batch as a whole, before any of it is applied, with
// the rules of store.Memory: a nil batch, an empty op, an op without its request or the
// entity it saves, or an op of another channel (errors wrap store.ErrInvalidBatch).
func validateBatch(batch *pb.PersistenceBatch) error {
	if batch == nil {
		return fmt.Errorf("%w: nil batch", store.ErrInvalidBatch)
	}
	for i, op := range batch.GetOps() {
		if err := validateOp(batch.GetChannelId(), op); err != nil {
			return fmt.Errorf("%w: op %d: %w", store.ErrInvalidBatch, i, err)
		}
	}
	return nil
}

// channelScoped is what every request of the contract has in common.
type channelScoped interface {
	GetChannelId() string
}

func validateOp(channelID string, op *pb.PersistenceOp) error {
	name := store.OpName(op)
	if name == "" {
		return errors.New("empty op (no operation set)")
	}
	var req channelScoped
	missing := false
	switch o := op.GetOp().(type) {
	case *pb.PersistenceOp_SaveLamport:
		req = nilIfNil(o.SaveLamport)
	case *pb.PersistenceOp_AppendLogEntry:
		req, missing = nilIfNil(o.AppendLogEntry), o.AppendLogEntry.GetMessage() == nil
	case *pb.PersistenceOp_RemoveLogEntry:
		req = nilIfNil(o.RemoveLogEntry)
	case *pb.PersistenceOp_SetRetrievalHint:
		req = nilIfNil(o.SetRetrievalHint)
	case *pb.PersistenceOp_SaveOutgoing:
		req, missing = nilIfNil(o.SaveOutgoing), o.SaveOutgoing.GetMessage().GetMessage() == nil
	case *pb.PersistenceOp_RemoveOutgoing:
		req = nilIfNil(o.RemoveOutgoing)
	case *pb.PersistenceOp_SaveIncoming:
		req, missing = nilIfNil(o.SaveIncoming), o.SaveIncoming.GetMessage().GetMessage() == nil
	case *pb.PersistenceOp_RemoveIncoming:
		req = nilIfNil(o.RemoveIncoming)
	case *pb.PersistenceOp_SaveOutgoingRepair:
		req, missing = nilIfNil(o.SaveOutgoingRepair), o.SaveOutgoingRepair.GetEntry().GetEntry() == nil
	case *pb.PersistenceOp_RemoveOutgoingRepair:
		req = nilIfNil(o.RemoveOutgoingRepair)
	case *pb.PersistenceOp_SaveIncomingRepair:
		req, missing = nilIfNil(o.SaveIncomingRepair), o.SaveIncomingRepair.GetEntry().GetEntry() == nil
	case *pb.PersistenceOp_RemoveIncomingRepair:
		req = nilIfNil(o.RemoveIncomingRepair)
	case *pb.PersistenceOp_DropChannel:
		req = nilIfNil(o.DropChannel)
	}
	if req == nil {
		return fmt.Errorf("%s: nil request", name)
	}
	if got := req.GetChannelId(); got != channelID {
		return fmt.Errorf("%s: channel_id %q does not match the batch's channel_id %q", name, got, channelID)
	}
	if missing {
		return fmt.Errorf("%s: nothing to save (nil message or entry)", name)
	}
	return nil
}

// nilIfNil turns a typed nil request into an untyped nil interface.
func nilIfNil[T interface {
	*E
	channelScoped
}, E any](req T) channelScoped {
	if req == nil {
		return nil
	}
	return req
}
