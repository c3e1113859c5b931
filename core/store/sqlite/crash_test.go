package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/sdskit/sdskit/core/clock"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// envCrashRuns sets the number of SIGKILLs of the crash test (CI's full run: 200).
const envCrashRuns = "SDSKIT_CRASH_RUNS"

const (
	crashDefaultRuns = 20
	crashSteps       = 1500 // calls per workload epoch
)

// TestCrashKill9 is the crash test. A child process (this test binary, see crashChild)
// runs the workload through sds.Manager on the SQLite store and journals (fsync'd) each
// call that returned success. The parent SIGKILLs it at a random moment — mostly while
// it works, sometimes while it is still starting — then opens the file with a fresh
// store and manager and checks it against the journal and against an uninterrupted
// reference run of the same script on store.Memory; the next child continues the
// workload on the same file from the journal's last record. When the script is
// finished the next run starts it again on a new file.
//
// Checked after every kill, per channel:
//   - the file equals the reference state after the last journaled call or after the
//     next one (the call in flight either committed entirely or not at all);
//   - every journaled wrap is in the log (unless evicted as the oldest) and in the
//     outgoing buffer unless journaled as acknowledged or given up; every journaled
//     delivery is in the log and not in the incoming buffer; every journaled buffered
//     message is still buffered unless the in-flight call may have delivered it;
//   - nothing half-applied or duplicated: log strictly ordered and unique; no message
//     both logged and buffered; no buffered message waits for a logged one; outgoing
//     entries are our own journaled (or in-flight) wraps with exactly the journaled
//     number of resends; the in-flight wrap is in the log iff it is in the outgoing
//     buffer; repair requests are for messages we do not hold; hints belong to held
//     messages; nothing from a later step of the script is present;
//   - the lamport clock is at least every logged message's and never goes backwards
//     across kills; a fresh manager bootstraps from the file;
//   - the journal's events match the reference run's, call by call (a call resumed
//     after a kill may report a subset: the part the killed process had committed),
//     and no message is ever delivered twice.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	runs := crashDefaultRuns
	if v := os.Getenv(envCrashRuns); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", envCrashRuns, v)
		}
		runs = n
	}
	msg := fmt.Sprintf("crash test: %d SIGKILL runs (set %s to change; CI's full run uses 200)", runs, envCrashRuns)
	t.Log(msg)
	fmt.Println(msg)

	w := genWorkload(wlSeed, crashSteps)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	base := t.TempDir()
	c := &crashChecker{t: t, w: w}
	c.newEpoch(base)
	started := time.Now()
	for run := 1; run <= runs; run++ {
		outcome := c.runChild(rng)
		if outcome == "done" {
			c.check(true)
			c.stats.epochs++
			c.newEpoch(base)
			continue
		}
		c.check(false)
	}
	st := c.stats
	summary := fmt.Sprintf("crash test: %d runs in %v: %d kills (%d before the child was ready), %d epochs of %d calls completed; "+
		"%d calls acknowledged in total; after a kill the in-flight call had committed (file one step ahead of the journal) %d times, "+
		"had not %d times; %d calls replayed after a restart; %d torn journal records; max calls per run %d",
		runs, time.Since(started).Round(time.Millisecond), st.kills, st.earlyKills, st.epochs, crashSteps,
		st.acked, st.ahead, st.exact, st.replayed, st.torn, st.maxPerRun)
	t.Log(summary)
	fmt.Println(summary)
	if st.kills > 0 && st.acked == 0 {
		t.Fatal("no call was ever acknowledged: the kills all came too early to test anything")
	}
}

type crashStats struct {
	kills, earlyKills, epochs, acked, ahead, exact, replayed, torn, maxPerRun int
}

// crashChecker holds the parent's view of one epoch: a directory, the journal length at
// the previous check, the lamport clocks seen so far and the reference run.
type crashChecker struct {
	t       *testing.T
	w       *workload
	dir     string
	ref     *refRunner
	epoch   int
	prevK   int
	lamport map[string]uint64
	stats   crashStats
}

func (c *crashChecker) newEpoch(base string) {
	c.epoch++
	c.dir = filepath.Join(base, fmt.Sprintf("epoch-%d", c.epoch))
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	c.ref = newRefRunner(c.w)
	c.prevK = 0
	c.lamport = map[string]uint64{}
}

// runChild starts a child on the epoch and kills it at a random moment; it returns
// "done" if the child finished the script first.
func (c *crashChecker) runChild(rng *rand.Rand) string {
	t := c.t
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"=crash", envDB+"="+c.dir, envSteps+"="+strconv.Itoa(crashSteps))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	early := rng.IntN(100) < 15
	if early {
		// Kill while the process starts, opens or bootstraps.
		time.Sleep(time.Duration(rng.Int64N(int64(40 * time.Millisecond))))
	} else {
		select {
		case l, ok := <-lines:
			if !ok || l != "ready" {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("child did not get ready (%q): %s", l, stderr.String())
			}
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child not ready after 60s: %s", stderr.String())
		}
		time.Sleep(time.Duration(rng.Int64N(int64(150 * time.Millisecond))))
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	err = cmd.Wait()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return "done" // finished the script before the kill
	case errors.As(err, &exitErr) && exitErr.Sys().(syscall.WaitStatus).Signaled():
		c.stats.kills++
		if early {
			c.stats.earlyKills++
		}
		return "killed"
	default:
		t.Fatalf("child failed: %v\n%s", err, stderr.String())
		return ""
	}
}

// check opens the file after a child ended and verifies every invariant.
func (c *crashChecker) check(finished bool) {
	t := c.t
	t.Helper()
	jpath := filepath.Join(c.dir, crashJournalName)
	recs, used, err := readJournal(jpath)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(jpath); err == nil && fi.Size() > used {
		c.stats.torn++
	}
	k := len(recs)
	if k < c.prevK {
		t.Fatalf("journal shrank from %d to %d records", c.prevK, k)
	}
	if finished && k != crashSteps {
		t.Fatalf("child reported done after %d of %d calls", k, crashSteps)
	}
	c.stats.acked += k - c.prevK
	c.stats.maxPerRun = max(c.stats.maxPerRun, k-c.prevK)
	for _, r := range recs[c.prevK:] {
		if r.Replayed {
			c.stats.replayed++
		}
	}
	c.prevK = k

	// A fresh store and manager on the file.
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(c.dir, crashDBName), Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	snaps := map[string]*pb.ChannelSnapshot{}
	for _, ch := range wlChannels {
		snaps[ch] = mustLoad(t, s, ch)
	}
	m, err := newWorkloadManager(s, clock.NewManual(wlStart), &eventLog{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range wlChannels {
		if err := m.EnsureChannel(ctx, ch); err != nil {
			t.Fatalf("a fresh manager cannot bootstrap %s after the kill: %v", ch, err)
		}
		if ms, err := m.Snapshot(ch); err != nil || ms.GetLamportTimestamp() != snaps[ch].GetLamportTimestamp() || len(ms.GetLog()) != len(snaps[ch].GetLog()) {
			t.Fatalf("manager snapshot of %s disagrees with the file: %v", ch, err)
		}
	}
	_ = m.Close()

	fail := func(format string, args ...any) {
		t.Helper()
		var b strings.Builder
		for _, ch := range wlChannels {
			fmt.Fprintf(&b, "--- file, %s\n%s\n", ch, prototext.Format(snaps[ch]))
		}
		t.Fatalf("epoch %d, after %d journaled calls: %s\n%s", c.epoch, k, fmt.Sprintf(format, args...), b.String())
	}

	// 1. The file is the reference state after k calls, or after k+1 (per channel, as a
	// sweep commits one batch per channel).
	refK := c.ref.at(k)
	var refNext map[string]*pb.ChannelSnapshot
	if k < crashSteps {
		refNext = c.ref.at(k + 1)
	}
	ahead := false
	for _, ch := range wlChannels {
		got := normalize(snaps[ch])
		switch {
		case proto.Equal(got, refK[ch]):
		case refNext != nil && proto.Equal(got, refNext[ch]):
			ahead = true
		default:
			want := fmt.Sprintf("--- reference after %d calls\n%s", k, prototext.Format(refK[ch]))
			if refNext != nil {
				want += fmt.Sprintf("--- reference after %d calls\n%s", k+1, prototext.Format(refNext[ch]))
			}
			if d := os.Getenv("SDSKIT_CRASH_DEBUG_DIR"); d != "" {
				_ = os.WriteFile(filepath.Join(d, "got.txt"), []byte(prototext.Format(got)), 0o644)
				_ = os.WriteFile(filepath.Join(d, "refk.txt"), []byte(prototext.Format(refK[ch])), 0o644)
				if refNext != nil {
					_ = os.WriteFile(filepath.Join(d, "refk1.txt"), []byte(prototext.Format(refNext[ch])), 0o644)
				}
			}
			fail("channel %s is neither the state after the last acknowledged call nor after the next one\n%s", ch, want)
		}
	}
	switch {
	case finished:
	case ahead:
		c.stats.ahead++
	default:
		c.stats.exact++
	}

	// 2. The journal against the reference run's records, and no double delivery.
	delivered := map[string]string{}    // "ch id" -> lamport, as the journal reports
	effDelivered := map[string]string{} // the same, with what resumed calls did not report

	for i, r := range recs {
		want := c.ref.recs[i]
		if r.Kind != want.Kind || r.Ch != want.Ch || r.ID != want.ID {
			fail("journal record %d is %+v, the script says %+v", i+1, r, want)
		}
		if !r.Resumed {
			if !slices.Equal(r.Events, want.Events) || r.Lamport != want.Lamport || r.Result != want.Result {
				fail("call %d reported %+v, the uninterrupted run %+v", i+1, r, want)
			}
		} else {
			for _, e := range r.Events {
				if !slices.Contains(want.Events, e) {
					fail("resumed call %d reported event %q, which the uninterrupted run did not", i+1, e)
				}
			}
		}
		for _, e := range r.Events {
			f := strings.Fields(e)
			if f[0] == "ready" {
				key := f[1] + " " + f[2]
				if _, dup := delivered[key]; dup {
					fail("message %s delivered twice (second time by call %d)", key, i+1)
				}
				delivered[key] = f[3]
			}
		}
		for _, e := range want.Events {
			if f := strings.Fields(e); f[0] == "ready" {
				effDelivered[f[1]+" "+f[2]] = f[3]
			}
		}
	}

	// 3. Invariants against the journal. A resumed call's record may lack what the
	// killed process had already committed, so the facts come from the reference
	// records, which step 2 proved the journal agrees with.
	eff := c.ref.recs[:k]
	var inflight *wlStep
	if k < crashSteps {
		inflight = &c.w.steps[k]
	}
	mayTouch := func(ch string) bool { return inflight != nil && (inflight.kind == stepSweep || inflight.ch == ch) }
	cap := workloadConfig().MaxMessageHistory
	for _, ch := range wlChannels {
		snap := snaps[ch]
		log := snap.GetLog()
		inLog := map[string]*pb.SdsMessage{}
		for i, msg := range log {
			id := msg.GetMessageId()
			if i > 0 && compareLog(log[i-1], msg) >= 0 {
				fail("%s: log not strictly ordered at %q", ch, id)
			}
			inLog[id] = msg
			if first, ok := c.w.firstSeen[id]; !ok || first > k+1 {
				fail("%s: log holds %q, which the script only introduces at step %d", ch, id, first)
			}
			if msg.GetLamportTimestamp() > snap.GetLamportTimestamp() {
				fail("%s: lamport %d is behind logged message %q (%d)", ch, snap.GetLamportTimestamp(), id, msg.GetLamportTimestamp())
			}
		}
		if len(log) > cap {
			fail("%s: log of %d entries, over MaxMessageHistory %d", ch, len(log), cap)
		}
		evicted := func(id string, lamport uint64) bool {
			return len(log) == cap && compareLog(&pb.SdsMessage{MessageId: id, LamportTimestamp: proto.Uint64(lamport)}, log[0]) < 0
		}
		if prev := c.lamport[ch]; snap.GetLamportTimestamp() < prev {
			fail("%s: lamport went back from %d to %d across a kill", ch, prev, snap.GetLamportTimestamp())
		}
		c.lamport[ch] = snap.GetLamportTimestamp()

		inIn := map[string]*pb.IncomingMessage{}
		for _, im := range snap.GetIncoming() {
			id := im.GetMessage().GetMessageId()
			if inIn[id] != nil {
				fail("%s: %q twice in the incoming buffer", ch, id)
			}
			inIn[id] = im
			if inLog[id] != nil {
				fail("%s: %q both delivered (logged) and still waiting", ch, id)
			}
			if first, ok := c.w.firstSeen[id]; !ok || first > k+1 {
				fail("%s: incoming buffer holds %q from step %d", ch, id, first)
			}
			if _, ok := effDelivered[ch+" "+id]; ok {
				fail("%s: %q journaled as delivered but still waiting", ch, id)
			}
			if len(im.GetMissingDependencies()) == 0 {
				fail("%s: %q waits for nothing", ch, id)
			}
			for _, d := range im.GetMissingDependencies() {
				if inLog[d] != nil {
					fail("%s: %q still waits for %q, which is in the log", ch, id, d)
				}
			}
		}

		// Journaled facts of this channel.
		wraps := map[string]uint64{} // id -> lamport
		gone := map[string]bool{}    // acked or given up
		resends := map[string]uint32{}
		buffered := map[string]bool{}
		for _, r := range eff {
			if r.Kind == "wrap" && r.Ch == ch {
				wraps[r.ID] = r.Lamport
			}
			if r.Kind == "recv" && r.Ch == ch && r.Result == "buffered" {
				buffered[r.ID] = true
			}
			for _, e := range r.Events {
				f := strings.Fields(e)
				if f[1] != ch {
					continue
				}
				switch f[0] {
				case "acked", "gaveup":
					gone[f[2]] = true
				case "resend":
					resends[f[2]]++
				case "ready":
					delete(buffered, f[2])
				}
			}
		}
		inOut := map[string]*pb.UnacknowledgedMessage{}
		for _, u := range snap.GetOutgoing() {
			id := u.GetMessage().GetMessageId()
			if inOut[id] != nil {
				fail("%s: %q twice in the outgoing buffer", ch, id)
			}
			inOut[id] = u
			_, journaled := wraps[id]
			isInflightWrap := inflight != nil && inflight.kind == stepWrap && inflight.id == id
			if !journaled && !isInflightWrap {
				fail("%s: outgoing buffer holds %q, not a journaled or in-flight wrap", ch, id)
			}
			if gone[id] {
				fail("%s: %q journaled as acknowledged or given up but still outgoing", ch, id)
			}
			if got, want := u.GetResendAttempts(), resends[id]; got != want && !(got == want+1 && inflight != nil && inflight.kind == stepSweep) {
				fail("%s: %q has %d resends, the journal %d", ch, id, got, want)
			}
		}
		for id, lamport := range wraps {
			if inLog[id] == nil && !evicted(id, lamport) {
				fail("%s: journaled wrap %q missing from the log", ch, id)
			}
			if inOut[id] == nil && !gone[id] && !(mayTouch(ch) && inflight.kind != stepWrap) {
				fail("%s: journaled wrap %q left the outgoing buffer unacknowledged", ch, id)
			}
			if lamport > snap.GetLamportTimestamp() {
				fail("%s: lamport %d is behind journaled wrap %q (%d)", ch, snap.GetLamportTimestamp(), id, lamport)
			}
		}
		for key, l := range effDelivered {
			f := strings.Fields(key)
			if f[0] != ch {
				continue
			}
			lamport, _ := strconv.ParseUint(l, 10, 64)
			if inLog[f[1]] == nil && !evicted(f[1], lamport) {
				fail("%s: journaled delivery %q missing from the log", ch, f[1])
			}
		}
		for id := range buffered {
			if inIn[id] == nil && !mayTouch(ch) {
				fail("%s: journaled buffered message %q is neither waiting nor delivered", ch, id)
			}
		}
		if inflight != nil && inflight.kind == stepWrap && inflight.ch == ch && (inLog[inflight.id] != nil) != (inOut[inflight.id] != nil) {
			fail("%s: in-flight wrap %q half applied (in log: %v, outgoing: %v)", ch, inflight.id, inLog[inflight.id] != nil, inOut[inflight.id] != nil)
		}
		for _, e := range snap.GetOutgoingRepair() {
			if id := e.GetEntry().GetMessageId(); inLog[id] != nil || inIn[id] != nil {
				fail("%s: repair request for %q, which we hold", ch, id)
			}
		}
		for _, e := range snap.GetIncomingRepair() {
			if id := e.GetEntry().GetMessageId(); c.w.firstSeen[id] == 0 || !strings.HasPrefix(id, "a-") {
				fail("%s: repair answer pending for %q, not one of our messages", ch, id)
			}
		}
		for _, h := range snap.GetRetrievalHints() {
			if id := h.GetMessageId(); inLog[id] == nil && inIn[id] == nil {
				fail("%s: hint kept for %q, which is no longer held", ch, id)
			}
		}
	}
}
