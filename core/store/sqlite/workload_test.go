package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sdskit/sdskit/core/bloom"
	"github.com/sdskit/sdskit/core/clock"
	"github.com/sdskit/sdskit/core/profile"
	"github.com/sdskit/sdskit/core/sds"
	"github.com/sdskit/sdskit/core/sdserr"
	"github.com/sdskit/sdskit/core/store"
	"github.com/sdskit/sdskit/core/wire"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// The workload: a deterministic script of manager calls made by "alice" on two
// channels — wraps, receives of messages from two simulated peers (bob and dave, whose
// bytes are generated up front) delivered late, out of order, twice or never, sweeps on
// a manual clock (resends, give-ups, SDS-R answers and expiries, lost-message timeouts)
// and MarkDependenciesMet for messages of a third peer (carol) that never arrive. The
// restart test, the crash test's child process and its reference run all execute it.

const (
	wlParticipant = "alice"
	wlStepEvery   = 250 * time.Millisecond
	wlSeed        = 20240601
)

var (
	wlStart    = time.UnixMilli(1_700_000_000_000)
	wlChannels = []string{"room", "side"}
)

// workloadConfig makes every timer fire within the script: resends after 12 steps, two
// resends then give-up, SDS-R within 24 steps, lost-message timeout after 80 steps, and
// a log short enough to evict.
func workloadConfig() sds.Config {
	c := sds.DefaultConfig()
	c.BloomCapacity = 500
	c.MaxMessageHistory = 120
	c.ResendInterval = 3 * time.Second
	c.MaxResendInterval = 10 * time.Second
	c.MaxResendAttempts = 2
	c.RepairTMin = time.Second
	c.RepairTMax = 6 * time.Second
	c.IncomingTimeout = 20 * time.Second
	c.SyncJitter = 0
	return c
}

type stepKind uint8

const (
	stepWrap stepKind = iota + 1
	stepRecv
	stepSweep
	stepMarkDeps
)

func (k stepKind) String() string {
	return [...]string{"", "wrap", "recv", "sweep", "markdeps"}[k]
}

// wlStep is one manager call of the script.
type wlStep struct {
	kind    stepKind
	ch      string
	at      time.Time
	id      string   // wrap: our message id; recv: the received message's id
	content []byte   // wrap
	data    []byte   // recv: the wire bytes
	hint    []byte   // recv: the transport's retrieval hint, if any
	ids     []string // markdeps
}

// workload is the script and what the checks need to know about it.
type workload struct {
	steps     []wlStep       // steps[i] is step i+1
	firstSeen map[string]int // message id -> first step after which it may be in the log or incoming buffer
}

// genWorkload generates the n-step script of seed.
func genWorkload(seed uint64, n int) *workload {
	r := rand.New(rand.NewPCG(seed, 0x5d5))
	cfg := workloadConfig()
	k, m, err := bloom.Size(cfg.BloomCapacity, cfg.BloomErrorRate)
	if err != nil {
		panic(err)
	}
	randBytes := func(lo, hi int) []byte {
		b := make([]byte, lo+r.IntN(hi-lo+1))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return b
	}
	type aliceMsg struct {
		step int
		id   string
	}
	type delivery struct {
		at   int
		id   string
		data []byte
	}
	type view struct { // what the remote peers have seen of a channel
		history   []*pb.HistoryEntry // oldest first
		pending   []aliceMsg         // alice's messages not yet seen by the peers
		seenAlice []aliceMsg
		remotes   int
		carols    int
		unmarked  []string // carol's ids referenced but neither received nor marked met
	}
	views := map[string]*view{}
	for _, ch := range wlChannels {
		views[ch] = &view{}
	}
	var queue []delivery
	w := &workload{firstSeen: map[string]int{}}
	seen := func(id string, step int) {
		if _, ok := w.firstSeen[id]; !ok {
			w.firstSeen[id] = step
		}
	}
	pickCh := func() string {
		if r.IntN(10) < 7 {
			return wlChannels[0]
		}
		return wlChannels[1]
	}
	for i := 1; i <= n; i++ {
		at := wlStart.Add(time.Duration(i) * wlStepEvery)

		// Remote activity (no call): a peer sends a message that reaches alice later.
		if r.Float64() < 0.45 {
			ch := pickCh()
			v := views[ch]
			for len(v.pending) > 0 && v.pending[0].step <= i-2 {
				a := v.pending[0]
				v.pending = v.pending[1:]
				v.seenAlice = append(v.seenAlice, a)
				v.history = append(v.history, &pb.HistoryEntry{MessageId: a.id, SenderId: proto.String(wlParticipant)})
			}
			if r.IntN(10) == 0 { // carol speaks; alice will never receive it
				v.carols++
				id := fmt.Sprintf("c-%s-%d", ch, v.carols)
				v.history = append(v.history, &pb.HistoryEntry{MessageId: id, SenderId: proto.String("carol"), RetrievalHint: []byte("store:" + id)})
				v.unmarked = append(v.unmarked, id)
			}
			v.remotes++
			sender := []string{"bob", "dave"}[r.IntN(2)]
			id := fmt.Sprintf("r-%s-%d", ch, v.remotes)
			msg := &pb.SdsMessage{
				SenderId: sender, MessageId: id, ChannelId: ch,
				LamportTimestamp: proto.Uint64(uint64(at.UnixMilli()) + r.Uint64N(400)),
				Content:          randBytes(8, 80),
			}
			for _, e := range v.history[max(0, len(v.history)-2):] {
				msg.CausalHistory = append(msg.CausalHistory, proto.CloneOf(e))
			}
			if r.IntN(10) == 0 && len(v.seenAlice) > 0 {
				cand := v.seenAlice[max(0, len(v.seenAlice)-15):]
				a := cand[r.IntN(len(cand))]
				msg.RepairRequest = []*pb.HistoryEntry{{MessageId: a.id, SenderId: proto.String(wlParticipant)}}
			}
			if r.IntN(4) == 0 {
				f, err := bloom.New(k, m, profile.Spec.Hash)
				if err != nil {
					panic(err)
				}
				for _, a := range v.seenAlice {
					f.Add(a.id)
				}
				msg.BloomFilter = profile.Spec.EncodeBloom(f)
			}
			data, err := wire.Spec.Encode(msg)
			if err != nil {
				panic(err)
			}
			v.history = append(v.history, &pb.HistoryEntry{MessageId: id, SenderId: proto.String(sender)})
			if r.IntN(20) != 0 { // 5 % are lost
				queue = append(queue, delivery{at: i + r.IntN(8), id: id, data: data})
				if r.IntN(20) == 0 { // 5 % arrive twice
					queue = append(queue, delivery{at: i + 8 + r.IntN(10), id: id, data: data})
				}
			}
			slices.SortStableFunc(queue, func(a, b delivery) int { return a.at - b.at })
		}

		// The call of this step.
		st := wlStep{at: at}
		if len(queue) > 0 && queue[0].at <= i && r.IntN(10) < 7 {
			d := queue[0]
			queue = queue[1:]
			st.kind, st.id, st.data = stepRecv, d.id, d.data
			st.ch = strings.SplitN(d.id, "-", 3)[1]
			if r.IntN(10) < 3 {
				st.hint = []byte("tx:" + d.id)
			}
			seen(d.id, i)
		} else {
			x := r.Float64()
			var marks *view
			for _, ch := range wlChannels {
				if len(views[ch].unmarked) > 0 && marks == nil {
					marks, st.ch = views[ch], ch
				}
			}
			switch {
			case x < 0.55:
				st.kind, st.ch = stepWrap, pickCh()
				st.id, st.content = fmt.Sprintf("a-%d", i), randBytes(16, 128)
				views[st.ch].pending = append(views[st.ch].pending, aliceMsg{step: i, id: st.id})
				seen(st.id, i)
			case x < 0.92 || marks == nil:
				st.kind, st.ch = stepSweep, ""
			default:
				st.kind = stepMarkDeps
				take := min(len(marks.unmarked), 1+r.IntN(2))
				st.ids = slices.Clone(marks.unmarked[:take])
				marks.unmarked = marks.unmarked[take:]
				for _, id := range st.ids {
					seen(id, i)
				}
			}
		}
		w.steps = append(w.steps, st)
	}
	return w
}

// eventLog collects the events of the step in progress.
type eventLog struct {
	mu  sync.Mutex
	evs []string
}

// HandleEvent records the deterministic part of an event as "kind channel id [detail]"
// (SyncDue, whose timing is memory-only, is left out).
func (l *eventLog) HandleEvent(ev *pb.Event) {
	var s string
	switch e := ev.GetEvent().(type) {
	case *pb.Event_MessageReady:
		x := e.MessageReady
		s = fmt.Sprintf("ready %s %s %d", x.GetChannelId(), x.GetMessageId(), x.GetLamportTimestamp())
	case *pb.Event_MessageAcknowledged:
		s = fmt.Sprintf("acked %s %s", e.MessageAcknowledged.GetChannelId(), e.MessageAcknowledged.GetMessageId())
	case *pb.Event_MessagePossiblyAcknowledged:
		x := e.MessagePossiblyAcknowledged
		s = fmt.Sprintf("possibly %s %s %d", x.GetChannelId(), x.GetMessageId(), x.GetCount())
	case *pb.Event_MessageUnacknowledged:
		s = fmt.Sprintf("gaveup %s %s", e.MessageUnacknowledged.GetChannelId(), e.MessageUnacknowledged.GetMessageId())
	case *pb.Event_ResendRequested:
		x := e.ResendRequested
		s = fmt.Sprintf("resend %s %s %d", x.GetChannelId(), x.GetMessageId(), x.GetAttempt())
	case *pb.Event_MissingDependencies:
		x := e.MissingDependencies
		var ids []string
		for _, m := range x.GetMissing() {
			ids = append(ids, m.GetMessageId())
		}
		s = fmt.Sprintf("missing %s %s %s", x.GetChannelId(), x.GetMessageId(), strings.Join(ids, ","))
	case *pb.Event_MessageLost:
		x := e.MessageLost
		s = fmt.Sprintf("lost %s %s %v", x.GetChannelId(), x.GetMessageId(), x.GetDelivered())
	case *pb.Event_RepairReady:
		s = fmt.Sprintf("repair %s %s", e.RepairReady.GetChannelId(), e.RepairReady.GetMessageId())
	case *pb.Event_PersistenceFailed:
		x := e.PersistenceFailed
		s = fmt.Sprintf("persistfail %s %s", x.GetChannelId(), x.GetDetail())
	default:
		return
	}
	l.mu.Lock()
	l.evs = append(l.evs, s)
	l.mu.Unlock()
}

func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.evs
	l.evs = nil
	return evs
}

// stepRecord is what a successful call reports; the crash test's journal holds one per
// acknowledged call.
type stepRecord struct {
	Step     int      `json:"step"`
	Kind     string   `json:"kind"`
	Ch       string   `json:"ch,omitempty"`
	ID       string   `json:"id,omitempty"`
	Lamport  uint64   `json:"lamport,omitempty"` // wrap: the lamport of the wrapped message
	Result   string   `json:"result,omitempty"`  // recv: the outcome
	Resumed  bool     `json:"resumed,omitempty"` // first call after a restart
	Replayed bool     `json:"replayed,omitempty"`
	Events   []string `json:"events,omitempty"`
}

// newWorkloadManager returns alice's manager on backend b with the workload's channels
// loaded: sweeps only cover loaded channels, so an application reloads its channels
// after a restart to resume their timers.
func newWorkloadManager(b store.Backend, clk *clock.Manual, ev *eventLog) (*sds.Manager, error) {
	m, err := sds.New(wlParticipant, workloadConfig(), sds.WithBackend(b), sds.WithClock(clk),
		sds.WithHandler(ev), sds.WithSeed(1), sds.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, err
	}
	for _, ch := range wlChannels {
		if err := m.EnsureChannel(context.Background(), ch); err != nil {
			_ = m.Close()
			return nil, err
		}
	}
	return m, nil
}

// runStep makes the call of step n (1-based). resumed says it is the first call after a
// restart, whose effects may already be on disk: a wrap refused as "already used" is
// then the replay of a call the previous process committed without recording it.
func runStep(ctx context.Context, m *sds.Manager, clk *clock.Manual, ev *eventLog, w *workload, n int, resumed bool) (stepRecord, error) {
	st := w.steps[n-1]
	clk.Set(st.at)
	ev.take()
	rec := stepRecord{Step: n, Kind: st.kind.String(), Ch: st.ch, ID: st.id, Resumed: resumed}
	var err error
	switch st.kind {
	case stepWrap:
		var out []byte
		out, err = m.WrapOutgoingMessage(ctx, st.ch, st.id, st.content)
		if err == nil {
			msg, derr := wire.Spec.Decode(out, wire.Limits{})
			if derr != nil {
				return rec, derr
			}
			rec.Lamport = msg.GetLamportTimestamp()
		} else if resumed && sdserr.CodeOf(err) == sdserr.InvalidArgument && strings.Contains(err.Error(), "already used") {
			rec.Replayed, err = true, nil
		}
	case stepRecv:
		var res *sds.Unwrapped
		res, err = m.UnwrapReceivedMessageWithHint(ctx, st.data, st.hint)
		if err == nil {
			switch {
			case res.Kind == sds.KindDuplicate:
				rec.Result = "duplicate"
			case res.Delivered:
				rec.Result = "delivered"
			default:
				rec.Result = "buffered"
			}
		}
	case stepSweep:
		err = m.RunSweeps(ctx)
	case stepMarkDeps:
		rec.ID = strings.Join(st.ids, ",")
		err = m.MarkDependenciesMet(ctx, st.ch, st.ids)
	}
	rec.Events = ev.take()
	if err != nil {
		return rec, fmt.Errorf("step %d (%s %s %s): %w", n, st.kind, st.ch, st.id, err)
	}
	return rec, nil
}

// normalize prepares a persisted snapshot for comparison with the reference run: the
// bloom filter inside the wire bytes of outgoing entries is dropped (after a restart
// the filter is rebuilt from the log, so it legitimately differs from the one of an
// uninterrupted run), and retrieval hints of messages no longer held are dropped (the
// core ignores them; store.Memory keeps them, this store deletes them).
func normalize(s *pb.ChannelSnapshot) *pb.ChannelSnapshot {
	s = proto.CloneOf(s)
	for _, u := range s.GetOutgoing() {
		if msg, err := wire.Spec.Decode(u.GetWireBytes(), wire.Limits{}); err == nil {
			msg.BloomFilter = nil
			u.WireBytes, _ = wire.Spec.Encode(msg)
		}
	}
	held := map[string]bool{}
	for _, m := range s.GetLog() {
		held[m.GetMessageId()] = true
	}
	for _, im := range s.GetIncoming() {
		held[im.GetMessage().GetMessageId()] = true
	}
	s.RetrievalHints = slices.DeleteFunc(s.RetrievalHints, func(h *pb.RetrievalHint) bool { return !held[h.GetMessageId()] })
	return s
}

// refRunner runs the workload without interruption on store.Memory: the states the
// crashed runs must match.
type refRunner struct {
	w    *workload
	mem  *store.Memory
	m    *sds.Manager
	clk  *clock.Manual
	ev   *eventLog
	done int
	recs []stepRecord
	// snapshots of the last two steps reached: step -> channel -> normalized snapshot
	snaps map[int]map[string]*pb.ChannelSnapshot
}

func newRefRunner(w *workload) *refRunner {
	r := &refRunner{w: w, mem: store.NewMemory(), clk: clock.NewManual(wlStart), ev: &eventLog{}, snaps: map[int]map[string]*pb.ChannelSnapshot{}}
	m, err := newWorkloadManager(r.mem, r.clk, r.ev)
	if err != nil {
		panic(err)
	}
	r.m = m
	r.capture()
	return r
}

func (r *refRunner) capture() {
	s := map[string]*pb.ChannelSnapshot{}
	for _, ch := range wlChannels {
		s[ch] = normalize(r.mem.Snapshot(ch))
	}
	r.snaps[r.done] = s
	delete(r.snaps, r.done-2)
}

// at returns the normalized state after step n; n may not go back more than one step
// behind the furthest step reached.
func (r *refRunner) at(n int) map[string]*pb.ChannelSnapshot {
	for r.done < n {
		rec, err := runStep(context.Background(), r.m, r.clk, r.ev, r.w, r.done+1, false)
		if err != nil {
			panic(fmt.Sprintf("reference run: %v", err))
		}
		r.recs = append(r.recs, rec)
		r.done++
		r.capture()
	}
	s, ok := r.snaps[n]
	if !ok {
		panic(fmt.Sprintf("reference state of step %d is gone (at step %d)", n, r.done))
	}
	return s
}
