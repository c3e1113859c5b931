// RowPersistence: the persistence contract over a simple row store, shared by the
// IndexedDB and SQLite backends. Each stored row is (channel, kind, id) → the entry's
// protobuf bytes plus an insertion sequence number; the Lamport clock is one value per
// channel. A backend implements apply (a list of writes, atomically) and load.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { fail, ok } from "../gen/sdskit/v1/api_sdk.js";
import type { Persistence, PersistenceTransactions, Result } from "../gen/sdskit/v1/api_sdk.js";
import type * as api from "../gen/sdskit/v1/api_pb.js";
import { ErrorCode } from "../gen/sdskit/v1/errors_pb.js";
import * as state from "../gen/sdskit/v1/state_pb.js";
import { SdsMessageSchema } from "../gen/sdskit/v1/wire_pb.js";
import { compareLog, Staging } from "./common.js";
import type { PersistenceMethodName } from "./common.js";

/** The kinds of rows. */
export const RowKind = {
  Log: 1,
  Hint: 2,
  Outgoing: 3,
  Incoming: 4,
  OutgoingRepair: 5,
  IncomingRepair: 6,
} as const;

/** A row kind. */
export type RowKind = (typeof RowKind)[keyof typeof RowKind];

/** One write to a row store. */
export type RowWrite =
  | { readonly op: "lamport"; readonly channelId: string; readonly lamport: bigint }
  /** Inserts a row, or replaces its data keeping its sequence number. */
  | { readonly op: "upsert"; readonly channelId: string; readonly kind: RowKind; readonly id: string; readonly data: Uint8Array }
  | { readonly op: "delete"; readonly channelId: string; readonly kind: RowKind; readonly id: string }
  /** Deletes every row and the Lamport clock of the channel. */
  | { readonly op: "drop"; readonly channelId: string };

/** A stored row. */
export interface StoredRow {
  readonly kind: RowKind;
  readonly id: string;
  /** Insertion order within the store (kept by upserts). */
  readonly seq: number;
  readonly data: Uint8Array;
}

/** Everything stored for one channel. */
export interface StoredChannel {
  readonly lamport?: bigint | undefined;
  readonly rows: readonly StoredRow[];
}

/**
 * RowPersistence implements Persistence and its Transactions capability over a row
 * store: writes between Begin and Commit are staged per channel and applied with one
 * apply() call (one store transaction) at Commit; a write outside a transaction is one
 * apply() of its own. Whatever apply or load throws (or rejects with) fails the call
 * with PERSISTENCE.
 */
export abstract class RowPersistence implements Persistence, PersistenceTransactions {
  readonly #staging = new Staging<RowWrite>();

  /** Applies writes in order, all or none. */
  protected abstract apply(writes: readonly RowWrite[]): void | Promise<void>;

  /** Reads everything stored for a channel. */
  protected abstract load(channelId: string): StoredChannel | Promise<StoredChannel>;

  begin(req: api.BeginRequest): Promise<Result<void>> {
    if (!this.#staging.begin(req.channelId)) {
      return Promise.resolve(fail(ErrorCode.PERSISTENCE, `a transaction is already open for channel "${req.channelId}"`, "Begin"));
    }
    return Promise.resolve(ok());
  }

  commit(req: api.CommitRequest): Promise<Result<void>> {
    const writes = this.#staging.take(req.channelId);
    if (writes === undefined) {
      return Promise.resolve(fail(ErrorCode.PERSISTENCE, `no transaction is open for channel "${req.channelId}"`, "Commit"));
    }
    return this.#run("Commit", writes);
  }

  rollback(req: api.RollbackRequest): Promise<Result<void>> {
    this.#staging.take(req.channelId);
    return Promise.resolve(ok());
  }

  saveLamport(req: state.SaveLamportRequest): Promise<Result<void>> {
    return this.#write("SaveLamport", { op: "lamport", channelId: req.channelId, lamport: req.lamportTimestamp });
  }

  appendLogEntry(req: state.AppendLogEntryRequest): Promise<Result<void>> {
    const msg = req.message ?? create(SdsMessageSchema);
    return this.#write("AppendLogEntry", {
      op: "upsert", channelId: req.channelId, kind: RowKind.Log, id: msg.messageId, data: toBinary(SdsMessageSchema, msg),
    });
  }

  removeLogEntry(req: state.RemoveLogEntryRequest): Promise<Result<void>> {
    return this.#write(
      "RemoveLogEntry",
      { op: "delete", channelId: req.channelId, kind: RowKind.Log, id: req.messageId },
      { op: "delete", channelId: req.channelId, kind: RowKind.Hint, id: req.messageId }, // the hint goes with its message
    );
  }

  setRetrievalHint(req: state.SetRetrievalHintRequest): Promise<Result<void>> {
    return this.#write("SetRetrievalHint", { op: "upsert", channelId: req.channelId, kind: RowKind.Hint, id: req.messageId, data: req.retrievalHint });
  }

  saveOutgoing(req: state.SaveOutgoingRequest): Promise<Result<void>> {
    const e = req.message ?? create(state.UnacknowledgedMessageSchema);
    return this.#write("SaveOutgoing", {
      op: "upsert", channelId: req.channelId, kind: RowKind.Outgoing, id: e.message?.messageId ?? "", data: toBinary(state.UnacknowledgedMessageSchema, e),
    });
  }

  removeOutgoing(req: state.RemoveOutgoingRequest): Promise<Result<void>> {
    return this.#write("RemoveOutgoing", { op: "delete", channelId: req.channelId, kind: RowKind.Outgoing, id: req.messageId });
  }

  saveIncoming(req: state.SaveIncomingRequest): Promise<Result<void>> {
    const e = req.message ?? create(state.IncomingMessageSchema);
    return this.#write("SaveIncoming", {
      op: "upsert", channelId: req.channelId, kind: RowKind.Incoming, id: e.message?.messageId ?? "", data: toBinary(state.IncomingMessageSchema, e),
    });
  }

  removeIncoming(req: state.RemoveIncomingRequest): Promise<Result<void>> {
    return this.#write("RemoveIncoming", { op: "delete", channelId: req.channelId, kind: RowKind.Incoming, id: req.messageId });
  }

  saveOutgoingRepair(req: state.SaveOutgoingRepairRequest): Promise<Result<void>> {
    const e = req.entry ?? create(state.OutgoingRepairEntrySchema);
    return this.#write("SaveOutgoingRepair", {
      op: "upsert", channelId: req.channelId, kind: RowKind.OutgoingRepair, id: e.entry?.messageId ?? "", data: toBinary(state.OutgoingRepairEntrySchema, e),
    });
  }

  removeOutgoingRepair(req: state.RemoveOutgoingRepairRequest): Promise<Result<void>> {
    return this.#write("RemoveOutgoingRepair", { op: "delete", channelId: req.channelId, kind: RowKind.OutgoingRepair, id: req.messageId });
  }

  saveIncomingRepair(req: state.SaveIncomingRepairRequest): Promise<Result<void>> {
    const e = req.entry ?? create(state.IncomingRepairEntrySchema);
    return this.#write("SaveIncomingRepair", {
      op: "upsert", channelId: req.channelId, kind: RowKind.IncomingRepair, id: e.entry?.messageId ?? "", data: toBinary(state.IncomingRepairEntrySchema, e),
    });
  }

  removeIncomingRepair(req: state.RemoveIncomingRepairRequest): Promise<Result<void>> {
    return this.#write("RemoveIncomingRepair", { op: "delete", channelId: req.channelId, kind: RowKind.IncomingRepair, id: req.messageId });
  }

  dropChannel(req: state.DropChannelRequest): Promise<Result<void>> {
    return this.#write("DropChannel", { op: "drop", channelId: req.channelId });
  }

  async loadAllForChannel(req: state.LoadAllForChannelRequest): Promise<Result<MessageInitShape<typeof state.ChannelSnapshotSchema>>> {
    let stored: StoredChannel;
    try {
      stored = await this.load(req.channelId);
    } catch (e) {
      return fail(ErrorCode.PERSISTENCE, describe(e), "LoadAllForChannel");
    }
    return ok(decodeChannel(req.channelId, stored));
  }

  /** Stages the writes in the channel's open transaction, or applies them at once. */
  #write(method: PersistenceMethodName, ...writes: RowWrite[]): Promise<Result<void>> {
    const channelId = writes[0]?.channelId ?? "";
    let staged = true;
    for (const w of writes) {
      staged = this.#staging.stage(channelId, w) && staged;
    }
    return staged ? Promise.resolve(ok()) : this.#run(method, writes);
  }

  async #run(method: PersistenceMethodName, writes: readonly RowWrite[]): Promise<Result<void>> {
    if (writes.length === 0) {
      return ok();
    }
    try {
      await this.apply(writes);
    } catch (e) {
      return fail(ErrorCode.PERSISTENCE, describe(e), method);
    }
    return ok();
  }
}

/** decodeChannel turns stored rows into a snapshot (log oldest-first, buffers in insertion order). */
export function decodeChannel(channelId: string, stored: StoredChannel): state.ChannelSnapshot {
  const s = create(state.ChannelSnapshotSchema, { channelId, lamportTimestamp: stored.lamport ?? 0n });
  const rows = [...stored.rows].sort((a, b) => a.seq - b.seq);
  for (const r of rows) {
    switch (r.kind) {
      case RowKind.Log:
        s.log.push(fromBinary(SdsMessageSchema, r.data));
        break;
      case RowKind.Hint:
        s.retrievalHints.push(create(state.RetrievalHintSchema, { messageId: r.id, retrievalHint: r.data }));
        break;
      case RowKind.Outgoing:
        s.outgoing.push(fromBinary(state.UnacknowledgedMessageSchema, r.data));
        break;
      case RowKind.Incoming:
        s.incoming.push(fromBinary(state.IncomingMessageSchema, r.data));
        break;
      case RowKind.OutgoingRepair:
        s.outgoingRepair.push(fromBinary(state.OutgoingRepairEntrySchema, r.data));
        break;
      case RowKind.IncomingRepair:
        s.incomingRepair.push(fromBinary(state.IncomingRepairEntrySchema, r.data));
        break;
    }
  }
  s.log.sort(compareLog);
  s.retrievalHints.sort((a, b) => (a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : 0));
  return s;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
