package sds

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/sdskit/sdskit/core/sdserr"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

// WrapOutgoingMessage turns content into the bytes to broadcast on channelID: it stamps a
// Lamport timestamp (max(now in ms, L+1)), attaches the causal history, the channel's
// bloom filter and due repair requests, logs the message as delivered locally and keeps
// it in the outgoing buffer until acknowledged. Empty content is INVALID_ARGUMENT (use
// BuildSyncMessage); content over MaxMessageSize is MESSAGE_TOO_LARGE; a message id the
// channel already knows is INVALID_ARGUMENT.
func (m *Manager) WrapOutgoingMessage(ctx context.Context, channelID, messageID string, content []byte) ([]byte, error) {
	return m.AppendWrapOutgoingMessage(ctx, nil, channelID, messageID, content)
}

// AppendWrapOutgoingMessage is WrapOutgoingMessage appending the message to dst, so that
// a caller can encode into a buffer it reuses (the message is ~19 KB with the default
// bloom filter). On error it returns nil.
func (m *Manager) AppendWrapOutgoingMessage(ctx context.Context, dst []byte, channelID, messageID string, content []byte) ([]byte, error) {
	const op = "WrapOutgoingMessage"
	if err := m.checkID(op, "message id", messageID); err != nil {
		return nil, err
	}
	if len(content) == 0 {
		return nil, sdserr.New(sdserr.InvalidArgument, op, "content must not be empty (use BuildSyncMessage for sync messages)")
	}
	if len(content) > m.cfg.MaxMessageSize {
		return nil, sdserr.New(sdserr.MessageTooLarge, op, "content is %d bytes, over MaxMessageSize %d", len(content), m.cfg.MaxMessageSize)
	}
	hints, err := m.prefetchHints(ctx, op, channelID)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = m.run(ctx, op, channelID, func(t *txn) error {
		if t.s.knows(messageID) {
			return sdserr.New(sdserr.InvalidArgument, op, "message id %q is already used on channel %q", messageID, channelID)
		}
		msg := t.newMessage(messageID, hints, m.cfg.MaxCausalHistory)
		msg.Content = slices.Clone(content)
		b, err := m.encode(op, dst, msg)
		if err != nil {
			return err
		}
		msg.BloomFilter = nil // the channel's scratch buffer (encodeBloom): never kept
		now := t.nowMs()
		// The outgoing entry keeps the message without its bloom filter and without the
		// wire bytes: a resend re-encodes it with the filter current at that time, so the
		// buffer holds ~0.3 KB per message instead of ~19 KB (and persists that much).
		t.outPut(&pb.UnacknowledgedMessage{
			Message:            stripBloom(msg),
			SentAtUnixMs:       now,
			NextResendAtUnixMs: now + m.cfg.ResendInterval.Milliseconds(),
		})
		t.logInsert(msg)
		t.bloomAdds = append(t.bloomAdds, messageID)
		t.referenced(msg.GetCausalHistory())
		t.unreferencedAdd(messageID)
		// Another peer's message may already wait for this id (an id collision, or a
		// message relayed back to us before we logged it): it is satisfied now.
		for _, ready := range t.unblock(messageID) {
			t.deliver(ready)
		}
		out = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// BuildSyncMessage returns a sync message for channelID: empty content, a fresh Lamport
// timestamp, the causal history, the bloom filter and due repair requests. It is not
// buffered or logged; peers use it for acknowledgements and to detect gaps.
func (m *Manager) BuildSyncMessage(ctx context.Context, channelID string) ([]byte, error) {
	return m.AppendBuildSyncMessage(ctx, nil, channelID)
}

// AppendBuildSyncMessage is BuildSyncMessage appending the message to dst. On error it
// returns nil.
func (m *Manager) AppendBuildSyncMessage(ctx context.Context, dst []byte, channelID string) ([]byte, error) {
	const op = "BuildSyncMessage"
	hints, err := m.prefetchHints(ctx, op, channelID)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = m.run(ctx, op, channelID, func(t *txn) error {
		msg := t.newMessage(m.newSyncID(), hints, m.cfg.SyncCausalHistory)
		msg.CausalHistory = t.withUnreferenced(msg.CausalHistory)
		b, err := m.encode(op, dst, msg)
		if err != nil {
			return err
		}
		msg.BloomFilter = nil // the channel's scratch buffer (encodeBloom): never kept
		t.s.rememberSync(msg.GetMessageId())
		out = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WrapEphemeral returns an ephemeral message: no Lamport timestamp, causal history or
// bloom filter; receivers deliver it at once and never buffer, log or acknowledge it. It
// touches no channel state and no persistence.
func (m *Manager) WrapEphemeral(ctx context.Context, channelID, messageID string, content []byte) ([]byte, error) {
	const op = "WrapEphemeral"
	if err := m.enter(op); err != nil {
		return nil, err
	}
	defer m.leave()
	for _, c := range []struct{ what, v string }{{"channel id", channelID}, {"message id", messageID}} {
		if err := m.checkID(op, c.what, c.v); err != nil {
			return nil, err
		}
	}
	if len(content) == 0 {
		return nil, sdserr.New(sdserr.InvalidArgument, op, "content must not be empty")
	}
	if len(content) > m.cfg.MaxMessageSize {
		return nil, sdserr.New(sdserr.MessageTooLarge, op, "content is %d bytes, over MaxMessageSize %d", len(content), m.cfg.MaxMessageSize)
	}
	return m.encode(op, nil, &pb.SdsMessage{SenderId: m.participant, MessageId: messageID, ChannelId: channelID, Content: slices.Clone(content)})
}

// encode appends msg to dst, within the limit of the message size.
func (m *Manager) encode(op string, dst []byte, msg *pb.SdsMessage) ([]byte, error) {
	b, err := m.prof.Codec.AppendEncode(dst, msg)
	if err != nil {
		return nil, sdserr.From(op, sdserr.Serialization, err)
	}
	if n := len(b) - len(dst); n > m.lim.MaxMessageBytes {
		return nil, sdserr.New(sdserr.MessageTooLarge, op, "encoded message is %d bytes, over the %d-byte limit", n, m.lim.MaxMessageBytes)
	}
	return b, nil
}

// newMessage builds a content-less message with the next Lamport timestamp, causal
// history, bloom filter and due repair requests, recording the clock bump and the
// attached repair requests in t.
func (t *txn) newMessage(messageID string, hints map[string][]byte, history int) *pb.SdsMessage {
	m, s := t.m, t.s
	next := s.lamport + 1
	if next == 0 { // saturate: a peer's lamport of 2^64-1 must not wrap our clock to 0
		next = s.lamport
	}
	lamport := max(m.prof.LamportNow(t.now), next)
	t.setLamport(lamport)
	for id, h := range hints {
		if len(h) > 0 && s.log.has(id) && len(s.hints[id]) == 0 {
			t.setHint(id, h)
		} else if len(h) == 0 {
			s.hintAsked[id] = struct{}{} // memory-only cache of "no hint"; harmless to keep on rollback
		}
	}
	return &pb.SdsMessage{
		SenderId:         m.participant,
		MessageId:        messageID,
		ChannelId:        t.ch,
		LamportTimestamp: proto.Uint64(lamport),
		CausalHistory:    t.causalHistory(history),
		BloomFilter:      t.encodeBloom(),
		RepairRequest:    t.takeRepairRequests(),
	}
}

// encodeBloom returns the channel's encoded bloom filter from a per-channel cache (when
// the profile can append), re-encoded only when addToBloom could not patch it: the
// result is only read by the encoder, which copies it into the message bytes, so a
// send neither allocates nor encodes the ~18.7 KB of a default filter. Callers clear
// the message's BloomFilter after encoding it.
func (t *txn) encodeBloom() []byte {
	s, p := t.s, t.m.prof
	if p.AppendBloom == nil {
		return p.EncodeBloom(s.bloom.Filter())
	}
	if !s.bloomOK || s.bloomVer != s.bloom.Version() {
		s.bloomBuf = p.AppendBloom(s.bloomBuf[:0], s.bloom.Filter())
		s.bloomOK, s.bloomVer = true, s.bloom.Version()
	}
	return s.bloomBuf
}

// causalHistory returns the newest n real (non-stub) log entries, oldest first, each with
// its retrieval hint and original sender.
func (t *txn) causalHistory(n int) []*pb.HistoryEntry {
	s := t.s
	n = min(n, s.log.len())
	if n <= 0 {
		return nil
	}
	block := make([]historyAlloc, n) // one allocation for all the entries of a message
	rev := make([]*pb.HistoryEntry, 0, n)
	for i := s.log.len() - 1; i >= 0 && len(rev) < n; i-- {
		msg := s.log.entries[i]
		if isStub(msg) {
			continue
		}
		rev = append(rev, s.fillEntry(&block[len(rev)], msg))
	}
	slices.Reverse(rev)
	return rev
}

// historyAlloc co-allocates a causal-history entry with the storage of its sender id.
type historyAlloc struct {
	e      pb.HistoryEntry
	sender string
}

// fillEntry makes a the causal-history entry of the logged message msg, with its
// retrieval hint and original sender, and returns it.
func (s *state) fillEntry(a *historyAlloc, msg *pb.SdsMessage) *pb.HistoryEntry {
	a.e.MessageId = msg.GetMessageId()
	if h := s.hints[msg.GetMessageId()]; len(h) > 0 {
		a.e.RetrievalHint = h
	}
	if sender := msg.GetSenderId(); sender != "" {
		a.sender = sender
		a.e.SenderId = &a.sender
	}
	return &a.e
}

// withUnreferenced puts before a sync message's newest entries the messages that no
// content message has referenced yet and that were delivered within the last
// SyncUnreferencedRounds sync intervals: at most SyncCausalHistory of them (the newest),
// in log order. Expired entries, and messages the log no longer holds, are forgotten.
func (t *txn) withUnreferenced(newest []*pb.HistoryEntry) []*pb.HistoryEntry {
	s, cfg := t.s, t.m.cfg
	if cfg.SyncUnreferencedRounds == 0 || len(s.unreferenced) == 0 {
		return newest
	}
	horizon := t.nowMs() - int64(cfg.SyncUnreferencedRounds)*cfg.SyncInterval.Milliseconds()
	named := make(map[string]struct{}, len(newest))
	for _, e := range newest {
		named[e.GetMessageId()] = struct{}{}
	}
	var picks []*pb.SdsMessage
	for id, at := range s.unreferenced {
		msg := s.log.get(id)
		if at < horizon || msg == nil || isStub(msg) {
			delete(s.unreferenced, id) // derived state: nothing to undo
			continue
		}
		if _, ok := named[id]; !ok {
			picks = append(picks, msg)
		}
	}
	if len(picks) == 0 {
		return newest
	}
	slices.SortFunc(picks, logCmp)
	if limit := min(cfg.SyncCausalHistory, t.m.lim.MaxCausalHistory-len(newest)); len(picks) > limit {
		picks = picks[len(picks)-max(limit, 0):]
	}
	block := make([]historyAlloc, len(picks))
	out := make([]*pb.HistoryEntry, 0, len(picks)+len(newest))
	for i, msg := range picks {
		out = append(out, s.fillEntry(&block[i], msg))
	}
	return append(out, newest...)
}

// takeRepairRequests returns up to MaxRepairRequests outgoing repair entries whose T_req
// has passed, most overdue first (ties by id). Unlike nim-sds, which sends a request once
// and forgets it, an attached request is re-armed with a fresh T_req so that a lost
// request or a lost answer is retried, up to MaxRepairAttempts requests.
func (t *txn) takeRepairRequests() []*pb.HistoryEntry {
	s := t.s
	now := t.nowMs()
	var due []*pb.OutgoingRepairEntry
	for _, e := range s.orep {
		if e.GetRequestAtUnixMs() <= now {
			due = append(due, e)
		}
	}
	slices.SortFunc(due, func(a, b *pb.OutgoingRepairEntry) int {
		if c := cmp.Compare(a.GetRequestAtUnixMs(), b.GetRequestAtUnixMs()); c != 0 {
			return c
		}
		return cmp.Compare(a.GetEntry().GetMessageId(), b.GetEntry().GetMessageId())
	})
	if len(due) > t.m.cfg.MaxRepairRequests {
		due = due[:t.m.cfg.MaxRepairRequests]
	}
	var out []*pb.HistoryEntry
	var keep retryPolicy
	for _, e := range due {
		id := e.GetEntry().GetMessageId()
		out = append(out, e.GetEntry())
		attempts := e.GetAttempts() + 1
		delay := t.m.prof.TReq(t.m.participant, id, t.m.cfg.RepairTMin, t.m.cfg.RepairTMax)
		if over := int(attempts) - t.m.cfg.MaxRepairAttempts; over >= 0 {
			if !keep.keeps(t, id) {
				t.orepRemove(id)
				continue
			}
			delay = retryDelay(delay, over, t.m.cfg.RepairRetryMaxInterval)
		}
		t.orepPut(&pb.OutgoingRepairEntry{Entry: e.GetEntry(), RequestAtUnixMs: t.now.Add(delay).UnixMilli(),
			DetectedAtUnixMs: e.GetDetectedAtUnixMs(), Attempts: attempts})
	}
	return out
}

// retryPolicy answers, for one transaction, whether an outgoing repair request that the
// nim-sds rules would drop (attempts spent, or unsent for T_max) is kept: only with
// RepairRetryMaxInterval on and while a message of the incoming buffer waits for it. The
// set of awaited ids is built at the first question.
type retryPolicy struct {
	needed map[string]bool
}

func (p *retryPolicy) keeps(t *txn, id string) bool {
	if t.m.cfg.RepairRetryMaxInterval <= 0 {
		return false
	}
	if p.needed == nil {
		p.needed = map[string]bool{}
		for _, in := range t.s.in {
			for dep := range in.missing {
				p.needed[dep] = true
			}
		}
	}
	return p.needed[id]
}

// retryDelay is the wait before request number over+1 past MaxRepairAttempts: T_req
// doubled that many times, at most limit.
func retryDelay(tReq time.Duration, over int, limit time.Duration) time.Duration {
	d := max(tReq, time.Millisecond)
	for i := 0; i <= over && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// prefetchHints asks the hint provider, outside every lock, for the hints of our own
// messages that the next causal history will reference and that have none yet.
func (m *Manager) prefetchHints(ctx context.Context, op, channelID string) (map[string][]byte, error) {
	if m.hints == nil {
		return nil, nil
	}
	var ask []string
	err := m.run(ctx, op, channelID, func(t *txn) error {
		for _, e := range t.causalHistory(m.cfg.SyncCausalHistory) {
			id := e.GetMessageId()
			if len(e.GetRetrievalHint()) > 0 {
				continue
			}
			if _, asked := t.s.hintAsked[id]; asked {
				continue
			}
			if t.s.log.get(id).GetSenderId() == m.participant {
				ask = append(ask, id)
			}
		}
		return nil
	})
	if err != nil || len(ask) == 0 {
		return nil, err
	}
	out := make(map[string][]byte, len(ask))
	for _, id := range ask {
		h, err := m.callHintProvider(ctx, channelID, id)
		if err != nil {
			m.log.Warn("sds: retrieval hint provider failed", "channel", channelID, "message", id, "err", err)
			continue // a hint is an optimisation: never fail a send for it
		}
		if len(h) > m.lim.MaxHintBytes {
			m.log.Warn("sds: retrieval hint over the limit ignored", "channel", channelID, "message", id, "bytes", len(h))
			h = nil
		}
		out[id] = slices.Clone(h)
	}
	return out, nil
}

func (m *Manager) callHintProvider(ctx context.Context, channelID, id string) (h []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = sdserr.New(sdserr.Internal, "RetrievalHint", "hint provider panicked: %v", r)
		}
	}()
	return m.hints.RetrievalHint(ctx, channelID, id)
}
