// Package sds holds the SDS protocol engine: a multi-channel ReliabilityManager with
// Lamport clocks, causal histories, bloom-filter acknowledgements, resend and incoming
// buffers, sync and ephemeral messages, and the SDS-R repair extension, whose every
// operation persists its changes as one atomic batch through a store.Backend.
//
// Guarantees: memory and disk change together or not at all (a failed batch rolls the
// operation back and returns PERSISTENCE); events are published only after their batch
// committed, in commit order, never under a lock; channels proceed in parallel.
package sds

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/profile"
	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/store"
	"github.com/sdskit/sdskit/core/wire"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Handler receives the manager's events. It is called outside every lock, in commit
// order, possibly from several goroutines over time but never concurrently; it may call
// the manager again. A panic in a handler is logged and swallowed.
type Handler interface {
	HandleEvent(ev *pb.Event)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ev *pb.Event)

// HandleEvent calls f(ev).
func (f HandlerFunc) HandleEvent(ev *pb.Event) { f(ev) }

// HintProvider supplies the retrieval hint (e.g. a transport message hash) of one of our
// own messages; an empty hint means "none". It is never called under a lock.
type HintProvider interface {
	RetrievalHint(ctx context.Context, channelID, messageID string) ([]byte, error)
}

// HintProviderFunc adapts a function to HintProvider.
type HintProviderFunc func(ctx context.Context, channelID, messageID string) ([]byte, error)

// RetrievalHint calls f.
func (f HintProviderFunc) RetrievalHint(ctx context.Context, channelID, messageID string) ([]byte, error) {
	return f(ctx, channelID, messageID)
}

// Option configures New.
type Option func(*Manager)

// WithBackend selects the persistence backend (default: store.Noop).
func WithBackend(b store.Backend) Option { return func(m *Manager) { m.backend = b } }

// WithClock selects the time source (default: the wall clock).
func WithClock(c clock.Clock) Option { return func(m *Manager) { m.clock = c } }

// WithHandler sets the event handler (default: events are dropped).
func WithHandler(h Handler) Option { return func(m *Manager) { m.handler = h } }

// WithHintProvider sets the retrieval-hint provider for our own messages.
func WithHintProvider(p HintProvider) Option { return func(m *Manager) { m.hints = p } }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(m *Manager) { m.log = l } }

// WithSeed makes sync jitter and generated sync-message ids deterministic (tests, simulator).
func WithSeed(seed uint64) Option {
	return func(m *Manager) { m.rng = mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// Manager is a multi-channel SDS reliability manager, safe for concurrent use.
type Manager struct {
	participant string
	cfg         Config
	lim         wire.Limits
	prof        *profile.Profile
	backend     store.Backend
	noBackend   bool // backend is store.Noop: no persistence batch is even built
	clock       clock.Clock
	handler     Handler
	hints       HintProvider
	log         *slog.Logger
	rngMu       sync.Mutex
	rng         *mrand.Rand

	mu       sync.Mutex
	channels map[string]*channel
	touched  map[string]struct{} // channels whose persisted state this manager may own

	opMu   sync.RWMutex // held shared by every operation; Close takes it exclusively
	closed atomic.Bool

	evMu     sync.Mutex
	evQueue  []*pb.Event
	draining bool

	taskMu     sync.Mutex
	taskCancel context.CancelFunc
	taskCtx    context.Context // the running task's context: done once the task stops
}

// New returns a manager for participantID (empty disables SDS-R answers and requests,
// as in nim-sds) with cfg, or INVALID_ARGUMENT when cfg or the id is out of range.
func New(participantID string, cfg Config, opts ...Option) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lim := cfg.limits()
	if len(participantID) > lim.MaxIDBytes || !utf8.ValidString(participantID) {
		return nil, sdserr.New(sdserr.InvalidArgument, "New", "participant id must be valid UTF-8 of at most %d bytes", lim.MaxIDBytes)
	}
	prof, _ := profile.ByName(cfg.Profile)
	m := &Manager{
		participant: participantID,
		cfg:         cfg,
		lim:         lim,
		prof:        prof,
		backend:     store.Noop{},
		clock:       clock.Real{},
		log:         slog.Default(),
		channels:    make(map[string]*channel),
		touched:     make(map[string]struct{}),
	}
	for _, o := range opts {
		o(m)
	}
	if m.backend == nil || m.clock == nil || m.log == nil {
		return nil, sdserr.New(sdserr.InvalidArgument, "New", "nil backend, clock or logger option")
	}
	switch m.backend.(type) {
	case store.Noop, *store.Noop:
		m.noBackend = true
	}
	if m.rng == nil {
		var seed [16]byte
		_, _ = rand.Read(seed[:])
		m.rng = mrand.New(mrand.NewPCG(uint64FromBytes(seed[:8]), uint64FromBytes(seed[8:])))
	}
	return m, nil
}

func uint64FromBytes(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// ParticipantID returns the id this manager stamps on its messages.
func (m *Manager) ParticipantID() string { return m.participant }

// Config returns the manager's configuration.
func (m *Manager) Config() Config { return m.cfg }

// enter marks an operation in flight; it fails with CLOSED after Close.
func (m *Manager) enter(op string) error {
	m.opMu.RLock()
	if m.closed.Load() {
		m.opMu.RUnlock()
		return sdserr.New(sdserr.Closed, op, "manager is closed")
	}
	return nil
}

func (m *Manager) leave() { m.opMu.RUnlock() }

// Close stops the periodic tasks, waits for operations in flight and makes every later
// call return CLOSED. It never touches persistence (a new manager on the same backend
// resumes where this one stopped) and is idempotent.
func (m *Manager) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	m.taskMu.Lock()
	if m.taskCancel != nil {
		m.taskCancel()
		m.taskCancel = nil
	}
	m.taskMu.Unlock()
	m.opMu.Lock()
	//nolint:staticcheck // empty critical section: waiting for in-flight operations is the point
	m.opMu.Unlock()
	return nil
}

func (m *Manager) checkID(op, what, id string) error {
	if id == "" {
		return sdserr.New(sdserr.InvalidArgument, op, "%s must not be empty", what)
	}
	if len(id) > m.lim.MaxIDBytes {
		return sdserr.New(sdserr.InvalidArgument, op, "%s is %d bytes, over the %d-byte limit", what, len(id), m.lim.MaxIDBytes)
	}
	if !utf8.ValidString(id) {
		return sdserr.New(sdserr.InvalidArgument, op, "%s is not valid UTF-8", what)
	}
	return nil
}

// acquire returns the channel locked, bootstrapping it from the backend on first touch
// when load is set (otherwise st may be nil). The caller must unlock ch.mu.
func (m *Manager) acquire(ctx context.Context, op, id string, load bool) (*channel, error) {
	for {
		m.mu.Lock()
		c := m.channels[id]
		if c == nil {
			c = &channel{id: id}
			m.channels[id] = c
		}
		m.touched[id] = struct{}{}
		m.mu.Unlock()

		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			continue
		}
		if c.st == nil && load {
			if err := m.bootstrap(ctx, op, c); err != nil {
				m.forget(c)
				c.mu.Unlock()
				return nil, err
			}
		}
		return c, nil
	}
}

// forget drops a channel from memory (caller holds c.mu).
func (m *Manager) forget(c *channel) {
	c.dead = true
	m.mu.Lock()
	if m.channels[c.id] == c {
		delete(m.channels, c.id)
	}
	m.mu.Unlock()
}

func (m *Manager) newBloom() *bloom.Rolling {
	b, err := bloom.NewRolling(m.cfg.BloomCapacity, m.cfg.BloomErrorRate, m.prof.Hash)
	if err != nil { // Validate checked the parameters
		panic(fmt.Sprintf("sds: bloom parameters validated but rejected: %v", err))
	}
	return b
}

// bootstrap loads, validates and installs a channel's persisted state (caller holds c.mu).
func (m *Manager) bootstrap(ctx context.Context, op string, c *channel) error {
	snap, err := m.load(ctx, c.id)
	if err != nil {
		return sdserr.Wrap(sdserr.Persistence, op, fmt.Errorf("LoadAllForChannel: %w", err))
	}
	st, trimmed, err := m.install(c.id, snap)
	if err != nil {
		return sdserr.Wrap(sdserr.Persistence, op, fmt.Errorf("LoadAllForChannel returned an invalid snapshot: %w", err))
	}
	if len(trimmed) > 0 {
		batch := &pb.PersistenceBatch{ChannelId: c.id, Operation: "Bootstrap"}
		for _, id := range trimmed {
			batch.Ops = append(batch.Ops, &pb.PersistenceOp{Op: &pb.PersistenceOp_RemoveLogEntry{
				RemoveLogEntry: &pb.RemoveLogEntryRequest{ChannelId: c.id, MessageId: id}}})
		}
		if err := m.apply(ctx, batch); err != nil {
			return sdserr.Wrap(sdserr.Persistence, op, fmt.Errorf("trimming an over-long log: %w", err))
		}
	}
	st.nextSync = m.clock.Now().Add(m.syncDelay())
	c.st = st
	return nil
}

func (m *Manager) load(ctx context.Context, id string) (snap *pb.ChannelSnapshot, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("backend panicked: %v", r)
		}
	}()
	return m.backend.Load(ctx, id)
}

// install validates a snapshot and builds the channel state; it returns the ids of log
// entries beyond MaxMessageHistory that were trimmed (oldest first).
func (m *Manager) install(id string, snap *pb.ChannelSnapshot) (*state, []string, error) {
	st := newState(m.newBloom())
	if snap == nil {
		return st, nil, nil
	}
	if snap.GetChannelId() != "" && snap.GetChannelId() != id {
		return nil, nil, fmt.Errorf("snapshot is for channel %q", snap.GetChannelId())
	}
	st.lamport = snap.GetLamportTimestamp()
	var prev *pb.SdsMessage
	for i, msg := range snap.GetLog() {
		if msg.GetMessageId() == "" {
			return nil, nil, fmt.Errorf("log entry %d has no message id", i)
		}
		if prev != nil && logCmp(prev, msg) >= 0 {
			return nil, nil, fmt.Errorf("log is not oldest-first (ascending lamport, message id) at entry %d (%q)", i, msg.GetMessageId())
		}
		prev = msg
	}
	logMsgs := snap.GetLog()
	var trimmed []string
	if over := len(logMsgs) - m.cfg.MaxMessageHistory; over > 0 {
		for _, msg := range logMsgs[:over] {
			trimmed = append(trimmed, msg.GetMessageId())
		}
		logMsgs = logMsgs[over:]
	}
	st.log.entries = slices.Clone(logMsgs)
	for _, msg := range st.log.entries {
		st.log.byID[msg.GetMessageId()] = msg
		st.bloom.Add(msg.GetMessageId())
	}
	for i, u := range snap.GetOutgoing() {
		oid := u.GetMessage().GetMessageId()
		if oid == "" || st.outByID[oid] != nil {
			return nil, nil, fmt.Errorf("outgoing entry %d has an empty or repeated message id", i)
		}
		e := &outEntry{u: u}
		st.out = append(st.out, e)
		st.outByID[oid] = e
	}
	for i, im := range snap.GetIncoming() {
		iid := im.GetMessage().GetMessageId()
		if iid == "" || st.in[iid] != nil {
			return nil, nil, fmt.Errorf("incoming entry %d has an empty or repeated message id", i)
		}
		// Dependencies that reached the log meanwhile are no longer missing; an entry left
		// with none is delivered by the next sweep.
		var missing []string
		for _, d := range im.GetMissingDependencies() {
			if !st.log.has(d) {
				missing = append(missing, d)
			}
		}
		if len(missing) != len(im.GetMissingDependencies()) {
			im = &pb.IncomingMessage{Message: im.GetMessage(), MissingDependencies: missing, ReceivedAtUnixMs: im.GetReceivedAtUnixMs()}
		}
		e := newInEntry(im)
		st.in[iid] = e
		st.indexIncoming(e)
		st.bloom.Add(iid)
	}
	for _, h := range snap.GetRetrievalHints() {
		if id := h.GetMessageId(); st.log.has(id) || st.in[id] != nil {
			st.hints[id] = h.GetRetrievalHint()
		}
	}
	for i, e := range snap.GetOutgoingRepair() {
		rid := e.GetEntry().GetMessageId()
		if rid == "" {
			return nil, nil, fmt.Errorf("outgoing repair entry %d has no message id", i)
		}
		st.orep[rid] = e
	}
	for i, e := range snap.GetIncomingRepair() {
		rid := e.GetEntry().GetMessageId()
		if rid == "" {
			return nil, nil, fmt.Errorf("incoming repair entry %d has no message id", i)
		}
		st.irep[rid] = e
	}
	return st, trimmed, nil
}

func (m *Manager) syncDelay() time.Duration {
	iv := m.cfg.SyncInterval
	if m.cfg.SyncJitter == 0 {
		return iv
	}
	m.rngMu.Lock()
	f := 1 + m.cfg.SyncJitter*(2*m.rng.Float64()-1)
	m.rngMu.Unlock()
	return time.Duration(float64(iv) * f)
}

func (m *Manager) newSyncID() string {
	var b [12]byte
	m.rngMu.Lock()
	for i := range b {
		b[i] = byte(m.rng.UintN(256))
	}
	m.rngMu.Unlock()
	return "sync-" + hex.EncodeToString(b[:])
}

// --- events ----------------------------------------------------------------------------

// enqueue appends committed events in commit order; call it while holding the channel
// lock, then call drain after releasing every lock.
func (m *Manager) enqueue(evs []*pb.Event) {
	if len(evs) == 0 {
		return
	}
	m.evMu.Lock()
	m.evQueue = append(m.evQueue, evs...)
	m.evMu.Unlock()
}

// drain delivers queued events unless another goroutine already is; handlers may call
// the manager again, their events join the queue and are delivered by this loop.
func (m *Manager) drain() {
	m.evMu.Lock()
	if m.draining {
		m.evMu.Unlock()
		return
	}
	m.draining = true
	for len(m.evQueue) > 0 {
		batch := m.evQueue
		m.evQueue = nil
		m.evMu.Unlock()
		for _, ev := range batch {
			m.deliver(ev)
		}
		m.evMu.Lock()
	}
	m.draining = false
	m.evMu.Unlock()
}

func (m *Manager) deliver(ev *pb.Event) {
	if m.handler == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			m.log.Error("sds: event handler panicked", "event", fmt.Sprintf("%T", ev.GetEvent()), "panic", r)
		}
	}()
	m.handler.HandleEvent(ev)
}

// --- introspection ---------------------------------------------------------------------

// Channels returns the ids of the channels loaded in memory, sorted.
func (m *Manager) Channels() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.channels))
	for id, c := range m.channels {
		_ = c
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Snapshot returns the channel's in-memory state in the persisted form (incoming and
// repair entries sorted by id), or NOT_FOUND if the channel is not loaded. It never
// touches persistence; the result is a copy the caller may keep.
func (m *Manager) Snapshot(channelID string) (*pb.ChannelSnapshot, error) {
	const op = "Snapshot"
	if err := m.enter(op); err != nil {
		return nil, err
	}
	defer m.leave()
	c, err := m.loaded(op, channelID)
	if err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	return c.st.snapshot(channelID), nil
}

// BloomContains reports whether the channel's bloom filter contains id (NOT_FOUND if the
// channel is not loaded).
func (m *Manager) BloomContains(channelID, id string) (bool, error) {
	const op = "BloomContains"
	if err := m.enter(op); err != nil {
		return false, err
	}
	defer m.leave()
	c, err := m.loaded(op, channelID)
	if err != nil {
		return false, err
	}
	defer c.mu.Unlock()
	return c.st.bloom.Test(id), nil
}

// loaded returns a loaded channel locked, or NOT_FOUND.
func (m *Manager) loaded(op, id string) (*channel, error) {
	m.mu.Lock()
	c := m.channels[id]
	m.mu.Unlock()
	if c != nil {
		c.mu.Lock()
		if !c.dead && c.st != nil {
			return c, nil
		}
		c.mu.Unlock()
	}
	return nil, sdserr.New(sdserr.NotFound, op, "channel %q is not loaded", id)
}
