package sdskit

import (
	"context"
	"errors"
	"sync"
)

// ErrBusClosed is returned by a loopback transport after its bus was closed.
var ErrBusClosed = errors.New("sdskit: loopback bus closed")

// LoopbackBus is an in-process broadcast medium for tests, examples and simulations:
// every payload published by one of its transports reaches every other subscribed
// transport, in publication order, on a goroutine of the receiver. Filter, when set,
// decides per receiver whether a payload is delivered (simulate loss by returning false).
type LoopbackBus struct {
	// Filter, if non-nil, is asked for each (sender, receiver, payload); false drops it.
	Filter func(from, to int, payload []byte) bool

	mu     sync.Mutex
	subs   map[int]*loopbackSub
	next   int
	closed bool
}

// NewLoopbackBus returns an empty bus.
func NewLoopbackBus() *LoopbackBus { return &LoopbackBus{subs: map[int]*loopbackSub{}} }

// Transport returns a new endpoint of the bus, numbered in creation order from 0.
func (b *LoopbackBus) Transport() *LoopbackTransport {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &LoopbackTransport{bus: b, id: b.next}
	b.next++
	return t
}

// Close stops every delivery goroutine; later publications fail with ErrBusClosed.
func (b *LoopbackBus) Close() {
	b.mu.Lock()
	subs := b.subs
	b.subs = map[int]*loopbackSub{}
	b.closed = true
	b.mu.Unlock()
	for _, s := range subs {
		s.q.close()
		<-s.done
	}
}

// LoopbackTransport is one participant's endpoint of a LoopbackBus.
type LoopbackTransport struct {
	bus *LoopbackBus
	id  int
}

// ID is the endpoint's number on its bus (as passed to LoopbackBus.Filter).
func (t *LoopbackTransport) ID() int { return t.id }

// Publish delivers a copy of payload to every other subscribed endpoint.
func (t *LoopbackTransport) Publish(ctx context.Context, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := t.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBusClosed
	}
	for id, s := range b.subs {
		if id == t.id || (b.Filter != nil && !b.Filter(t.id, id, payload)) {
			continue
		}
		s.q.push(append([]byte(nil), payload...))
	}
	return nil
}

// Subscribe starts delivering payloads of the other endpoints to deliver; an endpoint
// has at most one subscription at a time.
func (t *LoopbackTransport) Subscribe(_ context.Context, deliver func([]byte)) (func() error, error) {
	b := t.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrBusClosed
	}
	if _, dup := b.subs[t.id]; dup {
		return nil, errors.New("sdskit: loopback endpoint already subscribed")
	}
	s := &loopbackSub{q: newQueue[[]byte](), done: make(chan struct{})}
	b.subs[t.id] = s
	go func() {
		defer close(s.done)
		for {
			p, ok := s.q.pop()
			if !ok {
				return
			}
			deliver(p)
		}
	}()
	var once sync.Once
	return func() error {
		once.Do(func() {
			b.mu.Lock()
			if b.subs[t.id] == s {
				delete(b.subs, t.id)
			}
			b.mu.Unlock()
			s.q.close()
			<-s.done
		})
		return nil
	}, nil
}

type loopbackSub struct {
	q    *queue[[]byte]
	done chan struct{}
}
