// Package sqlite is the embedded, crash-safe persistence backend of the core: a
// store.Backend on an SQLite database file, in pure Go (modernc.org/sqlite, no C
// toolchain needed).
//
// Every PersistenceBatch is committed in one SQL transaction, in WAL mode, so a batch is
// on disk entirely or not at all even when the process is killed mid-write.
// Synchronous=NORMAL (the default) survives a crash of the process; FULL also survives a
// power loss, at the price of one fsync per batch.
//
// A batch is committed as one row of a journal table (the encoded PersistenceBatch):
// appending a row touches one or two pages, where applying the batch to the tables
// touches eight to ten (log, its order index, the buffer and its id index, the Lamport
// row, the page that frees or allocates), and every page is a frame written to the WAL.
// Once the journal holds Options.JournalBatches rows, the next Apply first folds them
// into the tables in one transaction (the same statements, in order, then the rows
// deleted); a Load folds first too. A crash during a fold rolls it back, and the journal
// is folded again later: every committed batch is applied to the tables exactly once.
//
// The file is single-owner: Open takes an exclusive advisory lock (flock) on
// "<path>.lock", and a second Open of the same database — from this process or
// another — fails with an error saying the database is in use by another sdskit manager.
//
// Every failure is an error value (never a panic) whose text starts with "sqlite store:";
// the core reports it as PERSISTENCE.
//
// The semantics of the 13 writes are those of store.Memory (upserts keep the position of
// the outgoing, incoming and repair entries they replace, removals of absent rows
// succeed, DropChannel wipes every table of the channel), with one addition: a
// RemoveLogEntry also deletes that message's retrieval hint, since a hint lives only as
// long as its message is held.
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/sdskit/sdskit/core/store"
	pb "github.com/sdskit/sdskit/gen/go/sdskit/v1"
)

// Options tune Open. The zero value is the recommended configuration.
type Options struct {
	// Synchronous is SQLite's synchronous level: "NORMAL" (default; in WAL mode a
	// committed batch survives a crash of the process, and a power loss may lose the
	// last batches but never corrupts the file), "FULL" (a committed batch also survives
	// a power loss; one fsync per batch) or "OFF" (no fsync at all; tests only).
	Synchronous string
	// BusyTimeout is how long a statement waits for a lock held by another connection
	// to the file (e.g. a sqlite3 shell inspecting it) before failing; default 5s.
	BusyTimeout time.Duration
	// JournalBatches is how many committed batches the journal holds before they are
	// folded into the tables (see the package doc); default DefaultJournalBatches. 1
	// applies every batch to the tables directly, in its own transaction.
	JournalBatches int

	// readOnly opens the database with the URI parameter mode=ro (tests: I/O failure
	// injection where chmod does not stop root).
	readOnly bool
}

// DefaultBusyTimeout is the BusyTimeout used when Options.BusyTimeout is zero.
const DefaultBusyTimeout = 5 * time.Second

// DefaultJournalBatches is the JournalBatches used when Options.JournalBatches is zero:
// large enough that a fold shares most pages between its batches, small enough that a
// fold (and the first Load after a restart) stays within a few milliseconds.
const DefaultJournalBatches = 64

// normalize validates the options and fills in the defaults.
func (o Options) normalize() (Options, error) {
	switch strings.ToUpper(o.Synchronous) {
	case "":
		o.Synchronous = "NORMAL"
	case "NORMAL", "FULL", "OFF":
		o.Synchronous = strings.ToUpper(o.Synchronous)
	default:
		return o, fmt.Errorf("Options.Synchronous must be NORMAL, FULL or OFF (got %q)", o.Synchronous)
	}
	switch {
	case o.BusyTimeout == 0:
		o.BusyTimeout = DefaultBusyTimeout
	case o.BusyTimeout < 0:
		return o, fmt.Errorf("Options.BusyTimeout must not be negative (got %v)", o.BusyTimeout)
	}
	switch {
	case o.JournalBatches == 0:
		o.JournalBatches = DefaultJournalBatches
	case o.JournalBatches < 0:
		return o, fmt.Errorf("Options.JournalBatches must not be negative (got %d)", o.JournalBatches)
	}
	return o, nil
}

// Store is the SQLite backend. It implements store.Backend and is safe for concurrent
// use; batches and loads are serialised on one connection (SQLite has one writer).
type Store struct {
	path string
	opts Options

	mu     sync.Mutex
	db     *sql.DB
	conn   *sql.Conn // the one connection every statement runs on; nil after a broken connection
	stmts  *statements
	lock   *fileLock
	closed bool
	seq    int64 // the last insertion sequence number handed out (see schema v1)
	ckpt   *checkpointer
	// journaled is the number of rows in the journal (batches committed, not folded).
	journaled int

	// afterOp, when set (tests), runs after each op of a batch has been executed, inside
	// the transaction; ctx is the Apply's context.
	afterOp func(ctx context.Context, i int)
}

var _ store.Backend = (*Store)(nil)

// errClosed is returned by every call after Close.
var errClosed = errors.New("sqlite store: closed")

// Open opens (creating it if needed) the database file at path, migrates its schema to
// the current version and takes the single-owner lock. It fails if the file is not an
// SQLite database or is corrupt, if it was written by a newer schema version, or if
// another sdskit manager has it open. ctx bounds the opening work.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite store: empty database path")
	}
	opts, err := opts.normalize()
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	abs, err := canonicalPath(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: database path %q: %w", path, err)
	}
	lock, err := acquireLock(abs + ".lock")
	if err != nil {
		return nil, fmt.Errorf("sqlite store: open %s: %w", abs, err)
	}
	s := &Store{path: abs, opts: opts, lock: lock}
	if err := s.open(ctx); err != nil {
		_ = s.closeDB()
		lock.release()
		return nil, fmt.Errorf("sqlite store: open %s: %w", abs, err)
	}
	return s, nil
}

// canonicalPath returns the absolute path of the database with symbolic links in its
// directory resolved, so that one file is always locked under one name.
func canonicalPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	dir, base := filepath.Split(abs)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	full := filepath.Join(dir, base)
	if real, err := filepath.EvalSymlinks(full); err == nil {
		full = real
	}
	return full, nil
}

// dsn builds the driver's data source name: a file: URI (so that the path may hold any
// character) with the per-connection pragmas.
func (s *Store) dsn() string {
	u := url.URL{Scheme: "file", Path: s.path}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", s.opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "synchronous("+s.opts.Synchronous+")")
	q.Add("_pragma", "foreign_keys(0)")
	// Checkpoints run on a connection of their own, off the callers' path (checkpoint.go).
	q.Add("_pragma", "wal_autocheckpoint(0)")
	if s.opts.readOnly {
		q.Set("mode", "ro")
	}
	return u.String() + "?" + q.Encode()
}

// open connects, switches to WAL, migrates the schema and prepares the statements.
func (s *Store) open(ctx context.Context) error {
	if fi, err := os.Stat(s.path); err == nil && fi.IsDir() {
		return errors.New("the path is a directory")
	}
	db, err := sql.Open("sqlite", s.dsn())
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s.db = db
	if err := s.connect(ctx); err != nil {
		return err
	}
	var mode string
	if err := s.conn.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		return describe(err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("cannot switch the database to WAL mode (journal_mode is %q)", mode)
	}
	if err := migrate(ctx, s.conn); err != nil {
		return err
	}
	if s.seq, err = maxSeq(ctx, s.conn); err != nil {
		return err
	}
	if err := s.conn.QueryRowContext(ctx, "SELECT count(*) FROM journal").Scan(&s.journaled); err != nil {
		return fmt.Errorf("read the journal: %w", describe(err))
	}
	stmts, err := prepare(ctx, s.conn)
	if err != nil {
		return describe(err)
	}
	s.stmts = stmts
	ckpt, err := startCheckpointer(s.dsn())
	if err != nil {
		return err
	}
	s.ckpt = ckpt
	return nil
}

// connect pins the pool's single connection.
func (s *Store) connect(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return describe(err)
	}
	s.conn = conn
	return nil
}

// ready makes sure a usable connection with prepared statements exists (reconnecting
// after a broken connection). Must hold mu.
func (s *Store) ready(ctx context.Context) error {
	if s.closed {
		return errClosed
	}
	if s.conn != nil {
		return nil
	}
	if err := s.connect(ctx); err != nil {
		return err
	}
	stmts, err := prepare(ctx, s.conn)
	if err != nil {
		s.dropConn()
		return describe(err)
	}
	s.stmts = stmts
	return nil
}

// dropConn discards the current connection and its statements; the next call
// reconnects. Must hold mu.
func (s *Store) dropConn() {
	if s.stmts != nil {
		s.stmts.close()
		s.stmts = nil
	}
	if s.conn != nil {
		_ = s.conn.Raw(func(any) error { return driver.ErrBadConn }) // make the pool discard it
		_ = s.conn.Close()
		s.conn = nil
	}
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database and releases the single-owner lock. It is idempotent; every
// later call of the store fails.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.closeDB()
	s.lock.release()
	if err != nil {
		return fmt.Errorf("sqlite store: close %s: %w", s.path, err)
	}
	return nil
}

// closeDB closes statements, connection and pool (checkpointing the WAL into the file).
func (s *Store) closeDB() error {
	var errs []error
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.stop())
		s.ckpt = nil
	}
	if s.stmts != nil {
		s.stmts.close()
		s.stmts = nil
	}
	if s.conn != nil {
		errs = append(errs, s.conn.Close())
		s.conn = nil
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
		s.db = nil
	}
	return errors.Join(errs...)
}

// Apply commits the batch — every op of it, or none — before returning: as a journal
// row, or straight into the tables when Options.JournalBatches is 1.
func (s *Store) Apply(ctx context.Context, batch *pb.PersistenceBatch) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite store: apply: %w", err)
	}
	if err := validateBatch(batch); err != nil {
		return fmt.Errorf("sqlite store: %w", err)
	}
	if len(batch.GetOps()) == 0 {
		return nil
	}
	direct := s.opts.JournalBatches == 1
	var rows []encodedOp
	var row []byte
	if direct {
		rows, err = encodeBatch(batch)
	} else {
		row, err = marshal.Marshal(batch)
	}
	if err != nil {
		return fmt.Errorf("sqlite store: apply %s on channel %q: encode: %w", batchName(batch), batch.GetChannelId(), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.recoverPanic("apply", &err)
	if err := s.ready(ctx); err != nil {
		return fmt.Errorf("sqlite store: apply %s: %w", batchName(batch), err)
	}
	if direct {
		err = s.inTransaction(ctx, func() error { return s.execAll(ctx, batch.GetChannelId(), rows) })
	} else {
		err = s.journalLocked(ctx, row)
	}
	if err != nil {
		return fmt.Errorf("sqlite store: apply %s on channel %q: %w", batchName(batch), batch.GetChannelId(), err)
	}
	s.ckpt.committed()
	return nil
}

// journalLocked commits one encoded batch as a journal row, folding the journal first
// when it is full (a failed fold fails the batch, which is then not committed). Must
// hold mu.
func (s *Store) journalLocked(ctx context.Context, row []byte) error {
	if s.journaled >= s.opts.JournalBatches {
		if err := s.foldLocked(ctx); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The INSERT is its own transaction, run without ctx: an interrupt that landed
	// after its commit would report a failure for a batch that is on disk.
	if _, err := s.stmts.insertJournal.ExecContext(context.WithoutCancel(ctx), row); err != nil {
		s.afterFailure(err)
		return fmt.Errorf("journal: %w", describe(err))
	}
	s.journaled++
	return nil
}

// foldLocked applies every journal row to the tables, in order, and deletes the rows,
// all in one transaction. Must hold mu.
func (s *Store) foldLocked(ctx context.Context) error {
	type entry struct {
		seq   int64
		batch *pb.PersistenceBatch
	}
	var entries []entry
	rows, err := s.stmts.selectJournal.QueryContext(ctx)
	if err != nil {
		s.afterFailure(err)
		return fmt.Errorf("fold the journal: read: %w", describe(err))
	}
	for rows.Next() {
		var e entry
		var b sql.RawBytes
		if err := rows.Scan(&e.seq, &b); err != nil {
			_ = rows.Close()
			return fmt.Errorf("fold the journal: read: %w", describe(err))
		}
		e.batch = &pb.PersistenceBatch{}
		if err := proto.Unmarshal(b, e.batch); err != nil {
			_ = rows.Close()
			return fmt.Errorf("fold the journal: row %d does not decode (corrupt file?): %w", e.seq, err)
		}
		entries = append(entries, e)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		s.afterFailure(err)
		return fmt.Errorf("fold the journal: read: %w", describe(err))
	}
	if len(entries) == 0 {
		s.journaled = 0
		return nil
	}
	err = s.inTransaction(ctx, func() error {
		for _, e := range entries {
			ops, err := encodeBatch(e.batch)
			if err != nil {
				return fmt.Errorf("journal row %d: %w", e.seq, err)
			}
			if err := s.execAll(ctx, e.batch.GetChannelId(), ops); err != nil {
				return fmt.Errorf("journal row %d (%s on channel %q): %w", e.seq, batchName(e.batch), e.batch.GetChannelId(), err)
			}
		}
		if _, err := s.stmts.clearJournal.ExecContext(ctx, entries[len(entries)-1].seq); err != nil {
			s.afterFailure(err)
			return fmt.Errorf("clear the journal: %w", describe(err))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fold the journal: %w", err)
	}
	s.journaled = 0
	return nil
}

// recoverPanic turns a panic of the driver into an error and drops the connection,
// whose transaction state is then unknown (closing it rolls back what was not
// committed). Must hold mu; deferred.
func (s *Store) recoverPanic(op string, err *error) {
	if r := recover(); r != nil {
		s.dropConn()
		*err = fmt.Errorf("sqlite store: %s: internal error (driver panic): %v", op, r)
	}
}

// batchName names a batch in errors: its operation, or "batch".
func batchName(b *pb.PersistenceBatch) string {
	if op := b.GetOperation(); op != "" {
		return op
	}
	return "batch"
}

// inTransaction runs body inside BEGIN IMMEDIATE … COMMIT, rolling back when it fails.
// Must hold mu.
func (s *Store) inTransaction(ctx context.Context, body func() error) (err error) {
	st := s.stmts
	if _, err := st.begin.ExecContext(ctx); err != nil {
		s.afterFailure(err)
		return fmt.Errorf("begin transaction: %w", describe(err))
	}
	defer func() {
		if err != nil {
			// Roll back even when ctx is what failed the batch.
			if rbErr := s.rollback(); rbErr != nil {
				err = errors.Join(err, rbErr)
			}
		}
	}()
	if err := body(); err != nil {
		return err
	}
	// A cancelled ctx stops the transaction up to here; COMMIT itself runs without it,
	// since an interrupted COMMIT would leave the caller unsure of the outcome.
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := st.commit.ExecContext(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("commit: %w", describe(err))
	}
	return nil
}

// execAll runs the encoded ops of one batch of channel, in order. Must hold mu, inside
// a transaction.
func (s *Store) execAll(ctx context.Context, channel string, rows []encodedOp) error {
	for i, r := range rows {
		if err := s.exec(ctx, channel, r); err != nil {
			return fmt.Errorf("op %d (%s): %w", i, r.name, describe(err))
		}
		if s.afterOp != nil {
			s.afterOp(ctx, i)
		}
	}
	return nil
}

// rollback ends a failed transaction. SQLite may already have rolled it back (after an
// interrupt or SQLITE_FULL, for instance); if even ROLLBACK fails the connection is
// dropped, so no later batch can run inside the failed transaction. Must hold mu.
func (s *Store) rollback() error {
	if s.conn == nil {
		return nil
	}
	_, err := s.stmts.rollback.ExecContext(context.Background())
	if err == nil || strings.Contains(err.Error(), "no transaction is active") {
		return nil
	}
	s.dropConn()
	return fmt.Errorf("rollback: %w", describe(err))
}

// afterFailure drops a connection that database/sql reports as unusable. Must hold mu.
func (s *Store) afterFailure(err error) {
	if errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
		s.dropConn()
	}
}

// exec runs the statements of one encoded op.
func (s *Store) exec(ctx context.Context, channel string, r encodedOp) error {
	st := s.stmts
	var err error
	switch r.kind {
	case kindSaveLamport:
		_, err = st.upsertLamport.ExecContext(ctx, channel, int64(r.lamport))
	case kindAppendLog:
		s.seq++
		_, err = st.upsertLog.ExecContext(ctx, channel, r.id, int64(r.lamport), s.seq, r.blob)
	case kindRemoveLog:
		if _, err = st.deleteLog.ExecContext(ctx, channel, r.id); err == nil {
			_, err = st.deleteHint.ExecContext(ctx, channel, r.id)
		}
	case kindSetHint:
		_, err = st.upsertHint.ExecContext(ctx, channel, r.id, r.blob)
	case kindDropChannel:
		for _, d := range st.drop {
			if _, err = d.ExecContext(ctx, channel); err != nil {
				break
			}
		}
	default:
		t := st.tables[r.table]
		if r.kind == kindSaveRow {
			s.seq++
			_, err = t.upsert.ExecContext(ctx, channel, r.id, s.seq, r.blob)
		} else {
			_, err = t.delete.ExecContext(ctx, channel, r.id)
		}
	}
	if err != nil {
		s.afterFailure(err)
	}
	return err
}

// Load returns everything stored for the channel (an empty snapshot for an unknown
// channel), with one query per table; the log is oldest-first by (lamport, message id).
func (s *Store) Load(ctx context.Context, channelID string) (snap *pb.ChannelSnapshot, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: load: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.recoverPanic("load", &err)
	if err := s.ready(ctx); err != nil {
		return nil, fmt.Errorf("sqlite store: load channel %q: %w", channelID, err)
	}
	if s.journaled > 0 {
		if err := s.foldLocked(ctx); err != nil {
			return nil, fmt.Errorf("sqlite store: load channel %q: %w", channelID, err)
		}
		s.ckpt.committed()
	}
	snap, err = s.loadLocked(ctx, channelID)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: load channel %q: %w", channelID, err)
	}
	return snap, nil
}

// loadLocked reads the channel's tables. The reads run in one read transaction so that
// they see one state of the file. Must hold mu.
func (s *Store) loadLocked(ctx context.Context, channel string) (snap *pb.ChannelSnapshot, err error) {
	st := s.stmts
	if _, err := st.beginRead.ExecContext(ctx); err != nil {
		s.afterFailure(err)
		return nil, fmt.Errorf("begin read: %w", describe(err))
	}
	defer func() {
		if rbErr := s.rollback(); rbErr != nil && err == nil {
			snap, err = nil, rbErr
		}
	}()
	snap = &pb.ChannelSnapshot{ChannelId: channel}

	var lamport int64
	switch err := st.selectLamport.QueryRowContext(ctx, channel).Scan(&lamport); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		s.afterFailure(err)
		return nil, fmt.Errorf("lamport: %w", describe(err))
	default:
		snap.LamportTimestamp = uint64(lamport)
	}

	if err := s.query(ctx, st.selectLog, channel, "log", func(id string, b []byte) error {
		m := &pb.SdsMessage{}
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		snap.Log = append(snap.Log, m)
		return nil
	}); err != nil {
		return nil, err
	}
	// SQLite orders lamport as a signed integer; values of 2^63 and more (which no
	// honest clock produces) would come first, so restore the unsigned order.
	if !slices.IsSortedFunc(snap.Log, compareLog) {
		slices.SortStableFunc(snap.Log, compareLog)
	}

	if err := s.query(ctx, st.selectHints, channel, "hints", func(id string, b []byte) error {
		snap.RetrievalHints = append(snap.RetrievalHints, &pb.RetrievalHint{MessageId: id, RetrievalHint: bytes.Clone(b)})
		return nil
	}); err != nil {
		return nil, err
	}
	if snap.Outgoing, err = loadTable[*pb.UnacknowledgedMessage](ctx, s, tblOutgoing, channel); err != nil {
		return nil, err
	}
	if snap.Incoming, err = loadTable[*pb.IncomingMessage](ctx, s, tblIncoming, channel); err != nil {
		return nil, err
	}
	if snap.OutgoingRepair, err = loadTable[*pb.OutgoingRepairEntry](ctx, s, tblOutgoingRepair, channel); err != nil {
		return nil, err
	}
	if snap.IncomingRepair, err = loadTable[*pb.IncomingRepairEntry](ctx, s, tblIncomingRepair, channel); err != nil {
		return nil, err
	}
	return snap, nil
}

// loadTable reads one of the ordered tables, decoding each blob into a new T.
func loadTable[T proto.Message](ctx context.Context, s *Store, table int, channel string) ([]T, error) {
	var out []T
	var zero T
	err := s.query(ctx, s.stmts.tables[table].selectAll, channel, tableNames[table], func(id string, b []byte) error {
		m := zero.ProtoReflect().New().Interface().(T)
		if err := proto.Unmarshal(b, m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// query runs a (channel) → (id, blob) select and hands every row to row; b is only
// valid during the call (proto.Unmarshal copies what it keeps).
func (s *Store) query(ctx context.Context, stmt *sql.Stmt, channel, table string, row func(id string, b []byte) error) error {
	rows, err := stmt.QueryContext(ctx, channel)
	if err != nil {
		s.afterFailure(err)
		return fmt.Errorf("%s: %w", table, describe(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var b sql.RawBytes
		if err := rows.Scan(&id, &b); err != nil {
			return fmt.Errorf("%s: %w", table, describe(err))
		}
		if err := row(id, b); err != nil {
			return fmt.Errorf("%s: corrupt row %q: %w", table, id, err)
		}
	}
	if err := rows.Err(); err != nil {
		s.afterFailure(err)
		return fmt.Errorf("%s: %w", table, describe(err))
	}
	return nil
}

// compareLog is the log order: ascending lamport (unset counts as 0), then message id.
func compareLog(a, b *pb.SdsMessage) int {
	if x, y := a.GetLamportTimestamp(), b.GetLamportTimestamp(); x != y {
		if x < y {
			return -1
		}
		return 1
	}
	return strings.Compare(a.GetMessageId(), b.GetMessageId())
}

// describe adds a hint to the SQLite errors whose cause is not obvious from their text.
func describe(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "SQLITE_NOTADB") || strings.Contains(msg, "file is not a database"):
		return fmt.Errorf("the file is not an SQLite database or is corrupt: %w", err)
	case strings.Contains(msg, "SQLITE_CORRUPT") || strings.Contains(msg, "malformed"):
		return fmt.Errorf("the database file is corrupt: %w", err)
	case strings.Contains(msg, "SQLITE_FULL") || strings.Contains(msg, "database or disk is full"):
		return fmt.Errorf("the disk (or the database's size limit) is full: %w", err)
	case strings.Contains(msg, "SQLITE_READONLY") || strings.Contains(msg, "readonly database"):
		return fmt.Errorf("the database is read-only: %w", err)
	case strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked"):
		return fmt.Errorf("the database is locked by another connection: %w", err)
	case strings.Contains(msg, "SQLITE_CANTOPEN") || strings.Contains(msg, "unable to open database file"):
		return fmt.Errorf("cannot open the database file (missing directory or no permission?): %w", err)
	}
	return err
}
