package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"google.golang.org/protobuf/proto"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// populated returns a store holding some state on channel "ch", and that state.
func populated(t *testing.T) (*Store, *pb.ChannelSnapshot) {
	t.Helper()
	return populatedWith(t, Options{})
}

// populatedWith is populated on a store opened with opts.
func populatedWith(t *testing.T, opts Options) (*Store, *pb.ChannelSnapshot) {
	t.Helper()
	s := openTemp(t, opts)
	mustApply(t, s, batchOf("ch",
		saveLamport("ch", 7),
		appendLog("ch", sdsMsg("old", 1)),
		setHint("ch", "old", []byte("h-old")),
		saveOut("ch", outEntry("o1", 0)),
		saveIn("ch", &pb.IncomingMessage{Message: sdsMsg("in1", 3), MissingDependencies: []string{"x"}}),
		saveOutRepair("ch", &pb.OutgoingRepairEntry{Entry: &pb.HistoryEntry{MessageId: "x"}}),
		saveInRepair("ch", &pb.IncomingRepairEntry{Entry: &pb.HistoryEntry{MessageId: "old"}, CachedMessage: []byte("c")}),
	))
	return s, mustLoad(t, s, "ch")
}

// direct applies every batch to the tables in its own transaction: the atomicity tests
// below check that transaction (journal_test.go checks the fold's).
var direct = Options{JournalBatches: 1}

// bigBatch touches every table of "ch", with the op at index failAt being the one a
// test makes fail.
func bigBatch() *pb.PersistenceBatch {
	return batchOf("ch",
		saveLamport("ch", 99),
		appendLog("ch", sdsMsg("new", 9)),
		removeLog("ch", "old"),
		setHint("ch", "new", []byte("h-new")),
		saveOut("ch", outEntry("o1", 5)),
		saveOut("ch", outEntry("boom", 0)),
		removeIn("ch", "in1"),
		removeOutRepair("ch", "x"),
		removeInRepair("ch", "old"),
	)
}

func TestAtomicityTriggerRaise(t *testing.T) {
	for _, mode := range []string{"ABORT", "FAIL", "ROLLBACK"} {
		t.Run(mode, func(t *testing.T) {
			s, before := populatedWith(t, direct)
			s.execForTest(t, `CREATE TRIGGER test_boom BEFORE INSERT ON outgoing WHEN NEW.id = 'boom'
				BEGIN SELECT RAISE(`+mode+`, 'injected failure on boom'); END`)
			err := s.Apply(context.Background(), bigBatch())
			if err == nil || !strings.Contains(err.Error(), "injected failure on boom") || !strings.Contains(err.Error(), "op 5 (SaveOutgoing)") {
				t.Fatalf("Apply error = %v, want the trigger's failure at op 5", err)
			}
			assertSnapshot(t, mustLoad(t, s, "ch"), before)

			// The store stays usable, and the same batch succeeds once the fault is gone.
			s.execForTest(t, `DROP TRIGGER test_boom`)
			mustApply(t, s, bigBatch())
			after := mustLoad(t, s, "ch")
			if after.GetLamportTimestamp() != 99 || len(after.GetLog()) != 1 || len(after.GetOutgoing()) != 2 || len(after.GetIncoming()) != 0 {
				t.Fatalf("batch not applied after healing: %v", after)
			}
		})
	}
}

func TestAtomicityContextCancelledMidBatch(t *testing.T) {
	s, before := populatedWith(t, direct)
	ctx, cancel := context.WithCancel(context.Background())
	ran := 0
	s.afterOp = func(_ context.Context, i int) {
		ran = i + 1
		if i == 3 {
			cancel()
		}
	}
	err := s.Apply(ctx, bigBatch())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply error = %v, want context.Canceled", err)
	}
	if ran != 4 {
		t.Fatalf("%d ops ran, want the batch stopped after op 3", ran)
	}
	s.afterOp = nil
	assertSnapshot(t, mustLoad(t, s, "ch"), before)
	mustApply(t, s, bigBatch())
}

func TestAtomicityContextCancelledBeforeCommit(t *testing.T) {
	s, before := populatedWith(t, direct)
	ctx, cancel := context.WithCancel(context.Background())
	s.afterOp = func(_ context.Context, i int) {
		if i == len(bigBatch().GetOps())-1 {
			cancel() // every op ran; the commit must not happen
		}
	}
	if err := s.Apply(ctx, bigBatch()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply error = %v, want context.Canceled", err)
	}
	s.afterOp = nil
	assertSnapshot(t, mustLoad(t, s, "ch"), before)
}

func TestAtomicityInvalidEntries(t *testing.T) {
	s, before := populated(t)
	badUTF8 := sdsMsg("bad", 1)
	badUTF8.SenderId = "\xff\xfe" // proto3 strings must be UTF-8: the encoder refuses it
	cases := map[string]*pb.PersistenceOp{
		"SaveOutgoing without message": saveOut("ch", &pb.UnacknowledgedMessage{}),
		"op of another channel":        removeOut("other", "o1"),
		"empty op":                     {},
		"unencodable message":          appendLog("ch", badUTF8),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			b := bigBatch()
			b.Ops = append(b.Ops[:6:6], append([]*pb.PersistenceOp{bad}, b.Ops[6:]...)...)
			err := s.Apply(context.Background(), b)
			if err == nil {
				t.Fatal("Apply accepted a batch with an invalid op")
			}
			t.Log(err)
			assertSnapshot(t, mustLoad(t, s, "ch"), before)
		})
	}
	if err := s.Apply(context.Background(), nil); !errors.Is(err, store.ErrInvalidBatch) {
		t.Fatalf("Apply(nil) = %v, want ErrInvalidBatch", err)
	}
}

func TestEmptyBatchAndUnknownChannel(t *testing.T) {
	s := openTemp(t, Options{})
	mustApply(t, s, batchOf("ch"))
	assertSnapshot(t, mustLoad(t, s, "nobody"), &pb.ChannelSnapshot{ChannelId: "nobody"})
}

func TestClosedStore(t *testing.T) {
	s := openTemp(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Apply(context.Background(), batchOf("ch", saveLamport("ch", 1))); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Apply after Close = %v", err)
	}
	if _, err := s.Load(context.Background(), "ch"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Load after Close = %v", err)
	}
}

func TestOptionsValidated(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{{Synchronous: "SOMETIMES"}, {BusyTimeout: -time.Second}} {
		if _, err := Open(context.Background(), filepath.Join(dir, "x.db"), o); err == nil {
			t.Fatalf("Open accepted %+v", o)
		}
	}
	for _, sync := range []string{"", "normal", "FULL", "OFF"} {
		s, err := Open(context.Background(), filepath.Join(dir, "x.db"), Options{Synchronous: sync})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{"": 1, "normal": 1, "FULL": 2, "OFF": 0}[sync]
		if got := s.queryIntForTest(t, "PRAGMA synchronous"); got != want {
			t.Errorf("Synchronous %q: PRAGMA synchronous = %d, want %d", sync, got, want)
		}
		var mode string
		_ = s.conn.QueryRowContext(context.Background(), "PRAGMA journal_mode").Scan(&mode)
		if mode != "wal" {
			t.Errorf("journal_mode = %q, want wal", mode)
		}
		_ = s.Close()
	}
	if _, err := Open(context.Background(), "", Options{}); err == nil {
		t.Fatal("Open accepted an empty path")
	}
	if _, err := Open(context.Background(), dir, Options{}); err == nil {
		t.Fatal("Open accepted a directory")
	}
}

func TestSchemaVersionRecorded(t *testing.T) {
	s := openTemp(t, Options{})
	if got := s.queryIntForTest(t, "SELECT version FROM schema_version"); got != int64(SchemaVersion) {
		t.Fatalf("schema_version = %d, want %d", got, SchemaVersion)
	}
	if got := s.queryIntForTest(t, "SELECT count(*) FROM schema_version"); got != 1 {
		t.Fatalf("schema_version has %d rows", got)
	}
}

// rawExec runs SQL on a database file without the store (and without its lock).
func rawExec(t *testing.T, path string, queries ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range queries {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "future.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, batchOf("ch", saveLamport("ch", 3)))
	_ = s.Close()
	rawExec(t, path, "UPDATE schema_version SET version = 7")

	_, err = Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "schema version 7") || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a v7 database = %v, want a clear ErrNewerSchema", err)
	}
	t.Log(err)
	// The refusal changed nothing, and the lock was released.
	rawExec(t, path, "UPDATE schema_version SET version = "+strconv.Itoa(SchemaVersion))
	s, err = Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := mustLoad(t, s, "ch").GetLamportTimestamp(); got != 3 {
		t.Fatalf("lamport = %d after the refused open", got)
	}
}

func TestMigratesEmptyDatabaseAndRefusesForeignOne(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	rawExec(t, empty, "PRAGMA user_version = 0")
	s, err := Open(context.Background(), empty, Options{})
	if err != nil {
		t.Fatalf("Open of an empty SQLite file: %v", err)
	}
	_ = s.Close()

	foreign := filepath.Join(dir, "foreign.db")
	rawExec(t, foreign, "CREATE TABLE customers (id INTEGER)")
	_, err = Open(context.Background(), foreign, Options{})
	if !errors.Is(err, ErrNotSdskit) {
		t.Fatalf("Open of a foreign database = %v, want ErrNotSdskit", err)
	}
	t.Log(err)
}

func TestCorruptFile(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(r.UintN(256))
	}
	t.Run("random bytes", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "random.db")
		if err := os.WriteFile(path, random, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(context.Background(), path, Options{})
		if err == nil || !strings.Contains(err.Error(), "not an SQLite database or is corrupt") {
			t.Fatalf("Open of random bytes = %v", err)
		}
		t.Log(err)
	})
	t.Run("text file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "notes.txt")
		if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 500)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(context.Background(), path, Options{}); err == nil {
			t.Fatal("Open accepted a text file")
		}
	})
	// A real database, damaged: the damage shows at Open, Load or Apply, as an error.
	for _, damage := range []string{"pages overwritten", "tail overwritten", "truncated"} {
		t.Run(damage, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "damaged.db")
			s, err := Open(context.Background(), path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 200 {
				id := string(rune('a'+i%26)) + strings.Repeat("x", i)
				mustApply(t, s, batchOf("ch", appendLog("ch", sdsMsg(id, uint64(i))), saveOut("ch", outEntry(id, 0))))
			}
			_ = s.Close() // checkpoints the WAL into the file
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			switch damage {
			case "pages overwritten":
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				junk := make([]byte, fi.Size()-4096)
				for i := range junk {
					junk[i] = byte(r.UintN(256))
				}
				if _, err := f.WriteAt(junk, 4096); err != nil {
					t.Fatal(err)
				}
				_ = f.Close()
			case "tail overwritten": // the schema survives, the data pages do not
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				junk := make([]byte, fi.Size()/2)
				for i := range junk {
					junk[i] = byte(r.UintN(256))
				}
				if _, err := f.WriteAt(junk, fi.Size()-int64(len(junk))); err != nil {
					t.Fatal(err)
				}
				_ = f.Close()
			case "truncated":
				if err := os.Truncate(path, fi.Size()/3); err != nil {
					t.Fatal(err)
				}
			}
			s, err = Open(context.Background(), path, Options{})
			if err != nil {
				t.Logf("Open: %v", err)
				return
			}
			defer s.Close()
			_, errLoad := s.Load(context.Background(), "ch")
			errApply := s.Apply(context.Background(), batchOf("ch", appendLog("ch", sdsMsg("more", 1000))))
			if errLoad == nil && errApply == nil {
				t.Fatal("a damaged database gave no error")
			}
			t.Logf("Load: %v; Apply: %v", errLoad, errApply)
		})
	}
}

func TestDoubleOpenSameProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "one.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "in use by another sdskit manager") {
		t.Fatalf("second Open = %v, want ErrInUse", err)
	}
	t.Log(err)
	// Another spelling of the same path (relative, through a symlink) is the same file.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(filepath.Dir(path), link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), filepath.Join(link, "one.db"), Options{}); !errors.Is(err, ErrInUse) {
		t.Fatalf("Open through a symlink = %v, want ErrInUse", err)
	}
	_ = s.Close()
	s, err = Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = s.Close()
}

// TestDoubleOpenOtherProcess holds the database in a child process: Open here fails
// while it lives and succeeds once it is killed (the kernel drops its lock).
func TestDoubleOpenOtherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"=hold", envDB+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if line, err := readLine(out, 30*time.Second); err != nil || line != "ready" {
		t.Fatalf("helper: %q, %v", line, err)
	}
	_, err = Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("Open while another process holds the database = %v, want ErrInUse", err)
	}
	t.Log(err)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Open after the holder died: %v", err)
	}
	_ = s.Close()
}

// TestLockedByAnotherConnection: a connection outside the store (a sqlite3 shell, say)
// holding the write lock makes Apply fail after BusyTimeout, with a clear error.
func TestLockedByAnotherConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	s, err := Open(context.Background(), path, Options{BusyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	err = s.Apply(context.Background(), batchOf("ch", saveLamport("ch", 1)))
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("Apply while another connection writes = %v, want a 'locked' error", err)
	}
	t.Log(err)
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, batchOf("ch", saveLamport("ch", 1)))
}

// TestReadOnly: as root, chmod does not stop writes, so the test then injects the fault
// with PRAGMA query_only on the live connection and with a mode=ro reopen; otherwise it
// makes the file and its directory read-only.
func TestReadOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ro.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, batchOf("ch", saveLamport("ch", 1)))
	if os.Geteuid() == 0 {
		t.Log("running as root: chmod cannot stop writes; injecting read-only with PRAGMA query_only and a mode=ro reopen")
		s.execForTest(t, "PRAGMA query_only = 1")
		err := s.Apply(context.Background(), batchOf("ch", saveLamport("ch", 2)))
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Fatalf("Apply on a read-only connection = %v", err)
		}
		t.Log(err)
		s.execForTest(t, "PRAGMA query_only = 0")
		mustApply(t, s, batchOf("ch", saveLamport("ch", 2)))
		_ = s.Close()
		if _, err := Open(context.Background(), path, Options{readOnly: true}); err == nil {
			t.Fatal("Open with mode=ro succeeded; the store must refuse a database it cannot write")
		} else {
			t.Log(err)
		}
	} else {
		t.Log("not root: making the database file and its directory read-only with chmod")
		_ = s.Close()
		for _, p := range []string{path, path + "-wal", path + "-shm", path + ".lock"} {
			_ = os.Chmod(p, 0o444)
		}
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o755)
		if s, err := Open(context.Background(), path, Options{}); err == nil {
			err = s.Apply(context.Background(), batchOf("ch", saveLamport("ch", 2)))
			_ = s.Close()
			if err == nil {
				t.Fatal("a read-only database accepted a write")
			}
			t.Log(err)
		} else {
			t.Log(err)
		}
		_ = os.Chmod(dir, 0o755)
		_ = os.Chmod(path, 0o644)
		_ = os.Chmod(path+".lock", 0o644)
	}
	s, err = Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Open once writable again: %v", err)
	}
	defer s.Close()
	mustApply(t, s, batchOf("ch", saveLamport("ch", 3)))
}

// TestDiskFull: with PRAGMA max_page_count at the current size, a batch that needs new
// pages fails with SQLITE_FULL and leaves the file unchanged; raising the limit heals it.
func TestDiskFull(t *testing.T) {
	s, before := populated(t)
	pages := s.queryIntForTest(t, "PRAGMA page_count")
	s.execForTest(t, "PRAGMA max_page_count = "+strconv.FormatInt(pages, 10))
	big := sdsMsg("big", 50)
	big.Content = make([]byte, 256<<10)
	b := batchOf("ch", saveLamport("ch", 50), appendLog("ch", big), saveOut("ch", &pb.UnacknowledgedMessage{Message: big}))
	err := s.Apply(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("Apply beyond max_page_count = %v, want a 'full' error", err)
	}
	t.Log(err)
	assertSnapshot(t, mustLoad(t, s, "ch"), before)
	s.execForTest(t, "PRAGMA max_page_count = 1000000")
	mustApply(t, s, b)
	if got := mustLoad(t, s, "ch").GetLamportTimestamp(); got != 50 {
		t.Fatalf("lamport = %d after healing", got)
	}
}

func TestConcurrentChannels(t *testing.T) {
	s := openTemp(t, Options{Synchronous: "OFF"})
	ctx := context.Background()
	const channels, rounds = 6, 60
	errs := make(chan error, channels)
	for c := range channels {
		ch := "ch-" + strconv.Itoa(c)
		go func() {
			for i := range rounds {
				id := "m" + strconv.Itoa(i)
				if err := s.Apply(ctx, batchOf(ch, saveLamport(ch, uint64(i)), appendLog(ch, sdsMsg(id, uint64(i))), saveOut(ch, outEntry(id, 0)))); err != nil {
					errs <- err
					return
				}
				if i%10 == 0 {
					if _, err := s.Load(ctx, ch); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range channels {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for c := range channels {
		snap := mustLoad(t, s, "ch-"+strconv.Itoa(c))
		if len(snap.GetLog()) != rounds || len(snap.GetOutgoing()) != rounds || snap.GetLamportTimestamp() != rounds-1 {
			t.Fatalf("channel %d: log %d, outgoing %d, lamport %d", c, len(snap.GetLog()), len(snap.GetOutgoing()), snap.GetLamportTimestamp())
		}
	}
}

// TestQueryPlans pins the indexes the hot statements rely on: the log is read in
// (channel, lamport, id) order from the log_order index, without a sort, and every
// write finds its row by primary key.
func TestQueryPlans(t *testing.T) {
	s := openTemp(t, Options{})
	plan := func(query string) string {
		s.mu.Lock()
		defer s.mu.Unlock()
		rows, err := s.conn.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			out = append(out, detail)
		}
		return strings.Join(out, "; ")
	}
	for query, want := range map[string]string{
		"SELECT id, message FROM log WHERE channel = 'c' ORDER BY lamport, id": "USING INDEX log_order (channel=?)",
		"DELETE FROM log WHERE channel = 'c' AND id = 'x'":                     "USING PRIMARY KEY (channel=? AND id=?)",
		"DELETE FROM outgoing WHERE channel = 'c' AND id = 'x'":                "USING INDEX sqlite_autoindex_outgoing_1 (channel=? AND id=?)",
		"DELETE FROM hints WHERE channel = 'c'":                                "USING PRIMARY KEY (channel=?)",
	} {
		got := plan(query)
		if !strings.Contains(got, want) || strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("plan of %q = %q, want %q without a sort", query, got, want)
		}
	}
}

// TestForwardMigration adds a v2 to the migrations, as a later version of this package
// will: a v1 file is migrated in place (data kept), a failing migration changes nothing,
// and this code (v1) then refuses the v2 file.
func TestForwardMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "migrate.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, batchOf("ch", saveLamport("ch", 5), appendLog("ch", sdsMsg("m", 1))))
	want := mustLoad(t, s, "ch")
	_ = s.Close()

	migrateRaw := func(steps []string) error {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return migrateWith(ctx, conn, steps)
	}
	bad := append(migrations[:], "CREATE TABLE v2_extra (x INTEGER); CREATE TABLE log (x INTEGER)")
	if err := migrateRaw(bad); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("migrate schema v%d to v%d", len(migrations), len(migrations)+1)) {
		t.Fatalf("failing migration = %v", err)
	}
	s, err = Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open after a failed migration: %v", err)
	}
	if got := s.queryIntForTest(t, "SELECT count(*) FROM sqlite_schema WHERE name = 'v2_extra'"); got != 0 {
		t.Fatal("a failed migration left a table behind")
	}
	_ = s.Close()

	good := append(migrations[:], "CREATE TABLE v2_extra (x INTEGER); ALTER TABLE log ADD COLUMN note TEXT")
	if err := migrateRaw(good); err != nil {
		t.Fatalf("v1 to v2: %v", err)
	}
	rawExec(t, path) // the file is still a valid database
	next := len(migrations) + 1
	if _, err := Open(ctx, path, Options{}); !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), fmt.Sprintf("schema version %d", next)) {
		t.Fatalf("Open of the v%d file = %v, want ErrNewerSchema", next, err)
	}
	// The data survived the migration.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version, logged int
	if err := db.QueryRow("SELECT version FROM schema_version").Scan(&version); err != nil || version != next {
		t.Fatalf("version = %d, %v", version, err)
	}
	if err := db.QueryRow("SELECT count(*) FROM log WHERE channel = 'ch' AND note IS NULL").Scan(&logged); err != nil || logged != len(want.GetLog()) {
		t.Fatalf("log rows after migration = %d, %v", logged, err)
	}
}

// TestPanicInsideBatch: a panic in the middle of a batch (standing in for a driver
// panic) becomes an error, nothing of the batch is kept, and the store reconnects.
func TestPanicInsideBatch(t *testing.T) {
	s, before := populatedWith(t, direct)
	s.afterOp = func(_ context.Context, i int) {
		if i == 2 {
			panic("boom")
		}
	}
	err := s.Apply(context.Background(), bigBatch())
	if err == nil || !strings.Contains(err.Error(), "driver panic") {
		t.Fatalf("Apply = %v, want the panic as an error", err)
	}
	s.afterOp = nil
	assertSnapshot(t, mustLoad(t, s, "ch"), before)
	mustApply(t, s, bigBatch())
}

// TestMigrationFromV1KeepsEveryRow writes a database in schema v1 (WITHOUT ROWID buffer
// tables) holding every kind of row, opens it with this version, which migrates it, and
// checks that the channel loads exactly as before and stays writable.
func TestMigrationFromV1KeepsEveryRow(t *testing.T) {
	ctx := context.Background()
	src, want := populated(t)
	mustApply(t, src, batchOf("ch", saveOut("ch", outEntry("o2", 1)), saveOut("ch", outEntry("o0", 2))))
	want = mustLoad(t, src, "ch")
	srcPath := src.path
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateWith(ctx, conn, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	copyRows := []string{"ATTACH DATABASE '" + srcPath + "' AS src"}
	for _, tbl := range []string{"lamport", "log", "hints"} {
		copyRows = append(copyRows, "INSERT INTO main."+tbl+" SELECT * FROM src."+tbl)
	}
	for _, tbl := range tableNames {
		copyRows = append(copyRows, "INSERT INTO main."+tbl+" (channel, id, seq, blob) SELECT channel, id, seq, blob FROM src."+tbl)
	}
	copyRows = append(copyRows, "DETACH DATABASE src")
	for _, q := range copyRows {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close()
	db.Close()

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open of a v1 database: %v", err)
	}
	defer s.Close()
	if got := s.queryIntForTest(t, "SELECT version FROM schema_version"); got != int64(SchemaVersion) {
		t.Fatalf("schema_version after migration = %d, want %d", got, SchemaVersion)
	}
	if got := mustLoad(t, s, "ch"); !proto.Equal(got, want) {
		t.Fatalf("after migration:\n got %v\nwant %v", got, want)
	}
	// Insertion order survives (o1, o2, o0), and a new row still goes last.
	mustApply(t, s, batchOf("ch", saveOut("ch", outEntry("o3", 0))))
	var ids []string
	for _, u := range mustLoad(t, s, "ch").GetOutgoing() {
		ids = append(ids, u.GetMessage().GetMessageId())
	}
	if strings.Join(ids, ",") != "o1,o2,o0,o3" {
		t.Fatalf("outgoing order after migration = %v", ids)
	}
}
