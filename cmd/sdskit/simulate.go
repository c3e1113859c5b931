package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sdskit/sdskit/core/sds"
	"github.com/sdskit/sdskit/core/sim"
)

func init() { commands["simulate"] = simulateMain }

// simFlags is everything `sdskit simulate` accepts: the scenario (with the full core
// configuration inside) and where and how to report.
type simFlags struct {
	scn      sim.Scenario
	out      string
	progress string
}

// partitionFlag parses -partition FROM-UNTIL:GROUPS (repeatable), e.g. 10m-25m:2.
type partitionFlag struct{ ps *[]sim.Partition }

func (f partitionFlag) String() string {
	if f.ps == nil {
		return ""
	}
	var parts []string
	for _, p := range *f.ps {
		parts = append(parts, fmt.Sprintf("%s-%s:%d", p.From, p.Until, p.Groups))
	}
	return strings.Join(parts, ",")
}

func (f partitionFlag) Set(v string) error {
	span, groups, ok := strings.Cut(v, ":")
	from, until, ok2 := strings.Cut(span, "-")
	if !ok || !ok2 {
		return fmt.Errorf("want FROM-UNTIL:GROUPS, e.g. 10m-25m:2 (got %q)", v)
	}
	var p sim.Partition
	var err error
	if p.From, err = time.ParseDuration(from); err != nil {
		return fmt.Errorf("partition start: %w", err)
	}
	if p.Until, err = time.ParseDuration(until); err != nil {
		return fmt.Errorf("partition end: %w", err)
	}
	if p.Groups, err = strconv.Atoi(groups); err != nil {
		return fmt.Errorf("partition groups: %w", err)
	}
	*f.ps = append(*f.ps, p)
	return nil
}

func parseSimFlags(args []string, stderr io.Writer) (simFlags, error) {
	f := simFlags{out: filepath.Join("build", "sim"), progress: "auto", scn: sim.Scenario{
		Seed: 1, Peers: 50, Config: sds.DefaultConfig(), Loss: 0.1, Dup: 0.01,
		Latency:  sim.Latency{Dist: "lognormal", Min: 20 * time.Millisecond, Mean: 120 * time.Millisecond, StdDev: 150 * time.Millisecond},
		Messages: 500, PostEvery: 2 * time.Second, ContentSize: 200, Settle: 2 * time.Hour,
		CheckEvery: 5 * time.Second, Persistence: "memory", Bucket: time.Minute,
		Churn: sim.Churn{MeanOffline: 2 * time.Minute},
	}}
	s, c := &f.scn, &f.scn.Config
	fs := flag.NewFlagSet("sdskit simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// run and report
	fs.Uint64Var(&s.Seed, "seed", s.Seed, "random seed: the same seed gives a byte-identical summary.json")
	fs.IntVar(&s.Peers, "peers", s.Peers, "participants")
	fs.IntVar(&s.Messages, "messages", s.Messages, "content messages to post")
	fs.DurationVar(&s.PostEvery, "post-every", s.PostEvery, "mean simulated time between posts in the group (exponential gaps, random online sender)")
	fs.IntVar(&s.ContentSize, "content-size", s.ContentSize, "content bytes per message")
	fs.DurationVar(&s.Settle, "settle", s.Settle, "simulated time allowed to converge after the last post")
	fs.DurationVar(&s.CheckEvery, "check-every", s.CheckEvery, "convergence check period after the last post")
	fs.DurationVar(&s.Bucket, "bucket", s.Bucket, "width of the traffic time series and its plot")
	fs.StringVar(&f.out, "out", f.out, "output folder (summary.json and PNG plots)")
	fs.StringVar(&f.progress, "progress", f.progress, "progress on stderr: auto (a bar on a terminal, lines otherwise), bar, lines, off")
	// network
	fs.Float64Var(&s.Loss, "loss", s.Loss, "probability a receiver misses a packet")
	fs.Float64Var(&s.Dup, "dup", s.Dup, "probability a receiver gets a packet twice")
	fs.StringVar(&s.Latency.Dist, "latency", s.Latency.Dist, "latency distribution: "+strings.Join(sim.Dists, ", "))
	fs.DurationVar(&s.Latency.Min, "latency-min", s.Latency.Min, "smallest delay (uniform: lower bound; lognormal/exponential: added offset; normal: cut)")
	fs.DurationVar(&s.Latency.Max, "latency-max", s.Latency.Max, "largest delay (uniform: upper bound; others: cap, 0 = none)")
	fs.DurationVar(&s.Latency.Mean, "latency-mean", s.Latency.Mean, "mean delay (normal, lognormal, exponential)")
	fs.DurationVar(&s.Latency.StdDev, "latency-stddev", s.Latency.StdDev, "delay standard deviation (normal, lognormal)")
	fs.Var(partitionFlag{&s.Partitions}, "partition", "split the participants into GROUPS contiguous groups from FROM to UNTIL, e.g. 10m-25m:2 (repeatable)")
	fs.Float64Var(&s.Churn.Rate, "churn-rate", s.Churn.Rate, "offline periods per participant per hour while posting (0: no churn)")
	fs.DurationVar(&s.Churn.MeanOffline, "churn-offline", s.Churn.MeanOffline, "mean length of an offline period")
	fs.Float64Var(&s.Churn.Restart, "churn-restart", s.Churn.Restart, "probability a participant comes back as a restarted process (reloading its state)")
	fs.StringVar(&s.Persistence, "persistence", s.Persistence, "memory (state survives restarts) or none (a restart starts from scratch)")
	// core configuration (core/sds/config.go), one flag per field
	fs.StringVar(&c.Profile, "profile", c.Profile, "wire profile (spec, nim)")
	fs.IntVar(&c.BloomCapacity, "bloom-capacity", c.BloomCapacity, "ids the bloom filter summarises")
	fs.Float64Var(&c.BloomErrorRate, "bloom-error-rate", c.BloomErrorRate, "bloom false-positive rate at capacity")
	fs.IntVar(&c.MaxMessageHistory, "max-message-history", c.MaxMessageHistory, "local log bound")
	fs.IntVar(&c.MaxCausalHistory, "causal-history", c.MaxCausalHistory, "causal-history entries per message")
	fs.IntVar(&c.SyncCausalHistory, "sync-causal-history", c.SyncCausalHistory, "causal-history entries per sync message")
	fs.IntVar(&c.SyncUnreferencedRounds, "sync-unreferenced-rounds", c.SyncUnreferencedRounds, "sync intervals during which sync messages also name delivered messages nothing references yet (0: only the newest entries)")
	fs.IntVar(&c.MaxMessageSize, "max-message-size", c.MaxMessageSize, "content size bound (bytes)")
	fs.DurationVar(&c.ResendInterval, "resend-interval", c.ResendInterval, "first resend of an unacknowledged message after")
	fs.Float64Var(&c.ResendBackoff, "resend-backoff", c.ResendBackoff, "resend wait multiplier")
	fs.DurationVar(&c.MaxResendInterval, "max-resend-interval", c.MaxResendInterval, "resend wait cap")
	fs.IntVar(&c.MaxResendAttempts, "max-resend-attempts", c.MaxResendAttempts, "resends before giving up")
	fs.IntVar(&c.PossibleAcksThreshold, "possible-acks-threshold", c.PossibleAcksThreshold, "bloom filters holding a message before it counts as acknowledged")
	fs.DurationVar(&c.SyncInterval, "sync-interval", c.SyncInterval, "SyncDue period")
	fs.Float64Var(&c.SyncJitter, "sync-jitter", c.SyncJitter, "SyncDue spread (± fraction of the interval)")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", c.SweepInterval, "how often every participant runs its sweeps")
	fs.DurationVar(&c.IncomingTimeout, "incoming-timeout", c.IncomingTimeout, "give up on missing dependencies after (0: never)")
	lost := "deliver"
	fs.StringVar(&lost, "lost-policy", lost, "deliver or drop a message whose dependencies timed out")
	fs.DurationVar(&c.RepairTMin, "repair-tmin", c.RepairTMin, "SDS-R T_min")
	fs.DurationVar(&c.RepairTMax, "repair-tmax", c.RepairTMax, "SDS-R T_max")
	fs.IntVar(&c.NumResponseGroups, "response-groups", c.NumResponseGroups, "SDS-R response groups")
	fs.IntVar(&c.MaxRepairRequests, "max-repair-requests", c.MaxRepairRequests, "repair requests per message")
	fs.IntVar(&c.MaxRepairAttempts, "max-repair-attempts", c.MaxRepairAttempts, "requests per missing message")
	fs.DurationVar(&c.BloomRepairAfter, "bloom-repair-after", c.BloomRepairAfter, "rebroadcast logged messages older than this that a received sync's bloom filter lacks (0: never)")
	fs.DurationVar(&c.RepairRetryMaxInterval, "repair-retry-max-interval", c.RepairRetryMaxInterval, "past max-repair-attempts, re-request a needed gap with a doubling wait up to this (0: forget)")
	fs.IntVar(&c.MaxIncomingBuffer, "max-incoming-buffer", c.MaxIncomingBuffer, "messages waiting for dependencies")
	fs.IntVar(&c.MaxRepairBuffer, "max-repair-buffer", c.MaxRepairBuffer, "entries per SDS-R buffer")
	l := &c.Limits
	fs.IntVar(&l.MaxMessageBytes, "limit-message-bytes", l.MaxMessageBytes, "largest accepted wire message")
	fs.IntVar(&l.MaxContentBytes, "limit-content-bytes", l.MaxContentBytes, "largest accepted content")
	fs.IntVar(&l.MaxIDBytes, "limit-id-bytes", l.MaxIDBytes, "longest accepted id")
	fs.IntVar(&l.MaxHintBytes, "limit-hint-bytes", l.MaxHintBytes, "longest accepted retrieval hint")
	fs.IntVar(&l.MaxCausalHistory, "limit-causal-history", l.MaxCausalHistory, "most accepted causal-history entries")
	fs.IntVar(&l.MaxRepairRequests, "limit-repair-requests", l.MaxRepairRequests, "most accepted repair requests")
	fs.IntVar(&l.MaxBloomBytes, "limit-bloom-bytes", l.MaxBloomBytes, "largest accepted bloom filter")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch lost {
	case "deliver":
		c.LostPolicy = sds.LostDeliver
	case "drop":
		c.LostPolicy = sds.LostDrop
	default:
		return f, fmt.Errorf("-lost-policy %q: want deliver or drop", lost)
	}
	switch f.progress {
	case "auto", "bar", "lines", "off":
	default:
		return f, fmt.Errorf("-progress %q: want auto, bar, lines or off", f.progress)
	}
	if err := s.Validate(); err != nil {
		return f, err
	}
	return f, nil
}

func simulateMain(args []string) error {
	f, err := parseSimFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	return runSimulation(context.Background(), f, os.Stdout, os.Stderr)
}

// errNotConverged is returned, after every output is written, when the participants
// did not converge within -settle.
var errNotConverged = errors.New("participants did not converge")

func runSimulation(ctx context.Context, f simFlags, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	bar := newSimProgress(stderr, f.progress)
	f.scn.Progress = bar.update
	// A few hundred callbacks over the whole run; the bar throttles its redraws itself.
	f.scn.ProgressEvery = max(time.Second, (time.Duration(f.scn.Messages)*f.scn.PostEvery+f.scn.Settle)/500)
	started := time.Now()
	res, err := f.scn.Run(ctx)
	bar.finish()
	if err != nil {
		return err
	}
	wall := time.Since(started)
	summary, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	jsonPath := filepath.Join(f.out, "summary.json")
	if err := os.WriteFile(jsonPath, append(summary, '\n'), 0o644); err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	plots, err := sim.WritePlots(f.out, res)
	if err != nil {
		return err
	}
	printSummary(stdout, res, wall)
	fmt.Fprintf(stdout, "wrote %s\n", strings.Join(append([]string{jsonPath}, plots...), ", "))
	if !res.Converged {
		return errNotConverged
	}
	return nil
}
