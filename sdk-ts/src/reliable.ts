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
  /** Our participant id (ignored with `manager`; default "", which disables SDS-R). */
  participantId?: string;
  /** An existing manager to use instead of creating one (config, persistence and core are
   * then ignored). The channel never closes a manager it did not create, so several
   * channels can share one. */
  manager?: ReliabilityManager;
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
  /** The other participants' messages, in causal order (also: messages()). */
  onMessage?: (message: MessageReady) => void;
  /** A peer holds one of our messages. */
  onAcknowledged?: (messageId: string) => void;
  /** A received message waits for these dependencies (repair is already requested). */
  onMissing?: (event: MissingDependencies) => void;
  /** Every event of this channel, after the specific callbacks. */
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
export class ReliableChannel implements AsyncIterable<MessageReady> {
  /** The manager the channel runs on. */
  readonly manager: ReliabilityManager;
  /** The SDS channel id. */
  readonly channelId: string;
  readonly #transport: Transport;
  readonly #opt: ReliableChannelOptions;
  readonly #ownsManager: boolean;
  #chain: Promise<void> = Promise.resolve();
  #unsubscribe: (() => Promise<void>) | undefined;
  #offEvents: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #closed = false;
  readonly #readers = new Set<MessageQueue>();

  private constructor(manager: ReliabilityManager, opt: ReliableChannelOptions, owns: boolean) {
    this.manager = manager;
    this.channelId = opt.channelId;
    this.#transport = opt.transport;
    this.#opt = opt;
    this.#ownsManager = owns;
  }

  /** Creates the manager, loads the channel, subscribes and starts the periodic tasks.
   * Throws SdsError (INVALID_ARGUMENT for an empty channel id or a bad config). */
  static async open(opt: ReliableChannelOptions): Promise<ReliableChannel> {
    if (opt.channelId === "") {
      throw new SdsError(ErrorCode.INVALID_ARGUMENT, "empty channel id", "ReliableChannel.open");
    }
    if (opt.manager?.closed === true) {
      throw new SdsError(ErrorCode.CLOSED, "the manager is closed", "ReliableChannel.open");
    }
    const manager =
      opt.manager ??
      unwrap(
        await ReliabilityManager.create({
          participantId: opt.participantId ?? "",
          ...(opt.config === undefined ? {} : { config: opt.config }),
          ...(opt.persistence === undefined ? {} : { persistence: opt.persistence }),
          ...(opt.core === undefined ? {} : { core: opt.core }),
          onListenerError: (error) => opt.onError?.(error),
        }),
      );
    const ch = new ReliableChannel(manager, opt, opt.manager === undefined);
    ch.#offEvents = manager.events.onAny((ev) => {
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

  /**
   * The channel's delivered messages (MessageReady, in causal order) from now on, as an
   * async iterator that ends when the channel closes. Each call returns an independent
   * reader; a reader buffers what it has not consumed yet, and `break` releases it.
   */
  messages(): AsyncIterableIterator<MessageReady> {
    const q = new MessageQueue(() => this.#readers.delete(q));
    if (this.#closed) q.end();
    else this.#readers.add(q);
    return q;
  }

  /** Same as messages(): `for await (const m of channel)`. */
  [Symbol.asyncIterator](): AsyncIterableIterator<MessageReady> {
    return this.messages();
  }

  /** Unsubscribes, closes the manager if the channel created it, waits for the queued
   * events and ends the message iterators. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      try {
        await this.#unsubscribe?.();
      } finally {
        if (this.#ownsManager) await this.manager.close();
        await this.#chain;
        this.#offEvents?.();
        for (const q of this.#readers) q.end();
        this.#readers.clear();
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
    // Every event names its channel; a shared manager's other channels are not ours.
    if (e.case === undefined || e.value.channelId !== this.channelId) return;
    switch (e.case) {
      case "messageReady":
        for (const q of this.#readers) q.push(e.value);
        o.onMessage?.(e.value);
        break;
      case "messageAcknowledged":
        o.onAcknowledged?.(e.value.messageId);
        break;
      case "missingDependencies":
        o.onMissing?.(e.value);
        break;
      case "resendRequested":
      case "repairReady":
        await this.#publish(e.value.wireBytes, `${e.case} ${e.value.messageId}`);
        break;
      case "syncDue":
        if (!this.#closed) {
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

/** One reader of ReliableChannel.messages(): an unbounded FIFO of delivered messages. */
class MessageQueue implements AsyncIterableIterator<MessageReady> {
  readonly #items: MessageReady[] = [];
  readonly #waiting: ((r: IteratorResult<MessageReady>) => void)[] = [];
  readonly #release: () => void;
  #done = false;

  constructor(release: () => void) {
    this.#release = release;
  }

  push(m: MessageReady): void {
    if (this.#done) return;
    const w = this.#waiting.shift();
    if (w !== undefined) w({ value: m, done: false });
    else this.#items.push(m);
  }

  /** Ends the iterator once the buffered messages are consumed. */
  end(): void {
    this.#done = true;
    this.#release();
    for (const w of this.#waiting.splice(0)) w({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<MessageReady>> {
    const m = this.#items.shift();
    if (m !== undefined) return Promise.resolve({ value: m, done: false });
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  return(): Promise<IteratorResult<MessageReady>> {
    this.#items.length = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<MessageReady> {
    return this;
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
