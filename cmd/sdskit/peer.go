package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	sdskit "github.com/sdskit/sdskit/sdk-go"
	"github.com/sdskit/sdskit/sdk-go/natstransport"
	"google.golang.org/protobuf/proto"
	_ "modernc.org/sqlite" // the app log, with the driver the core's SQLite store uses
)

func init() { commands["peer"] = peerMain }

// peerFlags are the demo peer's flags, spelled identically by the Python and TypeScript
// peers (docs/demo.md).
type peerFlags struct {
	nats, subject, channel, id, db string
	messages                       int
	intervalMs, delayMs            int
	loss, dup                      float64
	seed                           uint64
	syncMs, resendMs, statsMs      int
}

func parsePeerFlags(args []string) (peerFlags, error) {
	var f peerFlags
	fs := flag.NewFlagSet("sdskit peer", flag.ContinueOnError)
	fs.StringVar(&f.nats, "nats", "nats://127.0.0.1:4222", "NATS server URL")
	fs.StringVar(&f.subject, "subject", "sdskit.demo.chat", "NATS subject of the channel")
	fs.StringVar(&f.channel, "channel", "demo", "SDS channel id")
	fs.StringVar(&f.id, "id", "", "participant id (required)")
	fs.StringVar(&f.db, "db", "", "SQLite database of the SDS state; the app log is DB.chat (required)")
	fs.IntVar(&f.messages, "messages", 20, "content messages to post in total, across restarts")
	fs.IntVar(&f.intervalMs, "interval-ms", 1000, "mean time between posts")
	fs.Float64Var(&f.loss, "loss", 0.2, "probability a received payload is dropped")
	fs.Float64Var(&f.dup, "dup", 0.05, "probability a received payload is handled twice")
	fs.IntVar(&f.delayMs, "delay-ms", 200, "received payloads are delayed uniformly in [0, delay-ms]")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed of impairments and post timing")
	fs.IntVar(&f.syncMs, "sync-ms", 3000, "SDS sync interval")
	fs.IntVar(&f.resendMs, "resend-ms", 2000, "SDS resend interval")
	fs.IntVar(&f.statsMs, "stats-ms", 500, "period of stats lines")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	switch {
	case f.id == "" || f.db == "":
		return f, errors.New("peer: --id and --db are required")
	case f.loss < 0 || f.loss >= 1 || f.dup < 0 || f.dup > 1:
		return f, errors.New("peer: --loss must be in [0, 1) and --dup in [0, 1]")
	case f.messages < 0 || f.intervalMs <= 0 || f.delayMs < 0 || f.statsMs <= 0 || f.syncMs <= 0 || f.resendMs <= 0:
		return f, errors.New("peer: counts must be >= 0 and periods > 0")
	}
	return f, nil
}

// demoConfig is the SDS configuration every demo peer uses, whatever its language.
func demoConfig(f peerFlags) *sdskit.Config {
	return &sdskit.Config{
		SyncIntervalMs:      proto.Uint64(uint64(f.syncMs)),
		ResendIntervalMs:    proto.Uint64(uint64(f.resendMs)),
		MaxResendIntervalMs: proto.Uint64(uint64(4 * f.resendMs)),
		RepairTMinMs:        proto.Uint64(500),
		RepairTMaxMs:        proto.Uint64(3000),
		MaxRepairAttempts:   proto.Uint32(100),
	}
}

// appLog is the application's durable record of the chat (DB.chat): what it showed.
type appLog struct {
	db *sql.DB
}

func openAppLog(path string) (*appLog, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS chat_log(message_id TEXT PRIMARY KEY, sender_id TEXT NOT NULL,
		lamport INTEGER NOT NULL, content BLOB NOT NULL, own INTEGER NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("app log %s: %w", path, err)
	}
	return &appLog{db: db}, nil
}

func (l *appLog) insert(id, sender string, lamport uint64, content []byte, own bool) error {
	_, err := l.db.Exec(`INSERT OR IGNORE INTO chat_log VALUES (?, ?, ?, ?, ?)`, id, sender, int64(lamport), content, own)
	return err
}

// summary returns own posts, distinct messages and the digest of the sorted ids.
func (l *appLog) summary() (own, count int, digest string, err error) {
	rows, err := l.db.Query(`SELECT message_id, own FROM chat_log`)
	if err != nil {
		return 0, 0, "", err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		var o bool
		if err := rows.Scan(&id, &o); err != nil {
			return 0, 0, "", err
		}
		ids = append(ids, id)
		if o {
			own++
		}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, "", err
	}
	sort.Strings(ids)
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return own, len(ids), hex.EncodeToString(sum[:]), nil
}

// peerStats are the process-lifetime counters of the stats line.
type peerStats struct {
	mu                                       sync.Mutex
	delivered, acked, resent, repairAnswered int
	repairRequested                          map[string]bool
	missing                                  map[string]bool
}

// jsonOut writes one JSON object per line to stdout, whole lines only.
type jsonOut struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *jsonOut) emit(v map[string]any) {
	b, _ := json.Marshal(v) // maps of strings, numbers and bools always marshal
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.w.Write(append(b, '\n'))
}

func peerMain(args []string) error {
	f, err := parsePeerFlags(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() { // the orchestrator closes our stdin to stop us
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		stop()
	}()
	return runPeer(ctx, f, os.Stdout)
}

func runPeer(ctx context.Context, f peerFlags, stdout io.Writer) error {
	out := &jsonOut{w: stdout}
	fail := func(format string, a ...any) {
		out.emit(map[string]any{"event": "error", "id": f.id, "message": fmt.Sprintf(format, a...)})
	}
	logDB, err := openAppLog(f.db + ".chat")
	if err != nil {
		return err
	}
	defer logDB.db.Close()
	sentBefore, recovered, _, err := logDB.summary()
	if err != nil {
		return fmt.Errorf("app log: %w", err)
	}

	tr, err := natstransport.Dial(f.nats, f.subject)
	if err != nil {
		return err
	}
	defer tr.Close()
	imp := &impairedTransport{Transport: tr, f: f, rng: rand.New(rand.NewPCG(f.seed, 0x5d5)), done: make(chan struct{})}
	st := &peerStats{repairRequested: map[string]bool{}, missing: map[string]bool{}}
	ch, err := sdskit.OpenReliableChannel(ctx, f.id, f.channel, imp, sdskit.ChannelOptions{
		OnMessage: func(m *sdskit.MessageReady) {
			if err := logDB.insert(m.GetMessageId(), m.GetSenderId(), m.GetLamportTimestamp(), m.GetContent(), false); err != nil {
				fail("app log insert %s: %v", m.GetMessageId(), err)
			}
			st.mu.Lock()
			st.delivered++
			delete(st.missing, m.GetMessageId())
			st.mu.Unlock()
		},
		OnAcknowledged: func(string) { st.mu.Lock(); st.acked++; st.mu.Unlock() },
		OnMissing: func(e *sdskit.MissingDependencies) {
			st.mu.Lock()
			for _, h := range e.GetMissing() {
				st.repairRequested[h.GetMessageId()] = true
				st.missing[h.GetMessageId()] = true
			}
			st.mu.Unlock()
		},
		OnEvent: func(ev *sdskit.Event) {
			st.mu.Lock()
			defer st.mu.Unlock()
			switch {
			case ev.GetResendRequested() != nil:
				st.resent++
			case ev.GetRepairReady() != nil:
				st.repairAnswered++
			}
		},
		OnError: func(err error) { fail("%v", err) },
	}, sdskit.WithConfig(demoConfig(f)), sdskit.WithSQLite(f.db, ""))
	if err != nil {
		return err
	}
	defer imp.close()
	if err := reconcile(ctx, ch, logDB, f.id); err != nil {
		_ = ch.Close()
		return err
	}
	if sentBefore, _, _, err = logDB.summary(); err != nil {
		_ = ch.Close()
		return err
	}
	out.emit(map[string]any{"event": "ready", "id": f.id, "lang": "go", "recovered": recovered, "sent_before": sentBefore})

	statsLine := func() {
		own, count, digest, err := logDB.summary()
		if err != nil {
			fail("app log: %v", err)
			return
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		out.emit(map[string]any{"event": "stats", "id": f.id, "sent": own, "delivered": st.delivered, "acked": st.acked,
			"resent": st.resent, "repair_requested": len(st.repairRequested), "repair_answered": st.repairAnswered,
			"missing": len(st.missing), "count": count, "digest": digest, "done_sending": own >= f.messages})
	}

	postRng := rand.New(rand.NewPCG(f.seed, 0x9057))
	nextPost := func() time.Duration {
		return time.Duration(f.intervalMs/2+postRng.IntN(f.intervalMs+1)) * time.Millisecond
	}
	post := time.NewTimer(nextPost())
	defer post.Stop()
	stats := time.NewTicker(time.Duration(f.statsMs) * time.Millisecond)
	defer stats.Stop()
	sent := sentBefore
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-stats.C:
			statsLine()
		case <-post.C:
			if sent < f.messages {
				n := sent + 1
				id := fmt.Sprintf("%s-%d", f.id, n)
				content := []byte(fmt.Sprintf("hello %d from %s", n, f.id))
				// A kill between the send and the insert is healed at the next start
				// by reconcile: the SDS log already holds the message. A failed
				// publication still made the message ours (the resend timer retries),
				// so only a refused wrap leaves n unused.
				err := ch.SendWithID(ctx, id, content)
				var pe *sdskit.PublishError
				if err != nil {
					fail("post %s: %v", id, err)
				}
				if err == nil || errors.As(err, &pe) && pe.Persisted {
					// n is used either way: wrapping the id again would be refused.
					sent = n
					st.mu.Lock()
					st.delivered++ // own posts are delivered locally and count (peer contract)
					st.mu.Unlock()
					if err := logDB.insert(id, f.id, 0, content, true); err != nil {
						fail("app log insert %s (reconciled at the next start): %v", id, err)
					}
				}
			}
			post.Reset(nextPost())
		}
	}
	// Stop posting, close the channel and the NATS connection, then the final stats line.
	closeErr := ch.Close()
	imp.close()
	tr.Close()
	statsLine()
	return closeErr
}

// reconcile copies into the app log every message of the SDS log it lacks: events fire
// after the SDS state committed, so a kill between a commit and the app's own insert
// leaves the message in the SDS log only. The SDS log is the source of truth.
func reconcile(ctx context.Context, ch *sdskit.ReliableChannel, log *appLog, self string) error {
	snap, err := ch.Manager().Snapshot(ctx, ch.ChannelID())
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, m := range snap.GetLog() {
		if err := log.insert(m.GetMessageId(), m.GetSenderId(), m.GetLamportTimestamp(), m.GetContent(), m.GetSenderId() == self); err != nil {
			return fmt.Errorf("reconcile %s: %w", m.GetMessageId(), err)
		}
	}
	return nil
}

// impairedTransport drops, duplicates and delays received payloads, so the demo has real
// gaps to repair; publishing is untouched.
type impairedTransport struct {
	*natstransport.Transport
	f    peerFlags
	mu   sync.Mutex
	rng  *rand.Rand
	wg   sync.WaitGroup
	done chan struct{}
	once sync.Once
}

func (t *impairedTransport) Subscribe(ctx context.Context, deliver func([]byte)) (func() error, error) {
	return t.Transport.Subscribe(ctx, func(p []byte) {
		t.mu.Lock()
		drop := t.rng.Float64() < t.f.loss
		copies := 1
		if t.rng.Float64() < t.f.dup {
			copies = 2
		}
		delays := make([]time.Duration, copies)
		for i := range delays {
			delays[i] = time.Duration(t.rng.IntN(t.f.delayMs+1)) * time.Millisecond
		}
		t.mu.Unlock()
		if drop {
			return
		}
		for _, d := range delays {
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				select {
				case <-time.After(d):
					deliver(p)
				case <-t.done:
				}
			}()
		}
	})
}

func (t *impairedTransport) close() {
	t.once.Do(func() { close(t.done) })
	t.wg.Wait()
}
