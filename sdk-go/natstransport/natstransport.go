// Package natstransport runs sdskit's ReliableChannel over NATS core publish/subscribe:
// one subject per channel, every participant publishing and subscribing to it. NATS core
// delivers at most once, so messages are lost when a subscriber is slow or disconnected;
// that is exactly what SDS repairs.
package natstransport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Transport publishes to and subscribes to one NATS subject; it implements
// sdskit.Transport.
type Transport struct {
	nc      *nats.Conn
	subject string
	owned   bool
}

// Dial connects to the NATS server(s) at url with echo disabled (a participant must not
// receive its own publications) and returns a transport for subject that closes the
// connection on Close.
func Dial(url, subject string, opts ...nats.Option) (*Transport, error) {
	if subject == "" {
		return nil, errors.New("natstransport: empty subject")
	}
	nc, err := nats.Connect(url, append([]nats.Option{nats.NoEcho()}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("natstransport: connect %s: %w", url, err)
	}
	return &Transport{nc: nc, subject: subject, owned: true}, nil
}

// New returns a transport for subject over an existing connection, which the caller
// keeps owning. Connect it with nats.NoEcho(), or every participant also receives its
// own messages (harmless to SDS, but wasted work).
func New(nc *nats.Conn, subject string) (*Transport, error) {
	if nc == nil || subject == "" {
		return nil, errors.New("natstransport: nil connection or empty subject")
	}
	return &Transport{nc: nc, subject: subject}, nil
}

// Publish sends payload to the subject. It returns once the client buffered it: NATS
// core gives no delivery guarantee, SDS does.
func (t *Transport) Publish(ctx context.Context, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := t.nc.Publish(t.subject, payload); err != nil {
		return fmt.Errorf("natstransport: publish to %s: %w", t.subject, err)
	}
	return nil
}

// Subscribe delivers every payload published on the subject by others to deliver, one
// at a time, until the returned function unsubscribes. The first subscription is
// flushed to the server before Subscribe returns, so no publication after it is missed.
func (t *Transport) Subscribe(ctx context.Context, deliver func([]byte)) (func() error, error) {
	sub, err := t.nc.Subscribe(t.subject, func(m *nats.Msg) { deliver(m.Data) })
	if err != nil {
		return nil, fmt.Errorf("natstransport: subscribe to %s: %w", t.subject, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	if err := t.nc.FlushWithContext(ctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("natstransport: flush subscription: %w", err)
	}
	return func() error {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			return fmt.Errorf("natstransport: unsubscribe: %w", err)
		}
		return nil
	}, nil
}

// Close drains nothing and closes the connection if Dial opened it.
func (t *Transport) Close() {
	if t.owned {
		t.nc.Close()
	}
}
