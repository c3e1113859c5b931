// What the TypeScript persistence backends share: method names and the staging of a
// channel's writes between Begin and Commit.

import { PersistenceMethod } from "../gen/sdskit/v1/api_sdk.js";

/** The name of a Persistence method, e.g. "SaveOutgoing" or "Commit". */
export type PersistenceMethodName = keyof typeof PersistenceMethod;

/**
 * PersistenceMethods lists every Persistence method: the 14 operations of the contract
 * in contract order, then Begin, Commit and Rollback.
 */
export const PersistenceMethods: readonly PersistenceMethodName[] = Object.keys(PersistenceMethod) as PersistenceMethodName[];

/** isPersistenceMethod reports whether name is a Persistence method name. */
export function isPersistenceMethod(name: string): name is PersistenceMethodName {
  return Object.prototype.hasOwnProperty.call(PersistenceMethod, name);
}

/**
 * Staging keeps the open transactions of a backend, one per channel: the writes of a
 * channel between Begin and Commit are collected and applied together at Commit.
 */
export class Staging<W> {
  readonly #open = new Map<string, W[]>();

  /** Opens a transaction; false if the channel already has one. */
  begin(channelId: string): boolean {
    if (this.#open.has(channelId)) {
      return false;
    }
    this.#open.set(channelId, []);
    return true;
  }

  /** Stages a write if the channel has an open transaction; false otherwise. */
  stage(channelId: string, write: W): boolean {
    const ops = this.#open.get(channelId);
    if (ops === undefined) {
      return false;
    }
    ops.push(write);
    return true;
  }

  /** Closes the channel's transaction and returns its writes (undefined: none was open). */
  take(channelId: string): W[] | undefined {
    const ops = this.#open.get(channelId);
    this.#open.delete(channelId);
    return ops;
  }
}

/** LogKey is what orders a log entry. */
export interface LogKey {
  lamportTimestamp?: bigint | undefined;
  messageId: string;
}

/** compareLog orders a log oldest-first: by Lamport timestamp, then message id. */
export function compareLog(a: LogKey, b: LogKey): number {
  const la = a.lamportTimestamp ?? 0n;
  const lb = b.lamportTimestamp ?? 0n;
  if (la !== lb) {
    return la < lb ? -1 : 1;
  }
  return a.messageId < b.messageId ? -1 : a.messageId > b.messageId ? 1 : 0;
}
