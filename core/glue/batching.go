package glue

import (
	"context"
	"sync"

	"github.com/sdskit/sdskit/core/sdserr"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

// BatchMethodID is the method id of the Persistence service that carries a whole
// PersistenceBatch (Options.BatchPersistence). No IDL method has id 0.
const BatchMethodID = 0

// batching implements the typed Persistence contract with Transactions over one host
// call per batch: the writes of a channel between Begin and Commit are collected and
// sent at Commit as one PersistenceBatch; Rollback discards them without a call. A
// write outside a transaction is a batch of its own. Reads go to the host at once.
type batching struct {
	pb.Persistence // LoadAllForChannel, through the typed client
	call           pb.CallFunc

	mu   sync.Mutex
	open map[string]*pb.PersistenceBatch
}

var _ pb.PersistenceTransactions = (*batching)(nil)

func newBatching(call pb.CallFunc, client pb.Persistence) *batching {
	return &batching{Persistence: client, call: call, open: map[string]*pb.PersistenceBatch{}}
}

// Begin opens the channel's batch.
func (b *batching) Begin(_ context.Context, r *pb.BeginRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open[r.GetChannelId()] != nil {
		return sdserr.New(sdserr.Internal, "Begin", "a batch is already open for channel %q", r.GetChannelId())
	}
	b.open[r.GetChannelId()] = &pb.PersistenceBatch{ChannelId: r.GetChannelId()}
	return nil
}

// Commit sends the channel's batch to the host.
func (b *batching) Commit(ctx context.Context, r *pb.CommitRequest) error {
	b.mu.Lock()
	batch := b.open[r.GetChannelId()]
	delete(b.open, r.GetChannelId())
	b.mu.Unlock()
	if batch == nil {
		return sdserr.New(sdserr.Internal, "Commit", "no batch is open for channel %q", r.GetChannelId())
	}
	return b.send(ctx, batch)
}

// Rollback discards the channel's batch.
func (b *batching) Rollback(_ context.Context, r *pb.RollbackRequest) error {
	b.mu.Lock()
	delete(b.open, r.GetChannelId())
	b.mu.Unlock()
	return nil
}

// send makes the host call of one batch.
func (b *batching) send(ctx context.Context, batch *pb.PersistenceBatch) error {
	if len(batch.GetOps()) == 0 {
		return nil
	}
	req, err := proto.Marshal(batch)
	if err != nil {
		return sdserr.New(sdserr.Serialization, "ApplyBatch", "cannot encode the batch: %v", err)
	}
	res, err := b.call(ctx, BatchMethodID, req)
	if err != nil {
		return err
	}
	var r pb.Result
	if err := proto.Unmarshal(res, &r); err != nil {
		return sdserr.New(sdserr.Deserialization, "ApplyBatch", "cannot decode the result: %v", err)
	}
	switch v := r.GetResult().(type) {
	case *pb.Result_Error:
		return v.Error
	case *pb.Result_Value:
		return nil
	}
	return sdserr.New(sdserr.Deserialization, "ApplyBatch", "the result holds neither a value nor an error")
}

// write stages op in the channel's open batch, or sends it as a batch of its own.
func (b *batching) write(ctx context.Context, channelID string, op *pb.PersistenceOp) error {
	b.mu.Lock()
	if batch := b.open[channelID]; batch != nil {
		batch.Ops = append(batch.Ops, op)
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	return b.send(ctx, &pb.PersistenceBatch{ChannelId: channelID, Ops: []*pb.PersistenceOp{op}})
}

func (b *batching) SaveLamport(ctx context.Context, r *pb.SaveLamportRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveLamport{SaveLamport: r}})
}

func (b *batching) AppendLogEntry(ctx context.Context, r *pb.AppendLogEntryRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_AppendLogEntry{AppendLogEntry: r}})
}

func (b *batching) RemoveLogEntry(ctx context.Context, r *pb.RemoveLogEntryRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveLogEntry{RemoveLogEntry: r}})
}

func (b *batching) SetRetrievalHint(ctx context.Context, r *pb.SetRetrievalHintRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SetRetrievalHint{SetRetrievalHint: r}})
}

func (b *batching) SaveOutgoing(ctx context.Context, r *pb.SaveOutgoingRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoing{SaveOutgoing: r}})
}

func (b *batching) RemoveOutgoing(ctx context.Context, r *pb.RemoveOutgoingRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoing{RemoveOutgoing: r}})
}

func (b *batching) SaveIncoming(ctx context.Context, r *pb.SaveIncomingRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncoming{SaveIncoming: r}})
}

func (b *batching) RemoveIncoming(ctx context.Context, r *pb.RemoveIncomingRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncoming{RemoveIncoming: r}})
}

func (b *batching) SaveOutgoingRepair(ctx context.Context, r *pb.SaveOutgoingRepairRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoingRepair{SaveOutgoingRepair: r}})
}

func (b *batching) RemoveOutgoingRepair(ctx context.Context, r *pb.RemoveOutgoingRepairRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoingRepair{RemoveOutgoingRepair: r}})
}

func (b *batching) SaveIncomingRepair(ctx context.Context, r *pb.SaveIncomingRepairRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncomingRepair{SaveIncomingRepair: r}})
}

func (b *batching) RemoveIncomingRepair(ctx context.Context, r *pb.RemoveIncomingRepairRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncomingRepair{RemoveIncomingRepair: r}})
}

func (b *batching) DropChannel(ctx context.Context, r *pb.DropChannelRequest) error {
	return b.write(ctx, r.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_DropChannel{DropChannel: r}})
}
