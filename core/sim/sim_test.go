package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/sds"
)

func testConfig() sds.Config {
	cfg := sds.DefaultConfig()
	cfg.ResendInterval = 10 * time.Second
	cfg.MaxResendInterval = 80 * time.Second
	cfg.RepairTMin, cfg.RepairTMax = 2*time.Second, 20*time.Second
	cfg.SyncInterval = 15 * time.Second
	cfg.BloomCapacity = 2000
	return cfg
}

// small is a scenario small enough for the race detector: a few participants, a few
// dozen messages, lossy and jittery.
func small(seed uint64) Scenario {
	return Scenario{
		Seed: seed, Peers: 6, Config: testConfig(), Loss: 0.2, Dup: 0.05,
		Latency:  Latency{Dist: "lognormal", Min: 10 * time.Millisecond, Mean: 120 * time.Millisecond, StdDev: 200 * time.Millisecond},
		Messages: 60, PostEvery: 2 * time.Second, ContentSize: 64, Settle: 30 * time.Minute,
	}
}

func mustRun(t testing.TB, s Scenario) *Result {
	t.Helper()
	r, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkComplete asserts that the run converged and that every participant holds every
// message and got each one it did not write exactly once.
func checkComplete(t *testing.T, r *Result) {
	t.Helper()
	if !r.Converged {
		t.Fatalf("did not converge: %d/%d deliveries", r.Deliveries, r.ExpectedDeliveries)
	}
	if r.Posted != r.Scenario.Messages {
		t.Fatalf("posted %d, want %d", r.Posted, r.Scenario.Messages)
	}
	for _, p := range r.PeerResults {
		if p.LogSize != r.Posted {
			t.Fatalf("%s holds %d messages, want %d", p.Name, p.LogSize, r.Posted)
		}
		if p.Stats.Restarts == 0 && p.Stats.Delivered != r.Posted-p.Stats.Sent {
			t.Fatalf("%s delivered %d, want %d", p.Name, p.Stats.Delivered, r.Posted-p.Stats.Sent)
		}
	}
}

func TestLossyRunConverges(t *testing.T) {
	r := mustRun(t, small(7))
	checkComplete(t, r)
	if r.Deliveries != r.ExpectedDeliveries {
		t.Fatalf("deliveries %d, want %d", r.Deliveries, r.ExpectedDeliveries)
	}
	if r.Wire["repair"].Packets+r.Wire["resend"].Packets == 0 {
		t.Fatal("20% loss repaired without a single resend or repair")
	}
	if r.Latency.Count != r.Deliveries || !(r.Latency.P50Ms <= r.Latency.P99Ms && r.Latency.P99Ms <= r.Latency.MaxMs) {
		t.Fatalf("latency summary inconsistent: %+v", r.Latency)
	}
}

func TestPartitionHeals(t *testing.T) {
	s := small(3)
	s.Loss = 0.05
	s.Partitions = []Partition{{From: 20 * time.Second, Until: 80 * time.Second, Groups: 2}}
	r := mustRun(t, s)
	checkComplete(t, r)
	if r.Dropped == 0 {
		t.Fatal("the partition dropped nothing")
	}
	// Messages posted in one half during the split reach the other half only after the
	// heal, so some latency exceeds the time left in the partition window.
	if r.Latency.MaxMs < 1000 {
		t.Fatalf("max latency %.0f ms: the partition did not delay anything", r.Latency.MaxMs)
	}
}

func TestChurnWithRestartsConverges(t *testing.T) {
	s := small(5)
	s.Config.RepairTMax = 2 * time.Minute // an absence longer than T_max forgets due repair requests (docs/simulator.md)
	s.Churn = Churn{Rate: 60, MeanOffline: 10 * time.Second, Restart: 1}
	r := mustRun(t, s)
	checkComplete(t, r)
	if r.Totals.Offline == 0 || r.Totals.Restarts == 0 {
		t.Fatalf("no churn happened: %+v", r.Totals)
	}
}

func TestChurnWithoutPersistenceStillConverges(t *testing.T) {
	// Resuming (not restarting) participants keep their memory; the ones that missed
	// messages while away recover them by sync and SDS-R.
	s := small(9)
	s.Persistence = "none"
	s.Config.RepairTMax = 2 * time.Minute
	s.Churn = Churn{Rate: 60, MeanOffline: 10 * time.Second}
	r := mustRun(t, s)
	checkComplete(t, r)
	if r.Totals.Offline == 0 || r.Totals.Restarts != 0 {
		t.Fatalf("churn counters: %+v", r.Totals)
	}
}

func TestSameSeedSameSummary(t *testing.T) {
	s := small(11)
	s.Peers, s.Messages = 4, 30
	s.Partitions = []Partition{{From: 10 * time.Second, Until: 30 * time.Second, Groups: 2}}
	s.Churn = Churn{Rate: 30, MeanOffline: 5 * time.Second, Restart: 0.5}
	encode := func(s Scenario) []byte {
		b, err := json.Marshal(mustRun(t, s))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := encode(s), encode(s)
	if !bytes.Equal(a, b) {
		t.Fatalf("same seed, different summaries:\n%s\n%s", a, b)
	}
	s.Seed++
	if c := encode(s); bytes.Equal(a, c) {
		t.Fatal("a different seed gave the same summary")
	}
}

func TestLatencyDistributions(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, l := range []Latency{
		{Dist: "uniform", Min: 10 * time.Millisecond, Max: 110 * time.Millisecond},
		{Dist: "normal", Mean: 100 * time.Millisecond, StdDev: 20 * time.Millisecond},
		{Dist: "lognormal", Min: 20 * time.Millisecond, Mean: 80 * time.Millisecond, StdDev: 100 * time.Millisecond},
		{Dist: "exponential", Min: 5 * time.Millisecond, Mean: 55 * time.Millisecond},
	} {
		if err := l.Validate(); err != nil {
			t.Fatal(err)
		}
		want := l.Mean
		if l.Dist == "uniform" {
			want = (l.Min + l.Max) / 2
		}
		const n = 20000
		var sum time.Duration
		for range n {
			d := l.Sample(r)
			if d < l.Min || (l.Max > 0 && d > l.Max) {
				t.Fatalf("%s: sample %s outside [%s, %s]", l.Dist, d, l.Min, l.Max)
			}
			sum += d
		}
		if got := sum / n; math.Abs(float64(got-want)) > 0.05*float64(want) {
			t.Fatalf("%s: mean %s, want %s ± 5%%", l.Dist, got, want)
		}
	}
	for _, bad := range []Latency{{Dist: "pareto"}, {Dist: "exponential", Mean: time.Millisecond, Min: time.Second},
		{Dist: "lognormal", Mean: time.Second}, {Min: time.Second, Max: time.Millisecond}} {
		if bad.Validate() == nil {
			t.Fatalf("%+v accepted", bad)
		}
	}
}

func TestScenarioValidation(t *testing.T) {
	for name, mut := range map[string]func(*Scenario){
		"one peer":    func(s *Scenario) { s.Peers = 1 },
		"loss 1":      func(s *Scenario) { s.Loss = 1 },
		"partition":   func(s *Scenario) { s.Partitions = []Partition{{From: time.Minute, Until: time.Second, Groups: 2}} },
		"churn":       func(s *Scenario) { s.Churn = Churn{Rate: 1} },
		"persistence": func(s *Scenario) { s.Persistence = "disk" },
		"config":      func(s *Scenario) { s.Config.RepairTMax = 0 },
	} {
		s := small(1)
		mut(&s)
		if _, err := s.Run(context.Background()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPlotsRender(t *testing.T) {
	r := mustRun(t, small(2))
	dir := t.TempDir()
	paths, err := WritePlots(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Fatalf("wrote %v", paths)
	}
	for _, p := range paths {
		f, err := os.Open(filepath.Clean(p))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
			t.Fatalf("%s: %v", p, b)
		}
	}
}

// BenchmarkThousandParticipants runs 1,000 participants for 20 messages under 10 % loss
// with a long sync interval (every participant syncing every 30 s would be 33 sync
// broadcasts a second, each to 999 receivers). The run is deterministic: this seed
// converges during the first round of sync messages, 8–12 minutes in.
func BenchmarkThousandParticipants(b *testing.B) {
	cfg := testConfig()
	cfg.SyncInterval = 10 * time.Minute
	s := Scenario{Seed: 1, Peers: 1000, Config: cfg, Loss: 0.1,
		Latency:  Latency{Dist: "normal", Mean: 80 * time.Millisecond, StdDev: 30 * time.Millisecond},
		Messages: 20, PostEvery: time.Second, ContentSize: 100, Settle: 30 * time.Minute}
	for b.Loop() {
		r := mustRun(b, s)
		if !r.Converged {
			b.Fatalf("did not converge: %d/%d", r.Deliveries, r.ExpectedDeliveries)
		}
		b.ReportMetric(float64(r.Deliveries), "deliveries/op")
		b.ReportMetric(float64(r.SimulatedMs)/1000, "sim-s/op")
	}
}
