// Concurrency: many channels and many in-flight calls on one manager, many managers in
// one core, and an asynchronous backend that holds one channel's call while the others
// proceed.

import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryPersistence, ReliabilityManager, unwrap } from "@sdskit/sdk";
import type { Persistence, PersistenceTransactions } from "@sdskit/sdk";

const enc = new TextEncoder();

/** A MemoryPersistence whose every answer arrives after a random macrotask delay. */
function slow(mp: MemoryPersistence): Persistence & PersistenceTransactions {
  return new Proxy(mp, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") {
        return v;
      }
      return async (...args: unknown[]): Promise<unknown> => {
        await new Promise((r) => setTimeout(r, Math.random() < 0.5 ? 0 : 1));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

test("many channels × many in-flight calls over an asynchronous backend", async () => {
  const channels = 20;
  const perChannel = 25;
  const amp = new MemoryPersistence();
  const bmp = new MemoryPersistence();
  const alice = unwrap(await ReliabilityManager.create({ participantId: "alice", persistence: slow(amp) }));
  const bob = unwrap(await ReliabilityManager.create({ participantId: "bob", persistence: slow(bmp) }));
  const delivered = new Map<string, string[]>();
  bob.events.on("messageReady", (e) => {
    const l = delivered.get(e.channelId) ?? [];
    l.push(e.messageId);
    delivered.set(e.channelId, l);
  });

  // Every channel's messages are wrapped one after the other, all channels at once.
  const wires = await Promise.all(
    Array.from({ length: channels }, async (_, c) => {
      const out: Uint8Array[] = [];
      for (let i = 0; i < perChannel; i++) {
        out.push(unwrap(await alice.wrapOutgoingMessage({ channelId: `ch${c}`, messageId: `m${i}`, content: enc.encode(`${c}/${i}`) })).wireBytes);
      }
      return out;
    }),
  );
  // Bob receives everything at once, each channel's messages in reverse order: all but the
  // first wait in the incoming buffer until their dependencies arrive.
  const received = await Promise.all(wires.flatMap((ws) => [...ws].reverse().map((w) => bob.unwrapReceivedMessage({ data: w }))));
  assert.equal(received.filter((r) => !r.ok).length, 0);

  for (let c = 0; c < channels; c++) {
    const ids = Array.from({ length: perChannel }, (_, i) => `m${i}`);
    assert.deepEqual(delivered.get(`ch${c}`), ids, `channel ch${c} delivered in causal order`);
    const snap = unwrap(await bob.getSnapshot({ channelId: `ch${c}` })).snapshot;
    assert.equal(snap?.log.length, perChannel);
    assert.equal(snap?.incoming.length, 0);
    assert.equal(bmp.snapshot(`ch${c}`).log.length, perChannel, "persisted too");
    assert.equal(amp.snapshot(`ch${c}`).outgoing.length, perChannel);
  }
  assert.equal(unwrap(await alice.listChannels()).channelIds.length, channels);
  unwrap(await alice.close());
  unwrap(await bob.close());
});

test("a pending host call on one channel does not block the others", async () => {
  const mp = new MemoryPersistence();
  let release: (() => void) | undefined;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const gated: Persistence & PersistenceTransactions = new Proxy(mp, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") {
        return v;
      }
      return async (...args: unknown[]): Promise<unknown> => {
        const req = args[0] as { channelId?: string };
        if (req.channelId === "blocked") {
          await gate;
        }
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const m = unwrap(await ReliabilityManager.create({ participantId: "p", persistence: gated }));
  let blockedDone = false;
  const blocked = m.wrapOutgoingMessage({ channelId: "blocked", messageId: "b1", content: enc.encode("b") }).then((r) => {
    blockedDone = true;
    return r;
  });
  for (let i = 0; i < 10; i++) {
    unwrap(await m.wrapOutgoingMessage({ channelId: `free${i}`, messageId: "f", content: enc.encode("f") }));
  }
  assert.equal(blockedDone, false, "the blocked channel is still waiting for its backend");
  release?.();
  unwrap(await blocked);
  assert.equal(mp.snapshot("blocked").outgoing.length, 1);
  unwrap(await m.close());
});

test("many managers in one core, many calls in flight", async () => {
  const n = 16;
  const ms = await Promise.all(Array.from({ length: n }, (_, i) => ReliabilityManager.create({ participantId: `p${i}`, persistence: "memory" })).map(async (p) => unwrap(await p)));
  const before = await ms[0]?.core.live();
  const wires = await Promise.all(
    ms.map(async (m, i) => unwrap(await m.wrapOutgoingMessage({ channelId: "room", messageId: `from-p${i}`, content: enc.encode(`hello ${i}`) })).wireBytes),
  );
  // Everyone receives everyone else's message, all at once.
  const all = await Promise.all(ms.flatMap((m, i) => wires.filter((_, j) => j !== i).map((w) => m.unwrapReceivedMessage({ data: w }))));
  assert.equal(all.filter((r) => !r.ok || !r.value.delivered).length, 0);
  for (const m of ms) {
    assert.equal(unwrap(await m.getSnapshot({ channelId: "room" })).snapshot?.log.length, n);
  }
  await Promise.all(ms.map(async (m) => unwrap(await m.close())));
  assert.equal((await ms[0]?.core.live()) ?? 0, (before ?? n) - n);
});
