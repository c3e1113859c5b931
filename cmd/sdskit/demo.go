package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func init() { commands["demo"] = demoMain }

// demoFlags configure the orchestrator of `sdskit demo` (docs/demo.md).
type demoFlags struct {
	goPeers, pyPeers, tsPeers int
	messages                  int
	loss, dup                 float64
	delayMs, intervalMs       int
	syncMs, resendMs          int
	seed                      uint64
	kill                      bool
	timeout                   time.Duration
	dir, natsURL, root        string
}

func parseDemoFlags(args []string) (demoFlags, error) {
	var f demoFlags
	fs := flag.NewFlagSet("sdskit demo", flag.ContinueOnError)
	fs.IntVar(&f.goPeers, "go", 1, "Go participants")
	fs.IntVar(&f.pyPeers, "python", 1, "Python participants (demo/python/peer.py in build/venv)")
	fs.IntVar(&f.tsPeers, "ts", 1, "TypeScript participants (node demo/ts/dist/peer.js)")
	fs.IntVar(&f.messages, "messages", 20, "messages each participant posts")
	fs.Float64Var(&f.loss, "loss", 0.2, "probability a participant drops a received payload")
	fs.Float64Var(&f.dup, "dup", 0.05, "probability a participant handles a received payload twice")
	fs.IntVar(&f.delayMs, "delay-ms", 200, "received payloads are delayed uniformly up to this")
	fs.IntVar(&f.intervalMs, "interval-ms", 1000, "mean time between a participant's posts")
	fs.IntVar(&f.syncMs, "sync-ms", 3000, "SDS sync interval")
	fs.IntVar(&f.resendMs, "resend-ms", 2000, "SDS resend interval")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed (each participant gets seed+index)")
	fs.BoolVar(&f.kill, "kill", true, "SIGKILL one participant midway and restart it from its databases")
	fs.DurationVar(&f.timeout, "timeout", 110*time.Second, "give up (exit 1) if not converged by then")
	fs.StringVar(&f.dir, "dir", "", "work directory of the databases and logs (default: a temporary one, removed after a successful run)")
	fs.StringVar(&f.natsURL, "nats", "", "use this NATS server (e.g. nats://host:4222) instead of the embedded one")
	fs.StringVar(&f.root, "root", ".", "repository root (where demo/ and build/venv are)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.goPeers < 0 || f.pyPeers < 0 || f.tsPeers < 0 || f.goPeers+f.pyPeers+f.tsPeers < 2 {
		return f, errors.New("demo: need at least 2 participants in all")
	}
	if f.messages < 1 || f.timeout <= 0 {
		return f, errors.New("demo: --messages must be >= 1 and --timeout > 0")
	}
	return f, nil
}

// participant is one peer process (and its restarts) under the orchestrator.
type participant struct {
	id, lang string
	argv     []string // command and its fixed arguments, before the peer flags
	flags    []string
	logPath  string

	mu        sync.Mutex
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	exited    chan struct{}
	last      map[string]any // latest stats line
	recovered int            // "recovered" of the latest ready line
	restarted bool
	errors    int
}

func demoMain(args []string) error {
	f, err := parseDemoFlags(args)
	if err != nil {
		return err
	}
	ok, err := runDemo(context.Background(), f, os.Stdout, os.Stderr)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("demo: the participants did not converge")
	}
	return nil
}

func runDemo(ctx context.Context, f demoFlags, stdout, stderr io.Writer) (converged bool, err error) {
	root, err := filepath.Abs(f.root)
	if err != nil {
		return false, err
	}
	dir := f.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "sdskit-demo-"); err != nil {
			return false, err
		}
		defer func() {
			if converged {
				os.RemoveAll(dir)
			} else {
				fmt.Fprintf(stderr, "databases and peer logs kept in %s\n", dir)
			}
		}()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}

	url := f.natsURL
	if url == "" {
		ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
		if err != nil {
			return false, fmt.Errorf("nats server: %w", err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			return false, errors.New("nats server: not ready after 10 s")
		}
		defer ns.Shutdown()
		url = ns.ClientURL()
	}
	fmt.Fprintf(stderr, "NATS at %s; work directory %s\n", url, dir)

	peers, err := planPeers(f, root, dir, url)
	if err != nil {
		return false, err
	}
	for _, p := range peers {
		if err := p.start(root); err != nil {
			stopAll(peers)
			return false, err
		}
	}

	victim := pickVictim(peers)
	total := f.messages * len(peers)
	start := time.Now()
	deadline := start.Add(f.timeout)
	progress := newProgress(stderr)
	var killedAt time.Time
	killed := false
	converged = false
	for !converged && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		sent := 0
		for _, p := range peers {
			sent += p.intStat("sent")
		}
		if f.kill && victim != nil && !killed && sent >= total/2 {
			fmt.Fprintf(stderr, "\n%s: SIGKILL %s (%s) after %d of %d posts\n", elapsed(start), victim.id, victim.lang, sent, total)
			victim.kill()
			killed, killedAt = true, time.Now()
		}
		if killed && !victim.restarted && time.Since(killedAt) >= 2*time.Second {
			fmt.Fprintf(stderr, "\n%s: restarting %s from its databases\n", elapsed(start), victim.id)
			victim.restarted = true
			if err := victim.start(root); err != nil {
				stopAll(peers)
				return false, err
			}
		}
		for _, p := range peers {
			if p.hasExited() && !(p == victim && killed && !victim.restarted) {
				stopAll(peers)
				tailLog(stderr, p)
				return false, fmt.Errorf("demo: participant %s exited on its own (log: %s)", p.id, p.logPath)
			}
		}
		converged = (!f.kill || victim == nil || victim.restarted) && allConverged(peers, total)
		progress.show(start, peers)
	}
	progress.done()
	elapsedTotal := time.Since(start)
	stopAll(peers)
	demoReport(stdout, peers, converged, elapsedTotal)
	if !converged {
		for _, p := range peers {
			tailLog(stderr, p)
		}
	}
	return converged, nil
}

// planPeers builds the participants' command lines; every peer gets the same flags.
func planPeers(f demoFlags, root, dir, url string) ([]*participant, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var peers []*participant
	add := func(lang string, n int, argv []string, need string) error {
		if n > 0 && need != "" {
			if _, err := os.Stat(filepath.Join(root, need)); err != nil {
				return fmt.Errorf("demo: %s peer not built (%s missing): run `make demo`, or pass --%s 0", lang, need, lang)
			}
		}
		for i := 1; i <= n; i++ {
			id := fmt.Sprintf("%s-%d", lang, i)
			db := filepath.Join(dir, id+".db")
			p := &participant{id: id, lang: lang, argv: argv, logPath: filepath.Join(dir, id+".log")}
			p.flags = []string{"--nats", url, "--subject", "sdskit.demo.chat", "--channel", "demo", "--id", id, "--db", db,
				"--messages", fmt.Sprint(f.messages), "--interval-ms", fmt.Sprint(f.intervalMs),
				"--loss", fmt.Sprint(f.loss), "--dup", fmt.Sprint(f.dup), "--delay-ms", fmt.Sprint(f.delayMs),
				"--seed", fmt.Sprint(f.seed + uint64(len(peers))), "--sync-ms", fmt.Sprint(f.syncMs),
				"--resend-ms", fmt.Sprint(f.resendMs), "--stats-ms", "500"}
			peers = append(peers, p)
		}
		return nil
	}
	if err := add("go", f.goPeers, []string{self, "peer"}, ""); err != nil {
		return nil, err
	}
	if err := add("python", f.pyPeers, []string{filepath.Join(root, "build/venv/bin/python"), filepath.Join(root, "demo/python/peer.py")}, "demo/python/peer.py"); err != nil {
		return nil, err
	}
	if err := add("ts", f.tsPeers, []string{"node", filepath.Join(root, "demo/ts/dist/peer.js")}, "demo/ts/dist/peer.js"); err != nil {
		return nil, err
	}
	return peers, nil
}

// pickVictim chooses the participant to kill: a Python one if any (its restart crosses
// the C ABI and the core's SQLite), else the last one.
func pickVictim(peers []*participant) *participant {
	for _, p := range peers {
		if p.lang == "python" {
			return p
		}
	}
	if len(peers) == 0 {
		return nil
	}
	return peers[len(peers)-1]
}

func (p *participant) start(root string) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.argv[0], append(append([]string{}, p.argv[1:]...), p.flags...)...)
	cmd.Dir = root
	cmd.Stderr = logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logf.Close()
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s (%s): %w", p.id, strings.Join(p.argv, " "), err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.stdin, p.exited = cmd, stdin, exited
	p.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.line(sc.Bytes(), logf)
		}
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	return nil
}

// line records one JSON line of the peer's stdout; anything else goes to its log.
func (p *participant) line(b []byte, logf io.Writer) {
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		fmt.Fprintf(logf, "[stdout, not JSON] %s\n", b)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch v["event"] {
	case "stats":
		p.last = v
	case "ready":
		if n, ok := v["recovered"].(float64); ok {
			p.recovered = int(n)
		}
	case "error":
		p.errors++
		fmt.Fprintf(logf, "[peer error] %v\n", v["message"])
	}
}

// hasExited reports whether the peer's current process has ended.
func (p *participant) hasExited() bool {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return true
	default:
		return false
	}
}

func (p *participant) intStat(k string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, _ := p.last[k].(float64)
	return int(n)
}

func (p *participant) stat(k string) any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last[k]
}

func (p *participant) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
}

// stop closes the peer's stdin (its signal to finish cleanly) and kills it after 10 s.
func (p *participant) stop() {
	p.mu.Lock()
	cmd, stdin, exited := p.cmd, p.stdin, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = stdin.Close()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
}

func stopAll(peers []*participant) {
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
}

// allConverged: every participant posted everything and holds every message, with the
// same digest of message ids.
func allConverged(peers []*participant, total int) bool {
	digest := ""
	for _, p := range peers {
		p.mu.Lock()
		last := p.last
		p.mu.Unlock()
		if last == nil || last["done_sending"] != true {
			return false
		}
		if n, _ := last["count"].(float64); int(n) != total {
			return false
		}
		d, _ := last["digest"].(string)
		if digest == "" {
			digest = d
		} else if d != digest {
			return false
		}
	}
	return true
}

func demoReport(w io.Writer, peers []*participant, converged bool, took time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "participant\tlang\tsent\tdelivered\tacked\tresent\trepairs requested\trepairs answered\trestart recovered\tfinal count\t")
	digests := map[string]bool{}
	for _, p := range peers {
		rec := "-"
		if p.restarted {
			rec = fmt.Sprint(p.recovered)
		}
		d, _ := p.stat("digest").(string)
		digests[d] = true
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t\n", p.id, p.lang, p.intStat("sent"), p.intStat("delivered"),
			p.intStat("acked"), p.intStat("resent"), p.intStat("repair_requested"), p.intStat("repair_answered"), rec, p.intStat("count"))
	}
	tw.Flush()
	same := "no"
	if len(digests) == 1 && !digests[""] {
		same = "yes"
	}
	fmt.Fprintf(w, "all logs identical: %s\n", same)
	if converged {
		fmt.Fprintf(w, "converged in %.1f s\n", took.Seconds())
	} else {
		fmt.Fprintf(w, "NOT converged after %.1f s\n", took.Seconds())
	}
}

func tailLog(w io.Writer, p *participant) {
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(b) == 0 {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	fmt.Fprintf(w, "--- last lines of %s ---\n%s\n", p.logPath, strings.Join(lines, "\n"))
}

func elapsed(start time.Time) string { return fmt.Sprintf("%5.1fs", time.Since(start).Seconds()) }

// progress draws one status line: rewritten in place on a terminal, a line per second
// otherwise (CI logs).
type progress struct {
	w    io.Writer
	tty  bool
	last time.Time
}

func newProgress(w io.Writer) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty}
}

func (pr *progress) show(start time.Time, peers []*participant) {
	if time.Since(pr.last) < time.Second {
		return
	}
	pr.last = time.Now()
	var b strings.Builder
	b.WriteString(elapsed(start))
	for _, p := range peers {
		fmt.Fprintf(&b, "  %s sent %d holds %d", p.id, p.intStat("sent"), p.intStat("count"))
	}
	if pr.tty {
		fmt.Fprintf(pr.w, "\r%s\x1b[K", b.String())
	} else {
		fmt.Fprintln(pr.w, b.String())
	}
}

func (pr *progress) done() {
	if pr.tty {
		fmt.Fprintln(pr.w)
	}
}
