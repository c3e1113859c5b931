package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sdskit/sdskit/core/sim"
)

// printSummary writes the run's summary table: the outcome, the latency, the wire
// traffic per kind of packet, and the spread of the per-participant counters.
func printSummary(w io.Writer, r *sim.Result, wall time.Duration) {
	s := r.Scenario
	lat := s.Latency
	dist := lat.Dist
	switch dist {
	case "", "uniform":
		dist = fmt.Sprintf("uniform %s–%s", lat.Min, lat.Max)
	case "normal":
		dist = fmt.Sprintf("normal mean %s sd %s (min %s)", lat.Mean, lat.StdDev, lat.Min)
	case "lognormal":
		dist = fmt.Sprintf("lognormal min %s mean %s sd %s", lat.Min, lat.Mean, lat.StdDev)
	case "exponential":
		dist = fmt.Sprintf("exponential min %s mean %s", lat.Min, lat.Mean)
	}
	fmt.Fprintf(w, "sdskit simulate: %d participants, %d messages, loss %g%%, dup %g%%, latency %s, seed %d\n",
		s.Peers, r.Posted, 100*s.Loss, 100*s.Dup, dist, s.Seed)
	if len(s.Partitions) > 0 || s.Churn.Rate > 0 {
		var parts []string
		for _, p := range s.Partitions {
			parts = append(parts, fmt.Sprintf("%d groups %s–%s", p.Groups, p.From, p.Until))
		}
		if s.Churn.Rate > 0 {
			parts = append(parts, fmt.Sprintf("churn %g/h, mean offline %s, restart %g%%", s.Churn.Rate, s.Churn.MeanOffline, 100*s.Churn.Restart))
		}
		fmt.Fprintf(w, "  disruptions: %s\n", strings.Join(parts, "; "))
	}
	simulated := time.Duration(r.SimulatedMs) * time.Millisecond
	conv := "no"
	if r.Converged {
		conv = fmt.Sprintf("yes, %s after the last post", time.Duration(r.ConvergedAfterMs)*time.Millisecond)
	}

	t := tabwriter.NewWriter(w, 2, 2, 2, ' ', 0)
	fmt.Fprintf(t, "\nconverged\t%s\n", conv)
	fmt.Fprintf(t, "simulated time\t%s (%.0f× real time, %s wall clock)\n", simulated, simulated.Seconds()/max(wall.Seconds(), 1e-9), wall.Round(time.Millisecond))
	fmt.Fprintf(t, "deliveries\t%d of %d (%.2f%%)\n", r.Deliveries, r.ExpectedDeliveries, 100*float64(r.Deliveries)/float64(max(1, r.ExpectedDeliveries)))
	fmt.Fprintf(t, "latency ms\tmean %.0f  p50 %.0f  p90 %.0f  p99 %.0f  max %.0f\n", r.Latency.MeanMs, r.Latency.P50Ms, r.Latency.P90Ms, r.Latency.P99Ms, r.Latency.MaxMs)
	fmt.Fprintf(t, "wire\t%d packets, %.1f MiB, %.0f bytes per delivered message\n", r.WirePackets, float64(r.WireBytes)/(1<<20), r.BytesPerDelivered)
	if r.Dropped > 0 {
		fmt.Fprintf(t, "dropped\t%d receptions (partitions, offline receivers)\n", r.Dropped)
	}
	t.Flush()

	t = tabwriter.NewWriter(w, 2, 2, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w)
	fmt.Fprintln(t, "packets\tbroadcasts\tMiB\treceptions\tbytes/delivered\t")
	for _, k := range []string{"content", "resend", "repair", "sync"} {
		tr := r.Wire[k]
		fmt.Fprintf(t, "%s\t%d\t%.2f\t%d\t%.0f\t\n", k, tr.Packets, float64(tr.Bytes)/(1<<20), tr.Receptions, float64(tr.Bytes)/float64(max(1, r.Deliveries)))
	}
	t.Flush()

	t = tabwriter.NewWriter(w, 2, 2, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w)
	fmt.Fprintln(t, "per participant\ttotal\tmin\tmedian\tmax\t")
	for _, row := range []struct {
		name string
		get  func(p sim.PeerResult) int
	}{
		{"sent", func(p sim.PeerResult) int { return p.Stats.Sent }},
		{"delivered", func(p sim.PeerResult) int { return p.Stats.Delivered }},
		{"acknowledged", func(p sim.PeerResult) int { return p.Stats.Acked }},
		{"resent", func(p sim.PeerResult) int { return p.Stats.Resent }},
		{"gave up", func(p sim.PeerResult) int { return p.Stats.GaveUp }},
		{"repairs answered", func(p sim.PeerResult) int { return p.Stats.RepairsSent }},
		{"syncs sent", func(p sim.PeerResult) int { return p.Stats.SyncsSent }},
		{"missing-dep events", func(p sim.PeerResult) int { return p.Stats.Missing }},
		{"lost", func(p sim.PeerResult) int { return p.Stats.Lost }},
		{"offline periods", func(p sim.PeerResult) int { return p.Stats.Offline }},
		{"restarts", func(p sim.PeerResult) int { return p.Stats.Restarts }},
		{"log size", func(p sim.PeerResult) int { return p.LogSize }},
	} {
		vs := make([]int, 0, len(r.PeerResults))
		total := 0
		for _, p := range r.PeerResults {
			v := row.get(p)
			vs = append(vs, v)
			total += v
		}
		if len(vs) == 0 {
			continue
		}
		slices.Sort(vs)
		fmt.Fprintf(t, "%s\t%d\t%d\t%d\t%d\t\n", row.name, total, vs[0], vs[len(vs)/2], vs[len(vs)-1])
	}
	t.Flush()
}
