// Package sim holds an in-process network simulator for SDS participants: a manual
// clock, a broadcast medium that loses, duplicates and delays packets (with a selectable
// latency distribution), partitions that split the participants into groups for a while,
// participants that go offline and come back (optionally restarting from their persisted
// state), and participants whose event handlers do what an application should
// (rebroadcast on ResendRequested and RepairReady, send a sync message on SyncDue). Time
// only moves from one event to the next, so hours of protocol time run in seconds, and
// a run is deterministic for a given seed. Scenario (scenario.go) drives a whole
// experiment and summarises it; Network is the medium underneath.
package sim

import (
	"container/heap"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/sds"
	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Options tune the medium.
type Options struct {
	Seed    uint64
	Loss    float64 // probability a receiver misses a packet
	Dup     float64 // probability a receiver gets a packet twice
	Latency Latency // packet delay distribution (zero value: no delay)
	Start   time.Time
	// SweepInterval is how often every online participant runs its sweeps (resends,
	// repairs, sync); zero means one second, the core's default.
	SweepInterval time.Duration
	// Bucket is the width of the traffic time series (zero: one minute).
	Bucket time.Duration
}

// Kind classifies a packet by why it was put on the wire.
type Kind int

const (
	// Content is the first broadcast of a content message.
	Content Kind = iota
	// Resend is a content message rebroadcast on ResendRequested.
	Resend
	// Repair is a content message rebroadcast on RepairReady (an SDS-R answer).
	Repair
	// Sync is a sync message sent on SyncDue.
	Sync
	numKinds
)

// String returns the kind's name.
func (k Kind) String() string {
	return [...]string{"content", "resend", "repair", "sync"}[k]
}

// Traffic counts packets put on the wire (one per broadcast), their bytes, and the
// copies that reached a receiver.
type Traffic struct {
	Packets    int `json:"packets"`
	Bytes      int `json:"bytes"`
	Receptions int `json:"receptions"`
}

// Bucket is one slice of the traffic time series.
type Bucket struct {
	// StartMs is the bucket's start, in milliseconds since the start of the run.
	StartMs int64 `json:"start_ms"`
	// Packets and Bytes are indexed by Kind (content, resend, repair, sync).
	Packets    [numKinds]int `json:"packets"`
	Bytes      [numKinds]int `json:"bytes"`
	Deliveries int           `json:"deliveries"`
}

// Stats counts what happened to one participant.
type Stats struct {
	Sent              int `json:"sent"`
	Delivered         int `json:"delivered"`
	Acked             int `json:"acked"`
	PossiblyAcked     int `json:"possibly_acked"`
	Resent            int `json:"resent"`
	GaveUp            int `json:"gave_up"`
	RepairsSent       int `json:"repairs_sent"`
	SyncsSent         int `json:"syncs_sent"`
	Missing           int `json:"missing_dependency_events"`
	Lost              int `json:"lost"`
	Restarts          int `json:"restarts"`
	Offline           int `json:"offline_periods"`
	PersistenceFailed int `json:"persistence_failed"`
}

// Peer is one participant.
type Peer struct {
	Name    string
	Index   int
	Manager *sds.Manager
	Backend store.Backend
	Stats   Stats
	// Online is false while the participant is away: it neither sends, receives nor sweeps.
	Online bool
	// Reopen, when set, is how Restart gets the backend of the restarted process (e.g.
	// reopening a database file); the old backend is closed first if it is an io.Closer.
	// Without it the restarted manager reuses the same backend value.
	Reopen func() (store.Backend, error)
	net    *Network
	cfg    sds.Config
	outbox []outgoing
}

type outgoing struct {
	bytes []byte
	kind  Kind
	sync  string // non-empty: build a sync message for this channel first
}

// Partition splits the participants into Groups contiguous groups by index from From to
// Until (offsets from the start of the run); packets between groups are dropped.
type Partition struct {
	From   time.Duration `json:"from"`
	Until  time.Duration `json:"until"`
	Groups int           `json:"groups"`
}

// Network is the simulated medium and clock.
type Network struct {
	Clock *clock.Manual
	Peers []*Peer
	// Channels are ensured on every participant when it starts or restarts, so that its
	// sweeps (and SyncDue) run before its first message arrives.
	Channels []string
	// Partitions are the scheduled splits of the participants.
	Partitions []Partition
	// Wire counts, per Kind, what was put on the medium.
	Wire [numKinds]Traffic
	// Dropped counts receptions lost to partitions and to offline receivers (not Loss).
	Dropped   int
	opt       Options
	rng       *rand.Rand
	queue     packetQueue
	seq       uint64
	start     time.Time
	nextSweep time.Time
	sentAt    map[string]time.Time
	latencies []time.Duration
	series    []Bucket
	// dirty lists the participants with queued reactions, in the order they got them,
	// so that flushing does not scan a thousand idle participants after every packet.
	dirty []*Peer
}

// New returns an empty network.
func New(opt Options) *Network {
	start := opt.Start
	if start.IsZero() {
		start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if opt.SweepInterval <= 0 {
		opt.SweepInterval = time.Second
	}
	if opt.Bucket <= 0 {
		opt.Bucket = time.Minute
	}
	return &Network{
		Clock: clock.NewManual(start), opt: opt, start: start, nextSweep: start.Add(opt.SweepInterval),
		rng: rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15)), sentAt: map[string]time.Time{},
	}
}

// Elapsed returns the simulated time since the start of the run.
func (n *Network) Elapsed() time.Duration { return n.Clock.Now().Sub(n.start) }

// Latencies returns the delivery latency of every MessageReady event (from the first
// broadcast of the message to its delivery), in delivery order.
func (n *Network) Latencies() []time.Duration { return n.latencies }

// Series returns the traffic time series.
func (n *Network) Series() []Bucket { return n.series }

// AddPeer creates a participant with its own backend (store.Noop{} if nil).
func (n *Network) AddPeer(name string, cfg sds.Config, backend store.Backend) (*Peer, error) {
	if backend == nil {
		backend = store.Noop{}
	}
	p := &Peer{Name: name, Index: len(n.Peers), Backend: backend, net: n, cfg: cfg, Online: true}
	if err := p.start(); err != nil {
		return nil, err
	}
	n.Peers = append(n.Peers, p)
	return p, nil
}

func (p *Peer) start() error {
	m, err := sds.New(p.Name, p.cfg,
		sds.WithBackend(p.Backend),
		sds.WithClock(p.net.Clock),
		sds.WithSeed(p.net.rng.Uint64()),
		sds.WithHandler(sds.HandlerFunc(p.handle)))
	if err != nil {
		return fmt.Errorf("peer %s: %w", p.Name, err)
	}
	for _, ch := range p.net.Channels {
		if err := m.EnsureChannel(context.Background(), ch); err != nil {
			return fmt.Errorf("peer %s: channel %s: %w", p.Name, ch, err)
		}
	}
	p.Manager = m
	return nil
}

// handle only records and enqueues: the application's reactions run from the network
// loop, never inside the manager's event dispatch.
func (p *Peer) handle(ev *pb.Event) {
	switch e := ev.GetEvent().(type) {
	case *pb.Event_MessageReady:
		p.Stats.Delivered++
		n := p.net
		if at, ok := n.sentAt[e.MessageReady.GetMessageId()]; ok {
			n.latencies = append(n.latencies, n.Clock.Now().Sub(at))
		}
		n.bucket().Deliveries++
	case *pb.Event_MessageAcknowledged:
		p.Stats.Acked++
	case *pb.Event_MessagePossiblyAcknowledged:
		p.Stats.PossiblyAcked++
	case *pb.Event_ResendRequested:
		p.Stats.Resent++
		p.queue(outgoing{bytes: e.ResendRequested.GetWireBytes(), kind: Resend})
	case *pb.Event_MessageUnacknowledged:
		p.Stats.GaveUp++
	case *pb.Event_RepairReady:
		p.Stats.RepairsSent++
		p.queue(outgoing{bytes: e.RepairReady.GetWireBytes(), kind: Repair})
	case *pb.Event_SyncDue:
		p.queue(outgoing{sync: e.SyncDue.GetChannelId(), kind: Sync})
	case *pb.Event_MissingDependencies:
		p.Stats.Missing++
	case *pb.Event_MessageLost:
		p.Stats.Lost++
	case *pb.Event_PersistenceFailed:
		p.Stats.PersistenceFailed++
	}
}

func (p *Peer) queue(w outgoing) {
	if len(p.outbox) == 0 {
		p.net.dirty = append(p.net.dirty, p)
	}
	p.outbox = append(p.outbox, w)
}

// bucket returns the time-series bucket of the current time, growing the series.
func (n *Network) bucket() *Bucket {
	i := int(n.Elapsed() / n.opt.Bucket)
	for len(n.series) <= i {
		n.series = append(n.series, Bucket{StartMs: (time.Duration(len(n.series)) * n.opt.Bucket).Milliseconds()})
	}
	return &n.series[i]
}

// Send wraps content on the peer and broadcasts it. An offline peer cannot send.
func (n *Network) Send(ctx context.Context, p *Peer, channelID, messageID string, content []byte) error {
	if !p.Online {
		return fmt.Errorf("%s is offline", p.Name)
	}
	b, err := p.Manager.WrapOutgoingMessage(ctx, channelID, messageID, content)
	if err != nil {
		return fmt.Errorf("%s: wrap: %w", p.Name, err)
	}
	p.Stats.Sent++
	n.sentAt[messageID] = n.Clock.Now()
	n.broadcast(p, b, Content)
	return n.flushOutboxes(ctx)
}

// group returns the partition group of peer i now, or -1 when no partition is active.
func (n *Network) group(i int) int {
	el := n.Elapsed()
	for _, pt := range n.Partitions {
		if el >= pt.From && el < pt.Until && pt.Groups > 1 {
			return i * pt.Groups / len(n.Peers)
		}
	}
	return -1
}

func (n *Network) broadcast(from *Peer, b []byte, kind Kind) {
	n.Wire[kind].Packets++
	n.Wire[kind].Bytes += len(b)
	bk := n.bucket()
	bk.Packets[kind]++
	bk.Bytes[kind] += len(b)
	now := n.Clock.Now().UnixNano()
	fromGroup := n.group(from.Index)
	for _, to := range n.Peers {
		if to == from {
			continue
		}
		// Draw the loss for every receiver, reachable or not, so that a partition or
		// an offline participant does not shift the random stream of the others.
		lost := n.rng.Float64() < n.opt.Loss
		if !to.Online || (fromGroup >= 0 && n.group(to.Index) != fromGroup) {
			n.Dropped++
			continue
		}
		if lost {
			continue
		}
		copies := 1
		if n.opt.Dup > 0 && n.rng.Float64() < n.opt.Dup {
			copies = 2
		}
		for range copies {
			n.seq++
			heap.Push(&n.queue, &packet{at: now + int64(n.opt.Latency.Sample(n.rng)), seq: n.seq, to: to, data: b, kind: kind})
		}
	}
}

// SetOnline takes a participant offline or brings it back; with restart, it comes back
// as a new process that reloads its state from its backend (see Restart).
func (n *Network) SetOnline(p *Peer, online, restart bool) error {
	if p.Online == online {
		return nil
	}
	p.Online = online
	if !online {
		p.Stats.Offline++
		p.outbox = nil
		return nil
	}
	if restart {
		return n.Restart(p)
	}
	return nil
}

// Restart closes the peer's manager and opens a new one on the same backend, as a
// process restart would.
func (n *Network) Restart(p *Peer) error {
	if err := p.Manager.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", p.Name, err)
	}
	if p.Reopen != nil {
		if c, ok := p.Backend.(io.Closer); ok {
			if err := c.Close(); err != nil {
				return fmt.Errorf("%s: closing the backend: %w", p.Name, err)
			}
		}
		b, err := p.Reopen()
		if err != nil {
			return fmt.Errorf("%s: reopening the backend: %w", p.Name, err)
		}
		p.Backend = b
	}
	p.outbox = nil // a crashed process loses its pending work; the protocol must recover
	p.Stats.Restarts++
	return p.start()
}

// Step advances the clock by d, delivering packets and running sweeps as they fall due.
// The tick argument is ignored (time moves from event to event); it is kept so that
// callers written for fixed ticks still work.
func (n *Network) Step(ctx context.Context, d, _ time.Duration) error {
	return n.RunUntil(ctx, n.Clock.Now().Add(d))
}

// RunUntil processes every packet delivery and sweep due up to t, in time order, then
// sets the clock to t. Each iteration consumes a packet or moves the next sweep forward,
// so the loop ends.
func (n *Network) RunUntil(ctx context.Context, t time.Time) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		next := n.nextSweep
		packetFirst := n.queue.Len() > 0 && n.queue[0].at <= next.UnixNano()
		if packetFirst {
			next = time.Unix(0, n.queue[0].at).In(next.Location())
		}
		if next.After(t) {
			break
		}
		n.Clock.Set(next)
		if packetFirst {
			if err := n.deliverDue(ctx); err != nil {
				return err
			}
			continue
		}
		n.nextSweep = n.nextSweep.Add(n.opt.SweepInterval)
		for _, p := range n.Peers {
			if !p.Online {
				continue
			}
			if err := p.Manager.RunSweeps(ctx); err != nil {
				return fmt.Errorf("%s: sweeps: %w", p.Name, err)
			}
		}
		if err := n.flushOutboxes(ctx); err != nil {
			return err
		}
	}
	n.Clock.Set(t)
	return nil
}

func (n *Network) deliverDue(ctx context.Context) error {
	now := n.Clock.Now().UnixNano()
	for n.queue.Len() > 0 && n.queue[0].at <= now {
		pk := heap.Pop(&n.queue).(*packet)
		if !pk.to.Online {
			n.Dropped++
			continue
		}
		n.Wire[pk.kind].Receptions++
		if _, err := pk.to.Manager.UnwrapReceivedMessage(ctx, pk.data); err != nil {
			return fmt.Errorf("%s: unwrap: %w", pk.to.Name, err)
		}
	}
	return n.flushOutboxes(ctx)
}

// flushOutboxes performs the peers' queued reactions; reactions may queue more work, so
// it loops, but never more than a fixed number of rounds.
func (n *Network) flushOutboxes(ctx context.Context) error {
	for range 100 {
		busy := false
		peers := n.dirty
		n.dirty = nil
		for _, p := range peers {
			if len(p.outbox) == 0 {
				continue // went offline or restarted since
			}
			work := p.outbox
			p.outbox = nil
			for _, w := range work {
				busy = true
				b := w.bytes
				if w.sync != "" {
					var err error
					if b, err = p.Manager.BuildSyncMessage(ctx, w.sync); err != nil {
						return fmt.Errorf("%s: sync: %w", p.Name, err)
					}
					p.Stats.SyncsSent++
				}
				n.broadcast(p, b, w.kind)
			}
		}
		if !busy {
			return nil
		}
	}
	return nil
}

// Pending returns the number of packets still in flight.
func (n *Network) Pending() int { return n.queue.Len() }

// Converged reports whether every peer's local log of channelID holds the same ids and
// no peer has buffered messages waiting.
func (n *Network) Converged(channelID string) (bool, error) {
	var ref []string
	for i, p := range n.Peers {
		snap, err := p.Manager.Snapshot(channelID)
		if err != nil {
			return false, fmt.Errorf("%s: snapshot: %w", p.Name, err)
		}
		if len(snap.GetIncoming()) > 0 {
			return false, nil
		}
		ids := make([]string, 0, len(snap.GetLog()))
		for _, m := range snap.GetLog() {
			ids = append(ids, m.GetMessageId())
		}
		if i == 0 {
			ref = ids
		} else if !slices.Equal(ref, ids) {
			return false, nil
		}
	}
	return true, nil
}

type packet struct {
	at   int64 // Unix nanoseconds
	seq  uint64
	to   *Peer
	data []byte
	kind Kind
}

type packetQueue []*packet

func (q packetQueue) Len() int { return len(q) }
func (q packetQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q packetQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *packetQueue) Push(x any)   { *q = append(*q, x.(*packet)) }
func (q *packetQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return p
}
