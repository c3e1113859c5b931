// The SDK's behaviour beyond the conformance scenarios: failing and throwing backends
// (rollback, PERSISTENCE), throwing event listeners, bad input at every layer, the
// ABI/IDL check, closed managers.

import { test } from "node:test";
import assert from "node:assert/strict";
import { create, equals } from "@bufbuild/protobuf";
import {
  ABI_VERSION,
  ChannelSnapshotSchema,
  checkCore,
  CloseRequestSchema,
  CreateRequestSchema,
  CoreLoadError,
  ErrorCode,
  IDL_HASH,
  loadCore,
  MemoryPersistence,
  ReliabilityManager,
  ReliabilityManagerMethod,
  ResultSchema,
  SdsError,
  fail,
  ok,
  unwrap,
} from "@sdskit/sdk";
import type { ChannelSnapshot, Event, FailureMode, Persistence, Result } from "@sdskit/sdk";
import { fromBinary, toBinary } from "@bufbuild/protobuf";

const enc = new TextEncoder();
const bytes = (s: string): Uint8Array => enc.encode(s);

async function manager(opts: Parameters<typeof ReliabilityManager.create>[0] = {}): Promise<ReliabilityManager> {
  return unwrap(await ReliabilityManager.create(opts));
}

async function snapshot(m: ReliabilityManager, channelId: string): Promise<ChannelSnapshot> {
  return unwrap(await m.getSnapshot({ channelId })).snapshot ?? create(ChannelSnapshotSchema);
}

function expectError<T>(r: Result<T>, code: ErrorCode, contains?: string): SdsError {
  assert.equal(r.ok, false, `expected ${ErrorCode[code]}, got a value`);
  if (r.ok) {
    throw new Error("unreachable");
  }
  assert.ok(r.error instanceof SdsError);
  assert.equal(r.error.codeName, ErrorCode[code], r.error.message);
  if (contains !== undefined) {
    assert.match(r.error.message, new RegExp(contains));
  }
  return r.error;
}

for (const mode of ["result", "throw", "reject"] satisfies FailureMode[]) {
  test(`a failing backend (${mode}) gives PERSISTENCE, rolls the operation back, and the retry succeeds`, async () => {
    const mp = new MemoryPersistence();
    const alice = await manager({ participantId: "alice", persistence: mp });
    const events: Event[] = [];
    alice.events.onAny((e) => events.push(e));
    unwrap(await alice.wrapOutgoingMessage({ channelId: "c", messageId: "m1", content: bytes("one") }));
    const before = await snapshot(alice, "c");
    const storedBefore = mp.snapshot("c");

    mp.failOp("SaveOutgoing", { mode, message: `disk on fire (${mode})` });
    const r = await alice.wrapOutgoingMessage({ channelId: "c", messageId: "m2", content: bytes("two") });
    expectError(r, ErrorCode.PERSISTENCE, "disk on fire");
    assert.ok(equals(ChannelSnapshotSchema, before, await snapshot(alice, "c")), "memory was rolled back");
    assert.ok(equals(ChannelSnapshotSchema, storedBefore, mp.snapshot("c")), "nothing was stored");
    assert.equal(mp.calls("Rollback"), 1);

    mp.heal();
    const w = unwrap(await alice.wrapOutgoingMessage({ channelId: "c", messageId: "m2", content: bytes("two") }));
    assert.ok(w.wireBytes.length > 0);
    const after = await snapshot(alice, "c");
    assert.deepEqual(after.outgoing.map((o) => o.message?.messageId), ["m1", "m2"]);
    assert.deepEqual(mp.snapshot("c").outgoing.map((o) => o.message?.messageId), ["m1", "m2"]);
    unwrap(await alice.close());
  });
}

test("a hand-written backend that throws anything, or answers garbage, gives PERSISTENCE", async () => {
  const base = new MemoryPersistence();
  let behaviour: "throw-string" | "garbage" | "ok" = "ok";
  const flaky: Persistence = new Proxy(base, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") {
        return v;
      }
      return (...args: unknown[]): unknown => {
        if (prop === "saveLamport" && behaviour === "throw-string") {
          throw "a bare string"; // eslint-disable-line no-throw-literal
        }
        if (prop === "saveLamport" && behaviour === "garbage") {
          return Promise.resolve(42);
        }
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const alice = await manager({ participantId: "alice", persistence: flaky });
  behaviour = "throw-string";
  expectError(await alice.wrapOutgoingMessage({ channelId: "c", messageId: "m1", content: bytes("x") }), ErrorCode.PERSISTENCE, "a bare string");
  behaviour = "garbage";
  expectError(await alice.wrapOutgoingMessage({ channelId: "c", messageId: "m1", content: bytes("x") }), ErrorCode.PERSISTENCE, "not a Result");
  behaviour = "ok";
  unwrap(await alice.wrapOutgoingMessage({ channelId: "c", messageId: "m1", content: bytes("x") }));
  unwrap(await alice.close());
});

test("a failing load gives PERSISTENCE and installs nothing; the next touch loads", async () => {
  const mp = new MemoryPersistence();
  const alice = await manager({ participantId: "alice", persistence: mp });
  mp.failNth("LoadAllForChannel", 1, { mode: "reject" });
  expectError(await alice.ensureChannel({ channelId: "c" }), ErrorCode.PERSISTENCE);
  assert.deepEqual(unwrap(await alice.listChannels()).channelIds, []);
  unwrap(await alice.ensureChannel({ channelId: "c" }));
  assert.deepEqual(unwrap(await alice.listChannels()).channelIds, ["c"]);
  unwrap(await alice.close());
});

test("a throwing event listener never breaks the core or the other listeners", async () => {
  const reported: unknown[] = [];
  const alice = await manager({ participantId: "alice" });
  const bob = await manager({ participantId: "bob", onListenerError: (e) => reported.push(e) });
  const seen: string[] = [];
  bob.events.on("messageReady", () => {
    throw new Error("listener bug");
  });
  bob.events.on("messageReady", (e) => seen.push(e.messageId));
  bob.events.onAny(() => {
    throw new TypeError("onAny bug");
  });
  for (const id of ["m1", "m2", "m3"]) {
    const w = unwrap(await alice.wrapOutgoingMessage({ channelId: "c", messageId: id, content: bytes(id) }));
    const r = unwrap(await bob.unwrapReceivedMessage({ data: w.wireBytes }));
    assert.equal(r.delivered, true);
  }
  assert.deepEqual(seen, ["m1", "m2", "m3"]);
  assert.equal(reported.length, 6);
  assert.deepEqual(unwrap(await bob.getSnapshot({ channelId: "c" })).snapshot?.log.map((m) => m.messageId), ["m1", "m2", "m3"]);
  unwrap(await alice.close());
  unwrap(await bob.close());
});

test("events are typed and arrive before the call resolves", async () => {
  const alice = await manager({ participantId: "alice" });
  const bob = await manager({ participantId: "bob" });
  const order: string[] = [];
  bob.events.on("messageReady", (e) => order.push(`ready:${e.messageId}:${new TextDecoder().decode(e.content)}`));
  bob.events.on("missingDependencies", (e) => order.push(`missing:${e.messageId}:${e.missing.map((h) => h.messageId).join(",")}`));
  const w1 = unwrap(await alice.wrapOutgoingMessage({ channelId: "c", messageId: "m1", content: bytes("a") }));
  const w2 = unwrap(await alice.wrapOutgoingMessage({ channelId: "c", messageId: "m2", content: bytes("b") }));
  const r2 = unwrap(await bob.unwrapReceivedMessage({ data: w2.wireBytes }));
  assert.equal(r2.delivered, false);
  assert.deepEqual(order, ["missing:m2:m1"]);
  unwrap(await bob.unwrapReceivedMessage({ data: w1.wireBytes }));
  assert.deepEqual(order, ["missing:m2:m1", "ready:m1:a", "ready:m2:b"]);
  assert.equal(bob.events.listenerCount(), 2);
  unwrap(await alice.close());
  unwrap(await bob.close());
});

test("bad input is a typed error, never a rejection", async () => {
  const alice = await manager({ participantId: "alice" });
  expectError(await alice.unwrapReceivedMessage({ data: new Uint8Array([0xff, 0xff, 0xff]) }), ErrorCode.DESERIALIZATION);
  expectError(await alice.unwrapReceivedMessage({ data: new Uint8Array() }), ErrorCode.DESERIALIZATION);
  expectError(await alice.wrapOutgoingMessage({ channelId: "c", messageId: "m1", content: new Uint8Array() }), ErrorCode.INVALID_ARGUMENT);
  expectError(await alice.wrapOutgoingMessage({ channelId: "", messageId: "m1", content: bytes("x") }), ErrorCode.INVALID_ARGUMENT);
  expectError(await alice.getSnapshot({ channelId: "never-touched" }), ErrorCode.NOT_FOUND);
  // A bad configuration is refused at create.
  expectError(await ReliabilityManager.create({ config: { bloomErrorRate: 2 } }), ErrorCode.INVALID_ARGUMENT);
  expectError(await ReliabilityManager.create({ config: { maxCausalHistory: 0, bloomCapacity: 0 } }), ErrorCode.INVALID_ARGUMENT);
  unwrap(await alice.close());
});

test("bad input to the raw core is an INVALID_ARGUMENT Result", async () => {
  const core = await loadCore();
  const decodeErr = (b: Uint8Array): { code: number; message: string } => {
    const r = fromBinary(ResultSchema, b);
    assert.equal(r.result.case, "error");
    return r.result.case === "error" ? r.result.value : { code: 0, message: "" };
  };
  const asAny = core as unknown as Record<string, (...a: unknown[]) => Promise<Uint8Array>>;
  const callFn = asAny["call"];
  assert.ok(callFn !== undefined);
  assert.equal(decodeErr(await callFn.call(core, "one", 1, new Uint8Array())).code, ErrorCode.INVALID_ARGUMENT);
  assert.equal(decodeErr(await callFn.call(core, 1, -3, new Uint8Array())).code, ErrorCode.INVALID_ARGUMENT);
  assert.equal(decodeErr(await callFn.call(core, 1, 1, "not bytes")).code, ErrorCode.INVALID_ARGUMENT);
  assert.equal(decodeErr(await core.call(987654, ReliabilityManagerMethod.ListChannels, new Uint8Array())).code, ErrorCode.INVALID_ARGUMENT);
  assert.equal(decodeErr(await core.close(987654)).code, ErrorCode.INVALID_ARGUMENT);
  const created = await core.create(new Uint8Array([0xff, 0x01]));
  assert.equal(created.handle, 0);
  assert.equal(decodeErr(created.result).code, ErrorCode.INVALID_ARGUMENT);
  // An undecodable request to a live manager, and an unknown method id.
  const m = await manager();
  assert.equal(decodeErr(await core.call(m.handle, ReliabilityManagerMethod.EnsureChannel, new Uint8Array([0xff]))).code, ErrorCode.INVALID_ARGUMENT);
  assert.equal(decodeErr(await core.call(m.handle, 9999, new Uint8Array())).code, ErrorCode.INVALID_ARGUMENT);
  // A host that answers nonsense fails the persistence call (PERSISTENCE), it does not crash the core.
  const h = await core.create(createHostRequest(), {
    persistence: true,
    call: () => new Uint8Array([0xff, 0xff]) as unknown as Uint8Array,
  });
  assert.ok(h.handle > 0);
  const ensure = await core.call(h.handle, ReliabilityManagerMethod.EnsureChannel, new Uint8Array([10, 1, 99]));
  assert.equal(decodeErr(ensure).code, ErrorCode.PERSISTENCE);
  const rejecting = await core.create(createHostRequest(), {
    persistence: true,
    call: () => Promise.reject(new Error("host is down")),
  });
  const e2 = decodeErr(await core.call(rejecting.handle, ReliabilityManagerMethod.EnsureChannel, new Uint8Array([10, 1, 99])));
  assert.equal(e2.code, ErrorCode.PERSISTENCE);
  assert.match(e2.message, /host is down/);
  await core.close(h.handle);
  await core.close(rejecting.handle);
  unwrap(await m.close());
});

test("a closed manager answers CLOSED; close is idempotent", async () => {
  const m = await manager();
  unwrap(await m.close());
  assert.equal(m.closed, true);
  expectError(await m.wrapOutgoingMessage({ channelId: "c", messageId: "x", content: bytes("x") }), ErrorCode.CLOSED);
  unwrap(await m.close(create(CloseRequestSchema)));
});

test("the ABI/IDL check refuses a mismatched core with a clear error", async () => {
  const core = await loadCore();
  assert.equal(core.abiVersion, ABI_VERSION);
  assert.equal(core.idlHash, IDL_HASH);
  assert.throws(() => checkCore({ abiVersion: ABI_VERSION + 1, idlHash: IDL_HASH }), (e: unknown) => {
    assert.ok(e instanceof CoreLoadError);
    assert.match(e.message, /does not match this SDK/);
    assert.match(e.message, new RegExp(`ABI version ${ABI_VERSION + 1}`));
    return true;
  });
  assert.throws(() => checkCore({ abiVersion: ABI_VERSION, idlHash: "0".repeat(64) }), /built from IDL 0{64}/);
  await assert.rejects(loadCore({ wasm: new Uint8Array([0, 1, 2, 3]) }), CoreLoadError);
});

test("the glue's plain path (no loader helper) behaves like the fast path", async () => {
  const core = await loadCore({ fast: false });
  const mp = new MemoryPersistence();
  const alice = unwrap(await ReliabilityManager.create({ core, participantId: "alice", persistence: mp }));
  const bob = unwrap(await ReliabilityManager.create({ core, participantId: "bob" }));
  const ready: string[] = [];
  bob.events.on("messageReady", (e) => ready.push(e.messageId));
  for (const id of ["m1", "m2"]) {
    const w = unwrap(await alice.wrapOutgoingMessage({ channelId: "c", messageId: id, content: bytes(id) }));
    unwrap(await bob.unwrapReceivedMessage({ data: w.wireBytes }));
  }
  assert.deepEqual(ready, ["m1", "m2"]);
  assert.deepEqual(mp.snapshot("c").outgoing.map((o) => o.message?.messageId), ["m1", "m2"]);
  mp.failOp("SaveOutgoing", { mode: "reject" });
  expectError(await alice.wrapOutgoingMessage({ channelId: "c", messageId: "m3", content: bytes("m3") }), ErrorCode.PERSISTENCE);
  expectError(await bob.unwrapReceivedMessage({ data: new Uint8Array([0xff]) }), ErrorCode.DESERIALIZATION);
  unwrap(await alice.close());
  unwrap(await bob.close());
  assert.equal(await core.live(), 0);
});

// A manager without host persistence or hints runs its calls through the core's
// synchronous export; listeners that call managers while an event is being delivered
// (from inside the core) are deferred until the core returns, and get their answers.
test("listeners may call managers while the core delivers an event (synchronous and ordinary paths)", async () => {
  const core = await loadCore();
  for (const persistence of ["none", new MemoryPersistence()] as const) {
    const syncBefore = core.testing.syncCalls();
    const alice = await manager({ participantId: "alice", persistence });
    const bob = await manager({ participantId: "bob" });
    const seen: string[] = [];
    const replies: Promise<void>[] = [];
    bob.events.on("messageReady", (e) => {
      replies.push(
        (async () => {
          const snap = await snapshot(bob, e.channelId);
          seen.push(`${e.messageId}:${snap.log.map((m) => m.messageId).sort().join(",")}`);
          const r = unwrap(await bob.wrapOutgoingMessage({ channelId: e.channelId, messageId: `re-${e.messageId}`, content: bytes("re") }));
          unwrap(await alice.unwrapReceivedMessage({ data: r.wireBytes }));
        })(),
      );
    });
    const acked: string[] = [];
    alice.events.on("messageAcknowledged", (e) => acked.push(e.messageId));
    for (const id of ["m1", "m2"]) {
      const w = unwrap(await alice.wrapOutgoingMessage({ channelId: "c", messageId: id, content: bytes(id) }));
      unwrap(await bob.unwrapReceivedMessage({ data: w.wireBytes }));
    }
    await Promise.all(replies);
    assert.deepEqual(seen, ["m1:m1", "m2:m1,m2,re-m1"], persistence === "none" ? "synchronous path" : "host persistence");
    assert.deepEqual(acked, ["m1", "m2"]);
    // bob always has no host service but the event sink: his calls (at least the two
    // unwraps, snapshots and replies) take the synchronous path; alice's, with a host
    // backend, never do.
    const sync = core.testing.syncCalls() - syncBefore;
    assert.ok(sync >= 6, `synchronous calls: ${sync}`);
    unwrap(await alice.close());
    unwrap(await bob.close());
  }
});

test("only managers without host persistence or hints take the synchronous path", async () => {
  const core = await loadCore();
  for (const [opts, synchronous] of [
    [{ persistence: "none" }, true],
    [{ persistence: "memory" }, true],
    [{ persistence: new MemoryPersistence() }, false],
    [{ retrievalHints: () => undefined }, false],
  ] as const) {
    const m = await manager({ participantId: "p", ...opts });
    const before = core.testing.syncCalls();
    unwrap(await m.wrapOutgoingMessage({ channelId: "c", messageId: "m1", content: bytes("x") }));
    unwrap(await m.getSnapshot({ channelId: "c" }));
    assert.equal(core.testing.syncCalls() - before, synchronous ? 2 : 0, JSON.stringify(Object.keys(opts)));
    unwrap(await m.close());
  }
});

test("periodic tasks run in the background (Go timers under wasm) and stop at close", async () => {
  const m = unwrap(await ReliabilityManager.create({
    participantId: "p",
    config: { syncIntervalMs: 30n, syncJitter: 0, sweepIntervalMs: 10n, resendIntervalMs: 40n, maxResendIntervalMs: 40n },
  }));
  const sync = m.events.next("syncDue");
  const resend = m.events.next("resendRequested");
  unwrap(await m.wrapOutgoingMessage({ channelId: "c", messageId: "m1", content: bytes("x") }));
  unwrap(await m.startPeriodicTasks());
  assert.equal((await sync).channelId, "c");
  assert.equal((await resend).messageId, "m1");
  unwrap(await m.close());
  let after = 0;
  m.events.onAny(() => after++);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(after, 0, "no event after close");
});

test("Result helpers", () => {
  const a: Result<number> = ok(3);
  assert.equal(unwrap(a), 3);
  const b: Result<number> = fail(ErrorCode.NOT_FOUND, "nope", "Get");
  assert.throws(() => unwrap(b), (e: unknown) => e instanceof SdsError && e.message === "Get: NOT_FOUND: nope" && e.detail === "nope");
  const e = SdsError.from(new RangeError("boom"), ErrorCode.PERSISTENCE, "Commit");
  assert.equal(e.message, "Commit: PERSISTENCE: boom");
  assert.ok(e.cause instanceof RangeError);
  assert.equal(SdsError.fromProto(e.toProto()).message, e.message);
});

function createHostRequest(): Uint8Array {
  return toBinary(CreateRequestSchema, create(CreateRequestSchema, { participantId: "raw", persistence: { kind: { case: "host", value: {} } } }));
}
