// The SQLite backend (better-sqlite3): a restart restores the exact state, a batch is
// one SQLite transaction, a broken database gives PERSISTENCE.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { equals } from "@bufbuild/protobuf";
import { ChannelSnapshotSchema, ErrorCode, ReliabilityManager, unwrap } from "@sdskit/sdk";
import { SqlitePersistence } from "@sdskit/sdk/sqlite";

const enc = new TextEncoder();

test("restart with the SQLite backend restores the state exactly", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sdskit-sqlite-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "alice.db");
  let now = 1_700_000_000_000;
  const clock = (): number => now;

  let db = await SqlitePersistence.open(path);
  let alice = unwrap(await ReliabilityManager.create({ participantId: "alice", persistence: db, clock }));
  const bob = unwrap(await ReliabilityManager.create({ participantId: "bob", clock }));
  for (const id of ["a1", "a2", "a3"]) {
    const w = unwrap(await alice.wrapOutgoingMessage({ channelId: "room", messageId: id, content: enc.encode(id) }));
    unwrap(await bob.unwrapReceivedMessage({ data: w.wireBytes }));
    now += 10;
  }
  // Bob's reply acknowledges a1..a3 at alice; b2 arrives before b1 (buffered).
  const b1 = unwrap(await bob.wrapOutgoingMessage({ channelId: "room", messageId: "b1", content: enc.encode("b1") }));
  const b2 = unwrap(await bob.wrapOutgoingMessage({ channelId: "room", messageId: "b2", content: enc.encode("b2") }));
  assert.equal(unwrap(await alice.unwrapReceivedMessage({ data: b2.wireBytes, retrievalHint: enc.encode("hint-b2") })).delivered, false);
  const a4 = unwrap(await alice.wrapOutgoingMessage({ channelId: "room", messageId: "a4", content: enc.encode("a4") }));
  unwrap(await alice.unwrapReceivedMessage({ data: b1.wireBytes, retrievalHint: enc.encode("hint-b1") }));
  unwrap(await alice.wrapOutgoingMessage({ channelId: "other", messageId: "o1", content: enc.encode("o1") }));
  const before = unwrap(await alice.getSnapshot({ channelId: "room" })).snapshot;
  const beforeOther = unwrap(await alice.getSnapshot({ channelId: "other" })).snapshot;
  assert.ok(before !== undefined && beforeOther !== undefined);
  assert.deepEqual(before.log.map((m) => m.messageId), ["a1", "a2", "a3", "b1", "b2", "a4"].sort((x, y) => {
    const lx = before.log.find((m) => m.messageId === x)?.lamportTimestamp ?? 0n;
    const ly = before.log.find((m) => m.messageId === y)?.lamportTimestamp ?? 0n;
    return lx === ly ? (x < y ? -1 : 1) : lx < ly ? -1 : 1;
  }));

  // "Crash": close the manager and the database, then start over from the file.
  unwrap(await alice.close());
  db.close();
  db = await SqlitePersistence.open(path);
  alice = unwrap(await ReliabilityManager.create({ participantId: "alice", persistence: db, clock }));
  unwrap(await alice.ensureChannel({ channelId: "room" }));
  unwrap(await alice.ensureChannel({ channelId: "other" }));
  const after = unwrap(await alice.getSnapshot({ channelId: "room" })).snapshot;
  const afterOther = unwrap(await alice.getSnapshot({ channelId: "other" })).snapshot;
  assert.ok(after !== undefined && equals(ChannelSnapshotSchema, before, after), "room restored exactly");
  assert.ok(afterOther !== undefined && equals(ChannelSnapshotSchema, beforeOther, afterOther), "other restored exactly");

  // The restored manager carries on: its next message depends on the restored log, and
  // bob (who got a4 already) delivers it at once.
  unwrap(await bob.unwrapReceivedMessage({ data: a4.wireBytes }));
  const a5 = unwrap(await alice.wrapOutgoingMessage({ channelId: "room", messageId: "a5", content: enc.encode("a5") }));
  const r = unwrap(await bob.unwrapReceivedMessage({ data: a5.wireBytes }));
  assert.equal(r.delivered, true);
  assert.ok((r.lamportTimestamp ?? 0n) > (after.lamportTimestamp - 1n));

  // A broken database: every write throws inside better-sqlite3 → PERSISTENCE, rolled back.
  const snapBefore = unwrap(await alice.getSnapshot({ channelId: "room" })).snapshot;
  db.close();
  const failed = await alice.wrapOutgoingMessage({ channelId: "room", messageId: "a6", content: enc.encode("a6") });
  assert.equal(failed.ok, false);
  assert.equal(failed.error?.code, ErrorCode.PERSISTENCE);
  assert.match(failed.error?.message ?? "", /database connection is not open/);
  const snapAfter = unwrap(await alice.getSnapshot({ channelId: "room" })).snapshot;
  assert.ok(snapBefore !== undefined && snapAfter !== undefined && equals(ChannelSnapshotSchema, snapBefore, snapAfter));
  unwrap(await alice.close());
  unwrap(await bob.close());
});

test("RemoveChannel drops the channel's rows", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sdskit-sqlite-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = await SqlitePersistence.open(join(dir, "x.db"), { synchronous: "FULL" });
  const m = unwrap(await ReliabilityManager.create({ participantId: "x", persistence: db }));
  unwrap(await m.wrapOutgoingMessage({ channelId: "gone", messageId: "1", content: enc.encode("1") }));
  unwrap(await m.wrapOutgoingMessage({ channelId: "kept", messageId: "1", content: enc.encode("1") }));
  unwrap(await m.removeChannel({ channelId: "gone" }));
  const count = (ch: string): number =>
    (db.db.prepare("SELECT count(*) AS n FROM sdskit_rows WHERE channel = ?").get(ch) as { n: number }).n +
    (db.db.prepare("SELECT count(*) AS n FROM sdskit_lamport WHERE channel = ?").get(ch) as { n: number }).n;
  assert.equal(count("gone"), 0);
  assert.ok(count("kept") > 0);
  unwrap(await m.close());
  db.close();
});
