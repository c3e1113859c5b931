// sdskit (Go core as WebAssembly, through the TypeScript SDK) against @waku/sds 0.0.8,
// in the same Node process and workload: N content messages with 100-byte payloads,
// causal history 2, alice → bob on one channel.
//
// For i = 1..N, one message at a time:
//   send          alice wraps mi
//   receive       bob unwraps mi (delivered at once: it arrives in order)
//   reply         bob wraps ri, whose causal history holds mi
//   receive acks  alice unwraps ri, which acknowledges mi (by causal history)
//
// Each implementation processes every call as it comes (@waku/sds: push then
// processTasks()). Run with `make bench-ts` (N=… to change the size); the table is
// recorded in docs/benchmarks.md.

import { performance } from "node:perf_hooks";
import { MessageChannel, Message, MessageChannelEvent } from "@waku/sds";
import { ReliabilityManager, MemoryPersistence, unwrap, loadCore } from "../dist/index.js";

const N = Number(process.env.N ?? 2000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

function payload(i, from) {
  const p = new Uint8Array(100);
  for (let j = 0; j < p.length; j++) {
    p[j] = (i * 31 + j * 7 + from) & 0xff;
  }
  new DataView(p.buffer).setUint32(0, i);
  p[4] = from;
  return p;
}

function check(what, got, want) {
  if (got !== want) {
    throw new Error(`${what}: ${got}, want ${want}`);
  }
}

async function wakuRun(n) {
  const alice = new MessageChannel("bench", "alice", { causalHistorySize: 2 });
  const bob = new MessageChannel("bench", "bob", { causalHistorySize: 2 });
  let delivered = 0;
  let acked = 0;
  bob.addEventListener(MessageChannelEvent.InMessageDelivered, () => delivered++);
  alice.addEventListener(MessageChannelEvent.OutMessageAcknowledged, () => acked++);
  const t = { send: 0, receive: 0, reply: 0, acks: 0 };

  let wireBytes = 0;
  for (let i = 0; i < n; i++) {
    let t0 = performance.now();
    let wire;
    alice.pushOutgoingMessage(payload(i, 1), async (m) => {
      wire = m.encode();
      return { success: true };
    });
    await alice.processTasks();
    let t1 = performance.now();
    t.send += t1 - t0;
    wireBytes = wire.length;

    t0 = performance.now();
    bob.pushIncomingMessage(Message.decode(wire), undefined);
    await bob.processTasks();
    t1 = performance.now();
    t.receive += t1 - t0;

    t0 = performance.now();
    let reply;
    bob.pushOutgoingMessage(payload(i, 2), async (m) => {
      reply = m.encode();
      return { success: true };
    });
    await bob.processTasks();
    t1 = performance.now();
    t.reply += t1 - t0;

    t0 = performance.now();
    alice.pushIncomingMessage(Message.decode(reply), undefined);
    await alice.processTasks();
    t.acks += performance.now() - t0;
  }
  check("@waku/sds delivered", delivered, n);
  return { t, wireBytes, acked };
}

async function sdskitRun(n, core, persistence) {
  const mk = async (id) =>
    unwrap(await ReliabilityManager.create({ core, participantId: id, config: { maxCausalHistory: 2 }, persistence: persistence() }));
  const alice = await mk("alice");
  const bob = await mk("bob");
  let delivered = 0;
  let acked = 0;
  bob.events.on("messageReady", () => delivered++);
  alice.events.on("messageAcknowledged", () => acked++);
  const t = { send: 0, receive: 0, reply: 0, acks: 0 };

  let wireBytes = 0;
  for (let i = 0; i < n; i++) {
    let t0 = performance.now();
    const wire = unwrap(await alice.wrapOutgoingMessage({ channelId: "bench", messageId: `m${i}`, content: payload(i, 1) })).wireBytes;
    let t1 = performance.now();
    t.send += t1 - t0;
    wireBytes = wire.length;

    t0 = performance.now();
    unwrap(await bob.unwrapReceivedMessage({ data: wire }));
    t1 = performance.now();
    t.receive += t1 - t0;

    t0 = performance.now();
    const reply = unwrap(await bob.wrapOutgoingMessage({ channelId: "bench", messageId: `r${i}`, content: payload(i, 2) })).wireBytes;
    t1 = performance.now();
    t.reply += t1 - t0;

    t0 = performance.now();
    unwrap(await alice.unwrapReceivedMessage({ data: reply }));
    t.acks += performance.now() - t0;
  }
  check("sdskit delivered", delivered, n);

  unwrap(await alice.close());
  unwrap(await bob.close());
  return { t, wireBytes, acked };
}

function best(runs) {
  // The fastest of the rounds, phase by phase (the first round includes warm-up).
  const out = { send: Infinity, receive: Infinity, reply: Infinity, acks: Infinity };
  for (const r of runs) {
    for (const k of Object.keys(out)) {
      out[k] = Math.min(out[k], r.t[k]);
    }
  }
  return out;
}

const rate = (ms) => (ms > 0 ? Math.round((N * 1000) / ms) : Infinity);

async function main() {
  const core = await loadCore();
  const impls = [
    ["@waku/sds 0.0.8", () => wakuRun(N)],
    ["sdskit wasm, no persistence", () => sdskitRun(N, core, () => "none")],
    ["sdskit wasm, core memory store", () => sdskitRun(N, core, () => "memory")],
    ["sdskit wasm, TS MemoryPersistence (host calls)", () => sdskitRun(N, core, () => new MemoryPersistence())],
  ];
  const results = [];
  for (const [name, run] of impls) {
    const runs = [];
    let wireBytes = 0;
    let acked = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const res = await run();
      runs.push(res);
      wireBytes = res.wireBytes;
      acked = res.acked;
    }
    const b = best(runs);
    const total = b.send + b.receive + b.reply + b.acks;
    results.push({ name, b, total, wireBytes, acked });
  }
  const base = results[0];
  console.log(`N = ${N} messages of 100 bytes, causal history 2, best of ${ROUNDS} rounds; Node ${process.version}; messages/s per phase`);
  console.log("");
  console.log("| implementation | send | receive | reply | receive acks | all four phases (ms) | speed-up vs @waku/sds | wire bytes/msg | acknowledged |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of results) {
    const speedup = (base.total / r.total).toFixed(1);
    console.log(
      `| ${r.name} | ${rate(r.b.send)} | ${rate(r.b.receive)} | ${rate(r.b.reply)} | ${rate(r.b.acks)} | ${Math.round(r.total)} | ${speedup}× | ${r.wireBytes} | ${r.acked}/${N} |`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
