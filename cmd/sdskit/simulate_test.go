package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func quickSimArgs(dir string, seed string) []string {
	return []string{"-peers", "5", "-messages", "25", "-seed", seed, "-loss", "0.2", "-latency", "exponential",
		"-latency-min", "5ms", "-latency-mean", "80ms", "-partition", "10s-40s:2", "-churn-rate", "30",
		"-churn-offline", "10s", "-churn-restart", "0.5", "-repair-tmin", "2s", "-repair-tmax", "2m",
		"-sync-interval", "15s", "-resend-interval", "10s", "-bloom-capacity", "500", "-settle", "1h",
		"-progress", "lines", "-out", dir}
}

func runSim(t *testing.T, args []string) (stdout, stderr string, err error) {
	t.Helper()
	f, err := parseSimFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err = runSimulation(context.Background(), f, &out, &errb)
	return out.String(), errb.String(), err
}

func TestSimulateIsDeterministic(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var summaries [][]byte
	for i, d := range dirs {
		seed := "7"
		if i == 2 {
			seed = "8"
		}
		stdout, stderr, err := runSim(t, quickSimArgs(d, seed))
		if err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		if !strings.Contains(stdout, "converged       yes") || !strings.Contains(stdout, "per participant") {
			t.Fatalf("summary table:\n%s", stdout)
		}
		if !strings.Contains(stderr, "simulate: 100%") || strings.Contains(stderr, "\r") {
			t.Fatalf("progress lines:\n%q", stderr)
		}
		b, err := os.ReadFile(filepath.Join(d, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		summaries = append(summaries, b)
		for _, png := range []string{"latency_cdf.png", "bytes_per_delivered.png", "repair_resend.png"} {
			if st, err := os.Stat(filepath.Join(d, png)); err != nil || st.Size() < 1000 {
				t.Fatalf("%s: %v", png, err)
			}
		}
	}
	if !bytes.Equal(summaries[0], summaries[1]) {
		t.Fatal("same seed, different summary.json")
	}
	if bytes.Equal(summaries[0], summaries[2]) {
		t.Fatal("different seeds, same summary.json")
	}
	var s struct {
		Converged bool `json:"converged"`
		Scenario  struct {
			Config struct{ RepairTMax time.Duration }
		} `json:"scenario"`
	}
	if err := json.Unmarshal(summaries[0], &s); err != nil {
		t.Fatal(err)
	}
	if !s.Converged || s.Scenario.Config.RepairTMax != 2*time.Minute {
		t.Fatalf("summary.json: %+v", s)
	}
}

func TestSimulateNotConvergedFails(t *testing.T) {
	// One minute of settling cannot repair 50 % loss with these timers: the outputs are
	// still written and the command fails.
	d := t.TempDir()
	args := append(quickSimArgs(d, "1"), "-loss", "0.5", "-settle", "0s", "-churn-rate", "0")
	stdout, _, err := runSim(t, args)
	if err != errNotConverged {
		t.Fatalf("err = %v\n%s", err, stdout)
	}
	if _, err := os.Stat(filepath.Join(d, "summary.json")); err != nil {
		t.Fatal(err)
	}
}

func TestSimulateFlagsRejectBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"-partition", "10m:2"},
		{"-partition", "10m-5m:2"},
		{"-partition", "1m-5m:1"},
		{"-latency", "pareto"},
		{"-latency", "exponential", "-latency-mean", "1ms", "-latency-min", "5ms"},
		{"-lost-policy", "keep"},
		{"-progress", "fancy"},
		{"-peers", "1"},
		{"-repair-tmax", "1s", "-repair-tmin", "2s"},
		{"-bloom-error-rate", "2"},
		{"-persistence", "disk"},
		{"-churn-rate", "5", "-churn-offline", "0s"},
		{"extra"},
	} {
		if _, err := parseSimFlags(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
