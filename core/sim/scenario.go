package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/sdskit/sdskit/core/sds"
	"github.com/sdskit/sdskit/core/store"
)

// Channel is the one channel every participant of a Scenario talks on.
const Channel = "sim-room"

// Churn makes participants leave and come back while messages are being posted.
type Churn struct {
	// Rate is the number of offline periods per participant per hour (0: no churn).
	Rate float64 `json:"rate_per_hour"`
	// MeanOffline is the mean length of an offline period (exponentially distributed).
	MeanOffline time.Duration `json:"mean_offline"`
	// Restart is the probability that a participant comes back as a restarted process
	// that reloads its state from its backend, rather than resuming where it was.
	Restart float64 `json:"restart_probability"`
}

// Scenario is one experiment: Peers participants on one channel post Messages content
// messages at random (exponential gaps of mean PostEvery, from a random online
// participant), under loss, duplication, a latency distribution, partitions and churn;
// then the run continues for at most Settle until every participant holds the same log.
type Scenario struct {
	Seed        uint64        `json:"seed"`
	Peers       int           `json:"peers"`
	Config      sds.Config    `json:"config"`
	Loss        float64       `json:"loss"`
	Dup         float64       `json:"dup"`
	Latency     Latency       `json:"latency"`
	Messages    int           `json:"messages"`
	PostEvery   time.Duration `json:"post_every"`
	ContentSize int           `json:"content_size"`
	Settle      time.Duration `json:"settle"`
	// CheckEvery is the period of the convergence check once posting is over (0: 5 s).
	CheckEvery time.Duration `json:"check_every"`
	Partitions []Partition   `json:"partitions"`
	Churn      Churn         `json:"churn"`
	// Persistence is "memory" (each participant keeps its state in a store.Memory that
	// survives restarts) or "none" (a restarted participant starts from scratch).
	Persistence string `json:"persistence"`
	// Bucket is the width of the traffic time series (0: one minute).
	Bucket time.Duration `json:"bucket"`
	// Progress, when set, is called every ProgressEvery of simulated time and at the end.
	Progress      func(Progress) `json:"-"`
	ProgressEvery time.Duration  `json:"-"`
}

// Progress is the state of a running Scenario.
type Progress struct {
	Elapsed, Horizon time.Duration // simulated time so far, and posting + settle
	Posted, Messages int
	// Deliveries counts MessageReady events so far; Expected is Posted × (Peers−1).
	Deliveries, Expected int
	Peers, Online        int
	Done                 bool
}

// LatencySummary summarises delivery latencies, in milliseconds.
type LatencySummary struct {
	Count  int     `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// PeerResult is one participant's outcome.
type PeerResult struct {
	Name    string `json:"name"`
	Stats   Stats  `json:"stats"`
	LogSize int    `json:"log_size"`
}

// Result is the deterministic outcome of a Scenario: the same scenario and seed give a
// Result that encodes to the same JSON. It holds no wall-clock measurement.
type Result struct {
	Scenario  Scenario `json:"scenario"`
	Posted    int      `json:"posted"`
	Converged bool     `json:"converged"`
	// ConvergedAfterMs is the simulated time from the last post to the first check that
	// found every log identical and complete (-1: never).
	ConvergedAfterMs   int64              `json:"converged_after_ms"`
	SimulatedMs        int64              `json:"simulated_ms"`
	Deliveries         int                `json:"deliveries"`
	ExpectedDeliveries int                `json:"expected_deliveries"`
	Latency            LatencySummary     `json:"latency"`
	Wire               map[string]Traffic `json:"wire"`
	WireBytes          int                `json:"wire_bytes"`
	WirePackets        int                `json:"wire_packets"`
	// BytesPerDelivered is every byte put on the wire divided by the deliveries.
	BytesPerDelivered float64      `json:"bytes_per_delivered"`
	Dropped           int          `json:"dropped_partition_offline"`
	Totals            Stats        `json:"totals"`
	PeerResults       []PeerResult `json:"participants"`
	Series            []Bucket     `json:"series"`
	latencies         []time.Duration
}

// Latencies returns every delivery latency of the run, in delivery order.
func (r *Result) Latencies() []time.Duration { return r.latencies }

// Validate reports a scenario that cannot run.
func (s Scenario) Validate() error {
	var errs []error
	if s.Peers < 2 {
		errs = append(errs, fmt.Errorf("peers must be ≥ 2 (got %d)", s.Peers))
	}
	if s.Messages < 0 || s.ContentSize < 0 {
		errs = append(errs, fmt.Errorf("messages and content size must be ≥ 0"))
	}
	if !(s.Loss >= 0 && s.Loss < 1) || !(s.Dup >= 0 && s.Dup <= 1) {
		errs = append(errs, fmt.Errorf("loss must be in [0, 1) and dup in [0, 1] (got %v, %v)", s.Loss, s.Dup))
	}
	if s.PostEvery <= 0 || s.Settle < 0 || s.CheckEvery < 0 {
		errs = append(errs, fmt.Errorf("post interval must be > 0 and settle/check ≥ 0"))
	}
	if err := s.Latency.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range s.Partitions {
		if p.Groups < 2 || p.Groups > s.Peers || p.From < 0 || p.Until <= p.From {
			errs = append(errs, fmt.Errorf("partition %+v: want 2 ≤ groups ≤ peers and 0 ≤ from < until", p))
		}
	}
	if s.Churn.Rate < 0 || s.Churn.MeanOffline < 0 || !(s.Churn.Restart >= 0 && s.Churn.Restart <= 1) {
		errs = append(errs, fmt.Errorf("churn %+v: rate and mean offline ≥ 0, restart in [0, 1]", s.Churn))
	}
	if s.Churn.Rate > 0 && s.Churn.MeanOffline <= 0 {
		errs = append(errs, fmt.Errorf("churn needs a mean offline time > 0"))
	}
	switch s.Persistence {
	case "", "memory", "none":
	default:
		errs = append(errs, fmt.Errorf("persistence %q: want memory or none", s.Persistence))
	}
	if err := s.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

type evKind int

const (
	evPost evKind = iota
	evOffline
	evOnline
	evCheck
	evProgress
)

type event struct {
	at      time.Duration
	kind    evKind
	peer    int
	restart bool
}

// Run plays the scenario. It returns an error only when the simulation itself fails
// (a bad scenario, a core error); a run that does not converge is a Result with
// Converged false.
func (s Scenario) Run(ctx context.Context) (*Result, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if s.CheckEvery == 0 {
		s.CheckEvery = 5 * time.Second
	}
	if s.Persistence == "" {
		s.Persistence = "memory"
	}
	net := New(Options{Seed: s.Seed, Loss: s.Loss, Dup: s.Dup, Latency: s.Latency,
		SweepInterval: s.Config.SweepInterval, Bucket: s.Bucket})
	net.Channels = []string{Channel}
	net.Partitions = s.Partitions
	for i := range s.Peers {
		var b store.Backend = store.Noop{}
		if s.Persistence == "memory" {
			b = store.NewMemory()
		}
		if _, err := net.AddPeer(fmt.Sprintf("p%04d", i), s.Config, b); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, p := range net.Peers {
			_ = p.Manager.Close()
		}
	}()

	// The scenario's own random stream (post times, senders, churn) is separate from
	// the medium's, so changing the loss does not move the posts.
	rng := rand.New(rand.NewPCG(s.Seed^0x5eed, s.Seed+0xc0ffee))
	var evs []event
	var postEnd time.Duration
	for range s.Messages {
		postEnd += time.Duration(rng.ExpFloat64() * float64(s.PostEvery))
		evs = append(evs, event{at: postEnd, kind: evPost})
	}
	if s.Churn.Rate > 0 {
		meanGap := float64(time.Hour) / s.Churn.Rate
		for i := range s.Peers {
			t := time.Duration(rng.ExpFloat64() * meanGap)
			for t < postEnd {
				off := time.Duration(rng.ExpFloat64()*float64(s.Churn.MeanOffline)) + time.Millisecond
				evs = append(evs, event{at: t, kind: evOffline, peer: i},
					event{at: t + off, kind: evOnline, peer: i, restart: rng.Float64() < s.Churn.Restart})
				t += off + time.Duration(rng.ExpFloat64()*meanGap)
			}
		}
	}
	horizon := postEnd + s.Settle
	for t := postEnd; t <= horizon; t += s.CheckEvery {
		evs = append(evs, event{at: t, kind: evCheck})
	}
	if s.Progress != nil && s.ProgressEvery > 0 {
		for t := s.ProgressEvery; t < horizon; t += s.ProgressEvery {
			evs = append(evs, event{at: t, kind: evProgress})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].at != evs[j].at {
			return evs[i].at < evs[j].at
		}
		return evs[i].kind < evs[j].kind
	})

	res := &Result{Scenario: s, ConvergedAfterMs: -1}
	start := net.Clock.Now()
	content := make([]byte, s.ContentSize)
	online := s.Peers
	progress := func(done bool) {
		if s.Progress == nil {
			return
		}
		s.Progress(Progress{Elapsed: net.Elapsed(), Horizon: horizon, Posted: res.Posted, Messages: s.Messages,
			Deliveries: len(net.latencies), Expected: res.Posted * (s.Peers - 1), Peers: s.Peers, Online: online, Done: done})
	}
	candidates := make([]*Peer, 0, s.Peers)
loop:
	for _, ev := range evs {
		if err := net.RunUntil(ctx, start.Add(ev.at)); err != nil {
			return nil, err
		}
		switch ev.kind {
		case evPost:
			candidates = candidates[:0]
			for _, p := range net.Peers {
				if p.Online {
					candidates = append(candidates, p)
				}
			}
			if len(candidates) == 0 {
				continue // nobody online to post: the message is never written
			}
			from := candidates[rng.IntN(len(candidates))]
			for i := range content {
				content[i] = byte(rng.Uint32())
			}
			if err := net.Send(ctx, from, Channel, fmt.Sprintf("m%06d", res.Posted), content); err != nil {
				return nil, err
			}
			res.Posted++
		case evOffline, evOnline:
			p := net.Peers[ev.peer]
			if err := net.SetOnline(p, ev.kind == evOnline, ev.restart); err != nil {
				return nil, err
			}
			if ev.kind == evOnline {
				online++
			} else {
				online--
			}
		case evCheck:
			ok, err := s.converged(net, online, res.Posted)
			if err != nil {
				return nil, err
			}
			if ok {
				res.Converged = true
				res.ConvergedAfterMs = (ev.at - postEnd).Milliseconds()
				break loop
			}
		case evProgress:
			progress(false)
		}
	}
	progress(true)
	return s.summarise(net, res)
}

// converged is true when every participant is online and reachable and holds the same
// complete log with nothing buffered. The delivery counters rule most checks out before
// any snapshot is taken, which matters with a thousand participants.
func (s Scenario) converged(net *Network, online, posted int) (bool, error) {
	if online < s.Peers || net.group(0) >= 0 {
		return false, nil
	}
	want := min(posted, s.Config.MaxMessageHistory)
	for _, p := range net.Peers {
		if p.Stats.Delivered+p.Stats.Sent < want {
			return false, nil
		}
	}
	ok, err := net.Converged(Channel)
	if err != nil || !ok {
		return false, err
	}
	snap, err := net.Peers[0].Manager.Snapshot(Channel)
	if err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	return len(snap.GetLog()) == want, nil
}

func (s Scenario) summarise(net *Network, res *Result) (*Result, error) {
	res.SimulatedMs = net.Elapsed().Milliseconds()
	res.latencies = slices.Clone(net.latencies)
	res.Deliveries = len(res.latencies)
	res.ExpectedDeliveries = res.Posted * (s.Peers - 1)
	res.Latency = summariseLatencies(res.latencies)
	res.Wire = map[string]Traffic{}
	for k := range numKinds {
		res.Wire[k.String()] = net.Wire[k]
		res.WireBytes += net.Wire[k].Bytes
		res.WirePackets += net.Wire[k].Packets
	}
	if res.Deliveries > 0 {
		res.BytesPerDelivered = float64(res.WireBytes) / float64(res.Deliveries)
	}
	res.Dropped = net.Dropped
	res.Series = slices.Clone(net.series)
	for _, p := range net.Peers {
		snap, err := p.Manager.Snapshot(Channel)
		if err != nil {
			return nil, fmt.Errorf("%s: snapshot: %w", p.Name, err)
		}
		res.PeerResults = append(res.PeerResults, PeerResult{Name: p.Name, Stats: p.Stats, LogSize: len(snap.GetLog())})
		t, st := &res.Totals, p.Stats
		t.Sent += st.Sent
		t.Delivered += st.Delivered
		t.Acked += st.Acked
		t.PossiblyAcked += st.PossiblyAcked
		t.Resent += st.Resent
		t.GaveUp += st.GaveUp
		t.RepairsSent += st.RepairsSent
		t.SyncsSent += st.SyncsSent
		t.Missing += st.Missing
		t.Lost += st.Lost
		t.Restarts += st.Restarts
		t.Offline += st.Offline
		t.PersistenceFailed += st.PersistenceFailed
	}
	return res, nil
}

func summariseLatencies(ls []time.Duration) LatencySummary {
	if len(ls) == 0 {
		return LatencySummary{}
	}
	sorted := slices.Clone(ls)
	slices.Sort(sorted)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	q := func(f float64) float64 { return ms(sorted[min(len(sorted)-1, int(f*float64(len(sorted))))]) }
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	return LatencySummary{Count: len(sorted), MeanMs: ms(sum / time.Duration(len(sorted))),
		P50Ms: q(0.50), P90Ms: q(0.90), P99Ms: q(0.99), MaxMs: ms(sorted[len(sorted)-1])}
}
