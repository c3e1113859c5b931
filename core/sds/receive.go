package sds

import (
	"cmp"
	"context"
	"slices"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/wire"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
)

// Kind classifies a received message.
type Kind int

const (
	// KindContent is a content message (delivered now or buffered until its dependencies arrive).
	KindContent Kind = iota + 1
	// KindSync is a sync message: used for acknowledgements and gap detection, never delivered.
	KindSync
	// KindEphemeral is an ephemeral message: delivered at once, never buffered or logged.
	KindEphemeral
	// KindDuplicate is a message the channel already holds (delivered, buffered or our own).
	KindDuplicate
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindContent:
		return "content"
	case KindSync:
		return "sync"
	case KindEphemeral:
		return "ephemeral"
	case KindDuplicate:
		return "duplicate"
	}
	return "unknown"
}

// Unwrapped is the result of UnwrapReceivedMessage.
type Unwrapped struct {
	ChannelID string
	MessageID string
	SenderID  string
	Kind      Kind
	Lamport   uint64
	// Content is the application payload (also for a buffered or duplicate message).
	Content []byte
	// Delivered is true when a content or ephemeral message was delivered by this call.
	Delivered bool
	// Missing lists the dependencies a buffered content message waits for.
	Missing []*pb.HistoryEntry
}

// UnwrapReceivedMessage processes bytes received from the transport. Malformed input is
// DESERIALIZATION (MESSAGE_TOO_LARGE over the size limits) and leaves every state
// untouched. See UnwrapReceivedMessageWithHint to record the transport's retrieval hint.
func (m *Manager) UnwrapReceivedMessage(ctx context.Context, data []byte) (*Unwrapped, error) {
	return m.UnwrapReceivedMessageWithHint(ctx, data, nil)
}

// UnwrapReceivedMessageWithHint is UnwrapReceivedMessage recording hint (e.g. the
// transport's message hash) as the message's retrieval hint, which our causal histories
// then pass on.
func (m *Manager) UnwrapReceivedMessageWithHint(ctx context.Context, data []byte, hint []byte) (*Unwrapped, error) {
	const op = "UnwrapReceivedMessage"
	if len(hint) > m.lim.MaxHintBytes {
		return nil, sdserr.New(sdserr.InvalidArgument, op, "retrieval hint is %d bytes, over the %d-byte limit", len(hint), m.lim.MaxHintBytes)
	}
	msg, err := m.decodeReceived(data)
	if err != nil {
		return nil, sdserr.From(op, sdserr.Deserialization, err)
	}
	res := &Unwrapped{
		ChannelID: msg.GetChannelId(),
		MessageID: msg.GetMessageId(),
		SenderID:  msg.GetSenderId(),
		Lamport:   msg.GetLamportTimestamp(),
		Content:   msg.GetContent(),
	}
	switch wire.KindOf(msg) {
	case wire.KindEphemeral:
		if err := m.enter(op); err != nil {
			return nil, err
		}
		m.leave()
		if err := m.checkID(op, "channel id", msg.GetChannelId()); err != nil {
			return nil, sdserr.New(sdserr.Deserialization, op, "%v", err)
		}
		res.Kind = KindEphemeral
		if m.participant != "" && msg.GetSenderId() == m.participant {
			return res, nil // our own ephemeral message echoed back by the transport
		}
		res.Delivered = true
		m.enqueue([]*pb.Event{{Event: &pb.Event_MessageReady{MessageReady: &pb.MessageReady{
			ChannelId: msg.GetChannelId(), MessageId: msg.GetMessageId(), SenderId: msg.GetSenderId(), Content: msg.GetContent()}}}})
		m.drain()
		return res, nil
	case wire.KindSync:
		res.Kind = KindSync
	default:
		res.Kind = KindContent
	}
	err = m.run(ctx, op, msg.GetChannelId(), func(t *txn) error {
		t.receive(msg, hint, res)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// decodeReceived decodes received bytes without copying their bloom filter when the
// codec can: the filter is only read during this call (acknowledgements) and stripped
// from every message the channel keeps (stripBloom).
func (m *Manager) decodeReceived(data []byte) (*pb.SdsMessage, error) {
	if d, ok := m.prof.Codec.(wire.BloomSharingDecoder); ok {
		return d.DecodeSharingBloom(data, m.lim)
	}
	return m.prof.Codec.Decode(data, m.lim)
}

// receive applies a decoded content or sync message to the channel.
func (t *txn) receive(msg *pb.SdsMessage, hint []byte, res *Unwrapped) {
	s, m := t.s, t.m
	id := msg.GetMessageId()
	fromSelf := m.participant != "" && msg.GetSenderId() == m.participant
	if res.Kind == KindSync && msg.GetSenderId() == m.participant && (fromSelf || slices.Contains(s.ownSyncs, id)) {
		// Our own sync echoed back (recognised by its id when we have no participant id):
		// it must not acknowledge our messages nor count as another peer's repair request.
		return
	}
	if res.Kind == KindContent && s.knows(id) {
		res.Kind = KindDuplicate
		// A copy of a message we hold makes pending SDS-R work for it moot (this is how a
		// rebroadcast cancels the other responders).
		t.orepRemove(id)
		t.irepRemove(id)
		return
	}
	if !fromSelf { // our own bloom would acknowledge our own messages
		t.reviewAcks(msg)
	}
	t.handleRepairRequests(msg)
	t.learnHints(msg)
	missing := t.missingDeps(msg)
	if res.Kind == KindSync {
		t.requestRepairs(missing)
		t.repairFromBloom(msg)
		return
	}
	t.orepRemove(id)
	t.irepRemove(id)
	t.bloomAdds = append(t.bloomAdds, id)
	t.referenced(msg.GetCausalHistory())
	stored := stripBloom(msg)
	if len(hint) > 0 {
		t.setHint(id, slices.Clone(hint))
	}
	if len(missing) == 0 {
		t.deliver(stored)
		res.Delivered = true
		return
	}
	ids := make([]string, len(missing))
	for i, e := range missing {
		ids[i] = e.GetMessageId()
	}
	if len(s.in) >= m.cfg.MaxIncomingBuffer {
		t.evictOldestIncoming()
	}
	t.inPut(&pb.IncomingMessage{Message: stored, MissingDependencies: ids, ReceivedAtUnixMs: t.nowMs()})
	t.emit(&pb.Event{Event: &pb.Event_MissingDependencies{MissingDependencies: &pb.MissingDependencies{
		ChannelId: t.ch, MessageId: id, Missing: missing}}})
	t.requestRepairs(missing)
	res.Missing = missing
}

// missingDeps returns the causal-history entries not in the local log, first occurrence
// of each id, in causal-history order.
func (t *txn) missingDeps(msg *pb.SdsMessage) []*pb.HistoryEntry {
	var out []*pb.HistoryEntry
	seen := make(map[string]struct{})
	for _, e := range msg.GetCausalHistory() {
		id := e.GetMessageId()
		if _, dup := seen[id]; dup || t.s.log.has(id) || id == msg.GetMessageId() {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, e)
	}
	return out
}

// learnHints keeps retrieval hints that peers attach to messages of our log lacking one.
func (t *txn) learnHints(msg *pb.SdsMessage) {
	for _, e := range msg.GetCausalHistory() {
		id := e.GetMessageId()
		if len(e.GetRetrievalHint()) > 0 && t.s.log.has(id) && len(t.s.hints[id]) == 0 && !isStub(t.s.log.get(id)) {
			t.setHint(id, e.GetRetrievalHint())
		}
	}
}

// reviewAcks acknowledges our outgoing messages: an id in the causal history is an
// acknowledgement; a hit in the bloom filter is a possible one, counted once per distinct
// sender and promoted at PossibleAcksThreshold.
func (t *txn) reviewAcks(msg *pb.SdsMessage) {
	s, m := t.s, t.m
	if len(s.out) == 0 {
		return
	}
	inHistory := make(map[string]struct{}, len(msg.GetCausalHistory()))
	for _, e := range msg.GetCausalHistory() {
		inHistory[e.GetMessageId()] = struct{}{}
	}
	peer := t.peerBloom(msg)
	sender := msg.GetSenderId()
	for _, e := range slices.Clone(s.out) {
		u := e.u
		id := u.GetMessage().GetMessageId()
		if _, ok := inHistory[id]; ok {
			t.acknowledge(id)
			continue
		}
		if peer == nil || !peer.Test(id) || slices.Contains(u.GetPossibleAckSenders(), sender) {
			continue
		}
		senders := append(slices.Clone(u.GetPossibleAckSenders()), sender)
		t.emit(&pb.Event{Event: &pb.Event_MessagePossiblyAcknowledged{MessagePossiblyAcknowledged: &pb.MessagePossiblyAcknowledged{
			ChannelId: t.ch, MessageId: id, Count: uint32(len(senders))}}})
		if len(senders) >= m.cfg.PossibleAcksThreshold {
			t.acknowledge(id)
			continue
		}
		nu := shallowClone(u) // shares the wire bytes: a deep copy would copy ~19 KB
		nu.PossibleAckSenders = senders
		t.outPut(nu)
	}
}

func (t *txn) acknowledge(id string) {
	t.outRemove(id)
	t.emit(&pb.Event{Event: &pb.Event_MessageAcknowledged{MessageAcknowledged: &pb.MessageAcknowledged{ChannelId: t.ch, MessageId: id}}})
}

// peerBloom is the bloom filter a received message carries, nil when it has none or one
// we cannot read.
func (t *txn) peerBloom(msg *pb.SdsMessage) bloom.Tester {
	s, m := t.s, t.m
	b := msg.GetBloomFilter()
	if len(b) == 0 {
		return nil
	}
	own := s.bloom.Filter()
	var peer bloom.Tester
	var err error
	if m.prof.ViewBloom != nil { // tested in place: no 18.7 KB decoding per message
		peer, err = m.prof.ViewBloom(b, own.K(), own.M())
	} else {
		peer, err = m.prof.DecodeBloom(b, own.K(), own.M())
	}
	if err != nil {
		m.log.Debug("sds: received bloom filter ignored", "channel", t.ch, "message", msg.GetMessageId(), "err", err)
		return nil
	}
	return peer
}

// handleRepairRequests processes a message's SDS-R repair requests: a peer asking for a
// message we also miss postpones our own request (its answer will reach us too; if it
// is lost we still ask later — nim-sds drops the request and then waits forever), and we
// schedule a rebroadcast of messages we hold whose original sender is known, if we are
// in the responder group.
func (t *txn) handleRepairRequests(msg *pb.SdsMessage) {
	s, m := t.s, t.m
	for _, e := range msg.GetRepairRequest() {
		id := e.GetMessageId()
		if own, ok := s.orep[id]; ok {
			delay := m.prof.TReq(m.participant, id, m.cfg.RepairTMin, m.cfg.RepairTMax)
			if at := t.now.Add(delay).UnixMilli(); at > own.GetRequestAtUnixMs() {
				t.orepPut(&pb.OutgoingRepairEntry{Entry: own.GetEntry(), RequestAtUnixMs: at,
					DetectedAtUnixMs: own.GetDetectedAtUnixMs(), Attempts: own.GetAttempts()})
			}
		}
		t.answerRepair(e)
	}
}

// answerRepair schedules the SDS-R rebroadcast of the logged message e names (its
// sender known), if we are in its responder group and no answer is pending yet.
func (t *txn) answerRepair(e *pb.HistoryEntry) {
	s, m := t.s, t.m
	id := e.GetMessageId()
	if m.participant == "" || e.GetSenderId() == "" {
		return
	}
	if _, pending := s.irep[id]; pending {
		return // keep the running timer: re-requests must not postpone the answer
	}
	logged := s.log.get(id)
	if logged == nil || isStub(logged) {
		return
	}
	if !m.prof.InResponseGroup(m.participant, e.GetSenderId(), id, m.cfg.NumResponseGroups) {
		return
	}
	cached, err := m.prof.Codec.Encode(logged)
	if err != nil {
		m.log.Warn("sds: cannot re-encode a logged message for repair", "channel", t.ch, "message", id, "err", err)
		return
	}
	delay := m.prof.TResp(m.participant, e.GetSenderId(), id, m.cfg.RepairTMax)
	entry := &pb.IncomingRepairEntry{Entry: e, CachedMessage: cached, RespondAtUnixMs: t.now.Add(delay).UnixMilli()}
	if makeRoom(s.irep, m.cfg.MaxRepairBuffer, (*pb.IncomingRepairEntry).GetRespondAtUnixMs, entry.GetRespondAtUnixMs(), t.irepRemove) {
		t.irepPut(entry)
	}
}

// bloomRepairKnownRun is how many consecutive logged messages a peer's filter must hold
// for repairFromBloom to stop looking further back: gaps older than that were offered
// when they were recent, and a scan of the whole log on every sync from every peer
// would cost more than the rest of a receipt.
const bloomRepairKnownRun = 64

// repairFromBloom answers, as if the sender of a sync message had requested them, the
// logged messages its bloom filter lacks (Config.BloomRepairAfter): older than that, so
// that what is still in flight or being repaired the usual way is left alone, and newer
// than a message the filter holds, so that a peer back from an absence catches up while
// one that joined later is not sent the history before it. The log is scanned from the
// cutoff back until bloomRepairKnownRun messages in a row are held.
func (t *txn) repairFromBloom(msg *pb.SdsMessage) {
	s, m := t.s, t.m
	if m.cfg.BloomRepairAfter <= 0 || m.participant == "" || msg.GetSenderId() == "" {
		return
	}
	peer := t.peerBloom(msg)
	if peer == nil {
		return
	}
	before := m.prof.LamportNow(t.now.Add(-m.cfg.BloomRepairAfter))
	entries := s.log.entries
	end, _ := slices.BinarySearchFunc(entries, before, func(e *pb.SdsMessage, l uint64) int {
		return cmp.Compare(e.GetLamportTimestamp(), l)
	})
	// Our filter has the seeds of (nearly) every logged id and the received one the same
	// sizing and hash: testing by seeds skips the two hashes of each id.
	seeded, _ := peer.(bloom.SeedTester)
	var lacking []*pb.SdsMessage // newer than every held message seen so far
	run := 0
	for i := end - 1; i >= 0 && run < bloomRepairKnownRun; i-- {
		e := entries[i]
		if isStub(e) {
			continue
		}
		id := e.GetMessageId()
		var has bool
		if a, b, ok := s.bloom.Seeds(id); ok && seeded != nil {
			has = seeded.TestSeeds(a, b)
		} else {
			has = peer.Test(id)
		}
		if !has {
			lacking = append(lacking, e)
			run = 0
			continue
		}
		run++
		for _, l := range lacking { // a held message older than these: a gap, not a start
			if len(s.irep) < m.cfg.MaxRepairBuffer {
				t.answerRepair(&pb.HistoryEntry{MessageId: l.GetMessageId(), SenderId: proto.String(l.GetSenderId())})
			}
		}
		lacking = lacking[:0]
	}
}

// requestRepairs records SDS-R requests for missing entries that no buffered message
// carries and that are not pending yet.
func (t *txn) requestRepairs(missing []*pb.HistoryEntry) {
	s, m := t.s, t.m
	if m.participant == "" {
		return
	}
	for _, e := range missing {
		id := e.GetMessageId()
		if _, pending := s.orep[id]; pending {
			continue
		}
		if _, buffered := s.in[id]; buffered {
			continue
		}
		delay := m.prof.TReq(m.participant, id, m.cfg.RepairTMin, m.cfg.RepairTMax)
		entry := &pb.OutgoingRepairEntry{Entry: e, RequestAtUnixMs: t.now.Add(delay).UnixMilli(), DetectedAtUnixMs: t.nowMs()}
		if makeRoom(s.orep, m.cfg.MaxRepairBuffer, (*pb.OutgoingRepairEntry).GetRequestAtUnixMs, entry.GetRequestAtUnixMs(), t.orepRemove) {
			t.orepPut(entry)
		}
	}
}

// makeRoom reports whether a repair buffer of at most limit entries takes a new entry due
// at at: when it is full, the entry due last is removed, unless the new one would be it.
func makeRoom[E any](entries map[string]E, limit int, due func(E) int64, at int64, remove func(string)) bool {
	if len(entries) < limit {
		return true
	}
	last := dueLast(entries, due)
	if due(entries[last]) <= at {
		return false
	}
	remove(last)
	return true
}

// dueLast returns the id of the entry with the latest deadline (ties: the greatest id).
func dueLast[E any](entries map[string]E, due func(E) int64) string {
	var best string
	var bestAt int64
	first := true
	for id, e := range entries {
		at := due(e)
		if first || at > bestAt || (at == bestAt && id > best) {
			best, bestAt, first = id, at, false
		}
	}
	return best
}

// evictOldestIncoming drops the longest-waiting buffered message (ties: smallest
// (lamport, id)) to make room, reporting it as lost.
func (t *txn) evictOldestIncoming() {
	var victim *inEntry
	for _, e := range t.s.in {
		if victim == nil || e.im.GetReceivedAtUnixMs() < victim.im.GetReceivedAtUnixMs() ||
			(e.im.GetReceivedAtUnixMs() == victim.im.GetReceivedAtUnixMs() && logCmp(e.im.GetMessage(), victim.im.GetMessage()) < 0) {
			victim = e
		}
	}
	if victim != nil {
		t.lose(victim, false)
	}
}

// deliver logs a message whose dependencies are all in the log, advances the clock and
// then delivers, in causal order, every buffered message this unblocks.
func (t *txn) deliver(msg *pb.SdsMessage) {
	queue := []*pb.SdsMessage{msg}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		id := cur.GetMessageId()
		if len(t.s.waiting[id]) == 0 { // a waiting message references it
			t.unreferencedAdd(id)
		}
		t.logInsert(cur)
		if l := cur.GetLamportTimestamp(); l > t.s.lamport {
			t.setLamport(l)
		}
		t.emit(&pb.Event{Event: &pb.Event_MessageReady{MessageReady: &pb.MessageReady{
			ChannelId: t.ch, MessageId: id, SenderId: cur.GetSenderId(), LamportTimestamp: cur.GetLamportTimestamp(), Content: cur.GetContent()}}})
		queue = append(queue, t.unblock(id)...)
	}
}

// unblock removes id from the missing sets of the messages waiting on it and returns
// (and unbuffers) those left with none, in (lamport, id) order.
func (t *txn) unblock(id string) []*pb.SdsMessage {
	var ready []*pb.SdsMessage
	for _, wid := range t.s.waitingOn(id) {
		e := t.s.in[wid]
		var rest []string
		for _, d := range e.im.GetMissingDependencies() {
			if d != id {
				rest = append(rest, d)
			}
		}
		if len(rest) > 0 {
			t.inPut(&pb.IncomingMessage{Message: e.im.GetMessage(), MissingDependencies: rest, ReceivedAtUnixMs: e.im.GetReceivedAtUnixMs()})
			continue
		}
		t.inRemove(wid)
		ready = append(ready, e.im.GetMessage())
	}
	return ready
}
