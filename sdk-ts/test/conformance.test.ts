// The TypeScript runner of the language-neutral conformance scenarios
// (idl/conformance/scenarios/*.json; format in idl/conformance/README.md). Every
// scenario runs as one test, through the SDK's public surface only: ReliabilityManager
// with a config, a clock, an event listener, a retrieval-hint provider and a host
// MemoryPersistence, and the manager's methods. The Go runner (sdk-go) executes the same
// files.

import { test } from "node:test";
import { readdirSync, readFileSync } from "node:fs";
import { create, equals, fromBinary, fromJson, toBinary } from "@bufbuild/protobuf";
import type { JsonValue } from "@bufbuild/protobuf";
import {
  ChannelSnapshotSchema,
  ConfigSchema,
  ErrorCode,
  HistoryEntrySchema,
  MemoryPersistence,
  MessageKind,
  ReliabilityManager,
  SdsError,
  SdsMessageSchema,

  isPersistenceMethod,
  loadCore,
  PersistenceMethods,
} from "@sdskit/sdk";
import type {
  ChannelSnapshot,
  Config,
  Core,
  Event,
  HistoryEntry,
  PersistenceMethodName,
  Result,
  SdsMessage,
  UnwrapReceivedMessageResponse,
} from "@sdskit/sdk";

const scenarioDir = new URL("../../../idl/conformance/scenarios/", import.meta.url);
const defaultStartUnixMs = 1_700_000_000_000;
const defaultChannel = "testChannel";
const enc = new TextEncoder();
const dec = new TextDecoder();

// --- the scenario format (mirrors idl/conformance/scenario.schema.json) -------------------

type NumRef = number | string;
type NumMatch = number | string | Partial<Record<"eq" | "ne" | "gt" | "ge" | "lt" | "le", NumRef>>;

interface EntrySpecObj {
  message_id: string;
  sender_id?: string;
  retrieval_hint?: string;
  retrieval_hint_base64?: string;
}
type EntrySpec = string | EntrySpecObj;

interface MessageSpec {
  sender_id?: string;
  message_id: string;
  channel_id?: string;
  lamport?: number;
  causal_history?: EntrySpec[];
  repair_request?: EntrySpec[];
  bloom_of?: string[];
  bloom_capacity?: number;
  bloom_error_rate?: number;
  bloom_base64?: string;
  content?: string;
  content_base64?: string;
  content_size?: number;
}

interface EntryMatch {
  message_id: string;
  sender_id?: string;
  retrieval_hint?: string;
}

interface ResultMatch {
  kind?: string;
  delivered?: boolean;
  message_id?: string;
  channel_id?: string;
  sender_id?: string;
  content?: string;
  lamport?: NumMatch;
  missing?: string[];
  missing_entries?: EntryMatch[];
}

interface MessageMatch {
  kind?: string;
  message_id?: string;
  sender_id?: string;
  channel_id?: string;
  has_lamport?: boolean;
  lamport?: NumMatch;
  save_lamport_as?: string;
  content?: string;
  causal_history?: string[];
  causal_history_entries?: EntryMatch[];
  repair_request?: string[];
  repair_request_entries?: EntryMatch[];
  has_bloom?: boolean;
  bloom_contains?: string[];
  bloom_lacks?: string[];
  bloom_capacity?: number;
  bloom_error_rate?: number;
}

interface EventMatch {
  type: string;
  channel_id?: string;
  message_id?: string;
  sender_id?: string;
  content?: string;
  lamport?: NumMatch;
  count?: number;
  attempt?: number;
  resend_attempts?: number;
  missing?: string[];
  missing_entries?: EntryMatch[];
  delivered?: boolean;
  operation?: string;
  detail_contains?: string;
  wire_bytes?: string;
  wire_message?: MessageMatch;
  save_wire_bytes_as?: string;
}

interface RepairMatch {
  message_id: string;
  sender_id?: string;
  attempts?: number;
  due?: boolean;
}

interface StateMatch {
  exists?: boolean;
  lamport?: NumMatch;
  save_lamport_as?: string;
  log?: string[];
  log_entries?: { message_id: string; sender_id?: string; content?: string; lamport?: NumMatch }[];
  log_contains?: string[];
  log_lacks?: string[];
  outgoing?: string[];
  outgoing_entries?: { message_id: string; resend_attempts?: number; possible_ack_senders?: string[] }[];
  incoming?: string[];
  incoming_entries?: { message_id: string; missing?: string[] }[];
  outgoing_repair?: string[];
  outgoing_repair_entries?: RepairMatch[];
  incoming_repair?: string[];
  incoming_repair_entries?: RepairMatch[];
  retrieval_hints?: Record<string, string>;
  save_as?: string;
  equals?: string;
}

interface Expect {
  error?: string;
  error_contains?: string;
  result?: ResultMatch;
  message?: MessageMatch;
  events?: EventMatch[];
  events_mode?: "exact" | "contains";
  events_excluded?: EventMatch[];
  state?: StateMatch;
  persisted?: StateMatch;
  persistence_calls?: Record<string, number>;
  channels?: string[];
  persisted_channels?: string[];
}

interface Step {
  op: string;
  comment?: string;
  participant?: string;
  channel?: string;
  participant_id?: string;
  config?: JsonValue;
  persistence?: "none" | "memory";
  retrieval_hint_prefix?: string;
  message_id?: string;
  content?: string;
  content_base64?: string;
  content_size?: number;
  bytes?: string;
  bytes_base64?: string;
  message?: MessageSpec;
  retrieval_hint?: string;
  save_as?: string;
  message_ids?: string[];
  ms?: number;
  operation?: string;
  nth?: number;
  expect?: Expect;
}

interface Scenario {
  $schema?: string;
  name: string;
  catalogue?: string;
  description: string;
  notes?: string;
  start_unix_ms?: number;
  channel?: string;
  steps: Step[];
}

// --- the runner ---------------------------------------------------------------------------

/** Fatal stops the step at once; errors collected with errorf fail it at its end. */
class Fatal extends Error {}

interface Participant {
  name: string;
  id: string;
  config: Config;
  persistence: "none" | "memory";
  mp?: MemoryPersistence;
  hintPrefix?: string;
  m?: ReliabilityManager;
  events: Event[];
}

interface StepResult {
  error?: SdsError;
  received?: UnwrapReceivedMessageResponse;
  out?: Uint8Array;
}

class Runner {
  readonly sc: Scenario;
  readonly core: Core;
  now: number;
  readonly ps = new Map<string, Participant>();
  readonly bytes = new Map<string, Uint8Array>();
  readonly nums = new Map<string, bigint>();
  readonly snaps = new Map<string, ChannelSnapshot>();
  errors: string[] = [];

  constructor(sc: Scenario, core: Core) {
    this.sc = sc;
    this.core = core;
    this.now = sc.start_unix_ms ?? defaultStartUnixMs;
  }

  fatal(msg: string): never {
    throw new Fatal(msg);
  }

  errorf(msg: string): void {
    this.errors.push(msg);
  }

  async closeAll(): Promise<void> {
    for (const p of this.ps.values()) {
      if (p.m !== undefined && !p.m.closed) {
        await p.m.close();
      }
    }
  }

  channel(s: Step): string {
    return s.channel ?? (this.sc.channel !== undefined && this.sc.channel !== "" ? this.sc.channel : defaultChannel);
  }

  participant(name: string): Participant {
    const p = this.ps.get(name);
    if (p === undefined) {
      this.fatal(`unknown participant "${name}"`);
    }
    return p;
  }

  async start(p: Participant): Promise<SdsError | undefined> {
    const prefix = p.hintPrefix;
    const r = await ReliabilityManager.create({
      core: this.core,
      participantId: p.id,
      config: p.config,
      clock: () => this.now,
      persistence: p.persistence === "memory" && p.mp !== undefined ? p.mp : "none",
      ...(prefix === undefined ? {} : { retrievalHints: (_c: string, id: string) => enc.encode(prefix + id) }),
    });
    if (!r.ok) {
      return r.error;
    }
    p.m = r.value;
    p.m.events.onAny((ev) => p.events.push(ev));
    return undefined;
  }

  config(json: JsonValue): Config {
    try {
      return fromJson(ConfigSchema, json);
    } catch (e) {
      this.fatal(`config is not protojson of sdskit.v1.Config: ${String(e)}`);
    }
  }

  async runStep(i: number, s: Step): Promise<void> {
    const desc = `step ${i} (${s.op}${s.participant !== undefined ? " " + s.participant : ""})${s.comment !== undefined ? " «" + s.comment + "»" : ""}`;
    this.errors = [];
    try {
      await this.step(s);
    } catch (e) {
      if (e instanceof Fatal) {
        throw new Error(`${this.sc.name}: ${desc}: ${[...this.errors, e.message].join("\n  ")}`);
      }
      throw e;
    }
    if (this.errors.length > 0) {
      throw new Error(`${this.sc.name}: ${desc}: ${this.errors.join("\n  ")}`);
    }
  }

  async step(s: Step): Promise<void> {
    let p = s.participant !== undefined && s.op !== "create" ? this.participant(s.participant) : undefined;
    const evBefore = p?.events.length ?? 0;
    const callsBefore = new Map<PersistenceMethodName, number>();
    if (p?.mp !== undefined) {
      for (const m of PersistenceMethods) {
        callsBefore.set(m, p.mp.calls(m));
      }
    }
    const res = await this.exec(s, p);
    if (s.op === "create" && s.participant !== undefined) {
      p = this.ps.get(s.participant);
    }
    const e = s.expect ?? {};
    this.checkError(e, res.error);
    if (res.out !== undefined && s.save_as !== undefined && (res.error === undefined || s.op === "deliver")) {
      this.bytes.set(s.save_as, res.out);
    }
    if (e.result !== undefined) {
      if (res.received === undefined) {
        this.fatal("expect.result needs a successful deliver step");
      }
      this.checkResult(e.result, res.received);
    }
    if (e.message !== undefined) {
      if (res.out === undefined) {
        this.fatal("expect.message needs bytes (a successful wrap, wrap_ephemeral or build_sync, or check with bytes)");
      }
      await this.checkMessage("message", e.message, res.out);
    }
    if (e.events !== undefined || (e.events_excluded?.length ?? 0) > 0) {
      if (p === undefined) {
        this.fatal("event expectations need a participant step");
      }
      await this.checkEvents(e, p.events.slice(evBefore));
    }
    if (e.persistence_calls !== undefined) {
      const mp = p?.mp;
      if (mp === undefined) {
        this.fatal("expect.persistence_calls needs a participant with memory persistence");
      }
      for (const op of Object.keys(e.persistence_calls).sort()) {
        const want = e.persistence_calls[op] ?? 0;
        if (!isPersistenceMethod(op)) {
          this.fatal(`expect.persistence_calls: unknown method "${op}"`);
        }
        const got = mp.calls(op) - (callsBefore.get(op) ?? 0);
        if (got !== want) {
          this.errorf(`persistence calls of ${op} = ${got}, want ${want}`);
        }
      }
    }
    if (e.channels !== undefined) {
      const m = p?.m;
      if (m === undefined) {
        this.fatal("expect.channels needs a participant");
      }
      const r = await m.listChannels();
      if (!r.ok) {
        this.fatal(`ListChannels: ${r.error.message}`);
      }
      this.ids(e.channels, r.value.channelIds, "channels");
    }
    if (e.persisted_channels !== undefined) {
      const mp = p?.mp;
      if (mp === undefined) {
        this.fatal("expect.persisted_channels needs a participant with memory persistence");
      }
      this.ids(e.persisted_channels, mp.channels(), "persisted channels");
    }
    if (e.state !== undefined) {
      const m = p?.m;
      if (m === undefined) {
        this.fatal("expect.state needs a participant");
      }
      const r = await m.getSnapshot({ channelId: this.channel(s) });
      let snap: ChannelSnapshot | undefined;
      if (r.ok) {
        snap = r.value.snapshot ?? create(ChannelSnapshotSchema);
      } else if (r.error.code !== ErrorCode.NOT_FOUND) {
        this.fatal(`Snapshot(${this.channel(s)}): ${r.error.message}`);
      }
      this.checkState("state", e.state, snap);
    }
    if (e.persisted !== undefined) {
      const mp = p?.mp;
      if (mp === undefined) {
        this.fatal("expect.persisted needs a participant with memory persistence");
      }
      const ch = this.channel(s);
      this.checkState("persisted", e.persisted, mp.channels().includes(ch) ? mp.snapshot(ch) : undefined);
    }
  }

  content(s: { content?: string | undefined; content_base64?: string | undefined; content_size?: number | undefined }): Uint8Array {
    if (s.content !== undefined) {
      return enc.encode(s.content);
    }
    if (s.content_base64 !== undefined) {
      return b64(s.content_base64);
    }
    if (s.content_size !== undefined) {
      return new Uint8Array(s.content_size).fill(0x78);
    }
    this.fatal("needs content, content_base64 or content_size");
  }

  saved(name: string): Uint8Array {
    const b = this.bytes.get(name);
    if (b === undefined) {
      this.fatal(`no bytes saved as "${name}"`);
    }
    return b;
  }

  manager(p: Participant | undefined): ReliabilityManager {
    if (p?.m === undefined) {
      this.fatal("the step needs a created participant");
    }
    return p.m;
  }

  async exec(s: Step, p: Participant | undefined): Promise<StepResult> {
    const outcome = <T>(r: Result<T>, out?: (v: T) => Uint8Array): StepResult => {
      if (!r.ok) {
        return { error: r.error };
      }
      return out === undefined ? {} : { out: out(r.value) };
    };
    switch (s.op) {
      case "create": {
        const name = s.participant ?? this.fatal("create needs a participant");
        if (this.ps.has(name)) {
          this.fatal(`participant "${name}" already exists`);
        }
        const np: Participant = {
          name,
          id: s.participant_id ?? name,
          config: s.config !== undefined ? this.config(s.config) : create(ConfigSchema),
          persistence: s.persistence ?? "none",
          events: [],
        };
        if (s.retrieval_hint_prefix !== undefined) {
          np.hintPrefix = s.retrieval_hint_prefix;
        }
        if (np.persistence === "memory") {
          np.mp = new MemoryPersistence();
        } else if (np.persistence !== "none") {
          this.fatal(`unknown persistence "${String(np.persistence)}"`);
        }
        const err = await this.start(np);
        if (err !== undefined) {
          return { error: err };
        }
        this.ps.set(name, np);
        return {};
      }
      case "restart": {
        const pp = p ?? this.fatal("restart needs a participant");
        const c = await this.manager(pp).close();
        if (!c.ok) {
          this.fatal(`Close before restart: ${c.error.message}`);
        }
        if (s.config !== undefined) {
          pp.config = this.config(s.config);
        }
        const err = await this.start(pp);
        return err === undefined ? {} : { error: err };
      }
      case "close":
        return outcome(await this.manager(p).close());
      case "wrap":
        return outcome(
          await this.manager(p).wrapOutgoingMessage({ channelId: this.channel(s), messageId: s.message_id ?? "", content: this.content(s) }),
          (v) => v.wireBytes,
        );
      case "wrap_ephemeral":
        return outcome(
          await this.manager(p).wrapEphemeral({ channelId: this.channel(s), messageId: s.message_id ?? "", content: this.content(s) }),
          (v) => v.wireBytes,
        );
      case "build_sync":
        return outcome(await this.manager(p).buildSyncMessage({ channelId: this.channel(s) }), (v) => v.wireBytes);
      case "deliver": {
        let data: Uint8Array;
        if (s.bytes !== undefined) {
          data = this.saved(s.bytes);
        } else if (s.bytes_base64 !== undefined) {
          data = b64(s.bytes_base64);
        } else if (s.message !== undefined) {
          data = await this.encodeSpec(s.message);
        } else {
          this.fatal("deliver needs bytes, bytes_base64 or message");
        }
        const hint = s.retrieval_hint === undefined ? new Uint8Array() : enc.encode(s.retrieval_hint);
        const r = await this.manager(p).unwrapReceivedMessage({ data, retrievalHint: hint });
        return r.ok ? { received: r.value, out: data } : { error: r.error, out: data };
      }
      case "mark_dependencies_met":
        return outcome(await this.manager(p).markDependenciesMet({ channelId: this.channel(s), messageIds: s.message_ids ?? [] }));
      case "ensure_channel":
        return outcome(await this.manager(p).ensureChannel({ channelId: this.channel(s) }));
      case "remove_channel":
        return outcome(await this.manager(p).removeChannel({ channelId: this.channel(s) }));
      case "reset":
        return outcome(await this.manager(p).reset());
      case "run_sweeps":
        return outcome(await this.manager(p).runSweeps());
      case "advance_clock":
        if (s.ms === undefined || s.ms < 0) {
          this.fatal("advance_clock needs ms ≥ 0");
        }
        this.now += s.ms;
        return {};
      case "fail_persistence": {
        const mp = p?.mp ?? this.fatal("fail_persistence needs memory persistence");
        const op = this.method(s.operation);
        if (s.nth !== undefined) {
          mp.failNth(op, s.nth);
        } else {
          mp.failOp(op);
        }
        return {};
      }
      case "heal_persistence": {
        const mp = p?.mp ?? this.fatal("heal_persistence needs memory persistence");
        if (s.operation !== undefined) {
          mp.heal(this.method(s.operation));
        } else {
          mp.heal();
        }
        return {};
      }
      case "check":
        return s.bytes !== undefined ? { out: this.saved(s.bytes) } : {};
    }
    this.fatal(`unknown op "${s.op}"`);
  }

  method(name: string | undefined): PersistenceMethodName {
    if (name === undefined || !isPersistenceMethod(name)) {
      this.fatal(`unknown persistence method "${String(name)}"`);
    }
    return name;
  }

  entry(e: EntrySpec): HistoryEntry {
    if (typeof e === "string") {
      return create(HistoryEntrySchema, { messageId: e });
    }
    const h = create(HistoryEntrySchema, { messageId: e.message_id });
    if (e.sender_id !== undefined) {
      h.senderId = e.sender_id;
    }
    if (e.retrieval_hint !== undefined) {
      h.retrievalHint = enc.encode(e.retrieval_hint);
    } else if (e.retrieval_hint_base64 !== undefined) {
      h.retrievalHint = b64(e.retrieval_hint_base64);
    }
    return h;
  }

  /** Encodes a hand-described message with the spec field numbers (plain protobuf of SdsMessage). */
  async encodeSpec(ms: MessageSpec): Promise<Uint8Array> {
    const msg = create(SdsMessageSchema, {
      senderId: ms.sender_id ?? "",
      messageId: ms.message_id,
      channelId: ms.channel_id ?? (this.sc.channel !== undefined && this.sc.channel !== "" ? this.sc.channel : defaultChannel),
      causalHistory: (ms.causal_history ?? []).map((e) => this.entry(e)),
      repairRequest: (ms.repair_request ?? []).map((e) => this.entry(e)),
    });
    if (ms.lamport !== undefined) {
      msg.lamportTimestamp = BigInt(ms.lamport);
    }
    if (ms.bloom_of !== undefined) {
      ms.bloom_of.forEach((id) => this.asciiId(id));
      msg.bloomFilter = await this.core.testing.bloom(ms.bloom_of, ms.bloom_capacity, ms.bloom_error_rate);
    } else if (ms.bloom_base64 !== undefined) {
      msg.bloomFilter = b64(ms.bloom_base64);
    }
    if (ms.content !== undefined || ms.content_base64 !== undefined || ms.content_size !== undefined) {
      msg.content = this.content(ms);
    }
    return toBinary(SdsMessageSchema, msg);
  }

  asciiId(id: string): void {
    if (!/^[\x00-\x7f]*$/.test(id)) {
      this.fatal(`bloom filter id "${id}" is not ASCII`);
    }
  }

  // --- expectations -----------------------------------------------------------------------

  checkError(e: Expect, err: SdsError | undefined): void {
    if (e.error === undefined) {
      if (err !== undefined) {
        this.fatal(`unexpected error: ${err.message}`);
      }
      return;
    }
    if (err === undefined) {
      this.fatal(`succeeded, want error ${e.error}`);
    }
    if (!(err instanceof SdsError)) {
      this.fatal(`error ${String(err)} is not a typed SdsError`);
    }
    if (err.codeName !== e.error) {
      this.fatal(`error code ${err.codeName} (${err.message}), want ${e.error}`);
    }
    if (e.error_contains !== undefined && !err.message.includes(e.error_contains)) {
      this.errorf(`error "${err.message}" does not contain "${e.error_contains}"`);
    }
  }

  num(n: NumMatch, got: bigint, what: string): void {
    const cmp = typeof n === "object" ? n : { eq: n };
    for (const op of Object.keys(cmp).sort() as (keyof typeof cmp)[]) {
      const ref = cmp[op];
      if (ref === undefined) {
        continue;
      }
      let want: bigint;
      if (typeof ref === "string") {
        const v = this.nums.get(ref);
        if (v === undefined) {
          this.fatal(`${what}: no number saved as "${ref}"`);
        }
        want = v;
      } else {
        want = BigInt(ref);
      }
      const ok = { eq: got === want, ne: got !== want, gt: got > want, ge: got >= want, lt: got < want, le: got <= want }[op];
      if (!ok) {
        this.errorf(`${what} = ${got}, want ${op} ${want}`);
      }
    }
  }

  str(want: string | undefined, got: string, what: string): void {
    if (want !== undefined && want !== got) {
      this.errorf(`${what} = ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }
  }

  ids(want: string[] | undefined, got: readonly string[], what: string): void {
    if (want !== undefined && !sameList(want, got)) {
      this.errorf(`${what} = ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }
  }

  entries(want: EntryMatch[] | undefined, got: readonly HistoryEntry[], what: string): void {
    if (want === undefined) {
      return;
    }
    if (got.length !== want.length) {
      this.errorf(`${what} = ${JSON.stringify(entryIds(got))}, want ${want.length} entries`);
      return;
    }
    want.forEach((w, i) => {
      const g = got[i];
      if (g === undefined) {
        return;
      }
      const where = `${what}[${i}]`;
      this.str(w.message_id, g.messageId, where + ".message_id");
      this.str(w.sender_id, g.senderId ?? "", where + ".sender_id");
      this.str(w.retrieval_hint, dec.decode(g.retrievalHint ?? new Uint8Array()), where + ".retrieval_hint");
    });
  }

  checkResult(w: ResultMatch, got: UnwrapReceivedMessageResponse): void {
    this.str(w.kind, MessageKind[got.kind], "result.kind");
    if (w.delivered !== undefined && w.delivered !== got.delivered) {
      this.errorf(`result.delivered = ${got.delivered}, want ${w.delivered}`);
    }
    this.str(w.message_id, got.messageId, "result.message_id");
    this.str(w.channel_id, got.channelId, "result.channel_id");
    this.str(w.sender_id, got.senderId, "result.sender_id");
    this.str(w.content, dec.decode(got.content), "result.content");
    if (w.lamport !== undefined) {
      this.num(w.lamport, got.lamportTimestamp, "result.lamport");
    }
    this.ids(w.missing, entryIds(got.missing), "result.missing");
    this.entries(w.missing_entries, got.missing, "result.missing_entries");
  }

  async checkMessage(what: string, w: MessageMatch, data: Uint8Array): Promise<void> {
    let m: SdsMessage;
    try {
      m = fromBinary(SdsMessageSchema, data);
    } catch (e) {
      this.fatal(`${what}: the bytes do not decode as an SdsMessage: ${String(e)}`);
    }
    this.str(w.kind, wireKind(m), what + ".kind");
    this.str(w.message_id, m.messageId, what + ".message_id");
    this.str(w.sender_id, m.senderId, what + ".sender_id");
    this.str(w.channel_id, m.channelId, what + ".channel_id");
    const hasLamport = m.lamportTimestamp !== undefined;
    if (w.has_lamport !== undefined && w.has_lamport !== hasLamport) {
      this.errorf(`${what} has lamport = ${hasLamport}, want ${w.has_lamport}`);
    }
    if (w.lamport !== undefined) {
      if (m.lamportTimestamp === undefined) {
        this.errorf(`${what} has no lamport timestamp`);
      } else {
        this.num(w.lamport, m.lamportTimestamp, what + ".lamport");
      }
    }
    if (w.save_lamport_as !== undefined) {
      this.nums.set(w.save_lamport_as, m.lamportTimestamp ?? 0n);
    }
    this.str(w.content, dec.decode(m.content ?? new Uint8Array()), what + ".content");
    this.ids(w.causal_history, entryIds(m.causalHistory), what + ".causal_history");
    this.entries(w.causal_history_entries, m.causalHistory, what + ".causal_history_entries");
    this.ids(w.repair_request, entryIds(m.repairRequest), what + ".repair_request");
    this.entries(w.repair_request_entries, m.repairRequest, what + ".repair_request_entries");
    const bloom = m.bloomFilter ?? new Uint8Array();
    if (w.has_bloom !== undefined && w.has_bloom !== bloom.length > 0) {
      this.errorf(`${what} has bloom filter = ${bloom.length > 0}, want ${w.has_bloom}`);
    }
    const contains = w.bloom_contains ?? [];
    const lacks = w.bloom_lacks ?? [];
    if (contains.length > 0 || lacks.length > 0) {
      [...contains, ...lacks].forEach((id) => this.asciiId(id));
      const test = async (id: string): Promise<boolean> => {
        try {
          return await this.core.testing.bloomContains(bloom, id, w.bloom_capacity, w.bloom_error_rate);
        } catch (e) {
          this.fatal(`${what}: bloom filter (${bloom.length} bytes) does not decode: ${String(e)}`);
        }
      };
      for (const id of contains) {
        if (!(await test(id))) {
          this.errorf(`${what}: bloom filter lacks "${id}"`);
        }
      }
      for (const id of lacks) {
        if (await test(id)) {
          this.errorf(`${what}: bloom filter contains "${id}"`);
        }
      }
    }
  }

  /** Runs a check on the side, returning its failures instead of recording them. */
  async collecting(check: () => Promise<void> | void): Promise<string[]> {
    const saved = this.errors;
    this.errors = [];
    try {
      await check();
    } catch (e) {
      if (!(e instanceof Fatal)) {
        throw e;
      }
      this.errors.push(e.message);
    }
    const out = this.errors;
    this.errors = saved;
    return out;
  }

  validateEventMatch(w: EventMatch): void {
    const allowed = eventFields[w.type];
    if (allowed === undefined) {
      this.fatal(`unknown event type "${w.type}"`);
    }
    for (const f of Object.keys(w)) {
      if (f !== "type" && !allowed.includes(f)) {
        this.fatal(`event matcher field "${f}" does not apply to ${w.type}`);
      }
    }
  }

  /** Why ev does not match w ("" when it does). */
  async mismatch(w: EventMatch, ev: Event): Promise<string> {
    const type = eventType(ev);
    if (type !== w.type) {
      return `type ${type}, want ${w.type}`;
    }
    const errs: string[] = [];
    const str = (want: string | undefined, got: string, name: string): void => {
      if (want !== undefined && want !== got) {
        errs.push(`${name} ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
      }
    };
    const u32 = (want: number | undefined, got: number, name: string): void => {
      if (want !== undefined && want !== got) {
        errs.push(`${name} ${got}, want ${want}`);
      }
    };
    const missing = (got: HistoryEntry[]): void => {
      if (w.missing !== undefined && !sameList(w.missing, entryIds(got))) {
        errs.push(`missing ${JSON.stringify(entryIds(got))}, want ${JSON.stringify(w.missing)}`);
      }
      if (w.missing_entries !== undefined) {
        if (got.length !== w.missing_entries.length) {
          errs.push(`missing ${JSON.stringify(entryIds(got))}, want ${w.missing_entries.length} entries`);
          return;
        }
        w.missing_entries.forEach((m, i) => {
          const g = got[i];
          if (g !== undefined) {
            str(m.message_id, g.messageId, `missing[${i}].message_id`);
            str(m.sender_id, g.senderId ?? "", `missing[${i}].sender_id`);
            str(m.retrieval_hint, dec.decode(g.retrievalHint ?? new Uint8Array()), `missing[${i}].retrieval_hint`);
          }
        });
      }
    };
    const wire = async (got: Uint8Array): Promise<void> => {
      if (w.wire_bytes !== undefined) {
        const want = this.bytes.get(w.wire_bytes);
        if (want === undefined) {
          errs.push(`no bytes saved as "${w.wire_bytes}"`);
        } else if (!sameBytes(got, want)) {
          errs.push(`wire bytes differ from those saved as "${w.wire_bytes}"`);
        }
      }
      if (w.wire_message !== undefined) {
        const wm = w.wire_message;
        errs.push(...(await this.collecting(() => this.checkMessage("wire_message", wm, got))));
      }
    };
    const e = ev.event;
    switch (e.case) {
      case "messageReady":
        str(w.channel_id, e.value.channelId, "channel_id");
        str(w.message_id, e.value.messageId, "message_id");
        str(w.sender_id, e.value.senderId, "sender_id");
        str(w.content, dec.decode(e.value.content), "content");
        if (w.lamport !== undefined) {
          const l = w.lamport;
          const x = e.value.lamportTimestamp;
          errs.push(...(await this.collecting(() => this.num(l, x, "lamport"))));
        }
        break;
      case "messageAcknowledged":
        str(w.channel_id, e.value.channelId, "channel_id");
        str(w.message_id, e.value.messageId, "message_id");
        break;
      case "messagePossiblyAcknowledged":
        str(w.channel_id, e.value.channelId, "channel_id");
        str(w.message_id, e.value.messageId, "message_id");
        u32(w.count, e.value.count, "count");
        break;
      case "messageUnacknowledged":
        str(w.channel_id, e.value.channelId, "channel_id");
        str(w.message_id, e.value.messageId, "message_id");
        u32(w.resend_attempts, e.value.resendAttempts, "resend_attempts");
        break;
      case "resendRequested":
        str(w.channel_id, e.value.channelId, "channel_id");
        str(w.message_id, e.value.messageId, "message_id");
        u32(w.attempt, e.value.attempt, "attempt");
        await wire(e.value.wireBytes);
        break;
      case "missingDependencies":
        str(w.channel_id, e.value.channelId, "channel_id");
        str(w.message_id, e.value.messageId, "message_id");
        missing(e.value.missing);
        break;
      case "messageLost":
        str(w.channel_id, e.value.channelId, "channel_id");
        str(w.message_id, e.value.messageId, "message_id");
        missing(e.value.missing);
        if (w.delivered !== undefined && w.delivered !== e.value.delivered) {
          errs.push(`delivered ${e.value.delivered}, want ${w.delivered}`);
        }
        break;
      case "syncDue":
        str(w.channel_id, e.value.channelId, "channel_id");
        break;
      case "repairReady":
        str(w.channel_id, e.value.channelId, "channel_id");
        str(w.message_id, e.value.messageId, "message_id");
        await wire(e.value.wireBytes);
        break;
      case "persistenceFailed":
        str(w.channel_id, e.value.channelId, "channel_id");
        str(w.operation, e.value.operation, "operation");
        if (w.detail_contains !== undefined && !e.value.detail.includes(w.detail_contains)) {
          errs.push(`detail ${JSON.stringify(e.value.detail)} does not contain ${JSON.stringify(w.detail_contains)}`);
        }
        break;
      case undefined:
        break;
    }
    return errs.join("; ");
  }

  applySaves(w: EventMatch, ev: Event): void {
    if (w.save_wire_bytes_as === undefined) {
      return;
    }
    if (ev.event.case === "resendRequested" || ev.event.case === "repairReady") {
      this.bytes.set(w.save_wire_bytes_as, ev.event.value.wireBytes);
    }
  }

  async checkEvents(e: Expect, got: Event[]): Promise<void> {
    const mode = e.events_mode ?? "exact";
    for (const w of e.events_excluded ?? []) {
      this.validateEventMatch(w);
      for (const ev of got) {
        if ((await this.mismatch(w, ev)) === "") {
          this.errorf(`excluded event ${w.type}(${eventMessageId(ev)}) was emitted; events ${describeEvents(got)}`);
        }
      }
    }
    if (e.events === undefined) {
      return;
    }
    const want = e.events;
    want.forEach((w) => this.validateEventMatch(w));
    switch (mode) {
      case "exact":
        if (got.length !== want.length) {
          this.errorf(`events ${describeEvents(got)}, want ${want.length} events`);
          return;
        }
        for (let i = 0; i < want.length; i++) {
          const w = want[i];
          const g = got[i];
          if (w === undefined || g === undefined) {
            continue;
          }
          const msg = await this.mismatch(w, g);
          if (msg !== "") {
            this.errorf(`event ${i}: ${msg}; events ${describeEvents(got)}`);
            continue;
          }
          this.applySaves(w, g);
        }
        return;
      case "contains": {
        let j = 0;
        for (const w of want) {
          let found = false;
          for (; j < got.length; j++) {
            const g = got[j];
            if (g !== undefined && (await this.mismatch(w, g)) === "") {
              this.applySaves(w, g);
              found = true;
              j++;
              break;
            }
          }
          if (!found) {
            this.errorf(`events ${describeEvents(got)} do not contain ${w.type}(${w.message_id ?? ""}) in order`);
            return;
          }
        }
        return;
      }
      default:
        this.fatal(`unknown events_mode "${String(mode)}"`);
    }
  }

  checkState(what: string, w: StateMatch, snapshot: ChannelSnapshot | undefined): void {
    const exists = snapshot !== undefined;
    if (w.exists !== undefined && w.exists !== exists) {
      this.fatal(`${what} exists = ${exists}, want ${w.exists}`);
    }
    if (snapshot === undefined) {
      if (w.exists === undefined || w.exists) {
        this.fatal(`${what}: the channel has no state (not loaded / nothing stored)`);
      }
      return;
    }
    const snap = normalize(snapshot);
    if (w.lamport !== undefined) {
      this.num(w.lamport, snap.lamportTimestamp, what + ".lamport");
    }
    if (w.save_lamport_as !== undefined) {
      this.nums.set(w.save_lamport_as, snap.lamportTimestamp);
    }
    const logIds = snap.log.map((m) => m.messageId);
    this.ids(w.log, logIds, what + ".log");
    if (w.log_entries !== undefined) {
      if (w.log_entries.length !== snap.log.length) {
        this.errorf(`${what}.log = ${JSON.stringify(logIds)}, want ${w.log_entries.length} entries`);
      } else {
        w.log_entries.forEach((le, i) => {
          const m = snap.log[i];
          if (m === undefined) {
            return;
          }
          const where = `${what}.log[${i}]`;
          this.str(le.message_id, m.messageId, where + ".message_id");
          this.str(le.sender_id, m.senderId, where + ".sender_id");
          this.str(le.content, dec.decode(m.content ?? new Uint8Array()), where + ".content");
          if (le.lamport !== undefined) {
            this.num(le.lamport, m.lamportTimestamp ?? 0n, where + ".lamport");
          }
        });
      }
    }
    for (const id of w.log_contains ?? []) {
      if (!logIds.includes(id)) {
        this.errorf(`${what}.log ${JSON.stringify(logIds)} lacks "${id}"`);
      }
    }
    for (const id of w.log_lacks ?? []) {
      if (logIds.includes(id)) {
        this.errorf(`${what}.log ${JSON.stringify(logIds)} contains "${id}"`);
      }
    }

    const outIds = snap.outgoing.map((u) => u.message?.messageId ?? "");
    this.ids(w.outgoing, outIds, what + ".outgoing");
    if (w.outgoing_entries !== undefined) {
      if (w.outgoing_entries.length !== snap.outgoing.length) {
        this.errorf(`${what}.outgoing = ${JSON.stringify(outIds)}, want ${w.outgoing_entries.length} entries`);
      } else {
        w.outgoing_entries.forEach((oe, i) => {
          const u = snap.outgoing[i];
          if (u === undefined) {
            return;
          }
          const where = `${what}.outgoing[${i}]`;
          this.str(oe.message_id, u.message?.messageId ?? "", where + ".message_id");
          if (oe.resend_attempts !== undefined && oe.resend_attempts !== u.resendAttempts) {
            this.errorf(`${where}.resend_attempts = ${u.resendAttempts}, want ${oe.resend_attempts}`);
          }
          this.ids(oe.possible_ack_senders, u.possibleAckSenders, where + ".possible_ack_senders");
        });
      }
    }

    const inIds = snap.incoming.map((m) => m.message?.messageId ?? "");
    this.ids(w.incoming, inIds, what + ".incoming");
    if (w.incoming_entries !== undefined) {
      if (w.incoming_entries.length !== snap.incoming.length) {
        this.errorf(`${what}.incoming = ${JSON.stringify(inIds)}, want ${w.incoming_entries.length} entries`);
      } else {
        w.incoming_entries.forEach((ie, i) => {
          const m = snap.incoming[i];
          if (m === undefined) {
            return;
          }
          const where = `${what}.incoming[${i}]`;
          this.str(ie.message_id, m.message?.messageId ?? "", where + ".message_id");
          this.ids(ie.missing, m.missingDependencies, where + ".missing");
        });
      }
    }

    const now = BigInt(this.now);
    this.repairs(
      what + ".outgoing_repair", w.outgoing_repair, w.outgoing_repair_entries,
      snap.outgoingRepair.map((e) => ({ e: e.entry, attempts: e.attempts, due: e.requestAtUnixMs <= now })), true,
    );
    this.repairs(
      what + ".incoming_repair", w.incoming_repair, w.incoming_repair_entries,
      snap.incomingRepair.map((e) => ({ e: e.entry, attempts: 0, due: e.respondAtUnixMs <= now })), false,
    );

    if (w.retrieval_hints !== undefined) {
      const got: Record<string, string> = {};
      for (const h of snap.retrievalHints) {
        got[h.messageId] = dec.decode(h.retrievalHint);
      }
      const want = w.retrieval_hints;
      const same = Object.keys(got).length === Object.keys(want).length && Object.entries(want).every(([k, v]) => got[k] === v);
      if (!same) {
        this.errorf(`${what}.retrieval_hints = ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
      }
    }
    if (w.equals !== undefined) {
      const prev = this.snaps.get(w.equals);
      if (prev === undefined) {
        this.fatal(`${what}: no state saved as "${w.equals}"`);
      }
      if (!equals(ChannelSnapshotSchema, prev, snap)) {
        this.errorf(`${what} differs from the state saved as "${w.equals}"`);
      }
    }
    if (w.save_as !== undefined) {
      this.snaps.set(w.save_as, snap);
    }
  }

  repairs(
    what: string,
    ids: string[] | undefined,
    want: RepairMatch[] | undefined,
    got: { e: HistoryEntry | undefined; attempts: number; due: boolean }[],
    outgoing: boolean,
  ): void {
    const gotIds = got.map((g) => g.e?.messageId ?? "");
    this.ids(ids, gotIds, what);
    if (want === undefined) {
      return;
    }
    if (want.length !== got.length) {
      this.errorf(`${what} = ${JSON.stringify(gotIds)}, want ${want.length} entries`);
      return;
    }
    want.forEach((w, i) => {
      const g = got[i];
      if (g === undefined) {
        return;
      }
      const where = `${what}[${i}]`;
      this.str(w.message_id, g.e?.messageId ?? "", where + ".message_id");
      this.str(w.sender_id, g.e?.senderId ?? "", where + ".sender_id");
      if (w.attempts !== undefined) {
        if (!outgoing) {
          this.fatal(`${where}.attempts applies to outgoing repair entries only`);
        }
        if (w.attempts !== g.attempts) {
          this.errorf(`${where}.attempts = ${g.attempts}, want ${w.attempts}`);
        }
      }
      if (w.due !== undefined && w.due !== g.due) {
        this.errorf(`${where}.due = ${g.due}, want ${w.due}`);
      }
    });
  }
}

// --- helpers ------------------------------------------------------------------------------

const eventFields: Record<string, string[]> = {
  message_ready: ["channel_id", "message_id", "sender_id", "content", "lamport"],
  message_acknowledged: ["channel_id", "message_id"],
  message_possibly_acknowledged: ["channel_id", "message_id", "count"],
  message_unacknowledged: ["channel_id", "message_id", "resend_attempts"],
  resend_requested: ["channel_id", "message_id", "attempt", "wire_bytes", "wire_message", "save_wire_bytes_as"],
  missing_dependencies: ["channel_id", "message_id", "missing", "missing_entries"],
  message_lost: ["channel_id", "message_id", "missing", "missing_entries", "delivered"],
  sync_due: ["channel_id"],
  repair_ready: ["channel_id", "message_id", "wire_bytes", "wire_message", "save_wire_bytes_as"],
  persistence_failed: ["channel_id", "operation", "detail_contains"],
};

/** The event's field name in sdskit.v1.Event, e.g. "message_ready". */
function eventType(ev: Event): string {
  return ev.event.case === undefined ? "" : ev.event.case.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

function eventMessageId(ev: Event): string {
  const v = ev.event.value as { messageId?: string } | undefined;
  return v?.messageId ?? "";
}

function describeEvents(evs: Event[]): string {
  return "[" + evs.map((e) => `${eventType(e)}(${eventMessageId(e)})`).join(", ") + "]";
}

function wireKind(m: SdsMessage): string {
  if (m.lamportTimestamp === undefined) {
    return "EPHEMERAL";
  }
  return (m.content?.length ?? 0) > 0 ? "CONTENT" : "SYNC";
}

function entryIds(es: readonly HistoryEntry[]): string[] {
  return es.map((e) => e.messageId);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function b64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "base64"));
}

function byId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorts the keyed tables by id, so that in-memory and persisted snapshots compare equal. */
function normalize(s: ChannelSnapshot): ChannelSnapshot {
  const c = create(ChannelSnapshotSchema, s);
  c.incoming = [...s.incoming].sort((a, b) => byId(a.message?.messageId ?? "", b.message?.messageId ?? ""));
  c.outgoingRepair = [...s.outgoingRepair].sort((a, b) => byId(a.entry?.messageId ?? "", b.entry?.messageId ?? ""));
  c.incomingRepair = [...s.incomingRepair].sort((a, b) => byId(a.entry?.messageId ?? "", b.entry?.messageId ?? ""));
  c.retrievalHints = [...s.retrievalHints].sort((a, b) => byId(a.messageId, b.messageId));
  return c;
}

// --- the tests ----------------------------------------------------------------------------

const files = readdirSync(scenarioDir).filter((f) => f.endsWith(".json")).sort();

test("the conformance scenarios are there", () => {
  if (files.length === 0) {
    throw new Error(`no scenario files under ${scenarioDir.pathname}`);
  }
});

for (const file of files) {
  const sc = JSON.parse(readFileSync(new URL(file, scenarioDir), "utf8")) as Scenario;
  test(`conformance: ${sc.name}`, async () => {
    if (sc.name + ".json" !== file) {
      throw new Error(`${file}: name "${sc.name}" differs from the file name`);
    }
    const r = new Runner(sc, await loadCore());
    try {
      for (const [i, s] of sc.steps.entries()) {
        await r.runStep(i, s);
      }
    } finally {
      await r.closeAll();
    }
  });
}

