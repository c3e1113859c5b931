// Live interop test: sdskit participants (the TypeScript SDK over the Go core, `spec`
// profile) and @waku/sds 0.0.8 MessageChannel participants on one channel, in one Node
// process, exchanging bytes both ways through a bus the test controls. One PASS/FAIL
// line per behaviour and direction; exits non-zero if any behaviour fails.
//
// Run with `make test-interop` (docs/interop.md).

import { Message } from "@waku/sds";
import type { MessageChannelOptions } from "@waku/sds";
import { loadCore, SdsError } from "../../sdk-ts/dist/index.js";
import type { Core, ReliabilityManagerOptions } from "../../sdk-ts/dist/index.js";
import { Bus, Clock, codeName, ids, sameState, SDSKIT, SdskitPeer, WAKU, WakuPeer } from "./peers.js";
import type { Impl, Peer, Sent } from "./peers.js";

/** Per-behaviour deadline (real time); every step is in-process, so this is generous. */
const SCENARIO_TIMEOUT_MS = 20_000;
/** The spec profile's (and @waku/sds's) bloom filter on the wire: 2,344 64-bit words. */
const SPEC_BLOOM_BYTES = 18_752;

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

class CheckFailed extends Error {
  override name = "CheckFailed";
}

function expect(cond: boolean, what: string): asserts cond {
  if (!cond) {
    throw new CheckFailed(what);
  }
}

function same(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const short = (id: string): string => (id.length > 12 ? id.slice(0, 8) : id);
const list = (xs: readonly string[]): string => `[${xs.map(short).join(", ")}]`;

/** Env is one behaviour's world: its channel, bus and participants. */
class Env {
  readonly bus = new Bus();
  readonly #peers: Peer[] = [];

  constructor(
    readonly core: Core,
    readonly clock: Clock,
    readonly channelId: string,
  ) {}

  /** A participant of the given implementation, joined to the bus. */
  async peer(impl: Impl, id: string, o: { ours?: ReliabilityManagerOptions["config"]; theirs?: MessageChannelOptions } = {}): Promise<Peer> {
    const p =
      impl === SDSKIT
        ? await SdskitPeer.create(id, this.channelId, { core: this.core, clock: this.clock, ...(o.ours === undefined ? {} : { config: o.ours }) })
        : new WakuPeer(id, this.channelId, o.theirs ?? {});
    this.#peers.push(p);
    this.bus.add(p);
    return p;
  }

  async ours(id: string, config?: ReliabilityManagerOptions["config"]): Promise<SdskitPeer> {
    const p = await this.peer(SDSKIT, id, config === undefined ? {} : { ours: config });
    return p as SdskitPeer;
  }

  async theirs(id: string, options?: MessageChannelOptions): Promise<WakuPeer> {
    const p = await this.peer(WAKU, id, options === undefined ? {} : { theirs: options });
    return p as WakuPeer;
  }

  /** Sends a content message one virtual second later and broadcasts it. */
  async say(p: Peer, text: string, o: Parameters<Bus["publish"]>[3] = {}): Promise<Sent> {
    this.clock.advance(1000);
    const s = await p.send(enc(`${this.channelId}/${p.id}/${text}`));
    this.bus.publish(p, s, text, o);
    return s;
  }

  /** Fails on any error a participant or the bus recorded. */
  noErrors(): void {
    for (const p of this.#peers) {
      expect(p.obs.errors.length === 0, `${p.impl} ${p.id} reported errors: ${p.obs.errors.join("; ")}`);
    }
    const f = this.bus.failures[0];
    expect(f === undefined, `a delivery failed: ${f === undefined ? "" : `${f.packet.label} → ${f.packet.to.id}: ${describe(f.outcome)}`}`);
  }

  async close(): Promise<void> {
    for (const p of this.#peers) {
      await p.close();
    }
  }
}

function describe(o: { ok: boolean; kind?: string; error?: SdsError | string }): string {
  return o.ok ? `ok (${o.kind ?? "?"})` : `error ${o.error instanceof SdsError ? o.error.message : String(o.error)}`;
}

const other = (impl: Impl): Impl => (impl === SDSKIT ? WAKU : SDSKIT);
const arrow = (from: Impl, to: Impl): string => `${from} → ${to}`;

// ---------------------------------------------------------------------------------------
// Behaviours. Each returns a short description of what it saw, or throws CheckFailed.

/** Content messages delivered in causal order, and a reply delivered back. */
async function delivery(env: Env, from: Impl): Promise<string> {
  const a = await env.peer(from, `${from}-a`);
  const b = await env.peer(other(from), `${other(from)}-b`);
  const sent: string[] = [];
  for (let i = 1; i <= 3; i++) {
    sent.push((await env.say(a, `m${i}`)).id);
    await env.bus.flush();
  }
  const reply = await env.say(b, "reply");
  await env.bus.flush();
  env.noErrors();
  expect(same(b.obs.delivered, sent), `${b.impl} delivered ${list(b.obs.delivered)}, want ${list(sent)}`);
  expect(same(a.obs.delivered, [reply.id]), `${a.impl} delivered ${list(a.obs.delivered)}, want the reply ${short(reply.id)}`);
  expect(a.obs.missing.size === 0 && b.obs.missing.size === 0, "a dependency was reported missing although nothing was withheld");
  return `3 messages delivered in order, the reply delivered back, no false gaps`;
}

/** A withheld message: its successors wait, the gap is reported, release delivers all in order. */
async function withheld(env: Env, from: Impl): Promise<string> {
  const a = await env.peer(from, `${from}-a`);
  const b = await env.peer(other(from), `${other(from)}-b`);
  const m1 = await env.say(a, "m1", { hold: [b] });
  const m2 = await env.say(a, "m2");
  const m3 = await env.say(a, "m3");
  await env.bus.flush();
  await b.tick();
  expect(b.obs.missing.has(m1.id), `${b.impl} did not report ${short(m1.id)} missing (missing: ${list([...b.obs.missing])})`);
  expect(b.obs.delivered.length === 0, `${b.impl} delivered ${list(b.obs.delivered)} before the gap was filled`);
  env.bus.release(() => true);
  await env.bus.flush();
  await b.tick(); // @waku/sds delivers buffered messages only in sweepIncomingBuffer
  env.noErrors();
  const want = [m1.id, m2.id, m3.id];
  expect(same(b.obs.delivered, want), `${b.impl} delivered ${list(b.obs.delivered)}, want ${list(want)}`);
  return `gap ${short(m1.id)} reported; after release delivered ${list(b.obs.delivered)}`;
}

/** m1..m3 withheld and released in reverse order: delivery must still be m1, m2, m3. */
async function reversed(env: Env, from: Impl): Promise<{ want: string[]; got: string[] }> {
  const a = await env.peer(from, `${from}-a`);
  const b = await env.peer(other(from), `${other(from)}-b`);
  const want: string[] = [];
  for (let i = 1; i <= 3; i++) {
    want.push((await env.say(a, `m${i}`, { hold: [b] })).id);
  }
  env.bus.release(() => true, (x, y) => want.indexOf(messageIdOfPacket(y)) - want.indexOf(messageIdOfPacket(x)));
  await env.bus.flush();
  await b.tick();
  await b.tick();
  env.noErrors();
  return { want, got: [...b.obs.delivered] };
}

function messageIdOfPacket(p: { bytes: Uint8Array }): string {
  return Message.decode(p.bytes)?.messageId ?? "";
}

/** Acknowledgement through the causal history of a reply. */
async function ackByHistory(env: Env, author: Impl): Promise<string> {
  const a = await env.peer(author, `${author}-author`);
  const b = await env.peer(other(author), `${other(author)}-b`);
  const m = await env.say(a, "m");
  await env.bus.flush();
  const r = await env.say(b, "reply");
  await env.bus.flush();
  env.noErrors();
  expect(ids(Message.decode(r.bytes)?.causalHistory ?? []).includes(m.id), `the reply's causal history lacks ${short(m.id)}`);
  expect(same(a.obs.acked, [m.id]), `${a.impl} acknowledged ${list(a.obs.acked)}, want ${list([m.id])}`);
  expect(a.obs.possiblyAcked.length === 0, `${a.impl} reported a bloom-filter (possible) acknowledgement first`);
  return `${a.impl} acknowledged ${short(m.id)} from ${b.impl}'s causal history`;
}

/**
 * Acknowledgement through bloom filters only: the acknowledgers keep a causal history of
 * one entry and see a newer message (from a participant that never got m) before they
 * reply, so m is in their bloom filters but in none of their causal histories. Two
 * distinct acknowledgers reach the possible-acks threshold (2) of both implementations.
 */
async function ackByBloom(env: Env, author: Impl): Promise<string> {
  const them = other(author);
  const small = { ours: { maxCausalHistory: 1 }, theirs: { causalHistorySize: 1 } };
  const a = await env.peer(author, `${author}-author`);
  const b1 = await env.peer(them, `${them}-b1`, small);
  const b2 = await env.peer(them, `${them}-b2`, small);
  const c = await env.peer(them, `${them}-c`, small);
  const m = await env.say(a, "m", { drop: [c] });
  await env.bus.flush();
  await env.say(c, "z");
  await env.bus.flush();
  const y1 = await env.say(b1, "y1");
  await env.bus.flush();
  const afterFirst = [...a.obs.possiblyAcked];
  const ackedAfterFirst = [...a.obs.acked];
  const y2 = await env.say(b2, "y2");
  await env.bus.flush();
  env.noErrors();
  for (const y of [y1, y2]) {
    const d = Message.decode(y.bytes);
    expect(d !== undefined, "an acknowledger's message does not decode");
    expect(!ids(d.causalHistory).includes(m.id), `${them}'s message ${short(y.id)} carries ${short(m.id)} in its causal history: not a bloom-only test`);
    expect(d.bloomFilter?.length === SPEC_BLOOM_BYTES, `${them}'s bloom filter is ${d.bloomFilter?.length ?? 0} bytes, want ${SPEC_BLOOM_BYTES}`);
  }
  expect(
    afterFirst.length === 1 && afterFirst[0]?.id === m.id && afterFirst[0].count === 1 && ackedAfterFirst.length === 0,
    `after the first bloom filter ${a.impl} saw possibly-acked ${JSON.stringify(afterFirst.map((x) => [short(x.id), x.count]))}, acked ${list(ackedAfterFirst)}; want [[${short(m.id)}, 1]] and nothing acked`,
  );
  expect(same(a.obs.acked, [m.id]), `after the second bloom filter ${a.impl} acknowledged ${list(a.obs.acked)}, want ${list([m.id])}`);
  const counts = a.obs.possiblyAcked.filter((x) => x.id === m.id).map((x) => x.count);
  return `${a.impl}: possibly-acknowledged (count ${counts.join(", ")}) then acknowledged, from ${them} bloom filters only`;
}

/** A sync message built by one side is recognised (not delivered) and acknowledges. */
async function syncRecognised(env: Env, builder: Impl): Promise<string> {
  const a = await env.peer(builder, `${builder}-syncer`);
  const b = await env.peer(other(builder), `${other(builder)}-b`);
  const m = await env.say(b, "m");
  await env.bus.flush();
  env.clock.advance(1000);
  const s = await a.sendSync();
  expect(s !== undefined, `${a.impl} built no sync message`);
  env.bus.publish(a, s, "sync");
  await env.bus.flush();
  env.noErrors();
  expect(b.obs.syncs.length === 1, `${b.impl} recognised ${b.obs.syncs.length} sync messages, want 1`);
  expect(same(b.obs.delivered, []), `${b.impl} delivered ${list(b.obs.delivered)} from a sync message`);
  expect(same(b.obs.acked, [m.id]), `${b.impl} acknowledged ${list(b.obs.acked)} from the sync message, want ${list([m.id])}`);
  return `${b.impl} recognised ${a.impl}'s sync message ${short(b.obs.syncs[0] ?? "")} (${s.bytes.length} bytes), delivered nothing, acknowledged ${short(m.id)}`;
}

/** Ephemeral messages: delivered at once, never logged, buffered or acknowledged. */
async function ephemeral(env: Env, from: Impl): Promise<string> {
  const a = await env.peer(from, `${from}-a`);
  const b = await env.peer(other(from), `${other(from)}-b`);
  const first = await env.say(a, "before");
  await env.bus.flush();
  env.clock.advance(1000);
  const content = enc(`${env.channelId}/ephemeral`);
  const e = await a.sendEphemeral(content);
  const decoded = Message.decode(e.bytes);
  expect(decoded !== undefined && decoded.lamportTimestamp === undefined && decoded.causalHistory.length === 0 && decoded.bloomFilter === undefined,
    `${a.impl}'s ephemeral message carries a lamport timestamp, causal history or bloom filter`);
  env.bus.publish(a, e, "ephemeral");
  await env.bus.flush();
  const got = b.obs.ephemeral;
  expect(got.length === 1 && got[0]?.id === e.id && Buffer.from(got[0].content).equals(content), `${b.impl} got ephemeral ${JSON.stringify(got.map((g) => short(g.id)))}, want ${short(e.id)} with its content`);
  expect(same(b.obs.delivered, [first.id]), `${b.impl} delivered ${list(b.obs.delivered)} (the ephemeral message must not be delivered as content)`);
  // Not logged: b's next message references the content message only.
  const r = await env.say(b, "after");
  await env.bus.flush();
  env.noErrors();
  const history = ids(Message.decode(r.bytes)?.causalHistory ?? []);
  expect(!history.includes(e.id) && history.includes(first.id), `${b.impl}'s next causal history is ${list(history)}: the ephemeral message was logged`);
  expect(a.obs.missing.size === 0 && b.obs.missing.size === 0, "a gap was reported");
  if (b instanceof SdskitPeer) {
    const snap = await b.snapshot();
    expect(!snap.log.some((x) => x.messageId === e.id) && snap.incoming.length === 0, "sdskit logged or buffered the ephemeral message");
  }
  const how = b.impl === WAKU ? "decoded as EphemeralMessage (MessageChannel 0.0.8 fires no event for it)" : "delivered at once (MessageReady, lamport 0)";
  return `${b.impl}: ${a.impl}'s ephemeral ${short(e.id)} (${e.bytes.length} bytes) ${how}; not logged, buffered or acknowledged`;
}

/**
 * SDS-R: `gap` (one implementation) misses m; its repair request rides on its next
 * message; participants of the other implementation hold m, schedule an answer (the
 * author's T_resp is 0) and rebroadcast m; `gap` then delivers m and what waited on it.
 */
async function repair(env: Env, gapImpl: Impl): Promise<string> {
  const them = other(gapImpl);
  const author = await env.peer(them, `${them}-author`);
  const holder = await env.peer(them, `${them}-holder`);
  const gap = await env.peer(gapImpl, `${gapImpl}-gap`);
  const m = await env.say(author, "m", { drop: [gap] });
  await env.bus.flush();
  const n = await env.say(holder, "n");
  await env.bus.flush();
  expect(gap.obs.missing.has(m.id), `${gap.impl} did not report ${short(m.id)} missing`);
  const tReq = gap.obs.tReq.get(m.id);
  expect(tReq !== undefined, `${gap.impl} scheduled no repair request for ${short(m.id)}`);
  const reqDelay = tReq - env.clock.now;
  expect(reqDelay >= 30_000 && reqDelay < 120_000, `T_req − now = ${reqDelay} ms, outside [T_min, T_max) = [30000, 120000)`);
  env.clock.advance(reqDelay); // the carrier message below is 1 s later: the request is due
  const g = await env.say(gap, "carrier");
  const carried = ids(Message.decode(g.bytes)?.repairRequest ?? []);
  expect(same(carried, [m.id]), `${gap.impl}'s next message carries repair requests ${list(carried)}, want ${list([m.id])}`);
  await env.bus.flush();
  for (const p of [author, holder]) {
    expect(p.obs.repairRequestsReceived.includes(m.id), `${p.impl} ${p.id} did not see the repair request`);
    expect(p.obs.tResp.has(m.id), `${p.impl} ${p.id} scheduled no repair response`);
  }
  const authorDelay = (author.obs.tResp.get(m.id) ?? NaN) - env.clock.now;
  const holderDelay = (holder.obs.tResp.get(m.id) ?? NaN) - env.clock.now;
  expect(authorDelay === 0, `the author's T_resp − now = ${authorDelay} ms, want 0 (XOR distance 0)`);
  const responses: Sent[] = [];
  // Bounded: a tick per virtual second until the gap is filled (T_max = 120 s).
  for (let i = 0; i < 130 && !gap.obs.delivered.includes(n.id); i++) {
    responses.push(...(await env.bus.tick(`repair${i}`)));
    await env.bus.flush();
    await gap.tick();
    env.clock.advance(1000);
  }
  env.noErrors();
  expect(same(gap.obs.delivered, [m.id, n.id]), `${gap.impl} delivered ${list(gap.obs.delivered)}, want ${list([m.id, n.id])}`);
  expect(responses.some((r) => r.id === m.id), `no ${them} participant rebroadcast ${short(m.id)}`);
  // The holder saw the author's rebroadcast: its own pending answer must be cancelled.
  env.clock.advance(130_000);
  const late = await env.bus.tick("late");
  await env.bus.flush();
  expect(late.length === 0, `${late.length} late rebroadcast(s) of ${list(late.map((x) => x.id))} after the gap was filled`);
  return (
    `${gap.impl} requested ${short(m.id)} after ${reqDelay} ms; ${them} answered (T_resp author 0 ms, holder ${holderDelay} ms), ` +
    `${responses.length} rebroadcast(s), ${late.length} late; delivered ${list(gap.obs.delivered)}`
  );
}

/**
 * SDS-R decisions compared for the same ids: an sdskit participant P and a @waku/sds
 * "shadow" with P's participant id receive the same bytes at the same virtual time.
 * Messages withheld from both give T_req; repair requests from a third participant for
 * messages both hold give the response-group decision and T_resp. Three response groups,
 * so some answers are (and some are not) in P's group.
 */
async function repairDecisions(env: Env, report: (s: string) => void): Promise<string> {
  // Two pairs: three response groups (some ids in P's group, some not) and one group
  // (every id in it, so T_resp is compared for all of them).
  const pairs: { groups: number; p: SdskitPeer; shadow: WakuPeer }[] = [];
  for (const [groups, id] of [[3, "sdskit-p"], [1, "sdskit-q"]] as const) {
    const p = await env.ours(id, { numResponseGroups: groups });
    const shadow = await env.theirs(id, { repairConfig: { numResponseGroups: groups } });
    pairs.push({ groups, p, shadow });
  }
  const lookers = pairs.flatMap((x) => [x.p, x.shadow]);
  const authors: Peer[] = [await env.theirs("waku-x"), await env.theirs("waku-y"), await env.ours("sdskit-z")];
  const requester = await env.theirs("waku-r");
  const heldIds: string[] = [];
  const withheldIds: string[] = [];
  for (let i = 0; i < 15; i++) {
    const author = authors[i % authors.length] as Peer;
    // The last five are withheld from the lookers: the first ten stay deliverable (a
    // message after a gap would only be buffered, and only logged messages are answered).
    const hide = i >= 10;
    const s = await env.say(author, `d${i}`, { drop: hide ? [requester, ...lookers] : [requester] });
    (hide ? withheldIds : heldIds).push(s.id);
    await env.bus.flush();
  }
  // The tail references all 15 (causal history 200): the lookers see the 5 gaps at once.
  await env.say(authors[0] as Peer, "tail", { only: [...lookers, requester] });
  await env.bus.flush();
  env.clock.advance(120_001);
  let carriers = 0;
  for (let i = 0; i < 10; i++) {
    const s = await requester.sendSync();
    if (s === undefined || (Message.decode(s.bytes)?.repairRequest.length ?? 0) === 0) {
      break;
    }
    carriers++;
    env.bus.publish(requester, s, `requests${i}`, { only: lookers });
    await env.bus.flush();
  }
  env.noErrors();
  const problems: string[] = [];
  const summary: string[] = [];
  for (const { groups, p, shadow } of pairs) {
    const asked = new Set(p.obs.repairRequestsReceived);
    expect(heldIds.every((id) => asked.has(id)), `${p.id} saw only ${asked.size} requested ids in ${carriers} sync messages`);
    for (const id of withheldIds) {
      const ours = p.obs.tReq.get(id);
      const theirs = shadow.obs.tReq.get(id);
      if (ours === undefined || theirs === undefined || ours !== theirs) {
        problems.push(`${p.id} T_req ${short(id)}: sdskit ${String(ours)}, @waku/sds ${String(theirs)}`);
      }
    }
    let inGroup = 0;
    for (const id of heldIds) {
      const ours = p.obs.tResp.get(id);
      const theirs = shadow.obs.tResp.get(id);
      if (ours !== theirs) {
        problems.push(`${p.id} (${groups} groups) T_resp/group ${short(id)}: sdskit ${String(ours)}, @waku/sds ${String(theirs)}`);
      }
      if (ours !== undefined) {
        inGroup++;
      }
    }
    if (groups > 1) {
      expect(inGroup > 0 && inGroup < heldIds.length, `all ${heldIds.length} held ids fell on one side of the response-group test (${inGroup} in group): choose other payloads`);
    } else {
      expect(inGroup === heldIds.length, `with one group ${p.id} answers ${inGroup} of ${heldIds.length}`);
    }
    summary.push(`${groups} group${groups > 1 ? "s" : ""}: ${inGroup}/${heldIds.length} in group`);
  }
  const shadows = pairs.map((x) => x.shadow);
  const bare = shadows.reduce((n, w) => n + w.obs.tReq.size + w.obs.tResp.size, 0);
  const viaEnum = shadows.reduce((n, w) => n + w.enumRepairEvents, 0);
  report(
    `${WAKU} dispatched ${bare} RepairRequestQueued/RepairResponseQueued events under those bare names and ${viaEnum} under ` +
      `MessageChannelEvent.RepairRequestQueued/RepairResponseQueued ("sds:repair:…-queued"), the names its typings declare`,
  );
  expect(problems.length === 0, problems.join("; "));
  return (
    `2 participant ids: same T_req for ${withheldIds.length} gaps each; same response-group decision and T_resp ` +
    `for ${heldIds.length} requests each (${summary.join(", ")})`
  );
}

/** Malformed and oversized bytes from @waku/sds: a typed error, no state change, no event. */
async function badInputFromThem(env: Env): Promise<string> {
  const p = await env.ours("sdskit-p");
  const w = await env.theirs("waku-w");
  // Bytes built by a participant whose messages never reach p intact.
  const mal = new WakuPeer("waku-mal", env.channelId);
  const bigId = new WakuPeer("w".repeat(300), env.channelId);
  await env.say(w, "w1");
  await env.bus.flush();
  const valid = await mal.send(enc("will be damaged"));
  const flipped = valid.bytes.slice();
  flipped[0] = 0x0f; // field 1 (sender_id) with wire type 7, which does not exist
  const cases: { name: string; bytes: Uint8Array; want: string[] }[] = [
    { name: "truncated content message", bytes: valid.bytes.slice(0, valid.bytes.length - 100), want: ["DESERIALIZATION"] },
    { name: "invalid wire type", bytes: flipped, want: ["DESERIALIZATION"] },
    { name: "content of 1 MiB + 1 byte", bytes: (await mal.send(new Uint8Array((1 << 20) + 1).fill(7))).bytes, want: ["MESSAGE_TOO_LARGE"] },
    { name: "300-byte sender id", bytes: (await bigId.send(enc("long sender"))).bytes, want: ["DESERIALIZATION", "MESSAGE_TOO_LARGE"] },
  ];
  const seen: string[] = [];
  for (const c of cases) {
    const before = await p.snapshot();
    const events = p.eventCount();
    const r = await p.unwrapRaw(c.bytes);
    expect(!r.ok, `${c.name}: sdskit accepted it`);
    if (r.ok) {
      continue;
    }
    expect(r.error instanceof SdsError, `${c.name}: the error is not an SdsError`);
    const code = codeName(r.error);
    expect(c.want.includes(code), `${c.name}: ${code} (${r.error.message}), want ${c.want.join(" or ")}`);
    expect(sameState(before, await p.snapshot()), `${c.name}: the channel state changed`);
    expect(p.eventCount() === events, `${c.name}: events fired`);
    seen.push(`${c.name} → ${code}`);
  }
  // Still healthy: the next valid message from @waku/sds is delivered.
  const w2 = await env.say(w, "w2");
  await env.bus.flush();
  env.noErrors();
  expect(p.obs.delivered.includes(w2.id), "sdskit did not deliver a valid message after the bad ones");
  return seen.join("; ");
}

/** Malformed bytes from sdskit fed to @waku/sds: what it does is reported; the run survives. */
async function badInputToThem(env: Env, report: (s: string) => void): Promise<string> {
  const p = await env.ours("sdskit-p");
  const w = await env.theirs("waku-w");
  await env.say(p, "p1");
  await env.bus.flush();
  env.clock.advance(1000);
  const valid = await p.send(enc(`${env.channelId}/damaged`)); // never broadcast intact
  const flipped = valid.bytes.slice();
  flipped[0] = 0x0f;
  const eph = await p.sendEphemeral(enc(`${env.channelId}/ephemeral`));
  const cases: { name: string; bytes: Uint8Array; note?: string }[] = [
    { name: "truncated content message", bytes: valid.bytes.slice(0, valid.bytes.length - 100) },
    { name: "invalid wire type", bytes: flipped, note: "the decoder reads known fields by number without checking the wire type" },
    { name: "truncated ephemeral message", bytes: eph.bytes.slice(0, eph.bytes.length - 3) },
    { name: "empty message", bytes: new Uint8Array(0) },
  ];
  for (const c of cases) {
    let what: string;
    const delivered = w.obs.delivered.length;
    try {
      const o = await w.receive(c.bytes);
      what = describe(o);
    } catch (e) {
      what = `threw ${e instanceof Error ? e.message : String(e)}`;
    }
    if (w.obs.delivered.length > delivered) {
      what += `; delivered ${list(w.obs.delivered.slice(delivered))}${c.note === undefined ? "" : ` (${c.note})`}`;
    }
    report(`${WAKU} given sdskit's ${c.name}: ${what}`);
  }
  w.obs.errors.length = 0; // reported above, not failures of this behaviour
  const p2 = await env.say(p, "p2");
  await env.bus.flush();
  await w.tick();
  expect(w.obs.delivered.includes(p2.id), `${WAKU} did not deliver a valid sdskit message afterwards (delivered ${list(w.obs.delivered)})`);
  return `${cases.length} malformed inputs reported below; a valid message is delivered afterwards`;
}

// ---------------------------------------------------------------------------------------

interface Outcome {
  readonly ok: boolean;
  readonly line: string;
}

async function main(): Promise<number> {
  const core = await loadCore();
  // A fixed start keeps Lamport timestamps and SDS-R deadlines identical run to run.
  const clock = new Clock(1_767_225_600_000);
  clock.install();
  const results: Outcome[] = [];
  const infos: string[] = [];
  let n = 0;
  const run = async (name: string, body: (env: Env) => Promise<string>): Promise<void> => {
    const env = new Env(core, clock, `interop-${++n}`);
    let timer: NodeJS.Timeout | undefined;
    try {
      const detail = await Promise.race([
        body(env),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${SCENARIO_TIMEOUT_MS} ms`)), SCENARIO_TIMEOUT_MS);
        }),
      ]);
      results.push({ ok: true, line: `PASS  ${name}: ${detail}` });
    } catch (e) {
      const msg = e instanceof CheckFailed ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
      results.push({ ok: false, line: `FAIL  ${name}: ${msg}` });
    } finally {
      clearTimeout(timer);
      await env.close().catch(() => undefined);
    }
    console.log((results[results.length - 1] as Outcome).line);
  };

  console.log(`sdskit (TypeScript SDK, Go core as wasm, spec profile) against ${WAKU} (npm) in one Node process (${process.version})`);
  for (const from of [SDSKIT, WAKU] as const) {
    await run(`content delivery in causal order, ${arrow(from, other(from))}`, (env) => delivery(env, from));
  }
  for (const from of [SDSKIT, WAKU] as const) {
    await run(`missing dependency detected, delivered after release, ${arrow(from, other(from))}`, (env) => withheld(env, from));
  }
  await run(`causal order when m1..m3 arrive reversed, ${arrow(WAKU, SDSKIT)}`, async (env) => {
    const { want, got } = await reversed(env, WAKU);
    expect(same(got, want), `sdskit delivered ${list(got)}, want ${list(want)}`);
    return `delivered ${list(got)}`;
  });
  // @waku/sds's own ordering is only reported (INFO), but an error while exchanging the
  // bytes is an interop failure: it gets its FAIL line and the other behaviours still run.
  await run(`${WAKU} receives sdskit's m1..m3 reversed without errors (its delivery order: INFO below)`, async (env) => {
    const { want, got } = await reversed(env, SDSKIT);
    infos.push(
      `INFO  ${WAKU} as receiver of sdskit's m1..m3 arriving reversed delivered ${list(got)} (causal order ${list(want)}): ` +
        (same(got, want) ? "in causal order" : "not in causal order — 0.0.8 treats buffered messages as available dependencies"),
    );
    expect(got.length === want.length && want.every((id) => got.includes(id)), `${WAKU} delivered ${list(got)}, want all of ${list(want)}`);
    return `all three delivered, no errors`;
  });
  for (const author of [SDSKIT, WAKU] as const) {
    await run(`acknowledgement via causal history, ${author}'s message acknowledged by ${other(author)}`, (env) => ackByHistory(env, author));
  }
  for (const author of [SDSKIT, WAKU] as const) {
    await run(`acknowledgement via bloom filter, ${author}'s message acknowledged by ${other(author)}`, (env) => ackByBloom(env, author));
  }
  for (const builder of [SDSKIT, WAKU] as const) {
    await run(`sync message built by ${builder} recognised by ${other(builder)}`, (env) => syncRecognised(env, builder));
  }
  for (const from of [SDSKIT, WAKU] as const) {
    await run(`ephemeral message, ${arrow(from, other(from))}`, (env) => ephemeral(env, from));
  }
  for (const gapImpl of [SDSKIT, WAKU] as const) {
    await run(`SDS-R: gap at ${gapImpl} repaired by ${other(gapImpl)}`, (env) => repair(env, gapImpl));
  }
  await run(`SDS-R: same T_req, response group and T_resp as ${WAKU} for the same ids`, (env) => repairDecisions(env, (s) => infos.push(`INFO  ${s}`)));
  await run(`malformed/oversized ${WAKU} bytes: typed error, no state change in sdskit`, badInputFromThem);
  await run(`${WAKU} survives malformed sdskit bytes`, (env) => badInputToThem(env, (s) => infos.push(`INFO  ${s}`)));

  clock.uninstall();
  for (const i of infos) {
    console.log(i);
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(`${results.length - failed} passed, ${failed} failed (sdskit vs ${WAKU})`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error("FAIL  interop run:", e);
    process.exitCode = 1;
  },
);
