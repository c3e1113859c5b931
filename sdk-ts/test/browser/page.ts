// The page of the Chromium test (browser.test.ts): two managers with the IndexedDB
// backend exchange messages; after a reload, their state comes back from IndexedDB.
// Runs in the browser only (the SDK is resolved through the page's import map).

import { ReliabilityManager, loadCore, unwrap } from "@sdskit/sdk";
import { IndexedDbPersistence } from "@sdskit/sdk/indexeddb";

/** What the page reports on window.__sdskit. */
export interface PageReport {
  phase: number;
  error?: string;
  state?: Record<string, { log: string[]; outgoing: string[]; incoming: string[]; lamport: string }>;
  delivered?: string[];
  acknowledged?: string[];
  readwriteTransactions?: number;
  batches?: number;
  continued?: boolean;
  /** Two managers without persistence: their events, and the calls that ran synchronously. */
  syncPath?: { events: string[]; syncCalls: number };
}

declare global {
  interface Window {
    __sdskit?: PageReport;
  }
}

const enc = new TextEncoder();

// Count readwrite IndexedDB transactions: one per batch is the backend's promise.
let readwrite = 0;
const open = IDBDatabase.prototype.transaction;
IDBDatabase.prototype.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase["transaction"]>): IDBTransaction {
  if (args[1] === "readwrite") {
    readwrite++;
  }
  return open.apply(this, args);
} as IDBDatabase["transaction"];

async function summary(m: ReliabilityManager): Promise<{ log: string[]; outgoing: string[]; incoming: string[]; lamport: string }> {
  const s = unwrap(await m.getSnapshot({ channelId: "room" })).snapshot;
  return {
    log: s?.log.map((x) => x.messageId) ?? [],
    outgoing: s?.outgoing.map((x) => x.message?.messageId ?? "") ?? [],
    incoming: s?.incoming.map((x) => x.message?.messageId ?? "") ?? [],
    lamport: String(s?.lamportTimestamp ?? 0n),
  };
}

// Managers without a persistence backend run their calls through the core's synchronous
// WebAssembly export: the same exchange must work there in a browser.
async function syncPath(): Promise<{ events: string[]; syncCalls: number }> {
  const core = await loadCore();
  const before = core.testing.syncCalls();
  const carol = unwrap(await ReliabilityManager.create({ participantId: "carol" }));
  const dave = unwrap(await ReliabilityManager.create({ participantId: "dave" }));
  const events: string[] = [];
  dave.events.on("messageReady", (e) => events.push(`ready:${e.messageId}`));
  carol.events.on("messageAcknowledged", (e) => events.push(`acked:${e.messageId}`));
  const c1 = unwrap(await carol.wrapOutgoingMessage({ channelId: "room", messageId: "c1", content: enc.encode("c1") }));
  unwrap(await dave.unwrapReceivedMessage({ data: c1.wireBytes }));
  const d1 = unwrap(await dave.wrapOutgoingMessage({ channelId: "room", messageId: "d1", content: enc.encode("d1") }));
  unwrap(await carol.unwrapReceivedMessage({ data: d1.wireBytes }));
  const syncCalls = core.testing.syncCalls() - before;
  unwrap(await carol.close());
  unwrap(await dave.close());
  return { events, syncCalls };
}

async function run(): Promise<PageReport> {
  const phase = Number(sessionStorage.getItem("phase") ?? "1");
  const dbA = await IndexedDbPersistence.open("sdskit-test-alice");
  const dbB = await IndexedDbPersistence.open("sdskit-test-bob");
  const alice = unwrap(await ReliabilityManager.create({ participantId: "alice", persistence: dbA }));
  const bob = unwrap(await ReliabilityManager.create({ participantId: "bob", persistence: dbB }));
  const delivered: string[] = [];
  const acknowledged: string[] = [];
  bob.events.on("messageReady", (e) => delivered.push(`bob:${e.messageId}`));
  alice.events.on("messageReady", (e) => delivered.push(`alice:${e.messageId}`));
  alice.events.on("messageAcknowledged", (e) => acknowledged.push(e.messageId));
  const report: PageReport = { phase };
  readwrite = 0;
  let batches = 0;

  if (phase === 1) {
    for (const id of ["a1", "a2", "a3"]) {
      const w = unwrap(await alice.wrapOutgoingMessage({ channelId: "room", messageId: id, content: enc.encode(`hello ${id}`) }));
      unwrap(await bob.unwrapReceivedMessage({ data: w.wireBytes }));
      batches += 2;
    }
    const b1 = unwrap(await bob.wrapOutgoingMessage({ channelId: "room", messageId: "b1", content: enc.encode("hi alice") }));
    unwrap(await alice.unwrapReceivedMessage({ data: b1.wireBytes }));
    batches += 2;
    // b3 arrives before b2 at alice: it waits in her incoming buffer across the reload.
    const b2 = unwrap(await bob.wrapOutgoingMessage({ channelId: "room", messageId: "b2", content: enc.encode("two") }));
    const b3 = unwrap(await bob.wrapOutgoingMessage({ channelId: "room", messageId: "b3", content: enc.encode("three") }));
    unwrap(await alice.unwrapReceivedMessage({ data: b3.wireBytes }));
    batches += 3;
    sessionStorage.setItem("b2", btoa(String.fromCharCode(...b2.wireBytes)));
    sessionStorage.setItem("phase", "2");
    report.syncPath = await syncPath();
  } else {
    unwrap(await alice.ensureChannel({ channelId: "room" }));
    unwrap(await bob.ensureChannel({ channelId: "room" }));
  }
  report.state = { alice: await summary(alice), bob: await summary(bob) };

  if (phase === 2) {
    // The restored managers carry on: b2 releases the buffered b3 at alice, and alice's
    // next message depends on her restored log.
    const b2 = Uint8Array.from(atob(sessionStorage.getItem("b2") ?? ""), (c) => c.charCodeAt(0));
    unwrap(await alice.unwrapReceivedMessage({ data: b2 }));
    const a4 = unwrap(await alice.wrapOutgoingMessage({ channelId: "room", messageId: "a4", content: enc.encode("after reload") }));
    const r = unwrap(await bob.unwrapReceivedMessage({ data: a4.wireBytes }));
    report.continued = r.delivered;
    batches += 3;
    sessionStorage.clear();
  }
  report.delivered = delivered;
  report.acknowledged = acknowledged;
  report.readwriteTransactions = readwrite;
  report.batches = batches;
  unwrap(await alice.close());
  unwrap(await bob.close());
  dbA.close();
  dbB.close();
  return report;
}

run().then(
  (r) => {
    window.__sdskit = r;
  },
  (e: unknown) => {
    window.__sdskit = { phase: -1, error: e instanceof Error ? `${e.message}\n${e.stack ?? ""}` : String(e) };
  },
);
