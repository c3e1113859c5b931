package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemoGoPeers runs the orchestrator with three Go peer processes over the embedded
// NATS server, SIGKILLs one midway and restarts it, and checks the report.
func TestDemoGoPeers(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes for ~20 s")
	}
	bin := filepath.Join(t.TempDir(), "sdskit")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(context.Background(), bin, "demo", "--go", "3", "--python", "0", "--ts", "0",
		"--messages", "8", "--interval-ms", "300", "--loss", "0.25", "--timeout", "90s", "--dir", t.TempDir())
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo failed after %v: %v\nstdout:\n%s\nstderr:\n%s", time.Since(start), err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"all logs identical: yes", "converged in", "go-1", "go-3"} {
		if !strings.Contains(out, want) {
			t.Fatalf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr.String(), "SIGKILL go-3") || !strings.Contains(stderr.String(), "restarting go-3") {
		t.Fatalf("no kill/restart in the progress output:\n%s", stderr.String())
	}
	// The restarted participant's row shows what it recovered from its databases.
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 10 && f[0] == "go-3" {
			if f[8] == "-" || f[8] == "0" {
				t.Fatalf("go-3 recovered nothing after its restart: %q", line)
			}
			if f[9] != "24" {
				t.Fatalf("go-3 holds %s messages, want 24", f[9])
			}
			t.Log(out)
			return
		}
	}
	t.Fatalf("no row for go-3:\n%s", out)
}

func TestPeerFlagsRejectBadInput(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--id", "a"},
		{"--id", "a", "--db", "x", "--loss", "1"},
		{"--id", "a", "--db", "x", "--interval-ms", "0"},
		{"--id", "a", "--db", "x", "--bogus"},
	} {
		if _, err := parsePeerFlags(args); err == nil {
			t.Errorf("parsePeerFlags(%q) accepted", args)
		}
	}
	if _, err := parseDemoFlags([]string{"--go", "1", "--python", "0", "--ts", "0"}); err == nil {
		t.Error("a demo of one participant accepted")
	}
}
