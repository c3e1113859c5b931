package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/clock"
)

// The test binary doubles as the helper process of the multi-process tests: with
// envHelper set, TestMain runs the helper instead of the tests.
const (
	envHelper = "SDSKIT_SQLITE_TEST_HELPER" // "hold" or "crash"
	envDB     = "SDSKIT_SQLITE_TEST_DB"     // hold: the database path; crash: the run's directory
	envSteps  = "SDSKIT_SQLITE_TEST_STEPS"  // crash: the length of the workload
)

func TestMain(m *testing.M) {
	switch os.Getenv(envHelper) {
	case "":
		os.Exit(m.Run())
	case "hold":
		os.Exit(holdHelper(os.Getenv(envDB)))
	case "crash":
		os.Exit(crashChild(os.Getenv(envDB)))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", envHelper, os.Getenv(envHelper))
		os.Exit(2)
	}
}

// holdHelper opens the database, says "ready" and waits to be killed.
func holdHelper(path string) int {
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer s.Close()
	fmt.Println("ready")
	time.Sleep(time.Hour)
	return 0
}

// readLine reads one line from r within timeout.
func readLine(r io.Reader, timeout time.Duration) (string, error) {
	type res struct {
		line string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		ch <- res{line: string(bytes.TrimSpace([]byte(line))), err: err}
	}()
	select {
	case r := <-ch:
		return r.line, r.err
	case <-time.After(timeout):
		return "", errors.New("timed out")
	}
}

// Files of a crash-test run directory.
const (
	crashDBName      = "alice.db"
	crashJournalName = "journal.jsonl"
)

// readJournal returns the complete records of the journal and the byte length they
// occupy; a torn last line (the writer was killed mid-write) is not a record.
func readJournal(path string) ([]stepRecord, int64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var recs []stepRecord
	var used int64
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		var r stepRecord
		if err := json.Unmarshal(b[:i], &r); err != nil {
			return nil, 0, fmt.Errorf("journal record %d: %w", len(recs)+1, err)
		}
		if r.Step != len(recs)+1 {
			return nil, 0, fmt.Errorf("journal record %d is for step %d", len(recs)+1, r.Step)
		}
		recs = append(recs, r)
		used += int64(i + 1)
		b = b[i+1:]
	}
	return recs, used, nil
}

// crashChild runs the workload from where the journal says the previous process
// stopped, appending (and fsyncing) one journal record after each call returned
// success. It prints "ready" once the store and manager are open and "done" at the end
// of the script. The parent kills it with SIGKILL at a random moment.
func crashChild(dir string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "crash child: "+format+"\n", args...)
		return 3
	}
	steps, err := strconv.Atoi(os.Getenv(envSteps))
	if err != nil {
		return fail("bad %s: %v", envSteps, err)
	}
	jpath := filepath.Join(dir, crashJournalName)
	recs, used, err := readJournal(jpath)
	if err != nil {
		return fail("%v", err)
	}
	w := genWorkload(wlSeed, steps)
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(dir, crashDBName), Options{})
	if err != nil {
		return fail("open: %v", err)
	}
	start := wlStart
	if len(recs) > 0 {
		start = w.steps[len(recs)-1].at
	}
	clk, ev := clock.NewManual(start), &eventLog{}
	m, err := newWorkloadManager(s, clk, ev)
	if err != nil {
		return fail("manager: %v", err)
	}
	j, err := os.OpenFile(jpath, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fail("journal: %v", err)
	}
	if err := j.Truncate(used); err != nil { // drop a torn record
		return fail("journal: %v", err)
	}
	if _, err := j.Seek(used, io.SeekStart); err != nil {
		return fail("journal: %v", err)
	}
	fmt.Println("ready")
	for n := len(recs) + 1; n <= steps; n++ {
		rec, err := runStep(ctx, m, clk, ev, w, n, n == len(recs)+1)
		if err != nil {
			return fail("%v", err)
		}
		line, _ := json.Marshal(rec)
		if _, err := j.Write(append(line, '\n')); err != nil {
			return fail("journal: %v", err)
		}
		if err := j.Sync(); err != nil {
			return fail("journal: %v", err)
		}
	}
	_ = m.Close()
	if err := s.Close(); err != nil {
		return fail("close: %v", err)
	}
	fmt.Println("done")
	return 0
}
