package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/sdskit/sdskit/core/sds"
	"github.com/sdskit/sdskit/core/sim"
	"github.com/sdskit/sdskit/core/store"
	"github.com/sdskit/sdskit/core/store/sqlite"
)

func init() {
	commands["simulate"] = func(args []string) error { return run(args, simDefaults()) }
}

type params struct {
	peers, messages               int
	loss, dup                     float64
	seed                          uint64
	minDelay, maxDelay, sendEvery time.Duration
	settle                        time.Duration
	restart                       bool
	persistence                   string
	dir                           string
	causal                        int
	resend, tmin, tmax, sync      time.Duration
}

func demoDefaults() params {
	return params{peers: 3, messages: 60, loss: 0.2, dup: 0.05, seed: 1,
		minDelay: 20 * time.Millisecond, maxDelay: 400 * time.Millisecond, sendEvery: 2 * time.Second,
		settle: 30 * time.Minute, restart: true, persistence: "sqlite", causal: 2,
		resend: 10 * time.Second, tmin: 2 * time.Second, tmax: 20 * time.Second, sync: 15 * time.Second}
}

func simDefaults() params {
	p := demoDefaults()
	p.peers, p.messages, p.restart = 50, 500, false
	return p
}

func run(args []string, p params) error {
	fs := flag.NewFlagSet("sdskit", flag.ContinueOnError)
	fs.IntVar(&p.peers, "peers", p.peers, "participants")
	fs.IntVar(&p.messages, "messages", p.messages, "content messages to post")
	fs.Float64Var(&p.loss, "loss", p.loss, "probability a receiver misses a packet")
	fs.Float64Var(&p.dup, "dup", p.dup, "probability a receiver gets a packet twice")
	fs.Uint64Var(&p.seed, "seed", p.seed, "random seed (same seed, same run)")
	fs.DurationVar(&p.minDelay, "min-delay", p.minDelay, "packet latency lower bound")
	fs.DurationVar(&p.maxDelay, "max-delay", p.maxDelay, "packet latency upper bound")
	fs.DurationVar(&p.sendEvery, "send-every", p.sendEvery, "mean simulated time between posts")
	fs.DurationVar(&p.settle, "settle", p.settle, "simulated time allowed to converge after the last post")
	fs.BoolVar(&p.restart, "restart", p.restart, "restart participant 2 from its database midway")
	fs.StringVar(&p.persistence, "persistence", p.persistence, "sqlite (embedded, one database file per participant), memory or none")
	fs.StringVar(&p.dir, "dir", p.dir, "directory of the SQLite databases (default: a temporary directory, removed afterwards)")
	fs.IntVar(&p.causal, "causal-history", p.causal, "causal-history entries per message")
	fs.DurationVar(&p.resend, "resend-interval", p.resend, "first resend after")
	fs.DurationVar(&p.tmin, "repair-tmin", p.tmin, "SDS-R T_min")
	fs.DurationVar(&p.tmax, "repair-tmax", p.tmax, "SDS-R T_max")
	fs.DurationVar(&p.sync, "sync-interval", p.sync, "sync message period")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return simulate(context.Background(), p)
}

func simulate(ctx context.Context, p params) error {
	if p.peers < 2 {
		return fmt.Errorf("need at least 2 participants")
	}
	cfg := sds.DefaultConfig()
	cfg.MaxCausalHistory = p.causal
	cfg.ResendInterval = p.resend
	cfg.MaxResendInterval = 8 * p.resend
	cfg.RepairTMin, cfg.RepairTMax = p.tmin, p.tmax
	cfg.SyncInterval = p.sync
	cfg.MaxMessageHistory = max(1000, p.messages+100)

	net := sim.New(sim.Options{Seed: p.seed, Loss: p.loss, Dup: p.dup, MinDelay: p.minDelay, MaxDelay: p.maxDelay})
	if p.persistence == "sqlite" && p.dir == "" {
		dir, err := os.MkdirTemp("", "sdskit-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		p.dir = dir
	}
	for i := range p.peers {
		name := peerName(i)
		var backend store.Backend
		var reopen func() (store.Backend, error)
		switch p.persistence {
		case "sqlite":
			path := filepath.Join(p.dir, name+".db")
			reopen = func() (store.Backend, error) { return sqlite.Open(ctx, path, sqlite.Options{}) }
			b, err := reopen()
			if err != nil {
				return err
			}
			backend = b
		case "memory":
			backend = store.NewMemory()
		case "none":
			backend = store.Noop{}
		default:
			return fmt.Errorf("unknown persistence %q (sqlite, memory, none)", p.persistence)
		}
		peer, err := net.AddPeer(name, cfg, backend)
		if err != nil {
			return err
		}
		peer.Reopen = reopen
	}
	defer func() {
		for _, peer := range net.Peers {
			_ = peer.Manager.Close()
			if c, ok := peer.Backend.(interface{ Close() error }); ok {
				_ = c.Close()
			}
		}
	}()
	const channel = "demo-room"
	started, t0 := time.Now(), net.Clock.Now()
	tick := 100 * time.Millisecond
	fmt.Printf("sdskit demo: %d participants, %d messages, loss %.0f%%, dup %.0f%%, persistence %s, seed %d\n",
		p.peers, p.messages, 100*p.loss, 100*p.dup, p.persistence, p.seed)
	if p.persistence == "sqlite" {
		fmt.Printf("  databases in %s\n", p.dir)
	}
	for i := range p.messages {
		from := net.Peers[i%len(net.Peers)]
		if err := net.Send(ctx, from, channel, fmt.Sprintf("%s-%04d", from.Name, i), fmt.Appendf(nil, "message %d from %s", i, from.Name)); err != nil {
			return err
		}
		if p.restart && i == p.messages/2 {
			victim := net.Peers[min(1, len(net.Peers)-1)]
			fmt.Printf("  restarting %s from its database at message %d\n", victim.Name, i)
			if err := net.Restart(victim); err != nil {
				return err
			}
		}
		if err := net.Step(ctx, p.sendEvery, tick); err != nil {
			return err
		}
		if (i+1)%max(1, p.messages/10) == 0 {
			fmt.Printf("  posted %d/%d (simulated %s)\n", i+1, p.messages, net.Clock.Now().Sub(t0).Round(time.Second))
		}
	}
	converged := false
	settled := time.Duration(0)
	for settled < p.settle {
		if err := net.Step(ctx, 5*time.Second, tick); err != nil {
			return err
		}
		settled += 5 * time.Second
		ok, err := net.Converged(channel)
		if err != nil {
			return err
		}
		if ok && net.Pending() == 0 {
			converged = true
			break
		}
	}
	report(net, channel, p)
	fmt.Printf("converged: %v after %s of simulated settling (%s wall clock, %d packets, %.1f KiB on the wire)\n",
		converged, settled, time.Since(started).Round(time.Millisecond), net.Wire.Packets, float64(net.Wire.Bytes)/1024)
	if !converged {
		return fmt.Errorf("participants did not converge")
	}
	return nil
}

func peerName(i int) string {
	names := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"}
	if i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("peer%03d", i)
}

func report(net *sim.Network, channel string, p params) {
	w := tabwriter.NewWriter(os.Stdout, 2, 2, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "participant\tsent\tdelivered\tacked\tresent\tgave up\trepairs sent\tsyncs\tmissing-dep events\trestarts\tlog size\t")
	for _, peer := range net.Peers {
		s := peer.Stats
		logSize := -1
		if snap, err := peer.Manager.Snapshot(channel); err == nil {
			logSize = len(snap.GetLog())
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", peer.Name, s.Sent, s.Delivered, s.Acked, s.Resent, s.GaveUp, s.RepairsSent, s.SyncsSent, s.Missing, s.Restarts, logSize)
	}
	w.Flush()
}
