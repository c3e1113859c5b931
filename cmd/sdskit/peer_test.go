package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// lockedBuffer is a peer's stdout that the test reads while the peer writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines decodes every line written so far; a line that is not a JSON object fails the test.
func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	l.mu.Lock()
	s := l.b.String()
	l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line == "" {
			continue
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("stdout line is not a JSON object: %q", line)
		}
		out = append(out, v)
	}
	return out
}

func (l *lockedBuffer) lastStats(t *testing.T) map[string]any {
	var last map[string]any
	for _, v := range l.lines(t) {
		if v["event"] == "stats" {
			last = v
		}
	}
	return last
}

func embeddedNATS(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

type runningPeer struct {
	out    *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

func startPeer(t *testing.T, url, id, db string, messages int) *runningPeer {
	t.Helper()
	f, err := parsePeerFlags([]string{"--nats", url, "--id", id, "--db", db, "--messages", fmt.Sprint(messages),
		"--interval-ms", "60", "--loss", "0.1", "--dup", "0.3", "--delay-ms", "20", "--stats-ms", "50",
		"--sync-ms", "300", "--resend-ms", "200"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &runningPeer{out: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- runPeer(ctx, f, p.out) }()
	return p
}

// stop ends the peer as stdin EOF does and waits for its clean exit.
func (p *runningPeer) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("peer exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("peer did not stop within 15 s")
	}
}

func digestOf(ids []string) string {
	ids = append([]string(nil), ids...)
	sort.Strings(ids)
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return hex.EncodeToString(sum[:])
}

// TestPeerContract runs two Go peers in-process over an embedded NATS server and checks
// the stdout contract of docs/demo.md: the ready line, the exact keys of the stats line,
// the digest, own posts counted as delivered, and a restart continuing the numbering.
func TestPeerContract(t *testing.T) {
	url := embeddedNATS(t)
	dir := t.TempDir()
	a := startPeer(t, url, "a", filepath.Join(dir, "a.db"), 3)
	b := startPeer(t, url, "b", filepath.Join(dir, "b.db"), 3)
	want := digestOf([]string{"a-1", "a-2", "a-3", "b-1", "b-2", "b-3"})
	deadline := time.Now().Add(30 * time.Second)
	for {
		sa, sb := a.out.lastStats(t), b.out.lastStats(t)
		if sa != nil && sb != nil && sa["digest"] == want && sb["digest"] == want && sa["done_sending"] == true && sb["done_sending"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("peers did not converge in 30 s: a=%v b=%v", sa, sb)
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.stop(t)
	b.stop(t)

	keys := []string{"acked", "count", "delivered", "digest", "done_sending", "event", "id", "missing", "repair_answered", "repair_requested", "resent", "sent"}
	for name, p := range map[string]*runningPeer{"a": a, "b": b} {
		lines := p.out.lines(t)
		ready := lines[0]
		if ready["event"] != "ready" || ready["id"] != name || ready["lang"] != "go" || ready["recovered"] != 0.0 || ready["sent_before"] != 0.0 {
			t.Fatalf("first line of %s = %v, want a ready line of a first start", name, ready)
		}
		last := lines[len(lines)-1]
		got := make([]string, 0, len(last))
		for k := range last {
			got = append(got, k)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(keys, ",") {
			t.Fatalf("final stats keys of %s = %v, want %v", name, got, keys)
		}
		// Three own posts and three of the other peer's, each delivered once despite dups.
		if last["sent"] != 3.0 || last["count"] != 6.0 || last["delivered"] != 6.0 || last["digest"] != want {
			t.Fatalf("final stats of %s = %v", name, last)
		}
	}

	// Restarted with more to post, a continues from its databases: n = own rows + 1.
	a = startPeer(t, url, "a", filepath.Join(dir, "a.db"), 4)
	deadline = time.Now().Add(15 * time.Second)
	for s := a.out.lastStats(t); s == nil || s["done_sending"] != true; s = a.out.lastStats(t) {
		if time.Now().After(deadline) {
			t.Fatalf("restarted peer did not post its 4th message: %v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.stop(t)
	ready := a.out.lines(t)[0]
	if ready["recovered"] != 6.0 || ready["sent_before"] != 3.0 {
		t.Fatalf("ready line after restart = %v, want recovered 6, sent_before 3", ready)
	}
	log, err := openAppLog(filepath.Join(dir, "a.db.chat"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.db.Close()
	var content []byte
	var own bool
	if err := log.db.QueryRow(`SELECT content, own FROM chat_log WHERE message_id = 'a-4'`).Scan(&content, &own); err != nil {
		t.Fatalf("a-4 not in a's chat log: %v", err)
	}
	if string(content) != "hello 4 from a" || !own {
		t.Fatalf("a-4 = %q own=%v", content, own)
	}
}
