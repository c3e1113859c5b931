package sds

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/profile"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// channel is one channel's lock and state. A channel that failed to bootstrap or was
// removed is marked dead; a caller holding a stale pointer retries with a fresh one.
type channel struct {
	id   string
	mu   sync.Mutex
	dead bool
	st   *state // nil until bootstrapped
}

// state is everything the core knows about one channel. Every mutation in a public
// operation goes through a txn so it can be undone if the operation's batch fails.
type state struct {
	lamport   uint64
	log       msgLog
	hints     map[string][]byte   // persisted retrieval hints of log messages
	hintAsked map[string]struct{} // own ids the provider already answered "no hint" for
	out       []*outEntry         // outgoing buffer, insertion order
	outByID   map[string]*outEntry
	in        map[string]*inEntry
	waiting   map[string]map[string]struct{} // missing id -> ids of messages waiting on it
	orep      map[string]*pb.OutgoingRepairEntry
	irep      map[string]*pb.IncomingRepairEntry
	bloom     *bloom.Rolling
	bloomBuf  []byte // the encoded bloom filter, valid at bloom.Version() == bloomVer (see txn.encodeBloom)
	bloomVer  uint64
	bloomOK   bool
	nextSync  time.Time
	ownSyncs  []string // ids of our latest sync messages (memory-only), to recognise echoes
	// unreferenced are log messages that no content message has named in its causal
	// history yet, with when they were delivered here (Unix ms). Memory-only, like the
	// bloom filter: sync messages name them for SyncUnreferencedRounds intervals
	// (txn.withUnreferenced); a restart forgets them.
	unreferenced map[string]int64
}

// addToBloom adds id to the bloom filter and keeps its cached encoding valid by
// patching the words the id touched (a full encoding costs a pass over ~18.7 KB at the
// default size, every message sent); a roll, or a change made behind our back,
// invalidates the cache instead.
func (s *state) addToBloom(id string, p *profile.Profile) {
	before := s.bloom.Version()
	s.bloom.Add(id)
	switch s.bloom.Version() - before {
	case 0: // already there
		return
	case 1:
		if s.bloomOK && s.bloomVer == before && p.PatchBloom != nil {
			f := s.bloom.Filter()
			var buf [16]uint
			for _, loc := range s.bloom.AppendLocations(buf[:0], id) {
				if !p.PatchBloom(s.bloomBuf, f, int(loc/64)) {
					s.bloomOK = false
					return
				}
			}
			s.bloomVer = s.bloom.Version()
			return
		}
	}
	s.bloomOK = false
}

// rememberSync records the id of a sync message we built, keeping the newest 64.
func (s *state) rememberSync(id string) {
	if len(s.ownSyncs) >= 64 {
		s.ownSyncs = append(s.ownSyncs[:0], s.ownSyncs[1:]...)
	}
	s.ownSyncs = append(s.ownSyncs, id)
}

type outEntry struct {
	u *pb.UnacknowledgedMessage
}

type inEntry struct {
	im      *pb.IncomingMessage
	missing map[string]struct{}
}

func newState(b *bloom.Rolling) *state {
	return &state{
		log:          msgLog{byID: make(map[string]*pb.SdsMessage)},
		hints:        make(map[string][]byte),
		hintAsked:    make(map[string]struct{}),
		unreferenced: make(map[string]int64),
		outByID:      make(map[string]*outEntry),
		in:           make(map[string]*inEntry),
		waiting:      make(map[string]map[string]struct{}),
		orep:         make(map[string]*pb.OutgoingRepairEntry),
		irep:         make(map[string]*pb.IncomingRepairEntry),
		bloom:        b,
	}
}

// msgLog is the local log ordered by (lamport, message id), oldest first.
type msgLog struct {
	entries []*pb.SdsMessage
	byID    map[string]*pb.SdsMessage
}

func logCmp(a, b *pb.SdsMessage) int {
	if c := cmp.Compare(a.GetLamportTimestamp(), b.GetLamportTimestamp()); c != 0 {
		return c
	}
	return cmp.Compare(a.GetMessageId(), b.GetMessageId())
}

func (l *msgLog) has(id string) bool { _, ok := l.byID[id]; return ok }

func (l *msgLog) get(id string) *pb.SdsMessage { return l.byID[id] }

func (l *msgLog) len() int { return len(l.entries) }

// insert adds a message that is not in the log yet.
func (l *msgLog) insert(m *pb.SdsMessage) {
	if n := len(l.entries); n == 0 || logCmp(l.entries[n-1], m) < 0 {
		l.entries = append(l.entries, m) // the common case: the newest message
	} else {
		i, _ := slices.BinarySearchFunc(l.entries, m, logCmp)
		l.entries = slices.Insert(l.entries, i, m)
	}
	l.byID[m.GetMessageId()] = m
}

// remove deletes a message and returns it (nil if absent).
func (l *msgLog) remove(id string) *pb.SdsMessage {
	m, ok := l.byID[id]
	if !ok {
		return nil
	}
	i, found := 0, len(l.entries) > 0 && l.entries[0] == m
	if !found {
		i, found = slices.BinarySearchFunc(l.entries, m, logCmp)
	}
	switch {
	case found && i == 0:
		// Eviction of the oldest entry, once per delivery in steady state: O(1) instead
		// of moving the whole log. Later appends reallocate and drop the freed prefix.
		l.entries[0] = nil
		l.entries = l.entries[1:]
	case found:
		l.entries = slices.Delete(l.entries, i, i+1)
	}
	delete(l.byID, id)
	return m
}

// shallowClone returns a copy of m whose fields share m's values (bytes, messages and
// lists alike). Stored state is never mutated in place, only replaced, so an update of
// one field of a stored message can share the rest, such as an outgoing message's
// ~19 KB of wire bytes.
func shallowClone[T proto.Message](m T) T {
	src := m.ProtoReflect()
	dst := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	if u := src.GetUnknown(); len(u) > 0 {
		dst.SetUnknown(u)
	}
	return dst.Interface().(T)
}

// isStub reports whether a log entry only records an id satisfied out of band
// (MarkDependenciesMet): such entries carry no content (every delivered message has
// some), count for dependencies and duplicates, and are never offered in causal
// histories or repairs.
func isStub(m *pb.SdsMessage) bool { return len(m.GetContent()) == 0 }

// stripBloom returns m without its bloom filter (a shallow copy when it had one): stored
// messages never keep the sender's filter, which is only useful on receipt.
func stripBloom(m *pb.SdsMessage) *pb.SdsMessage {
	if m.BloomFilter == nil {
		return m
	}
	return withBloom(m, nil)
}

// withBloom returns a new message with m's fields and the given bloom filter; m is not
// modified and shares its field values with the result.
func withBloom(m *pb.SdsMessage, bloom []byte) *pb.SdsMessage {
	return &pb.SdsMessage{
		SenderId:         m.SenderId,
		MessageId:        m.MessageId,
		ChannelId:        m.ChannelId,
		LamportTimestamp: m.LamportTimestamp,
		CausalHistory:    m.CausalHistory,
		RepairRequest:    m.RepairRequest,
		Content:          m.Content,
		BloomFilter:      bloom,
	}
}

func (s *state) outIndex(id string) int {
	return slices.IndexFunc(s.out, func(e *outEntry) bool { return e.u.GetMessage().GetMessageId() == id })
}

// waitingOn returns the ids of buffered messages waiting for id, in (lamport, id) order.
func (s *state) waitingOn(id string) []string {
	w := s.waiting[id]
	if len(w) == 0 {
		return nil
	}
	ids := make([]string, 0, len(w))
	for wid := range w {
		ids = append(ids, wid)
	}
	slices.SortFunc(ids, func(a, b string) int { return logCmp(s.in[a].im.GetMessage(), s.in[b].im.GetMessage()) })
	return ids
}

func (s *state) indexIncoming(e *inEntry) {
	id := e.im.GetMessage().GetMessageId()
	for dep := range e.missing {
		w := s.waiting[dep]
		if w == nil {
			w = make(map[string]struct{})
			s.waiting[dep] = w
		}
		w[id] = struct{}{}
	}
}

func (s *state) unindexIncoming(e *inEntry) {
	id := e.im.GetMessage().GetMessageId()
	for dep := range e.missing {
		if w := s.waiting[dep]; w != nil {
			delete(w, id)
			if len(w) == 0 {
				delete(s.waiting, dep)
			}
		}
	}
}

func newInEntry(im *pb.IncomingMessage) *inEntry {
	e := &inEntry{im: im, missing: make(map[string]struct{}, len(im.GetMissingDependencies()))}
	for _, d := range im.GetMissingDependencies() {
		e.missing[d] = struct{}{}
	}
	return e
}

// snapshot renders the state in the persisted form (the bloom excepted).
func (s *state) snapshot(channelID string) *pb.ChannelSnapshot {
	snap := &pb.ChannelSnapshot{ChannelId: channelID, LamportTimestamp: s.lamport}
	snap.Log = append(snap.Log, s.log.entries...)
	for _, e := range s.out {
		snap.Outgoing = append(snap.Outgoing, e.u)
	}
	for _, id := range sortedKeys(s.in) {
		snap.Incoming = append(snap.Incoming, s.in[id].im)
	}
	for _, id := range sortedKeys(s.orep) {
		snap.OutgoingRepair = append(snap.OutgoingRepair, s.orep[id])
	}
	for _, id := range sortedKeys(s.irep) {
		snap.IncomingRepair = append(snap.IncomingRepair, s.irep[id])
	}
	for _, id := range sortedKeys(s.hints) {
		snap.RetrievalHints = append(snap.RetrievalHints, &pb.RetrievalHint{MessageId: id, RetrievalHint: s.hints[id]})
	}
	return snap
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
