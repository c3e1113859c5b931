import { test } from "node:test";
import assert from "node:assert/strict";
import { LoopbackBus, ReliabilityManager, ReliableChannel, SdsError, ErrorCode, type Transport } from "@sdskit/sdk";

const fast = {
  resendIntervalMs: 100n,
  maxResendIntervalMs: 400n,
  maxResendAttempts: 50,
  syncIntervalMs: 200n,
  sweepIntervalMs: 20n,
  repairTMinMs: 50n,
  repairTMaxMs: 300n,
  bloomCapacity: 1000,
  maxRepairAttempts: 100,
};

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

async function waitFor(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A deterministic PRNG (mulberry32), so the loss pattern is the same every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("ReliableChannel: three participants converge under 30 % loss", async () => {
  const r = rng(7);
  let dropped = 0;
  const bus = new LoopbackBus(() => {
    if (r() < 0.3) {
      dropped++;
      return true;
    }
    return false;
  });
  const names = ["alice", "bob", "carol"];
  const got = new Map<string, Map<string, string>>(names.map((n) => [n, new Map()]));
  const acked = new Set<string>();
  const chans: ReliableChannel[] = [];
  for (const n of names) {
    chans.push(
      await ReliableChannel.open({
        participantId: n,
        channelId: "room",
        transport: bus.transport(),
        config: fast,
        persistence: "memory",
        onMessage: (m) => {
          assert.ok(!got.get(n)!.has(m.messageId), "delivered twice");
          got.get(n)!.set(m.messageId, dec(m.content));
        },
        ...(n === "alice" ? { onAcknowledged: (id: string) => acked.add(id) } : {}),
      }),
    );
  }
  const want = new Set<string>();
  for (let k = 0; k < 10; k++) {
    for (const [i, ch] of chans.entries()) {
      const id = `${names[i]}-${k}`;
      assert.equal(await ch.send(enc(`hello ${id}`), id), id);
      got.get(names[i]!)!.set(id, `hello ${id}`);
      want.add(id);
    }
  }
  await waitFor(() => [...got.values()].every((g) => g.size === want.size), "convergence");
  await waitFor(() => acked.size > 0, "an acknowledgement of alice's messages");
  assert.ok(dropped > 0, "the bus dropped nothing: no repair was exercised");
  assert.equal(got.get("carol")!.get("bob-3"), "hello bob-3");
  for (const ch of chans) await ch.close();
});

test("ReliableChannel: close is idempotent; send after close throws CLOSED", async () => {
  const ch = await ReliableChannel.open({ participantId: "a", channelId: "room", transport: new LoopbackBus().transport() });
  await ch.close();
  await ch.close();
  await ch[Symbol.asyncDispose]();
  assert.equal(ch.manager.closed, true);
  await assert.rejects(ch.sendEphemeral(enc("late")), (e: unknown) => e instanceof SdsError && e.code === ErrorCode.CLOSED);
  await assert.rejects(ch.send(enc("late")), (e: unknown) => e instanceof SdsError && e.code === ErrorCode.CLOSED);
});

test("ReliableChannel: bad input is INVALID_ARGUMENT", async () => {
  const bus = new LoopbackBus();
  await assert.rejects(
    ReliableChannel.open({ participantId: "a", channelId: "", transport: bus.transport() }),
    (e: unknown) => e instanceof SdsError && e.code === ErrorCode.INVALID_ARGUMENT,
  );
  await assert.rejects(
    ReliableChannel.open({ participantId: "a", channelId: "room", transport: bus.transport(), config: { bloomErrorRate: 2 } }),
    (e: unknown) => e instanceof SdsError && e.code === ErrorCode.INVALID_ARGUMENT,
  );
});

test("ReliableChannel: a malformed payload is reported and changes nothing", async () => {
  const bus = new LoopbackBus();
  const errors: unknown[] = [];
  const ch = await ReliableChannel.open({ participantId: "a", channelId: "room", transport: bus.transport(), persistence: "memory", onError: (e) => errors.push(e) });
  await bus.transport().publish(new Uint8Array([0xff, 0xff, 0xff]));
  await waitFor(() => errors.length > 0, "the error report", 5000);
  assert.ok(errors[0] instanceof SdsError && errors[0].code === ErrorCode.DESERIALIZATION, String(errors[0]));
  const snap = (await ch.manager.getSnapshot({ channelId: "room" }));
  assert.ok(snap.ok);
  assert.equal(snap.value.snapshot?.log.length, 0);
  assert.equal(snap.value.snapshot?.incoming.length, 0);
  await ch.close();
});

test("ReliableChannel: publish failures are thrown, then reported, and the message is kept", async () => {
  const inner = new LoopbackBus().transport();
  const failing: Transport = {
    publish: async () => {
      throw new Error("network down");
    },
    subscribe: (h) => inner.subscribe(h),
  };
  const errors: unknown[] = [];
  const ch = await ReliableChannel.open({ participantId: "a", channelId: "room", transport: failing, config: fast, persistence: "memory", onError: (e) => errors.push(e) });
  await assert.rejects(ch.send(enc("x"), "m1"), /network down/);
  await waitFor(() => errors.length > 0, "a background publish failure", 10_000);
  assert.match(String(errors[0]), /network down/);
  const snap = await ch.manager.getSnapshot({ channelId: "room" });
  assert.ok(snap.ok);
  assert.deepEqual(snap.value.snapshot?.outgoing.map((u) => u.message?.messageId), ["m1"]);
  await ch.close();
});

test("ReliableChannel: concurrent senders and an ephemeral message", async () => {
  const bus = new LoopbackBus();
  const got = new Map<string, string>();
  const a = await ReliableChannel.open({ participantId: "alice", channelId: "room", transport: bus.transport(), persistence: "memory" });
  const b = await ReliableChannel.open({ participantId: "bob", channelId: "room", transport: bus.transport(), persistence: "memory", onMessage: (m) => got.set(m.messageId, dec(m.content)) });
  const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => a.send(enc(`m${i}`))));
  assert.equal(new Set(ids).size, 30);
  await waitFor(() => got.size === 30, "bob to receive all 30");
  const eph = await a.sendEphemeral(enc("typing"));
  await waitFor(() => got.get(eph) === "typing", "the ephemeral message", 5000);
  await a.close();
  await b.close();
});

test("ReliableChannel: messages() iterates deliveries in order and ends on close", async () => {
  const bus = new LoopbackBus();
  const a = await ReliableChannel.open({ participantId: "alice", channelId: "room", transport: bus.transport(), persistence: "memory" });
  const b = await ReliableChannel.open({ participantId: "bob", channelId: "room", transport: bus.transport(), persistence: "memory" });
  const reader = (async () => {
    const seen: string[] = [];
    for await (const m of b) seen.push(dec(m.content));
    return seen;
  })();
  const early = b.messages();
  for (let i = 0; i < 5; i++) await a.send(enc(`m${i}`));
  // A second reader sees the same messages; breaking out of it releases it.
  const first = await early.next();
  assert.equal(first.done, false);
  assert.equal(dec(first.done === false ? first.value.content : new Uint8Array()), "m0");
  await early.return?.();
  assert.deepEqual(await early.next(), { value: undefined, done: true });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const s = await b.manager.getSnapshot({ channelId: "room" });
    if (s.ok && s.value.snapshot?.log.length === 5) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await b.close();
  assert.deepEqual(await reader, ["m0", "m1", "m2", "m3", "m4"]);
  const late = b.messages();
  assert.deepEqual(await late.next(), { value: undefined, done: true });
  await a.close();
});

test("ReliableChannel: channels sharing a manager keep to their own channel and leave it open", async () => {
  const r = await ReliabilityManager.create({ participantId: "alice", persistence: "memory" });
  assert.ok(r.ok);
  const shared = r.value;
  const busX = new LoopbackBus();
  const busY = new LoopbackBus();
  const gotX: string[] = [];
  const gotY: string[] = [];
  const x = await ReliableChannel.open({ manager: shared, channelId: "x", transport: busX.transport(), onMessage: (m) => gotX.push(m.messageId) });
  const y = await ReliableChannel.open({ manager: shared, channelId: "y", transport: busY.transport(), onMessage: (m) => gotY.push(m.messageId) });
  const bx = await ReliableChannel.open({ participantId: "bob", channelId: "x", transport: busX.transport(), persistence: "memory" });
  const by = await ReliableChannel.open({ participantId: "bob", channelId: "y", transport: busY.transport(), persistence: "memory" });
  await bx.send(enc("to x"), "mx");
  await by.send(enc("to y"), "my");
  await waitFor(() => gotX.length === 1 && gotY.length === 1, "one message on each channel", 10_000);
  assert.deepEqual(gotX, ["mx"]);
  assert.deepEqual(gotY, ["my"]);
  await x.close();
  assert.equal(shared.closed, false, "closing a channel closed a manager it did not create");
  await by.send(enc("again"), "my2");
  await waitFor(() => gotY.length === 2, "y still delivering after x closed", 10_000);
  assert.deepEqual(gotX, ["mx"]);
  await y.close();
  await shared.close();
  await assert.rejects(
    ReliableChannel.open({ manager: shared, channelId: "z", transport: busX.transport() }),
    (e: unknown) => e instanceof SdsError && e.code === ErrorCode.CLOSED,
  );
  await bx.close();
  await by.close();
});
