// Package sim holds an in-process network simulator for SDS participants: a manual
// clock, a broadcast medium that loses, duplicates and delays packets with configurable
// probabilities, and participants whose event handlers do what an application should
// (rebroadcast on ResendRequested and RepairReady, send a sync message on SyncDue). It
// is deterministic for a given seed and backs the demo and protocol experiments.
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
	Seed     uint64
	Loss     float64       // probability a receiver misses a packet
	Dup      float64       // probability a receiver gets a packet twice
	MinDelay time.Duration // packet latency lower bound
	MaxDelay time.Duration // packet latency upper bound
	Start    time.Time     // clock start (zero: 2026-01-01)
}

// Stats counts what happened to one participant.
type Stats struct {
	Sent, Delivered, Acked, PossiblyAcked, Resent, GaveUp int
	RepairsSent, SyncsSent, Missing, Lost, Restarts       int
	PersistenceFailed                                     int
}

// Peer is one participant.
type Peer struct {
	Name      string
	Manager   *sds.Manager
	Backend   store.Backend
	Stats     Stats
	Delivered []string // message ids in delivery order (MessageReady)
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
	sync  string // non-empty: build a sync message for this channel first
}

// Network is the simulated medium and clock.
type Network struct {
	Clock *clock.Manual
	Peers []*Peer
	opt   Options
	rng   *rand.Rand
	queue packetQueue
	seq   uint64
	// Wire counts packets and bytes put on the medium.
	Wire struct{ Packets, Bytes int }
}

// New returns an empty network.
func New(opt Options) *Network {
	start := opt.Start
	if start.IsZero() {
		start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if opt.MaxDelay < opt.MinDelay {
		opt.MaxDelay = opt.MinDelay
	}
	return &Network{Clock: clock.NewManual(start), opt: opt, rng: rand.New(rand.NewPCG(opt.Seed, opt.Seed+1))}
}

// AddPeer creates a participant with its own backend (store.Noop{} if nil).
func (n *Network) AddPeer(name string, cfg sds.Config, backend store.Backend) (*Peer, error) {
	if backend == nil {
		backend = store.Noop{}
	}
	p := &Peer{Name: name, Backend: backend, net: n, cfg: cfg}
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
	p.Manager = m
	return nil
}

// handle only records and enqueues: the application's reactions run from the network
// loop, never inside the manager's event dispatch.
func (p *Peer) handle(ev *pb.Event) {
	switch e := ev.GetEvent().(type) {
	case *pb.Event_MessageReady:
		p.Stats.Delivered++
		p.Delivered = append(p.Delivered, e.MessageReady.GetMessageId())
	case *pb.Event_MessageAcknowledged:
		p.Stats.Acked++
	case *pb.Event_MessagePossiblyAcknowledged:
		p.Stats.PossiblyAcked++
	case *pb.Event_ResendRequested:
		p.Stats.Resent++
		p.outbox = append(p.outbox, outgoing{bytes: e.ResendRequested.GetWireBytes()})
	case *pb.Event_MessageUnacknowledged:
		p.Stats.GaveUp++
	case *pb.Event_RepairReady:
		p.Stats.RepairsSent++
		p.outbox = append(p.outbox, outgoing{bytes: e.RepairReady.GetWireBytes()})
	case *pb.Event_SyncDue:
		p.outbox = append(p.outbox, outgoing{sync: e.SyncDue.GetChannelId()})
	case *pb.Event_MissingDependencies:
		p.Stats.Missing++
	case *pb.Event_MessageLost:
		p.Stats.Lost++
	case *pb.Event_PersistenceFailed:
		p.Stats.PersistenceFailed++
	}
}

// Send wraps content on the peer and broadcasts it.
func (n *Network) Send(ctx context.Context, p *Peer, channelID, messageID string, content []byte) error {
	b, err := p.Manager.WrapOutgoingMessage(ctx, channelID, messageID, content)
	if err != nil {
		return err
	}
	p.Stats.Sent++
	n.broadcast(p, b)
	return nil
}

func (n *Network) broadcast(from *Peer, b []byte) {
	n.Wire.Packets++
	n.Wire.Bytes += len(b)
	now := n.Clock.Now()
	for _, to := range n.Peers {
		if to == from || n.rng.Float64() < n.opt.Loss {
			continue
		}
		copies := 1
		if n.rng.Float64() < n.opt.Dup {
			copies = 2
		}
		for range copies {
			delay := n.opt.MinDelay
			if span := n.opt.MaxDelay - n.opt.MinDelay; span > 0 {
				delay += time.Duration(n.rng.Int64N(int64(span) + 1))
			}
			n.seq++
			heap.Push(&n.queue, &packet{at: now.Add(delay), seq: n.seq, to: to, data: b})
		}
	}
}

// Restart closes the peer's manager and opens a new one on the same backend, as a
// process restart would.
func (n *Network) Restart(p *Peer) error {
	if err := p.Manager.Close(); err != nil {
		return err
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

// Step advances the clock by d in increments of at most tick, delivering due packets,
// running every peer's sweeps and its application reactions after each increment.
func (n *Network) Step(ctx context.Context, d, tick time.Duration) error {
	if tick <= 0 {
		tick = d
	}
	for elapsed := time.Duration(0); elapsed < d; elapsed += tick {
		n.Clock.Advance(min(tick, d-elapsed))
		if err := n.deliverDue(ctx); err != nil {
			return err
		}
		for _, p := range n.Peers {
			if err := p.Manager.RunSweeps(ctx); err != nil {
				return fmt.Errorf("%s: sweeps: %w", p.Name, err)
			}
		}
		if err := n.flushOutboxes(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (n *Network) deliverDue(ctx context.Context) error {
	now := n.Clock.Now()
	for n.queue.Len() > 0 && !n.queue[0].at.After(now) {
		pk := heap.Pop(&n.queue).(*packet)
		if _, err := pk.to.Manager.UnwrapReceivedMessage(ctx, pk.data); err != nil {
			return fmt.Errorf("%s: unwrap: %w", pk.to.Name, err)
		}
	}
	return n.flushOutboxes(ctx)
}

// flushOutboxes performs the peers' queued reactions; reactions may queue more work, so
// it loops, but never more than a fixed number of rounds.
func (n *Network) flushOutboxes(ctx context.Context) error {
	for round := 0; round < 100; round++ {
		busy := false
		for _, p := range n.Peers {
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
				n.broadcast(p, b)
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
			return false, err
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
	at   time.Time
	seq  uint64
	to   *Peer
	data []byte
}

type packetQueue []*packet

func (q packetQueue) Len() int { return len(q) }
func (q packetQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q packetQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *packetQueue) Push(x any)   { *q = append(*q, x.(*packet)) }
func (q *packetQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}
