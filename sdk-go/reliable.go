package sdskit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Transport is the broadcast medium a ReliableChannel runs over: anything that can
// publish bytes to every other participant and hand over what they publish. It may lose,
// duplicate, delay and reorder payloads; the channel repairs all of that.
type Transport interface {
	// Publish broadcasts payload to the other participants.
	Publish(ctx context.Context, payload []byte) error
	// Subscribe calls deliver for every payload received until the returned stop
	// function is called. deliver may be called from any goroutine.
	Subscribe(ctx context.Context, deliver func(payload []byte)) (stop func() error, err error)
}

// ChannelOptions are the callbacks of a ReliableChannel; every field is optional. The
// callbacks run on one goroutine of the channel, in event order, so they need no locks of
// their own but must not block for long.
type ChannelOptions struct {
	// OnMessage receives every message of the other participants, in causal order
	// (what Send returned without error, or with a *PublishError, is ours already).
	OnMessage func(*MessageReady)
	// OnAcknowledged is told when a peer is known to hold one of our messages.
	OnAcknowledged func(messageID string)
	// OnMissing is told which dependencies a received message waits for; the channel
	// already asks peers to repair them (SDS-R).
	OnMissing func(*MissingDependencies)
	// OnEvent receives every event of the manager (after the specific callbacks).
	OnEvent func(*Event)
	// OnError receives failures the channel cannot return to a caller: a rebroadcast or
	// sync message that could not be published, a received payload that is not an SDS
	// message. The channel keeps running.
	OnError func(error)
	// NewMessageID makes ids for Send; the default is 16 random bytes in hex.
	NewMessageID func() string
}

// ReliableChannel is the convenience layer over Manager for the common case of one
// channel on one transport: it wraps and publishes what you send, unwraps what arrives,
// rebroadcasts on ResendRequested and RepairReady, publishes a sync message on SyncDue,
// and runs the manager's periodic tasks.
type ReliableChannel struct {
	m         *Manager
	channelID string
	t         Transport
	opt       ChannelOptions

	events *queue[*Event]
	stop   func() error

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// OpenReliableChannel creates a manager for participantID (configured by opts, e.g.
// WithSQLite), loads channelID from its persistence, subscribes to t and starts the
// periodic tasks. Close releases all of it. Do not pass an event option in opts: the
// channel consumes the manager's events (use ChannelOptions.OnEvent).
func OpenReliableChannel(ctx context.Context, participantID, channelID string, t Transport, copt ChannelOptions, opts ...Option) (*ReliableChannel, error) {
	if channelID == "" {
		return nil, &Error{Code: pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, Op: "OpenReliableChannel", Message: "empty channel id"}
	}
	if t == nil {
		return nil, &Error{Code: pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, Op: "OpenReliableChannel", Message: "nil transport"}
	}
	c := &ReliableChannel{channelID: channelID, t: t, opt: copt, events: newQueue[*Event](), done: make(chan struct{})}
	if c.opt.NewMessageID == nil {
		c.opt.NewMessageID = randomID
	}
	opts = append(opts, WithEventFunc(c.events.push))
	m, err := New(ctx, participantID, opts...)
	if err != nil {
		return nil, err
	}
	c.m = m
	go c.run()
	fail := func(err error) (*ReliableChannel, error) {
		c.events.close()
		<-c.done
		_ = m.Close()
		return nil, err
	}
	if err := m.EnsureChannel(ctx, channelID); err != nil {
		return fail(err)
	}
	stop, err := t.Subscribe(ctx, c.receive)
	if err != nil {
		return fail(fmt.Errorf("subscribe: %w", err))
	}
	c.stop = stop
	if err := m.StartPeriodicTasks(ctx); err != nil {
		_ = stop()
		return fail(err)
	}
	return c, nil
}

// Manager is the underlying manager, for everything the convenience layer does not cover.
func (c *ReliableChannel) Manager() *Manager { return c.m }

// ChannelID is the channel's id.
func (c *ReliableChannel) ChannelID() string { return c.channelID }

// Send wraps content under a new message id, publishes it and returns the id. The
// message is persisted before it is published, so an error from the transport loses
// nothing: it comes as a *PublishError and the resend timer publishes the message again
// until a peer acknowledges it.
func (c *ReliableChannel) Send(ctx context.Context, content []byte) (string, error) {
	id := c.opt.NewMessageID()
	return id, c.SendWithID(ctx, id, content)
}

// SendWithID is Send with an id of the caller's (unique within the channel).
func (c *ReliableChannel) SendWithID(ctx context.Context, messageID string, content []byte) error {
	b, err := c.m.Wrap(ctx, c.channelID, messageID, content)
	if err != nil {
		return err
	}
	if err := c.t.Publish(ctx, b); err != nil {
		return &PublishError{MessageID: messageID, Persisted: true, Err: err}
	}
	return nil
}

// SendEphemeral publishes content as an ephemeral message: delivered at once, never
// buffered, acknowledged or repaired. It returns the message id (also with a
// *PublishError, then not Persisted: an ephemeral message is never resent).
func (c *ReliableChannel) SendEphemeral(ctx context.Context, content []byte) (string, error) {
	id := c.opt.NewMessageID()
	b, err := c.m.WrapEphemeral(ctx, c.channelID, id, content)
	if err != nil {
		return "", err
	}
	if err := c.t.Publish(ctx, b); err != nil {
		return id, &PublishError{MessageID: id, Err: err}
	}
	return id, nil
}

// PublishError is returned by Send, SendWithID and SendEphemeral when the message was
// wrapped but the transport failed to publish it. For Send and SendWithID the message is
// already persisted (Persisted is true): it belongs to the channel's log and the resend
// timer publishes it again, so an application records it as sent. Any other error from
// Send means the message does not exist.
type PublishError struct {
	// MessageID is the id of the message that was not published.
	MessageID string
	// Persisted tells whether the message is in the SDS state and will be resent.
	Persisted bool
	// Err is the transport's error.
	Err error
}

func (e *PublishError) Error() string {
	if e.Persisted {
		return fmt.Sprintf("publish %s (kept for resend): %v", e.MessageID, e.Err)
	}
	return fmt.Sprintf("publish %s: %v", e.MessageID, e.Err)
}

// Unwrap returns the transport's error.
func (e *PublishError) Unwrap() error { return e.Err }

// Close unsubscribes, stops the manager and waits until every queued event was handled.
// It is idempotent: later calls return the first call's result.
func (c *ReliableChannel) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		if c.stop != nil {
			if err := c.stop(); err != nil {
				errs = append(errs, fmt.Errorf("unsubscribe: %w", err))
			}
		}
		if err := c.m.Close(); err != nil {
			errs = append(errs, err)
		}
		c.events.close()
		<-c.done
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

func (c *ReliableChannel) receive(payload []byte) {
	select {
	case <-c.done:
		return
	default:
	}
	if _, err := c.m.Unwrap(context.Background(), payload, nil); err != nil {
		var e *Error
		if errors.As(err, &e) && e.GetCode() == pb.ErrorCode_ERROR_CODE_CLOSED {
			return
		}
		c.report(fmt.Errorf("received payload of %d bytes: %w", len(payload), err))
	}
}

func (c *ReliableChannel) report(err error) {
	if c.opt.OnError != nil {
		c.opt.OnError(err)
	}
}

// run handles events in order on one goroutine, so publishing never happens inside a
// manager operation and callbacks see a single-threaded stream.
func (c *ReliableChannel) run() {
	defer close(c.done)
	ctx := context.Background()
	for {
		ev, ok := c.events.pop()
		if !ok {
			return
		}
		c.handle(ctx, ev)
	}
}

func (c *ReliableChannel) handle(ctx context.Context, ev *Event) {
	switch {
	case ev.GetMessageReady() != nil:
		if e := ev.GetMessageReady(); e.GetChannelId() == c.channelID && c.opt.OnMessage != nil {
			c.opt.OnMessage(e)
		}
	case ev.GetMessageAcknowledged() != nil:
		if e := ev.GetMessageAcknowledged(); e.GetChannelId() == c.channelID && c.opt.OnAcknowledged != nil {
			c.opt.OnAcknowledged(e.GetMessageId())
		}
	case ev.GetMissingDependencies() != nil:
		if e := ev.GetMissingDependencies(); e.GetChannelId() == c.channelID && c.opt.OnMissing != nil {
			c.opt.OnMissing(e)
		}
	case ev.GetResendRequested() != nil:
		e := ev.GetResendRequested()
		c.publish(ctx, "resend "+e.GetMessageId(), e.GetWireBytes())
	case ev.GetRepairReady() != nil:
		e := ev.GetRepairReady()
		c.publish(ctx, "repair "+e.GetMessageId(), e.GetWireBytes())
	case ev.GetSyncDue() != nil:
		if ev.GetSyncDue().GetChannelId() == c.channelID {
			b, err := c.m.BuildSyncMessage(ctx, c.channelID)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.GetCode() != pb.ErrorCode_ERROR_CODE_CLOSED {
					c.report(fmt.Errorf("build sync message: %w", err))
				}
				break
			}
			c.publish(ctx, "sync", b)
		}
	}
	if c.opt.OnEvent != nil {
		c.opt.OnEvent(ev)
	}
}

func (c *ReliableChannel) publish(ctx context.Context, what string, b []byte) {
	if len(b) == 0 {
		return
	}
	if err := c.t.Publish(ctx, b); err != nil {
		c.report(fmt.Errorf("publish %s: %w", what, err))
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// queue is an unbounded FIFO: the manager's event delivery must never wait for the
// channel's goroutine, which itself calls the manager (BuildSyncMessage) and would
// deadlock on a full bounded queue.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	signal chan struct{}
}

func newQueue[T any]() *queue[T] { return &queue[T]{signal: make(chan struct{}, 1)} }

// push appends v; it is dropped once the queue is closed.
func (q *queue[T]) push(v T) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, v)
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// pop waits for the next item; false once the queue is closed and drained.
func (q *queue[T]) pop() (T, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			v := q.items[0]
			var zero T
			q.items[0] = zero
			q.items = q.items[1:]
			q.mu.Unlock()
			return v, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			var zero T
			return zero, false
		}
		<-q.signal
	}
}

func (q *queue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}
