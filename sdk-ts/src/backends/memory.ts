// MemoryPersistence: the in-memory host backend with failure injection, for tests and
// conformance runners. It behaves exactly like sdk-go's MemoryPersistence.

import { clone, create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { fail, ok, SdsError } from "../gen/sdskit/v1/api_sdk.js";
import type { Persistence, PersistenceTransactions, Result } from "../gen/sdskit/v1/api_sdk.js";
import { ErrorCode } from "../gen/sdskit/v1/errors_pb.js";
import * as state from "../gen/sdskit/v1/state_pb.js";
import type * as api from "../gen/sdskit/v1/api_pb.js";
import { SdsMessageSchema } from "../gen/sdskit/v1/wire_pb.js";
import type { SdsMessage } from "../gen/sdskit/v1/wire_pb.js";
import { compareLog, isPersistenceMethod, Staging } from "./common.js";
import type { PersistenceMethodName } from "./common.js";

/** How an injected failure shows itself to the core. */
export type FailureMode = "result" | "throw" | "reject";

/** Options of an injected failure. */
export interface FailureOptions {
  /**
   * "result" (default): the method answers a failed Result; "throw": it throws
   * synchronously; "reject": it returns a rejected Promise. The core reports all three
   * as PERSISTENCE.
   */
  mode?: FailureMode;
  /** The failure's message (default "injected failure: <Method>"). */
  message?: string;
}

/** One channel's stored tables. */
class Tables {
  hasLamport = false;
  lamport = 0n;
  readonly log = new Map<string, SdsMessage>();
  readonly hints = new Map<string, Uint8Array>();
  readonly outgoing = new Map<string, state.UnacknowledgedMessage>();
  readonly incoming = new Map<string, state.IncomingMessage>();
  readonly outgoingRepair = new Map<string, state.OutgoingRepairEntry>();
  readonly incomingRepair = new Map<string, state.IncomingRepairEntry>();

  empty(): boolean {
    return !this.hasLamport && this.log.size === 0 && this.hints.size === 0 && this.outgoing.size === 0 &&
      this.incoming.size === 0 && this.outgoingRepair.size === 0 && this.incomingRepair.size === 0;
  }
}

/** A write: applied to the store at once, or staged until Commit. */
type Write = (store: MemoryPersistence) => void;

/**
 * MemoryPersistence is an in-memory backend implementing the Persistence contract and
 * its Transactions capability, with failure injection and call counters, for tests.
 * Pass the same instance to a new manager after close() to simulate a restart over the
 * same data.
 *
 * A channel's writes between Begin and Commit are staged and applied together at
 * Commit (Rollback, or a failing Commit, discards them); a write outside a transaction
 * applies at once. Upserts keep the first-insertion order of the outgoing, incoming and
 * repair tables, RemoveLogEntry also deletes the message's retrieval hint, and
 * LoadAllForChannel returns the log oldest-first.
 *
 * calls() counts every call of each method, failed calls included. failOp makes every
 * call of a method fail until heal; failNth only the n-th call from now. A failing call
 * has no effect (a failing staged write is not staged).
 */
export class MemoryPersistence implements Persistence, PersistenceTransactions {
  readonly #channels = new Map<string, Tables>();
  readonly #staging = new Staging<Write>();
  readonly #calls = new Map<PersistenceMethodName, number>();
  readonly #failOps = new Map<PersistenceMethodName, FailureOptions>();
  readonly #failNth = new Map<PersistenceMethodName, { n: number; options: FailureOptions }>();

  /** Makes every later call of the method fail until heal. */
  failOp(method: PersistenceMethodName, options: FailureOptions = {}): void {
    checkMethod(method);
    this.#failOps.set(method, options);
  }

  /** Makes only the n-th call of the method from now fail (1 = the next), once. */
  failNth(method: PersistenceMethodName, n: number, options: FailureOptions = {}): void {
    checkMethod(method);
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`failNth(${method}, ${n}): n must be an integer of at least 1`);
    }
    this.#failNth.set(method, { n, options });
  }

  /** Removes the injected failures of the given methods, or of every method. */
  heal(...methods: PersistenceMethodName[]): void {
    if (methods.length === 0) {
      this.#failOps.clear();
      this.#failNth.clear();
      return;
    }
    for (const m of methods) {
      this.#failOps.delete(m);
      this.#failNth.delete(m);
    }
  }

  /** How many times the method was called, failed calls included. */
  calls(method: PersistenceMethodName): number {
    return this.#calls.get(method) ?? 0;
  }

  /** Every method's call count. */
  allCalls(): Partial<Record<PersistenceMethodName, number>> {
    return Object.fromEntries(this.#calls) as Partial<Record<PersistenceMethodName, number>>;
  }

  /**
   * What LoadAllForChannel would return for the channel (a copy), without counting a
   * call or triggering a failure.
   */
  snapshot(channelId: string): state.ChannelSnapshot {
    const s = create(state.ChannelSnapshotSchema, { channelId });
    const t = this.#channels.get(channelId);
    if (t === undefined) {
      return s;
    }
    s.lamportTimestamp = t.lamport;
    s.log = [...t.log.values()].map((m) => clone(SdsMessageSchema, m)).sort(compareLog);
    s.outgoing = [...t.outgoing.values()].map((m) => clone(state.UnacknowledgedMessageSchema, m));
    s.incoming = [...t.incoming.values()].map((m) => clone(state.IncomingMessageSchema, m));
    s.outgoingRepair = [...t.outgoingRepair.values()].map((m) => clone(state.OutgoingRepairEntrySchema, m));
    s.incomingRepair = [...t.incomingRepair.values()].map((m) => clone(state.IncomingRepairEntrySchema, m));
    s.retrievalHints = [...t.hints.keys()].sort().map((id) =>
      create(state.RetrievalHintSchema, { messageId: id, retrievalHint: (t.hints.get(id) ?? new Uint8Array()).slice() }),
    );
    return s;
  }

  /** The ids of the channels with any stored state, sorted. */
  channels(): string[] {
    return [...this.#channels.keys()].sort();
  }

  // --- the contract ------------------------------------------------------------------

  begin(req: api.BeginRequest): Promise<Result<void>> {
    return this.#call("Begin", () => {
      if (!this.#staging.begin(req.channelId)) {
        return fail(ErrorCode.PERSISTENCE, `memory persistence: Begin: a transaction is already open for channel "${req.channelId}"`, "Begin");
      }
      return ok();
    }, () => undefined);
  }

  commit(req: api.CommitRequest): Promise<Result<void>> {
    // The transaction closes whether or not the commit fails.
    const writes = this.#staging.take(req.channelId);
    return this.#call("Commit", () => {
      if (writes === undefined) {
        return fail(ErrorCode.PERSISTENCE, `memory persistence: Commit: no transaction is open for channel "${req.channelId}"`, "Commit");
      }
      for (const w of writes) {
        w(this);
      }
      this.#dropIfEmpty(req.channelId);
      return ok();
    });
  }

  rollback(req: api.RollbackRequest): Promise<Result<void>> {
    this.#staging.take(req.channelId);
    return this.#call("Rollback", () => ok());
  }

  saveLamport(req: state.SaveLamportRequest): Promise<Result<void>> {
    return this.#write("SaveLamport", req.channelId, (s) => {
      const t = s.#tables(req.channelId);
      t.hasLamport = true;
      t.lamport = req.lamportTimestamp;
    });
  }

  appendLogEntry(req: state.AppendLogEntryRequest): Promise<Result<void>> {
    const msg = req.message ?? create(SdsMessageSchema);
    return this.#write("AppendLogEntry", req.channelId, (s) => {
      s.#tables(req.channelId).log.set(msg.messageId, msg);
    });
  }

  removeLogEntry(req: state.RemoveLogEntryRequest): Promise<Result<void>> {
    return this.#write("RemoveLogEntry", req.channelId, (s) => {
      const t = s.#channels.get(req.channelId);
      t?.log.delete(req.messageId);
      t?.hints.delete(req.messageId); // the hint goes with its message
    });
  }

  setRetrievalHint(req: state.SetRetrievalHintRequest): Promise<Result<void>> {
    return this.#write("SetRetrievalHint", req.channelId, (s) => {
      s.#tables(req.channelId).hints.set(req.messageId, req.retrievalHint);
    });
  }

  saveOutgoing(req: state.SaveOutgoingRequest): Promise<Result<void>> {
    const e = req.message ?? create(state.UnacknowledgedMessageSchema);
    return this.#write("SaveOutgoing", req.channelId, (s) => {
      s.#tables(req.channelId).outgoing.set(e.message?.messageId ?? "", e);
    });
  }

  removeOutgoing(req: state.RemoveOutgoingRequest): Promise<Result<void>> {
    return this.#write("RemoveOutgoing", req.channelId, (s) => {
      s.#channels.get(req.channelId)?.outgoing.delete(req.messageId);
    });
  }

  saveIncoming(req: state.SaveIncomingRequest): Promise<Result<void>> {
    const e = req.message ?? create(state.IncomingMessageSchema);
    return this.#write("SaveIncoming", req.channelId, (s) => {
      s.#tables(req.channelId).incoming.set(e.message?.messageId ?? "", e);
    });
  }

  removeIncoming(req: state.RemoveIncomingRequest): Promise<Result<void>> {
    return this.#write("RemoveIncoming", req.channelId, (s) => {
      s.#channels.get(req.channelId)?.incoming.delete(req.messageId);
    });
  }

  saveOutgoingRepair(req: state.SaveOutgoingRepairRequest): Promise<Result<void>> {
    const e = req.entry ?? create(state.OutgoingRepairEntrySchema);
    return this.#write("SaveOutgoingRepair", req.channelId, (s) => {
      s.#tables(req.channelId).outgoingRepair.set(e.entry?.messageId ?? "", e);
    });
  }

  removeOutgoingRepair(req: state.RemoveOutgoingRepairRequest): Promise<Result<void>> {
    return this.#write("RemoveOutgoingRepair", req.channelId, (s) => {
      s.#channels.get(req.channelId)?.outgoingRepair.delete(req.messageId);
    });
  }

  saveIncomingRepair(req: state.SaveIncomingRepairRequest): Promise<Result<void>> {
    const e = req.entry ?? create(state.IncomingRepairEntrySchema);
    return this.#write("SaveIncomingRepair", req.channelId, (s) => {
      s.#tables(req.channelId).incomingRepair.set(e.entry?.messageId ?? "", e);
    });
  }

  removeIncomingRepair(req: state.RemoveIncomingRepairRequest): Promise<Result<void>> {
    return this.#write("RemoveIncomingRepair", req.channelId, (s) => {
      s.#channels.get(req.channelId)?.incomingRepair.delete(req.messageId);
    });
  }

  dropChannel(req: state.DropChannelRequest): Promise<Result<void>> {
    return this.#write("DropChannel", req.channelId, (s) => {
      s.#channels.delete(req.channelId);
    });
  }

  loadAllForChannel(req: state.LoadAllForChannelRequest): Promise<Result<MessageInitShape<typeof state.ChannelSnapshotSchema>>> {
    return this.#call("LoadAllForChannel", () => ok(this.snapshot(req.channelId)));
  }

  // --- internals ---------------------------------------------------------------------

  #tables(channelId: string): Tables {
    let t = this.#channels.get(channelId);
    if (t === undefined) {
      t = new Tables();
      this.#channels.set(channelId, t);
    }
    return t;
  }

  #dropIfEmpty(channelId: string): void {
    if (this.#channels.get(channelId)?.empty() === true) {
      this.#channels.delete(channelId);
    }
  }

  /** Stages w in the channel's open transaction, or applies it at once. */
  #write(method: PersistenceMethodName, channelId: string, w: Write): Promise<Result<void>> {
    return this.#call(method, () => {
      if (!this.#staging.stage(channelId, w)) {
        w(this);
        this.#dropIfEmpty(channelId);
      }
      return ok();
    });
  }

  /**
   * Counts one call of method and runs body unless an injected failure hits it; onFail
   * runs when one does (Begin must not open a transaction then).
   */
  #call<T>(method: PersistenceMethodName, body: () => Result<T>, onFail: () => void = () => undefined): Promise<Result<T>> {
    this.#calls.set(method, (this.#calls.get(method) ?? 0) + 1);
    let failure = this.#failOps.get(method);
    const nth = this.#failNth.get(method);
    if (nth !== undefined) {
      if (nth.n <= 1) {
        this.#failNth.delete(method);
        failure = nth.options;
      } else {
        nth.n--;
      }
    }
    if (failure !== undefined) {
      onFail();
      const message = failure.message ?? `injected failure: ${method}`;
      switch (failure.mode ?? "result") {
        case "throw":
          throw new Error(message);
        case "reject":
          return Promise.reject(new Error(message));
        default:
          return Promise.resolve(fail(ErrorCode.PERSISTENCE, message, method));
      }
    }
    return Promise.resolve(body());
  }
}

function checkMethod(method: string): void {
  if (!isPersistenceMethod(method)) {
    throw new SdsError(ErrorCode.INVALID_ARGUMENT, `unknown persistence method "${method}"`, "MemoryPersistence");
  }
}
