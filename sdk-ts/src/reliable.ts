// ReliableChannel: one SDS channel over one broadcast transport, with the protocol's
// chores done for the application (hand-written on top of the generated API).

import type { MessageInitShape } from "@bufbuild/protobuf";
import type * as api from "./gen/sdskit/v1/api_pb.js";
import type { Event, MessageReady, MissingDependencies } from "./gen/sdskit/v1/events_pb.js";
import { ErrorCode } from "./gen/sdskit/v1/errors_pb.js";
import { SdsError, unwrap } from "./gen/sdskit/v1/api_sdk.js";
import { ReliabilityManager, type PersistenceOption } from "./manager.js";
import type { Core, LoadOptions } from "./core.js";

/** A broadcast medium: publish bytes to every other participant, receive theirs. It may
 * lose, duplicate, delay and reorder; the channel repairs that. */
export interface Transport {
  /** Broadcasts payload to the other participants. */
  publish(payload: Uint8Array): Promise<void>;
  /** Calls handler for every payload received until the returned function is called. */
  subscribe(handler: (payload: Uint8Array) => Promise<void> | void): Promise<() => Promise<void>>;
}

/** Options of ReliableChannel.open; every callback is optional and runs in event order. */
export interface ReliableChannelOptions {
  /** Our participant id. */
  participantId: string;
  /** The channel. */
  channelId: string;
  /** The transport. */
  transport: Transport;
  /** The protocol configuration. */
  config?: MessageInitShape<typeof api.ConfigSchema>;
  /** Where the state lives (default "none"). */
  persistence?: PersistenceOption;
  /** The core to use, or how to load it. */
  core?: Core | LoadOptions;
  /** The other participants' messages, in causal order. */
  onMessage?: (message: MessageReady) => void;
  /** A peer holds one of our messages. */
  onAcknowledged?: (messageId: string) => void;
  /** A received message waits for these dependencies (repair is already requested). */
  onMissing?: (event: MissingDependencies) => void;
  /** Every event of the manager, after the specific callbacks. */
  onEvent?: (event: Event) => void;
  /** What the channel cannot return to a caller: a failed rebroadcast, a payload that is not SDS. */
  onError?: (error: unknown) => void;
}

function randomId(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * ReliableChannel wraps and publishes what you send, unwraps what arrives, rebroadcasts on
 * ResendRequested and RepairReady, publishes a sync message on SyncDue and runs the
 * manager's periodic tasks. Unlike the generated API it throws SdsError instead of
 * returning Results, as a convenience layer for applications.
 */
export class ReliableChannel {
  readonly manager: ReliabilityManager;
  readonly channelId: string;
  readonly #transport: Transport;
  readonly #opt: ReliableChannelOptions;
  #chain: Promise<void> = Promise.resolve();
  #unsubscribe: (() => Promise<void>) | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;

  private constructor(manager: ReliabilityManager, opt: ReliableChannelOptions) {
    this.manager = manager;
    this.channelId = opt.channelId;
    this.#transport = opt.transport;
    this.#opt = opt;
  }

  /** Creates the manager, loads the channel, subscribes and starts the periodic tasks.
   * Throws SdsError (INVALID_ARGUMENT for an empty channel id or a bad config). */
  static async open(opt: ReliableChannelOptions): Promise<ReliableChannel> {
    if (opt.channelId === "") {
      throw new SdsError(ErrorCode.INVALID_ARGUMENT, "empty channel id", "ReliableChannel.open");
    }
    const manager = unwrap(
      await ReliabilityManager.create({
        participantId: opt.participantId,
        ...(opt.config === undefined ? {} : { config: opt.config }),
        ...(opt.persistence === undefined ? {} : { persistence: opt.persistence }),
        ...(opt.core === undefined ? {} : { core: opt.core }),
        onListenerError: (error) => opt.onError?.(error),
      }),
    );
    const ch = new ReliableChannel(manager, opt);
    manager.events.onAny((ev) => {
      // Events fire inside the call that produced them: handle them afterwards, in order.
      ch.#chain = ch.#chain.then(() => ch.#handle(ev)).catch((error: unknown) => ch.#report(error));
    });
    try {
      unwrap(await manager.ensureChannel({ channelId: opt.channelId }));
      ch.#unsubscribe = await opt.transport.subscribe((p) => ch.#receive(p));
      unwrap(await manager.startPeriodicTasks({}));
    } catch (error) {
      await ch.close();
      throw error;
    }
    return ch;
  }

  /** Wraps content (under messageId, or a new random id), publishes it and returns the id.
   * The message is persisted before publishing, so a transport error loses nothing: the
   * resend timer publishes it again until a peer acknowledges it. */
  async send(content: Uint8Array, messageId: string = randomId()): Promise<string> {
    const w = unwrap(await this.manager.wrapOutgoingMessage({ channelId: this.channelId, messageId, content }));
    await this.#transport.publish(w.wireBytes);
    return messageId;
  }

  /** Publishes an ephemeral message (delivered at once, never buffered, acknowledged or repaired). */
  async sendEphemeral(content: Uint8Array): Promise<string> {
    const messageId = randomId();
    const w = unwrap(await this.manager.wrapEphemeral({ channelId: this.channelId, messageId, content }));
    await this.#transport.publish(w.wireBytes);
    return messageId;
  }

  /** Unsubscribes, closes the manager and waits for the queued events. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      try {
        await this.#unsubscribe?.();
      } finally {
        await this.manager.close();
        await this.#chain;
      }
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #receive(payload: Uint8Array): Promise<void> {
    if (this.#closed) return;
    const r = await this.manager.unwrapReceivedMessage({ data: payload });
    if (!r.ok && r.error.code !== ErrorCode.CLOSED) this.#report(r.error);
  }

  #report(error: unknown): void {
    this.#opt.onError?.(error);
  }

  async #handle(ev: Event): Promise<void> {
    const o = this.#opt;
    const e = ev.event;
    switch (e.case) {
      case "messageReady":
        if (e.value.channelId === this.channelId) o.onMessage?.(e.value);
        break;
      case "messageAcknowledged":
        if (e.value.channelId === this.channelId) o.onAcknowledged?.(e.value.messageId);
        break;
      case "missingDependencies":
        if (e.value.channelId === this.channelId) o.onMissing?.(e.value);
        break;
      case "resendRequested":
      case "repairReady":
        await this.#publish(e.value.wireBytes, `${e.case} ${e.value.messageId}`);
        break;
      case "syncDue":
        if (e.value.channelId === this.channelId && !this.#closed) {
          const r = await this.manager.buildSyncMessage({ channelId: this.channelId });
          if (r.ok) await this.#publish(r.value.wireBytes, "sync");
          else if (r.error.code !== ErrorCode.CLOSED) this.#report(r.error);
        }
        break;
      default:
        break;
    }
    o.onEvent?.(ev);
  }

  async #publish(wire: Uint8Array, what: string): Promise<void> {
    if (wire.length === 0) return;
    try {
      await this.#transport.publish(wire);
    } catch (error) {
      this.#report(new Error(`publish ${what}: ${String(error)}`, { cause: error }));
    }
  }
}

/** An in-process broadcast medium for tests and examples: what one endpoint publishes
 * reaches every other subscribed endpoint, in order. drop(from, to, payload) true loses it. */
export class LoopbackBus {
  drop: ((from: number, to: number, payload: Uint8Array) => boolean) | undefined;
  readonly #subs = new Map<number, (p: Uint8Array) => void>();
  #next = 0;

  constructor(drop?: (from: number, to: number, payload: Uint8Array) => boolean) {
    this.drop = drop;
  }

  /** A new endpoint, numbered from 0 in creation order. */
  transport(): Transport & { readonly id: number } {
    const id = this.#next++;
    const subs = this.#subs;
    const bus = this;
    return {
      id,
      async publish(payload: Uint8Array): Promise<void> {
        for (const [to, deliver] of subs) {
          if (to === id || bus.drop?.(id, to, payload) === true) continue;
          deliver(payload.slice());
        }
      },
      async subscribe(handler: (payload: Uint8Array) => Promise<void> | void): Promise<() => Promise<void>> {
        if (subs.has(id)) throw new Error("loopback endpoint already subscribed");
        let chain: Promise<void> = Promise.resolve();
        const deliver = (p: Uint8Array): void => {
          chain = chain.then(() => handler(p)).catch(() => undefined);
        };
        subs.set(id, deliver);
        return async () => {
          if (subs.get(id) === deliver) subs.delete(id);
          await chain;
        };
      },
    };
  }
}
