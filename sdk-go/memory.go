package sdskit

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Names of the persistence methods MemoryPersistence counts and can make fail: the 14
// operations of the contract and the three transaction methods.
const (
	OpSaveLamport          = store.OpSaveLamport
	OpAppendLogEntry       = store.OpAppendLogEntry
	OpRemoveLogEntry       = store.OpRemoveLogEntry
	OpSetRetrievalHint     = store.OpSetRetrievalHint
	OpSaveOutgoing         = store.OpSaveOutgoing
	OpRemoveOutgoing       = store.OpRemoveOutgoing
	OpSaveIncoming         = store.OpSaveIncoming
	OpRemoveIncoming       = store.OpRemoveIncoming
	OpSaveOutgoingRepair   = store.OpSaveOutgoingRepair
	OpRemoveOutgoingRepair = store.OpRemoveOutgoingRepair
	OpSaveIncomingRepair   = store.OpSaveIncomingRepair
	OpRemoveIncomingRepair = store.OpRemoveIncomingRepair
	OpDropChannel          = store.OpDropChannel
	OpLoadAllForChannel    = store.OpLoadAllForChannel
	OpBegin                = "Begin"
	OpCommit               = "Commit"
	OpRollback             = "Rollback"
)

// PersistenceMethods lists every method name MemoryPersistence accepts in FailOp,
// FailNth, Heal and Calls: the 14 contract operations in contract order, then Begin,
// Commit and Rollback.
var PersistenceMethods = append(slices.Clone(store.AllOps), OpBegin, OpCommit, OpRollback)

// MemoryPersistence is an in-memory backend implementing the Persistence contract with
// failure injection, for tests. It implements Persistence and PersistenceTransactions:
// pass it to WithPersistence, and to New again after Close to simulate a restart of the
// application over the same data.
//
// The writes of a channel between Begin and Commit are staged into one batch and
// applied atomically at Commit (Rollback, or a failing Commit, discards them); a write
// outside a transaction is applied at once. Storage and its rules (upserts keep the
// outgoing insertion order, RemoveLogEntry also deletes the retrieval hint, the log is
// loaded oldest-first) are those of the core's in-memory store.
//
// Failure injection and counters work on method calls: Calls counts every call of a
// method (failed calls included); FailOp makes every call of a method fail until Heal,
// FailNth makes only the n-th call from now fail. A failing call returns an error
// ("injected failure: <method>") and has no effect — a failing staged write is not
// staged. It is safe for concurrent use.
type MemoryPersistence struct {
	mem *store.Memory

	mu      sync.Mutex
	tx      map[string]*pb.PersistenceBatch // open transactions by channel
	calls   map[string]int
	failOps map[string]bool
	failNth map[string]int
}

var (
	_ Persistence             = (*MemoryPersistence)(nil)
	_ PersistenceTransactions = (*MemoryPersistence)(nil)
)

// NewMemoryPersistence returns an empty backend without failures.
func NewMemoryPersistence() *MemoryPersistence {
	return &MemoryPersistence{
		mem:     store.NewMemory(),
		tx:      map[string]*pb.PersistenceBatch{},
		calls:   map[string]int{},
		failOps: map[string]bool{},
		failNth: map[string]int{},
	}
}

func mustBeMethod(name string) {
	if !slices.Contains(PersistenceMethods, name) {
		panic(fmt.Sprintf("sdskit: unknown persistence method %q", name))
	}
}

// FailOp makes every later call of the named method fail until Heal. It panics on a
// name that is not in PersistenceMethods.
func (p *MemoryPersistence) FailOp(name string) {
	mustBeMethod(name)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failOps[name] = true
}

// FailNth makes only the n-th call of the named method from now on fail (n ≥ 1: 1 is
// the next call), once, replacing an earlier FailNth of that method. It panics on an
// unknown name or n < 1.
func (p *MemoryPersistence) FailNth(name string, n int) {
	mustBeMethod(name)
	if n < 1 {
		panic(fmt.Sprintf("sdskit: FailNth(%q, %d): n must be at least 1", name, n))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNth[name] = n
}

// Heal removes the FailOp and FailNth failures of the named methods, or of every method
// when called without names.
func (p *MemoryPersistence) Heal(names ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(names) == 0 {
		clear(p.failOps)
		clear(p.failNth)
		return
	}
	for _, n := range names {
		delete(p.failOps, n)
		delete(p.failNth, n)
	}
}

// Calls returns how many times the named method was called, failed calls included.
func (p *MemoryPersistence) Calls(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[name]
}

// Snapshot returns what LoadAllForChannel would return for the channel, without counting
// a call and without failure injection.
func (p *MemoryPersistence) Snapshot(channelID string) *Snapshot {
	return p.mem.Snapshot(channelID)
}

// Channels returns the ids of the channels with any stored state, sorted.
func (p *MemoryPersistence) Channels() []string { return p.mem.Channels() }

// attempt counts one call of name and reports whether an injected failure hits it.
// Must hold mu.
func (p *MemoryPersistence) attempt(name string) error {
	p.calls[name]++
	fail := p.failOps[name]
	if n, ok := p.failNth[name]; ok {
		if n <= 1 {
			delete(p.failNth, name)
			fail = true
		} else {
			p.failNth[name] = n - 1
		}
	}
	if fail {
		return &store.InjectedError{Op: name}
	}
	return nil
}

// write stages op in the channel's open transaction, or applies it at once.
func (p *MemoryPersistence) write(ctx context.Context, name, channelID string, op *pb.PersistenceOp) error {
	p.mu.Lock()
	if err := p.attempt(name); err != nil {
		p.mu.Unlock()
		return err
	}
	if b := p.tx[channelID]; b != nil {
		b.Ops = append(b.Ops, op)
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	return p.mem.Apply(ctx, &pb.PersistenceBatch{ChannelId: channelID, Ops: []*pb.PersistenceOp{op}, Operation: name})
}

// Begin opens a transaction for the channel's next writes.
func (p *MemoryPersistence) Begin(_ context.Context, req *pb.BeginRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.attempt(OpBegin); err != nil {
		return err
	}
	ch := req.GetChannelId()
	if p.tx[ch] != nil {
		return fmt.Errorf("memory persistence: Begin: a transaction is already open for channel %q", ch)
	}
	p.tx[ch] = &pb.PersistenceBatch{ChannelId: ch, Operation: "Commit"}
	return nil
}

// Commit applies the channel's staged writes atomically and closes the transaction;
// when it fails nothing is applied and the transaction is closed all the same.
func (p *MemoryPersistence) Commit(ctx context.Context, req *pb.CommitRequest) error {
	p.mu.Lock()
	ch := req.GetChannelId()
	b := p.tx[ch]
	delete(p.tx, ch)
	if err := p.attempt(OpCommit); err != nil {
		p.mu.Unlock()
		return err
	}
	p.mu.Unlock()
	if b == nil {
		return fmt.Errorf("memory persistence: Commit: no transaction is open for channel %q", ch)
	}
	if len(b.Ops) == 0 {
		return nil
	}
	return p.mem.Apply(ctx, b)
}

// Rollback discards the channel's staged writes and closes the transaction.
func (p *MemoryPersistence) Rollback(_ context.Context, req *pb.RollbackRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.tx, req.GetChannelId())
	return p.attempt(OpRollback)
}

// SaveLamport upserts the channel's Lamport clock.
func (p *MemoryPersistence) SaveLamport(ctx context.Context, req *pb.SaveLamportRequest) error {
	return p.write(ctx, OpSaveLamport, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveLamport{SaveLamport: req}})
}

// AppendLogEntry upserts a message of the local log.
func (p *MemoryPersistence) AppendLogEntry(ctx context.Context, req *pb.AppendLogEntryRequest) error {
	return p.write(ctx, OpAppendLogEntry, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_AppendLogEntry{AppendLogEntry: req}})
}

// RemoveLogEntry deletes a message of the local log and its retrieval hint.
func (p *MemoryPersistence) RemoveLogEntry(ctx context.Context, req *pb.RemoveLogEntryRequest) error {
	return p.write(ctx, OpRemoveLogEntry, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveLogEntry{RemoveLogEntry: req}})
}

// SetRetrievalHint upserts the retrieval hint of a log message.
func (p *MemoryPersistence) SetRetrievalHint(ctx context.Context, req *pb.SetRetrievalHintRequest) error {
	return p.write(ctx, OpSetRetrievalHint, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SetRetrievalHint{SetRetrievalHint: req}})
}

// SaveOutgoing upserts an outgoing-buffer entry.
func (p *MemoryPersistence) SaveOutgoing(ctx context.Context, req *pb.SaveOutgoingRequest) error {
	return p.write(ctx, OpSaveOutgoing, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoing{SaveOutgoing: req}})
}

// RemoveOutgoing deletes an outgoing-buffer entry.
func (p *MemoryPersistence) RemoveOutgoing(ctx context.Context, req *pb.RemoveOutgoingRequest) error {
	return p.write(ctx, OpRemoveOutgoing, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoing{RemoveOutgoing: req}})
}

// SaveIncoming upserts an incoming-buffer entry.
func (p *MemoryPersistence) SaveIncoming(ctx context.Context, req *pb.SaveIncomingRequest) error {
	return p.write(ctx, OpSaveIncoming, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncoming{SaveIncoming: req}})
}

// RemoveIncoming deletes an incoming-buffer entry.
func (p *MemoryPersistence) RemoveIncoming(ctx context.Context, req *pb.RemoveIncomingRequest) error {
	return p.write(ctx, OpRemoveIncoming, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncoming{RemoveIncoming: req}})
}

// SaveOutgoingRepair upserts an outgoing repair entry.
func (p *MemoryPersistence) SaveOutgoingRepair(ctx context.Context, req *pb.SaveOutgoingRepairRequest) error {
	return p.write(ctx, OpSaveOutgoingRepair, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveOutgoingRepair{SaveOutgoingRepair: req}})
}

// RemoveOutgoingRepair deletes an outgoing repair entry.
func (p *MemoryPersistence) RemoveOutgoingRepair(ctx context.Context, req *pb.RemoveOutgoingRepairRequest) error {
	return p.write(ctx, OpRemoveOutgoingRepair, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveOutgoingRepair{RemoveOutgoingRepair: req}})
}

// SaveIncomingRepair upserts an incoming repair entry.
func (p *MemoryPersistence) SaveIncomingRepair(ctx context.Context, req *pb.SaveIncomingRepairRequest) error {
	return p.write(ctx, OpSaveIncomingRepair, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_SaveIncomingRepair{SaveIncomingRepair: req}})
}

// RemoveIncomingRepair deletes an incoming repair entry.
func (p *MemoryPersistence) RemoveIncomingRepair(ctx context.Context, req *pb.RemoveIncomingRepairRequest) error {
	return p.write(ctx, OpRemoveIncomingRepair, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveIncomingRepair{RemoveIncomingRepair: req}})
}

// DropChannel wipes everything stored for the channel.
func (p *MemoryPersistence) DropChannel(ctx context.Context, req *pb.DropChannelRequest) error {
	return p.write(ctx, OpDropChannel, req.GetChannelId(), &pb.PersistenceOp{Op: &pb.PersistenceOp_DropChannel{DropChannel: req}})
}

// LoadAllForChannel returns a copy of everything stored for the channel, its log
// oldest-first (an empty snapshot for an unknown channel).
func (p *MemoryPersistence) LoadAllForChannel(ctx context.Context, req *pb.LoadAllForChannelRequest) (*pb.ChannelSnapshot, error) {
	p.mu.Lock()
	err := p.attempt(OpLoadAllForChannel)
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return p.mem.Load(ctx, req.GetChannelId())
}
