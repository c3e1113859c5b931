package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SchemaVersion is the schema version this code writes. Opening a database of a newer
// version fails; an older one is migrated forward at Open.
const SchemaVersion = len(migrations)

// migrations[i] brings a database from schema version i to i+1. Append a migration to
// change the schema; never edit a released one.
var migrations = [...]string{
	// v1: one row per stored entity, keyed (channel, message id), in WITHOUT ROWID
	// tables so that a write touches as few B-trees as possible. seq is the insertion
	// sequence, from a counter that only grows (the store owns the file and resumes
	// the counter from the largest seq at Open): an upsert (INSERT … ON CONFLICT DO
	// UPDATE) keeps a row's seq, hence its position, and a new row goes last. Lamport
	// values are stored as the signed reinterpretation of the uint64.
	`
CREATE TABLE lamport (
	channel TEXT NOT NULL PRIMARY KEY,
	value   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE log (
	channel TEXT NOT NULL,
	id      TEXT NOT NULL,
	lamport INTEGER NOT NULL,
	seq     INTEGER NOT NULL,
	message BLOB NOT NULL,
	PRIMARY KEY (channel, id)
) WITHOUT ROWID;
CREATE INDEX log_order ON log (channel, lamport, id);

CREATE TABLE hints (
	channel TEXT NOT NULL,
	id      TEXT NOT NULL,
	hint    BLOB NOT NULL,
	PRIMARY KEY (channel, id)
) WITHOUT ROWID;

CREATE TABLE outgoing (
	channel TEXT NOT NULL,
	id      TEXT NOT NULL,
	seq     INTEGER NOT NULL,
	blob    BLOB NOT NULL,
	PRIMARY KEY (channel, id)
) WITHOUT ROWID;

CREATE TABLE incoming (
	channel TEXT NOT NULL,
	id      TEXT NOT NULL,
	seq     INTEGER NOT NULL,
	blob    BLOB NOT NULL,
	PRIMARY KEY (channel, id)
) WITHOUT ROWID;

CREATE TABLE outgoing_repair (
	channel TEXT NOT NULL,
	id      TEXT NOT NULL,
	seq     INTEGER NOT NULL,
	blob    BLOB NOT NULL,
	PRIMARY KEY (channel, id)
) WITHOUT ROWID;

CREATE TABLE incoming_repair (
	channel TEXT NOT NULL,
	id      TEXT NOT NULL,
	seq     INTEGER NOT NULL,
	blob    BLOB NOT NULL,
	PRIMARY KEY (channel, id)
) WITHOUT ROWID;
`,
	// v2: the four buffer tables become rowid tables keyed by seq, with a unique index on
	// (channel, id). Their rows carry whole messages (an outgoing entry holds the ~19 KB
	// wire bytes, bloom filter included): as WITHOUT ROWID rows those spill into overflow
	// pages, and every key comparison on the way to an insert or delete read the whole
	// row back (SQLite compares index records in full). Now comparisons touch only the
	// small index entries, and a new row is appended at the end of the table.
	`CREATE TABLE outgoing_v2 (
	seq     INTEGER PRIMARY KEY,
	channel TEXT NOT NULL,
	id      TEXT NOT NULL,
	blob    BLOB NOT NULL,
	UNIQUE (channel, id)
);
INSERT INTO outgoing_v2 (seq, channel, id, blob) SELECT seq, channel, id, blob FROM outgoing;
DROP TABLE outgoing;
ALTER TABLE outgoing_v2 RENAME TO outgoing;
CREATE TABLE incoming_v2 (
	seq     INTEGER PRIMARY KEY,
	channel TEXT NOT NULL,
	id      TEXT NOT NULL,
	blob    BLOB NOT NULL,
	UNIQUE (channel, id)
);
INSERT INTO incoming_v2 (seq, channel, id, blob) SELECT seq, channel, id, blob FROM incoming;
DROP TABLE incoming;
ALTER TABLE incoming_v2 RENAME TO incoming;
CREATE TABLE outgoing_repair_v2 (
	seq     INTEGER PRIMARY KEY,
	channel TEXT NOT NULL,
	id      TEXT NOT NULL,
	blob    BLOB NOT NULL,
	UNIQUE (channel, id)
);
INSERT INTO outgoing_repair_v2 (seq, channel, id, blob) SELECT seq, channel, id, blob FROM outgoing_repair;
DROP TABLE outgoing_repair;
ALTER TABLE outgoing_repair_v2 RENAME TO outgoing_repair;
CREATE TABLE incoming_repair_v2 (
	seq     INTEGER PRIMARY KEY,
	channel TEXT NOT NULL,
	id      TEXT NOT NULL,
	blob    BLOB NOT NULL,
	UNIQUE (channel, id)
);
INSERT INTO incoming_repair_v2 (seq, channel, id, blob) SELECT seq, channel, id, blob FROM incoming_repair;
DROP TABLE incoming_repair;
ALTER TABLE incoming_repair_v2 RENAME TO incoming_repair;
`,
	// v3: the journal of committed batches not yet folded into the tables (sqlite.go).
	`CREATE TABLE journal (
	seq   INTEGER PRIMARY KEY,
	batch BLOB NOT NULL
);
`,
}

// The ordered tables, indexes of tableNames and statements.tables.
const (
	tblOutgoing = iota
	tblIncoming
	tblOutgoingRepair
	tblIncomingRepair
	numTables
)

var tableNames = [numTables]string{"outgoing", "incoming", "outgoing_repair", "incoming_repair"}

// ErrNewerSchema is wrapped by the error of Open on a database written by a newer
// version of sdskit than this one.
var ErrNewerSchema = errors.New("database schema is newer than this sdskit supports")

// ErrNotSdskit is wrapped by the error of Open on an SQLite database that holds tables
// but was not created by sdskit.
var ErrNotSdskit = errors.New("not an sdskit database")

// migrate brings the schema to SchemaVersion in one transaction, and checks that the
// database is writable.
func migrate(ctx context.Context, conn *sql.Conn) error {
	return migrateWith(ctx, conn, migrations[:])
}

// migrateWith brings the schema to version len(steps), steps[i] taking it from version i
// to i+1.
func migrateWith(ctx context.Context, conn *sql.Conn, steps []string) (err error) {
	latest := len(steps)
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin schema transaction: %w", describe(err))
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	version, exists, err := schemaVersion(ctx, conn)
	if err != nil {
		return err
	}
	if version > latest {
		return fmt.Errorf("%w: the file has schema version %d, this sdskit knows versions up to %d; use a newer sdskit (or another file)",
			ErrNewerSchema, version, latest)
	}
	if version == latest {
		// A write, so that a database the store cannot write (read-only file,
		// directory or mount) is refused now rather than at the first batch.
		if _, err := conn.ExecContext(ctx, "UPDATE schema_version SET version = version"); err != nil {
			return fmt.Errorf("write check: %w", describe(err))
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return fmt.Errorf("commit: %w", describe(err))
		}
		return nil
	}
	if !exists {
		if _, err := conn.ExecContext(ctx, "CREATE TABLE schema_version (version INTEGER NOT NULL)"); err != nil {
			return fmt.Errorf("create schema_version: %w", describe(err))
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO schema_version (version) VALUES (0)"); err != nil {
			return fmt.Errorf("init schema_version: %w", describe(err))
		}
	}
	for v := version; v < latest; v++ {
		if _, err := conn.ExecContext(ctx, steps[v]); err != nil {
			return fmt.Errorf("migrate schema v%d to v%d: %w", v, v+1, describe(err))
		}
	}
	if _, err := conn.ExecContext(ctx, "UPDATE schema_version SET version = ?", latest); err != nil {
		return fmt.Errorf("record schema version: %w", describe(err))
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit schema: %w", describe(err))
	}
	return nil
}

// schemaVersion reads the version of the schema (0 for an empty database) and whether
// the schema_version table exists.
func schemaVersion(ctx context.Context, conn *sql.Conn) (version int, exists bool, err error) {
	var tables int
	if err := conn.QueryRowContext(ctx,
		"SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'").Scan(&tables); err != nil {
		return 0, false, fmt.Errorf("read schema: %w", describe(err))
	}
	if tables == 0 {
		var others int
		if err := conn.QueryRowContext(ctx,
			"SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").Scan(&others); err != nil {
			return 0, false, fmt.Errorf("read schema: %w", describe(err))
		}
		if others > 0 {
			return 0, false, fmt.Errorf("%w: the file holds %d tables or indexes but no schema_version table", ErrNotSdskit, others)
		}
		return 0, false, nil
	}
	if err := conn.QueryRowContext(ctx, "SELECT version FROM schema_version").Scan(&version); err != nil {
		return 0, true, fmt.Errorf("read schema version: %w", describe(err))
	}
	return version, true, nil
}

// statements are the prepared statements of one connection.
type statements struct {
	begin, beginRead, commit, rollback *sql.Stmt

	insertJournal, selectJournal, clearJournal *sql.Stmt

	upsertLamport, selectLamport    *sql.Stmt
	upsertLog, deleteLog, selectLog *sql.Stmt
	upsertHint, deleteHint          *sql.Stmt
	selectHints                     *sql.Stmt
	drop                            []*sql.Stmt
	tables                          [numTables]tableStatements

	all []*sql.Stmt
}

// tableStatements are the statements of one ordered table.
type tableStatements struct {
	upsert, delete, selectAll *sql.Stmt
}

// prepare prepares every statement on conn.
func prepare(ctx context.Context, conn *sql.Conn) (st *statements, err error) {
	st = &statements{}
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	p := func(dst **sql.Stmt, query string) {
		if err != nil {
			return
		}
		var s *sql.Stmt
		if s, err = conn.PrepareContext(ctx, query); err != nil {
			err = fmt.Errorf("prepare %q: %w", query, err)
			return
		}
		st.all = append(st.all, s)
		*dst = s
	}
	p(&st.begin, "BEGIN IMMEDIATE")
	p(&st.insertJournal, `INSERT INTO journal (batch) VALUES (?1)`)
	p(&st.selectJournal, `SELECT seq, batch FROM journal ORDER BY seq`)
	p(&st.clearJournal, `DELETE FROM journal WHERE seq <= ?1`)
	p(&st.beginRead, "BEGIN")
	p(&st.commit, "COMMIT")
	p(&st.rollback, "ROLLBACK")
	p(&st.upsertLamport, `INSERT INTO lamport (channel, value) VALUES (?1, ?2)
		ON CONFLICT (channel) DO UPDATE SET value = excluded.value`)
	p(&st.selectLamport, `SELECT value FROM lamport WHERE channel = ?1`)
	p(&st.upsertLog, `INSERT INTO log (channel, id, lamport, seq, message) VALUES (?1, ?2, ?3, ?4, ?5)
		ON CONFLICT (channel, id) DO UPDATE SET lamport = excluded.lamport, message = excluded.message`)
	p(&st.deleteLog, `DELETE FROM log WHERE channel = ?1 AND id = ?2`)
	p(&st.selectLog, `SELECT id, message FROM log WHERE channel = ?1 ORDER BY lamport, id`)
	p(&st.upsertHint, `INSERT INTO hints (channel, id, hint) VALUES (?1, ?2, ?3)
		ON CONFLICT (channel, id) DO UPDATE SET hint = excluded.hint`)
	p(&st.deleteHint, `DELETE FROM hints WHERE channel = ?1 AND id = ?2`)
	p(&st.selectHints, `SELECT id, hint FROM hints WHERE channel = ?1 ORDER BY id`)
	for i, name := range tableNames {
		t := &st.tables[i]
		p(&t.upsert, `INSERT INTO `+name+` (channel, id, seq, blob) VALUES (?1, ?2, ?3, ?4)
			ON CONFLICT (channel, id) DO UPDATE SET blob = excluded.blob`)
		p(&t.delete, `DELETE FROM `+name+` WHERE channel = ?1 AND id = ?2`)
		p(&t.selectAll, `SELECT id, blob FROM `+name+` WHERE channel = ?1 ORDER BY seq`)
	}
	for _, name := range []string{"lamport", "log", "hints", "outgoing", "incoming", "outgoing_repair", "incoming_repair"} {
		var d *sql.Stmt
		p(&d, `DELETE FROM `+name+` WHERE channel = ?1`)
		st.drop = append(st.drop, d)
	}
	return st, err
}

// maxSeq returns the largest insertion sequence number in use.
func maxSeq(ctx context.Context, conn *sql.Conn) (int64, error) {
	var seq int64
	err := conn.QueryRowContext(ctx, `SELECT max(
		(SELECT coalesce(max(seq), 0) FROM log),
		(SELECT coalesce(max(seq), 0) FROM outgoing),
		(SELECT coalesce(max(seq), 0) FROM incoming),
		(SELECT coalesce(max(seq), 0) FROM outgoing_repair),
		(SELECT coalesce(max(seq), 0) FROM incoming_repair))`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("read the insertion sequence: %w", describe(err))
	}
	return seq, nil
}

// close closes every prepared statement.
func (st *statements) close() {
	for _, s := range st.all {
		_ = s.Close()
	}
	st.all = nil
}
