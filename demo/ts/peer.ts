// The TypeScript participant of `make demo` (docs/demo.md): a group-chat peer on NATS, its
// SDS state in better-sqlite3 (the SDK's SqlitePersistence), its chat log in DB.chat.
// Run from the repository root: node demo/ts/dist/peer.js --id ts-1 --db x.db
// It prints JSON lines (ready, stats, error) on stdout and stops on stdin EOF or SIGTERM.

import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { ReliableChannel, SdsError, type Transport, type MissingDependencies } from "@sdskit/sdk";
import { SqlitePersistence } from "@sdskit/sdk/sqlite";
import { NatsTransport } from "@sdskit/sdk/nats";
import Database from "better-sqlite3";

const { values: v } = parseArgs({
  options: {
    nats: { type: "string", default: "nats://127.0.0.1:4222" },
    subject: { type: "string", default: "sdskit.demo.chat" },
    channel: { type: "string", default: "demo" },
    id: { type: "string" },
    db: { type: "string" },
    messages: { type: "string", default: "20" },
    "interval-ms": { type: "string", default: "1000" },
    loss: { type: "string", default: "0.2" },
    dup: { type: "string", default: "0.05" },
    "delay-ms": { type: "string", default: "200" },
    seed: { type: "string", default: "1" },
    "sync-ms": { type: "string", default: "3000" },
    "resend-ms": { type: "string", default: "2000" },
    "stats-ms": { type: "string", default: "500" },
  },
});

function num(name: keyof typeof v, min: number, max = Infinity): number {
  const n = Number(v[name]);
  if (!Number.isFinite(n) || n < min || n > max) fail(`--${name} must be a number in [${min}, ${max}]`);
  return n;
}

function fail(msg: string): never {
  process.stderr.write(`peer: ${msg}\n`);
  process.exit(2);
}

// Registered first: a stop during start-up is carried out once the peer is up.
let stopRequested = false;
let stopNow: (() => void) | undefined;
function requestStop(): void {
  stopRequested = true;
  stopNow?.();
}
process.on("SIGTERM", requestStop);
process.on("SIGINT", requestStop);
process.stdin.on("end", requestStop);
process.stdin.resume();

const id = v.id ?? fail("--id is required");
const dbPath = v.db ?? fail("--db is required");
const messages = num("messages", 0);
const intervalMs = num("interval-ms", 1);
const loss = num("loss", 0, 0.999999);
const dup = num("dup", 0, 1);
const delayMs = num("delay-ms", 0);
const seed = num("seed", 0);
const syncMs = num("sync-ms", 1);
const resendMs = num("resend-ms", 1);
const statsMs = num("stats-ms", 1);

function emit(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

/** mulberry32: a small seeded PRNG, so a peer's impairments follow its seed. */
function rng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The application's durable chat log.
const log = new Database(dbPath + ".chat");
log.pragma("journal_mode = WAL");
log.pragma("synchronous = NORMAL");
log.exec(`CREATE TABLE IF NOT EXISTS chat_log(message_id TEXT PRIMARY KEY, sender_id TEXT NOT NULL,
  lamport INTEGER NOT NULL, content BLOB NOT NULL, own INTEGER NOT NULL)`);
const insert = log.prepare("INSERT OR IGNORE INTO chat_log VALUES (?, ?, ?, ?, ?)");
function summary(): { own: number; count: number; digest: string } {
  const rows = log.prepare("SELECT message_id, own FROM chat_log").all() as { message_id: string; own: number }[];
  const ids = rows.map((r) => r.message_id).sort();
  return {
    own: rows.filter((r) => r.own !== 0).length,
    count: ids.length,
    digest: createHash("sha256").update(ids.join("\n")).digest("hex"),
  };
}

const recovered = summary().count;
const stats = { delivered: 0, acked: 0, resent: 0, repairAnswered: 0 };
const requested = new Set<string>();
const missing = new Set<string>();

const nats = await NatsTransport.connect(v.nats!, v.subject!);
const impRng = rng(seed * 7919 + 1);
const timers = new Set<NodeJS.Timeout>();
// Drops, duplicates and delays received payloads so the demo has gaps to repair.
const impaired: Transport = {
  publish: (p) => nats.publish(p),
  subscribe: async (handler) => {
    const stop = await nats.subscribe((p) => {
      if (impRng() < loss) return;
      const copies = impRng() < dup ? 2 : 1;
      for (let i = 0; i < copies; i++) {
        const t = setTimeout(() => {
          timers.delete(t);
          Promise.resolve(handler(p)).catch((e: unknown) => emit({ event: "error", id, message: `receive: ${String(e)}` }));
        }, impRng() * delayMs);
        timers.add(t);
      }
    });
    return async () => {
      await stop();
      for (const t of timers) clearTimeout(t);
    };
  },
};

const ch = await ReliableChannel.open({
  participantId: id,
  channelId: v.channel!,
  transport: impaired,
  persistence: await SqlitePersistence.open(dbPath),
  config: {
    syncIntervalMs: BigInt(syncMs),
    resendIntervalMs: BigInt(resendMs),
    maxResendIntervalMs: BigInt(4 * resendMs),
    repairTMinMs: 500n,
    repairTMaxMs: 3000n,
    maxRepairAttempts: 100,
  },
  onMessage: (m) => {
    insert.run(m.messageId, m.senderId, m.lamportTimestamp, Buffer.from(m.content), 0);
    stats.delivered++;
    missing.delete(m.messageId);
  },
  onAcknowledged: () => stats.acked++,
  onMissing: (e: MissingDependencies) => {
    for (const h of e.missing) {
      requested.add(h.messageId);
      missing.add(h.messageId);
    }
  },
  onEvent: (ev) => {
    if (ev.event.case === "resendRequested") stats.resent++;
    if (ev.event.case === "repairReady") stats.repairAnswered++;
  },
  onError: (e) => emit({ event: "error", id, message: String(e) }),
});

// Events fire after the SDS state committed: a kill between a commit and our insert
// leaves a message in the SDS log only. The SDS log is the source of truth.
const snap = await ch.manager.getSnapshot({ channelId: v.channel! });
if (snap.ok) {
  for (const m of snap.value.snapshot?.log ?? []) {
    insert.run(m.messageId, m.senderId, m.lamportTimestamp, Buffer.from(m.content ?? new Uint8Array()), m.senderId === id ? 1 : 0);
  }
}
let sent = summary().own;
emit({ event: "ready", id, lang: "ts", recovered, sent_before: sent });

function statsLine(): void {
  const s = summary();
  emit({
    event: "stats", id, sent: s.own, delivered: stats.delivered, acked: stats.acked, resent: stats.resent,
    repair_requested: requested.size, repair_answered: stats.repairAnswered, missing: missing.size,
    count: s.count, digest: s.digest, done_sending: s.own >= messages,
  });
}

const postRng = rng(seed * 104729 + 3);
let stopping = false;
let postTimer: NodeJS.Timeout | undefined;
function schedulePost(): void {
  postTimer = setTimeout(async () => {
    if (stopping) return;
    if (sent < messages) {
      const n = sent + 1;
      const mid = `${id}-${n}`;
      const content = new TextEncoder().encode(`hello ${n} from ${id}`);
      let persisted = true;
      try {
        await ch.send(content, mid);
      } catch (e) {
        // An SdsError means the core refused it; a transport error comes after the
        // message was persisted (the resend timer publishes it again).
        persisted = !(e instanceof SdsError);
        emit({ event: "error", id, message: `post ${mid}: ${String(e)}` });
      }
      if (persisted) {
        // n is used either way: wrapping the id again would be refused.
        sent = n;
        stats.delivered++; // own posts are delivered locally and count (peer contract)
        // Closed by a concurrent stop(): the next start copies it from the SDS log.
        if (log.open) insert.run(mid, id, 0, Buffer.from(content), 1);
      }
    }
    schedulePost();
  }, (0.5 + postRng()) * intervalMs);
}
schedulePost();
const statsTimer = setInterval(statsLine, statsMs);

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearTimeout(postTimer);
  clearInterval(statsTimer);
  await ch.close();
  await nats.close();
  statsLine();
  log.close();
  process.exit(0);
}
stopNow = () => void stop();
if (stopRequested) stopNow();
