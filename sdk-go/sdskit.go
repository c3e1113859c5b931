// Package sdskit is the Go SDK of sdskit: reliable, causally ordered group messaging
// (the Scalable Data Sync protocol with SDS-R repair) over any lossy broadcast
// transport. It is a typed facade over the IDL's generated ReliabilityManager surface,
// running the Go core in process (no C, no wasm).
//
// A Manager holds many channels. Wrap content before broadcasting it, hand every
// received payload to Unwrap, and react to events: deliver MessageReady, rebroadcast the
// bytes of ResendRequested and RepairReady, send BuildSyncMessage on SyncDue.
package sdskit

import (
	"context"
	"log/slog"

	"github.com/sdskit/sdskit/core/api"
	"github.com/sdskit/sdskit/core/clock"
	_ "github.com/sdskit/sdskit/core/store/sqlite" // registers PersistenceChoice.Sqlite
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Re-exported IDL types, so that applications need a single import for the common case.
type (
	// Config tunes a manager; unset fields take the documented defaults.
	Config = pb.Config
	// Event is any event of the manager.
	Event = pb.Event
	// EventHandler has one method per event kind; embed UnimplementedEventHandler.
	EventHandler = pb.EventHandler
	// UnimplementedEventHandler ignores every event; embed it to handle only some.
	UnimplementedEventHandler = pb.UnimplementedEventHandler
	// Persistence is the 14-operation persistence contract a custom backend implements.
	Persistence = pb.Persistence
	// PersistenceTransactions is the optional Begin/Commit/Rollback part of it.
	PersistenceTransactions = pb.PersistenceTransactions
	// Snapshot is a channel's state in persisted form.
	Snapshot = pb.ChannelSnapshot
	// HistoryEntry references a message (a dependency or a repair request).
	HistoryEntry = pb.HistoryEntry
	// Error is the typed error every method returns (errors.As(err, **Error)).
	Error = pb.Error
	// ErrorCode classifies an Error.
	ErrorCode = pb.ErrorCode
	// MessageReady is the delivery event.
	MessageReady = pb.MessageReady
	// MessageAcknowledged says a peer holds one of our messages.
	MessageAcknowledged = pb.MessageAcknowledged
	// ResendRequested asks the application to rebroadcast WireBytes.
	ResendRequested = pb.ResendRequested
	// RepairReady asks the application to rebroadcast WireBytes for a peer (SDS-R).
	RepairReady = pb.RepairReady
	// SyncDue asks the application to broadcast BuildSyncMessage.
	SyncDue = pb.SyncDue
	// MissingDependencies lists what a received message waits for.
	MissingDependencies = pb.MissingDependencies
)

// Message kinds of Received.Kind.
const (
	KindContent   = pb.MessageKind_MESSAGE_KIND_CONTENT
	KindSync      = pb.MessageKind_MESSAGE_KIND_SYNC
	KindEphemeral = pb.MessageKind_MESSAGE_KIND_EPHEMERAL
	KindDuplicate = pb.MessageKind_MESSAGE_KIND_DUPLICATE
)

// Received describes a payload handed to Unwrap.
type Received = pb.UnwrapReceivedMessageResponse

// Option configures New.
type Option func(*options)

type options struct {
	req  pb.CreateRequest
	host api.Host
}

// WithConfig sets the protocol configuration (unset fields keep their defaults).
func WithConfig(c *Config) Option { return func(o *options) { o.req.Config = c } }

// WithMemoryPersistence keeps state in an in-memory backend (tests).
func WithMemoryPersistence() Option {
	return func(o *options) {
		o.req.Persistence = &pb.PersistenceChoice{Kind: &pb.PersistenceChoice_Memory_{Memory: &pb.PersistenceChoice_Memory{}}}
	}
}

// WithSQLite persists state in the embedded SQLite database at path (created if
// absent); synchronous is "NORMAL" (default when empty) or "FULL" for power-loss
// durability. One manager owns a database file at a time.
func WithSQLite(path, synchronous string) Option {
	return func(o *options) {
		o.req.Persistence = &pb.PersistenceChoice{Kind: &pb.PersistenceChoice_Sqlite_{
			Sqlite: &pb.PersistenceChoice_Sqlite{Path: path, Synchronous: synchronous}}}
	}
}

// WithPersistence uses a custom backend implementing the persistence contract; if it
// also implements PersistenceTransactions, every batch runs in one transaction.
func WithPersistence(p Persistence) Option {
	return func(o *options) {
		o.req.Persistence = &pb.PersistenceChoice{Kind: &pb.PersistenceChoice_Host_{Host: &pb.PersistenceChoice_Host{}}}
		o.host.Persistence = p
	}
}

// WithEventHandler receives events, in commit order, outside every lock.
func WithEventHandler(h EventHandler) Option {
	return func(o *options) { o.host.Events = eventSink{h} }
}

// WithEventFunc receives every event as one value.
func WithEventFunc(f func(*Event)) Option {
	return func(o *options) { o.host.Events = eventFunc(f) }
}

// WithEventChannel sends every event to ch, in commit order. Sends block: drain ch from
// another goroutine (a full channel stalls the operation whose events are being
// delivered, never the core's locks), and do not close it before Close returns.
func WithEventChannel(ch chan<- *Event) Option {
	return func(o *options) { o.host.Events = eventFunc(func(ev *Event) { ch <- ev }) }
}

// WithRetrievalHints supplies retrieval hints (e.g. transport message hashes) of our own
// messages; return nil for none.
func WithRetrievalHints(f func(ctx context.Context, channelID, messageID string) ([]byte, error)) Option {
	return func(o *options) {
		o.req.HostHintProvider = true
		o.host.Hints = hintFunc(f)
	}
}

// WithClock replaces the wall clock (deterministic tests and simulations).
func WithClock(c clock.Clock) Option { return func(o *options) { o.host.Clock = c } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.host.Logger = l } }

// Manager is a multi-channel reliability manager, safe for concurrent use.
type Manager struct {
	srv *api.Server
	api pb.ReliabilityManagerServer
}

// New creates a manager for participantID (the id stamped on our messages; empty
// disables SDS-R).
func New(ctx context.Context, participantID string, opts ...Option) (*Manager, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	o.req.ParticipantId = participantID
	srv, err := api.Create(ctx, &o.req, o.host)
	if err != nil {
		return nil, toError(err)
	}
	return &Manager{srv: srv, api: srv}, nil
}

// Wrap returns the bytes to broadcast for content on channelID under messageID (unique
// within the channel).
func (m *Manager) Wrap(ctx context.Context, channelID, messageID string, content []byte) ([]byte, error) {
	r, err := m.api.WrapOutgoingMessage(ctx, &pb.WrapOutgoingMessageRequest{ChannelId: channelID, MessageId: messageID, Content: content})
	if err != nil {
		return nil, toError(err)
	}
	return r.GetWireBytes(), nil
}

// WrapEphemeral returns the bytes of an ephemeral message: delivered at once by
// receivers, never buffered, acknowledged or repaired.
func (m *Manager) WrapEphemeral(ctx context.Context, channelID, messageID string, content []byte) ([]byte, error) {
	r, err := m.api.WrapEphemeral(ctx, &pb.WrapEphemeralRequest{ChannelId: channelID, MessageId: messageID, Content: content})
	if err != nil {
		return nil, toError(err)
	}
	return r.GetWireBytes(), nil
}

// BuildSyncMessage returns the bytes of a sync message for channelID (send it on SyncDue).
func (m *Manager) BuildSyncMessage(ctx context.Context, channelID string) ([]byte, error) {
	r, err := m.api.BuildSyncMessage(ctx, &pb.BuildSyncMessageRequest{ChannelId: channelID})
	if err != nil {
		return nil, toError(err)
	}
	return r.GetWireBytes(), nil
}

// Unwrap processes a received payload; hint is the transport's retrieval hint for it
// (nil for none).
func (m *Manager) Unwrap(ctx context.Context, data, hint []byte) (*Received, error) {
	r, err := m.api.UnwrapReceivedMessage(ctx, &pb.UnwrapReceivedMessageRequest{Data: data, RetrievalHint: hint})
	if err != nil {
		return nil, toError(err)
	}
	return r, nil
}

// MarkDependenciesMet records messages the application retrieved out of band.
func (m *Manager) MarkDependenciesMet(ctx context.Context, channelID string, messageIDs ...string) error {
	_, err := m.api.MarkDependenciesMet(ctx, &pb.MarkDependenciesMetRequest{ChannelId: channelID, MessageIds: messageIDs})
	return toError(err)
}

// EnsureChannel loads a channel from persistence ahead of its first use.
func (m *Manager) EnsureChannel(ctx context.Context, channelID string) error {
	_, err := m.api.EnsureChannel(ctx, &pb.EnsureChannelRequest{ChannelId: channelID})
	return toError(err)
}

// RemoveChannel deletes a channel's persisted state and forgets it.
func (m *Manager) RemoveChannel(ctx context.Context, channelID string) error {
	_, err := m.api.RemoveChannel(ctx, &pb.RemoveChannelRequest{ChannelId: channelID})
	return toError(err)
}

// RunSweeps runs every due timer duty now (resends, timeouts, repairs, sync).
func (m *Manager) RunSweeps(ctx context.Context) error {
	_, err := m.api.RunSweeps(ctx, &pb.RunSweepsRequest{})
	return toError(err)
}

// StartPeriodicTasks runs the sweeps in the background until Close.
func (m *Manager) StartPeriodicTasks(ctx context.Context) error {
	_, err := m.api.StartPeriodicTasks(ctx, &pb.StartPeriodicTasksRequest{})
	return toError(err)
}

// Reset deletes every channel this manager touched.
func (m *Manager) Reset(ctx context.Context) error {
	_, err := m.api.Reset(ctx, &pb.ResetRequest{})
	return toError(err)
}

// Snapshot returns a loaded channel's in-memory state.
func (m *Manager) Snapshot(ctx context.Context, channelID string) (*Snapshot, error) {
	r, err := m.api.GetSnapshot(ctx, &pb.GetSnapshotRequest{ChannelId: channelID})
	if err != nil {
		return nil, toError(err)
	}
	return r.GetSnapshot(), nil
}

// Channels lists the loaded channels.
func (m *Manager) Channels(ctx context.Context) ([]string, error) {
	r, err := m.api.ListChannels(ctx, &pb.ListChannelsRequest{})
	if err != nil {
		return nil, toError(err)
	}
	return r.GetChannelIds(), nil
}

// Close stops background work and releases the backend; later calls return CLOSED.
func (m *Manager) Close() error {
	_, err := m.api.Close(context.Background(), &pb.CloseRequest{})
	return toError(err)
}

// EventName returns the name of an event's kind, e.g. "MessageReady".
func EventName(ev *Event) string { return pb.EventName(ev) }

// toError converts any error into the IDL's typed *Error (nil stays nil).
func toError(err error) error {
	if err == nil {
		return nil
	}
	return pb.ErrorFrom(err)
}

type eventSink struct{ h EventHandler }

func (s eventSink) OnEvent(_ context.Context, ev *pb.Event) error {
	pb.DispatchEvent(s.h, ev)
	return nil
}

type eventFunc func(*Event)

func (f eventFunc) OnEvent(_ context.Context, ev *pb.Event) error {
	f(ev)
	return nil
}

type hintFunc func(ctx context.Context, channelID, messageID string) ([]byte, error)

func (f hintFunc) GetRetrievalHint(ctx context.Context, req *pb.GetRetrievalHintRequest) (*pb.GetRetrievalHintResponse, error) {
	h, err := f(ctx, req.GetChannelId(), req.GetMessageId())
	if err != nil {
		return nil, err
	}
	return &pb.GetRetrievalHintResponse{RetrievalHint: h}, nil
}
