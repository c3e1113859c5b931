// SqlitePersistence: a host backend for Node over better-sqlite3 (version 12, an
// optional peer dependency of this package; import "@sdskit/sdk/sqlite" only in Node).

import type BetterSqlite3 from "better-sqlite3";
import { RowPersistence } from "./rows.js";
import type { RowKind, RowWrite, StoredChannel, StoredRow } from "./rows.js";

/** Options of SqlitePersistence.open. */
export interface SqliteOptions {
  /** PRAGMA synchronous: "NORMAL" (default, with WAL) or "FULL" for power-loss durability. */
  synchronous?: "OFF" | "NORMAL" | "FULL";
}

const schema = `
CREATE TABLE IF NOT EXISTS sdskit_lamport (
  channel TEXT PRIMARY KEY,
  lamport INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sdskit_rows (
  channel TEXT NOT NULL,
  kind    INTEGER NOT NULL,
  id      TEXT NOT NULL,
  seq     INTEGER NOT NULL,
  data    BLOB NOT NULL,
  PRIMARY KEY (channel, kind, id)
) WITHOUT ROWID;
`;

/**
 * SqlitePersistence stores the persistence contract in a SQLite database through
 * better-sqlite3: the writes of one batch (Begin … Commit) run in one SQLite
 * transaction. One manager per database file.
 */
export class SqlitePersistence extends RowPersistence {
  /** The database. */
  readonly db: BetterSqlite3.Database;
  #seq: number;
  readonly #stmts: {
    lamport: BetterSqlite3.Statement<[string, bigint]>;
    upsert: BetterSqlite3.Statement<[string, number, string, number, Uint8Array]>;
    del: BetterSqlite3.Statement<[string, number, string]>;
    dropRows: BetterSqlite3.Statement<[string]>;
    dropLamport: BetterSqlite3.Statement<[string]>;
    loadLamport: BetterSqlite3.Statement<[string], { lamport: bigint }>;
    loadRows: BetterSqlite3.Statement<[string], { kind: bigint; id: string; seq: bigint; data: Uint8Array }>;
  };
  readonly #tx: (writes: readonly RowWrite[]) => void;

  /**
   * Opens (creating if needed) the database at path and its tables. better-sqlite3 is
   * imported here, so that the rest of the SDK never needs it.
   */
  static async open(path: string, options: SqliteOptions = {}): Promise<SqlitePersistence> {
    const mod = (await import("better-sqlite3")) as { default: typeof BetterSqlite3 };
    return new SqlitePersistence(new mod.default(path), options);
  }

  /** Uses an open database (creating the tables if needed). */
  constructor(db: BetterSqlite3.Database, options: SqliteOptions = {}) {
    super();
    this.db = db;
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${options.synchronous ?? "NORMAL"}`);
    db.exec(schema);
    const loadLamport = db.prepare<[string], { lamport: bigint }>("SELECT lamport FROM sdskit_lamport WHERE channel = ?");
    loadLamport.safeIntegers(true);
    const loadRows = db.prepare<[string], { kind: bigint; id: string; seq: bigint; data: Uint8Array }>(
      "SELECT kind, id, seq, data FROM sdskit_rows WHERE channel = ? ORDER BY seq",
    );
    loadRows.safeIntegers(true);
    this.#stmts = {
      lamport: db.prepare("INSERT INTO sdskit_lamport (channel, lamport) VALUES (?, ?) ON CONFLICT (channel) DO UPDATE SET lamport = excluded.lamport"),
      upsert: db.prepare(
        "INSERT INTO sdskit_rows (channel, kind, id, seq, data) VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, kind, id) DO UPDATE SET data = excluded.data",
      ),
      del: db.prepare("DELETE FROM sdskit_rows WHERE channel = ? AND kind = ? AND id = ?"),
      dropRows: db.prepare("DELETE FROM sdskit_rows WHERE channel = ?"),
      dropLamport: db.prepare("DELETE FROM sdskit_lamport WHERE channel = ?"),
      loadLamport,
      loadRows,
    };
    const max = db.prepare<[], { m: number | null }>("SELECT max(seq) AS m FROM sdskit_rows").get();
    this.#seq = (max?.m ?? 0) + 1;
    this.#tx = db.transaction((writes: readonly RowWrite[]) => {
      for (const w of writes) {
        this.#applyOne(w);
      }
    });
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }

  protected apply(writes: readonly RowWrite[]): void {
    if (writes.length === 1 && writes[0] !== undefined) {
      this.#applyOne(writes[0]);
      return;
    }
    this.#tx(writes);
  }

  protected load(channelId: string): StoredChannel {
    const l = this.#stmts.loadLamport.get(channelId);
    const rows: StoredRow[] = this.#stmts.loadRows.all(channelId).map((r) => ({
      kind: Number(r.kind) as RowKind,
      id: r.id,
      seq: Number(r.seq),
      data: r.data,
    }));
    return { lamport: l?.lamport, rows };
  }

  #applyOne(w: RowWrite): void {
    const s = this.#stmts;
    switch (w.op) {
      case "lamport":
        s.lamport.run(w.channelId, w.lamport);
        break;
      case "upsert":
        s.upsert.run(w.channelId, w.kind, w.id, this.#seq++, w.data);
        break;
      case "delete":
        s.del.run(w.channelId, w.kind, w.id);
        break;
      case "drop":
        s.dropRows.run(w.channelId);
        s.dropLamport.run(w.channelId);
        break;
    }
  }
}
