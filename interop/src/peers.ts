// Participants of both implementations behind one interface, a virtual clock they share,
// and the in-process bus the test controls (withhold, drop, reorder).

import { createHash } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import { isEphemeralMessage, isSyncMessage, Message, MessageChannel, MessageChannelEvent } from "@waku/sds";
import type { HistoryEntry, MessageChannelOptions } from "@waku/sds";
import { ErrorCode, ReliabilityManager, SdsError, unwrap } from "../../sdk-ts/dist/index.js";
import type { ChannelSnapshot, Core, ReliabilityManagerOptions } from "../../sdk-ts/dist/index.js";

/** The peer implementation under test, as printed in every result line. */
export const WAKU = "@waku/sds@0.0.8";
/** Our implementation. */
export const SDSKIT = "sdskit";
/** Which implementation a participant runs. */
export type Impl = typeof WAKU | typeof SDSKIT;

/**
 * Clock is the virtual wall clock of the run. @waku/sds reads Date.now() everywhere
 * (Lamport clock, T_req, T_resp, lost-message timeouts) and has no clock option, so the
 * run replaces Date.now while it lasts; sdskit managers get the same clock through their
 * `clock` option. Both sides then compute SDS-R deadlines from the same "now".
 */
export class Clock {
  #now: number;
  #realNow: (() => number) | undefined;

  constructor(startMs: number) {
    this.#now = startMs;
  }

  /** The current virtual time (Unix ms). */
  get now(): number {
    return this.#now;
  }

  /** Moves the clock forward by ms (never backwards). */
  advance(ms: number): void {
    if (!(ms >= 0)) {
      throw new RangeError(`clock: cannot advance by ${ms}`);
    }
    this.#now += ms;
  }

  /** Makes Date.now() return the virtual time until uninstall(). */
  install(): void {
    if (this.#realNow === undefined) {
      this.#realNow = Date.now;
      Date.now = () => this.#now;
    }
  }

  /** Restores the real Date.now(). */
  uninstall(): void {
    if (this.#realNow !== undefined) {
      Date.now = this.#realNow;
      this.#realNow = undefined;
    }
  }
}

/** The id @waku/sds gives a payload (hex SHA-256); sdskit participants use it too. */
export function messageIdOf(content: Uint8Array): string {
  return createHash("sha256").update(content).digest("hex");
}

/** A message a participant produced: its id and the bytes to broadcast. */
export interface Sent {
  readonly id: string;
  readonly bytes: Uint8Array;
}

/** What one participant observed, in the vocabulary common to both implementations. */
export class Observed {
  /** Content messages delivered to the application, in delivery order. */
  readonly delivered: string[] = [];
  /** Ids reported missing (dependencies of a received message that are not held). */
  readonly missing = new Set<string>();
  /** Own messages acknowledged, in order. */
  readonly acked: string[] = [];
  /** Own messages possibly acknowledged through a bloom filter, with the reported count. */
  readonly possiblyAcked: { id: string; count: number }[] = [];
  /** Ids of received sync messages that were recognised as such. */
  readonly syncs: string[] = [];
  /** Received ephemeral messages: id and content. */
  readonly ephemeral: { id: string; content: Uint8Array }[] = [];
  /** First T_req (Unix ms) computed for each message we miss. */
  readonly tReq = new Map<string, number>();
  /** First T_resp (Unix ms) computed for each repair request we will answer. */
  readonly tResp = new Map<string, number>();
  /** Ids that others asked us to repair, as received. */
  readonly repairRequestsReceived: string[] = [];
  /** Errors the implementation reported while processing (task errors). */
  readonly errors: string[] = [];
}

/** What receiving bytes gave. */
export type ReceiveOutcome =
  | { readonly ok: true; readonly kind: string }
  | { readonly ok: false; readonly error: SdsError | string };

/** A participant of either implementation on one channel. */
export interface Peer {
  readonly id: string;
  readonly impl: Impl;
  readonly channelId: string;
  readonly obs: Observed;
  /** Wraps a content message. */
  send(content: Uint8Array): Promise<Sent>;
  /** Builds a sync message (undefined when the implementation declines to build one). */
  sendSync(): Promise<Sent | undefined>;
  /** Wraps an ephemeral message. */
  sendEphemeral(content: Uint8Array): Promise<Sent>;
  /** Processes bytes from the bus. */
  receive(bytes: Uint8Array): Promise<ReceiveOutcome>;
  /** Runs the periodic work (buffer sweeps, SDS-R); returns bytes to rebroadcast. */
  tick(): Promise<Sent[]>;
  close(): Promise<void>;
}

/** Options of an sdskit participant. */
export interface SdskitPeerOptions {
  readonly core: Core;
  readonly clock: Clock;
  readonly config?: ReliabilityManagerOptions["config"];
}

/** An sdskit participant: the TypeScript SDK's ReliabilityManager (Go core in wasm). */
export class SdskitPeer implements Peer {
  readonly impl = SDSKIT;
  readonly #m: ReliabilityManager;
  readonly #repairs: Sent[] = [];
  #events = 0;

  private constructor(
    readonly id: string,
    readonly channelId: string,
    m: ReliabilityManager,
    readonly obs: Observed,
  ) {
    this.#m = m;
    m.events.on("messageReady", (e) => {
      if (e.lamportTimestamp === 0n) {
        this.obs.ephemeral.push({ id: e.messageId, content: e.content });
      } else {
        this.obs.delivered.push(e.messageId);
      }
    });
    m.events.on("missingDependencies", (e) => {
      for (const h of e.missing) {
        this.obs.missing.add(h.messageId);
      }
    });
    m.events.on("messageAcknowledged", (e) => this.obs.acked.push(e.messageId));
    m.events.on("messagePossiblyAcknowledged", (e) => this.obs.possiblyAcked.push({ id: e.messageId, count: e.count }));
    m.events.on("repairReady", (e) => this.#repairs.push({ id: e.messageId, bytes: e.wireBytes }));
    m.events.onAny(() => this.#events++);
  }

  /** Creates a participant with the core's defaults (spec profile) unless config says otherwise. */
  static async create(id: string, channelId: string, o: SdskitPeerOptions): Promise<SdskitPeer> {
    const obs = new Observed();
    const m = unwrap(
      await ReliabilityManager.create({
        core: o.core,
        participantId: id,
        clock: () => o.clock.now,
        persistence: "none",
        onListenerError: (e) => obs.errors.push(`listener: ${String(e)}`),
        ...(o.config === undefined ? {} : { config: o.config }),
      }),
    );
    unwrap(await m.ensureChannel({ channelId }));
    return new SdskitPeer(id, channelId, m, obs);
  }

  /** The channel's in-memory state (for no-state-change checks and SDS-R deadlines). */
  async snapshot(): Promise<ChannelSnapshot> {
    const s = unwrap(await this.#m.getSnapshot({ channelId: this.channelId })).snapshot;
    if (s === undefined) {
      throw new Error(`${this.id}: no snapshot of ${this.channelId}`);
    }
    return s;
  }

  /** Events fired so far, of any kind (the no-state-change checks compare it). */
  eventCount(): number {
    return this.#events;
  }

  /** Unwraps bytes and returns the SDK's Result as it is (for the malformed-input checks). */
  async unwrapRaw(bytes: Uint8Array): ReturnType<ReliabilityManager["unwrapReceivedMessage"]> {
    return this.#m.unwrapReceivedMessage({ data: bytes });
  }

  async send(content: Uint8Array): Promise<Sent> {
    const id = messageIdOf(content);
    const w = unwrap(await this.#m.wrapOutgoingMessage({ channelId: this.channelId, messageId: id, content }));
    return { id, bytes: w.wireBytes };
  }

  async sendSync(): Promise<Sent | undefined> {
    const w = unwrap(await this.#m.buildSyncMessage({ channelId: this.channelId }));
    return { id: Message.decode(w.wireBytes)?.messageId ?? "", bytes: w.wireBytes };
  }

  async sendEphemeral(content: Uint8Array): Promise<Sent> {
    const id = messageIdOf(content);
    const w = unwrap(await this.#m.wrapEphemeral({ channelId: this.channelId, messageId: id, content }));
    return { id, bytes: w.wireBytes };
  }

  async receive(bytes: Uint8Array): Promise<ReceiveOutcome> {
    const r = await this.#m.unwrapReceivedMessage({ data: bytes });
    if (!r.ok) {
      this.obs.errors.push(r.error.message);
      return { ok: false, error: r.error };
    }
    const v = r.value;
    // The repair requests the bytes carry, read with @waku/sds's decoder (the same wire).
    this.obs.repairRequestsReceived.push(...(Message.decode(bytes)?.repairRequest.map((e) => e.messageId) ?? []));
    if (v.kind === 2) {
      this.obs.syncs.push(v.messageId);
    }
    await this.#recordRepairDeadlines();
    return { ok: true, kind: ["unspecified", "content", "sync", "ephemeral", "duplicate"][v.kind] ?? String(v.kind) };
  }

  async tick(): Promise<Sent[]> {
    unwrap(await this.#m.runSweeps({}));
    return this.#repairs.splice(0);
  }

  async close(): Promise<void> {
    unwrap(await this.#m.close({}));
  }

  /**
   * Records the SDS-R deadlines the core scheduled: the snapshot's repair buffers hold
   * T_req and T_resp as absolute Unix ms, exactly what @waku/sds reports in its queued
   * events.
   */
  async #recordRepairDeadlines(): Promise<void> {
    const s = await this.snapshot();
    for (const e of s.outgoingRepair) {
      const id = e.entry?.messageId ?? "";
      if (!this.obs.tReq.has(id)) {
        this.obs.tReq.set(id, Number(e.requestAtUnixMs));
      }
    }
    for (const e of s.incomingRepair) {
      const id = e.entry?.messageId ?? "";
      if (!this.obs.tResp.has(id)) {
        this.obs.tResp.set(id, Number(e.respondAtUnixMs));
      }
    }
  }

}

/** A @waku/sds 0.0.8 MessageChannel participant, driven explicitly (processTasks, sweeps). */
export class WakuPeer implements Peer {
  readonly impl = WAKU;
  readonly obs = new Observed();
  readonly ch: MessageChannel;
  /** Queued-repair events received under their MessageChannelEvent names (0.0.8: none). */
  enumRepairEvents = 0;

  constructor(
    readonly id: string,
    readonly channelId: string,
    options: MessageChannelOptions = {},
  ) {
    const ch = new MessageChannel(channelId, id, options);
    this.ch = ch;
    const o = this.obs;
    ch.addEventListener(MessageChannelEvent.InMessageDelivered, (e) => o.delivered.push(e.detail));
    ch.addEventListener(MessageChannelEvent.InMessageMissing, (e) => {
      for (const h of e.detail) {
        o.missing.add(h.messageId);
      }
    });
    ch.addEventListener(MessageChannelEvent.OutMessageAcknowledged, (e) => o.acked.push(e.detail));
    ch.addEventListener(MessageChannelEvent.OutMessagePossiblyAcknowledged, (e) =>
      o.possiblyAcked.push({ id: e.detail.messageId, count: e.detail.count }),
    );
    ch.addEventListener(MessageChannelEvent.InSyncReceived, (e) => o.syncs.push(e.detail.messageId));
    ch.addEventListener(MessageChannelEvent.ErrorTask, (e) => o.errors.push(describeTaskError(e.detail)));
    ch.addEventListener(MessageChannelEvent.RepairRequestReceived, (e) => o.repairRequestsReceived.push(...e.detail.messageIds));
    // 0.0.8's RepairManager dispatches these two under the bare names "RepairRequestQueued"
    // and "RepairResponseQueued", not under the MessageChannelEvent values
    // ("sds:repair:request-queued", ...): listening on the enum never fires.
    ch.addEventListener(MessageChannelEvent.RepairRequestQueued, () => this.enumRepairEvents++);
    ch.addEventListener(MessageChannelEvent.RepairResponseQueued, () => this.enumRepairEvents++);
    const target: EventTarget = ch;
    target.addEventListener("RepairRequestQueued", (e) => {
      const d = detailOf<{ messageId: string; tReq: number }>(e);
      if (!o.tReq.has(d.messageId)) {
        o.tReq.set(d.messageId, d.tReq);
      }
    });
    target.addEventListener("RepairResponseQueued", (e) => {
      const d = detailOf<{ messageId: string; tResp: number }>(e);
      if (!o.tResp.has(d.messageId)) {
        o.tResp.set(d.messageId, d.tResp);
      }
    });
  }

  async send(content: Uint8Array): Promise<Sent> {
    let out: Sent | undefined;
    this.ch.pushOutgoingMessage(content, async (m) => {
      out = { id: m.messageId, bytes: m.encode() };
      return { success: true };
    });
    await this.ch.processTasks();
    if (out === undefined) {
      throw new Error(`${this.id}: @waku/sds did not send (${this.obs.errors.join("; ")})`);
    }
    return out;
  }

  async sendSync(): Promise<Sent | undefined> {
    let out: Sent | undefined;
    await this.ch.pushOutgoingSyncMessage(async (m) => {
      out = { id: m.messageId, bytes: m.encode() };
      return true;
    });
    return out;
  }

  async sendEphemeral(content: Uint8Array): Promise<Sent> {
    let out: Sent | undefined;
    await this.ch.pushOutgoingEphemeralMessage(content, async (m) => {
      out = { id: m.messageId, bytes: m.encode() };
      return true;
    });
    await this.ch.processTasks();
    if (out === undefined) {
      throw new Error(`${this.id}: @waku/sds did not send the ephemeral message`);
    }
    return out;
  }

  async receive(bytes: Uint8Array): Promise<ReceiveOutcome> {
    const m = Message.decode(bytes);
    if (m === undefined) {
      return { ok: false, error: "Message.decode returned undefined" };
    }
    // MessageChannel 0.0.8 drops ephemeral messages without any event: an application
    // sees them only by classifying the decoded message itself, as here.
    const kind = isEphemeralMessage(m) ? "ephemeral" : isSyncMessage(m) ? "sync" : "content";
    if (kind === "ephemeral" && m.content !== undefined && m.senderId !== this.id) {
      this.obs.ephemeral.push({ id: m.messageId, content: m.content });
    }
    const errorsBefore = this.obs.errors.length;
    this.ch.pushIncomingMessage(m, undefined);
    await this.ch.processTasks();
    if (this.obs.errors.length > errorsBefore) {
      return { ok: false, error: this.obs.errors.slice(errorsBefore).join("; ") };
    }
    return { ok: true, kind };
  }

  async tick(): Promise<Sent[]> {
    await this.ch.processTasks();
    this.ch.sweepIncomingBuffer();
    const out: Sent[] = [];
    await this.ch.sweepRepairIncomingBuffer(async (m) => {
      out.push({ id: m.messageId, bytes: m.encode() });
      return true;
    });
    return out;
  }

  async close(): Promise<void> {
    // Nothing to release: MessageChannel holds no timers or handles.
  }
}

function detailOf<T>(e: Event): T {
  if (!(e instanceof CustomEvent)) {
    throw new TypeError(`expected a CustomEvent, got ${e.type}`);
  }
  return e.detail as T;
}

function describeTaskError(detail: unknown): string {
  if (typeof detail === "object" && detail !== null && "error" in detail) {
    const err = (detail as { error: unknown }).error;
    return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }
  return String(detail);
}

/** One copy of a broadcast on its way to one recipient. */
export interface Packet {
  readonly from: Peer;
  readonly to: Peer;
  readonly label: string;
  readonly bytes: Uint8Array;
}

/** How a broadcast treats some recipients. */
export interface PublishOptions {
  /** Recipients whose copy is withheld (kept aside until released). */
  readonly hold?: readonly Peer[];
  /** Recipients whose copy is lost. */
  readonly drop?: readonly Peer[];
  /** Only these recipients get a copy (default: every other participant). */
  readonly only?: readonly Peer[];
}

/**
 * Bus is the in-process broadcast medium. Publishing queues one packet per recipient;
 * flush() delivers the queue in order. The test decides, per packet, whether it is
 * delivered, withheld for later (and in which order it is released) or lost.
 */
export class Bus {
  readonly #peers: Peer[] = [];
  readonly #queue: Packet[] = [];
  readonly held: Packet[] = [];
  /** Outcomes of deliveries that failed (e.g. a typed error), for the checks. */
  readonly failures: { packet: Packet; outcome: ReceiveOutcome }[] = [];

  add(...peers: Peer[]): void {
    this.#peers.push(...peers);
  }

  publish(from: Peer, sent: Sent, label: string, o: PublishOptions = {}): void {
    for (const p of o.only ?? this.#peers) {
      if (p === from || o.drop?.includes(p)) {
        continue;
      }
      const packet: Packet = { from, to: p, label, bytes: sent.bytes };
      if (o.hold?.includes(p)) {
        this.held.push(packet);
      } else {
        this.#queue.push(packet);
      }
    }
  }

  /** Requeues the held packets matching pred, in the order given by order (default: held order). */
  release(pred: (p: Packet) => boolean, order?: (a: Packet, b: Packet) => number): void {
    const picked = this.held.filter(pred);
    for (const p of picked) {
      this.held.splice(this.held.indexOf(p), 1);
    }
    if (order !== undefined) {
      picked.sort(order);
    }
    this.#queue.push(...picked);
  }

  /** Delivers queued packets in order until the queue is empty (at most max packets). */
  async flush(max = 500): Promise<void> {
    for (let n = 0; this.#queue.length > 0; n++) {
      if (n >= max) {
        throw new Error(`bus: more than ${max} packets in one flush`);
      }
      const packet = this.#queue.shift() as Packet;
      const outcome = await packet.to.receive(packet.bytes);
      if (!outcome.ok) {
        this.failures.push({ packet, outcome });
      }
    }
  }

  /** Runs every participant's periodic work and broadcasts what it asks to rebroadcast. */
  async tick(label: string): Promise<Sent[]> {
    const all: Sent[] = [];
    for (const p of this.#peers) {
      for (const s of await p.tick()) {
        all.push(s);
        this.publish(p, s, `${label}:${p.id}`);
      }
    }
    return all;
  }
}

/** Reports whether two snapshots are equal field by field. */
export function sameState(a: ChannelSnapshot, b: ChannelSnapshot): boolean {
  return isDeepStrictEqual(a, b);
}

/** The error code of a failed unwrap, by name. */
export function codeName(e: SdsError | string): string {
  return typeof e === "string" ? e : ErrorCode[e.code] ?? String(e.code);
}

/** The ids of a list of history entries. */
export function ids(entries: readonly HistoryEntry[]): string[] {
  return entries.map((e) => e.messageId);
}
