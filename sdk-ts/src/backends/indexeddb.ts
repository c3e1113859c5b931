// IndexedDbPersistence: a host backend for browsers over IndexedDB. One batch (Begin …
// Commit) is one readwrite IDB transaction.

import { RowPersistence } from "./rows.js";
import type { RowKind, RowWrite, StoredChannel, StoredRow } from "./rows.js";

const version = 1;
const rowsStore = "rows"; // key [channel, kind, id] → StoredValue
const lamportStore = "lamport"; // key channel → string (decimal Lamport clock)
const metaStore = "meta"; // key "seq" → the next insertion sequence number

interface StoredValue {
  kind: RowKind;
  id: string;
  seq: number;
  data: Uint8Array;
}

/**
 * IndexedDbPersistence stores the persistence contract in an IndexedDB database: the
 * writes of one batch are applied in order in one readwrite transaction, which commits
 * when they all succeeded (the batch's Promise resolves on the transaction's complete
 * event) and aborts otherwise. One manager per database.
 */
export class IndexedDbPersistence extends RowPersistence {
  /** The database. */
  readonly db: IDBDatabase;
  #seq: number;

  private constructor(db: IDBDatabase, seq: number) {
    super();
    this.db = db;
    this.#seq = seq;
  }

  /** Opens (creating if needed) the database called name. */
  static async open(name = "sdskit", factory: IDBFactory = globalThis.indexedDB): Promise<IndexedDbPersistence> {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = factory.open(name, version);
      req.onupgradeneeded = () => {
        const d = req.result;
        if (!d.objectStoreNames.contains(rowsStore)) {
          d.createObjectStore(rowsStore);
        }
        if (!d.objectStoreNames.contains(lamportStore)) {
          d.createObjectStore(lamportStore);
        }
        if (!d.objectStoreNames.contains(metaStore)) {
          d.createObjectStore(metaStore);
        }
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error(`cannot open IndexedDB database ${name}`));
      req.onblocked = () => reject(new Error(`opening IndexedDB database ${name} is blocked by another connection`));
    });
    const seq = await new Promise<number>((resolve, reject) => {
      const req = db.transaction(metaStore, "readonly").objectStore(metaStore).get("seq");
      req.onsuccess = () => resolve(typeof req.result === "number" ? req.result : 1);
      req.onerror = () => reject(req.error ?? new Error("cannot read the sequence number"));
    });
    return new IndexedDbPersistence(db, seq);
  }

  /** Deletes the database called name (close every connection first). */
  static deleteDatabase(name = "sdskit", factory: IDBFactory = globalThis.indexedDB): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = factory.deleteDatabase(name);
      req.onsuccess = () => resolve();
      req.onerror = () => reject(req.error ?? new Error(`cannot delete IndexedDB database ${name}`));
    });
  }

  /** Closes the connection. */
  close(): void {
    this.db.close();
  }

  protected apply(writes: readonly RowWrite[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction([rowsStore, lamportStore, metaStore], "readwrite");
      const rows = tx.objectStore(rowsStore);
      const lamports = tx.objectStore(lamportStore);
      let failed: unknown;
      tx.oncomplete = () => resolve();
      tx.onabort = () => reject(failed ?? tx.error ?? new Error("the IndexedDB transaction was aborted"));
      tx.onerror = () => {
        failed ??= tx.error;
      };
      const seqBefore = this.#seq;
      let seq = this.#seq;
      // Writes are issued one after the other (an upsert reads the row first to keep its
      // sequence number), so the store sees them in batch order.
      const next = (i: number): void => {
        const w = writes[i];
        if (w === undefined) {
          tx.objectStore(metaStore).put(seq, "seq");
          return;
        }
        let req: IDBRequest;
        switch (w.op) {
          case "lamport":
            req = lamports.put(w.lamport.toString(), w.channelId);
            break;
          case "upsert": {
            const key = [w.channelId, w.kind, w.id];
            const get = rows.get(key);
            get.onsuccess = () => {
              const old = get.result as StoredValue | undefined;
              const value: StoredValue = { kind: w.kind, id: w.id, seq: old?.seq ?? seq++, data: w.data };
              rows.put(value, key).onsuccess = () => next(i + 1);
            };
            return;
          }
          case "delete":
            req = rows.delete([w.channelId, w.kind, w.id]);
            break;
          case "drop":
            rows.delete(channelRange(w.channelId));
            req = lamports.delete(w.channelId);
            break;
        }
        req.onsuccess = () => next(i + 1);
      };
      try {
        next(0);
      } catch (e) {
        failed = e;
        tx.abort();
      }
      tx.addEventListener("complete", () => {
        this.#seq = Math.max(this.#seq, seq);
      });
      tx.addEventListener("abort", () => {
        this.#seq = Math.max(this.#seq, seqBefore);
      });
    });
  }

  protected load(channelId: string): Promise<StoredChannel> {
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction([rowsStore, lamportStore], "readonly");
      const lreq = tx.objectStore(lamportStore).get(channelId);
      const rreq = tx.objectStore(rowsStore).getAll(channelRange(channelId));
      tx.oncomplete = () => {
        const l = lreq.result as string | undefined;
        const rows = (rreq.result as StoredValue[]).map((v): StoredRow => ({ kind: v.kind, id: v.id, seq: v.seq, data: v.data }));
        resolve({ lamport: l === undefined ? undefined : BigInt(l), rows });
      };
      tx.onabort = () => reject(tx.error ?? new Error("the IndexedDB read was aborted"));
    });
  }
}

/** Every key [channelId, kind, id] of a channel. */
function channelRange(channelId: string): IDBKeyRange {
  return IDBKeyRange.bound([channelId], [channelId, []]);
}
