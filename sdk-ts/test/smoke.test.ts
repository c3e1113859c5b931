import { test } from "node:test";
import assert from "node:assert/strict";
import { ReliabilityManager, unwrap, MessageKind } from "@sdskit/sdk";

test("two managers exchange a message and acknowledge it", async () => {
  const alice = unwrap(await ReliabilityManager.create({ participantId: "alice" }));
  const bob = unwrap(await ReliabilityManager.create({ participantId: "bob" }));
  const ready: string[] = [];
  bob.events.on("messageReady", (e) => ready.push(e.messageId));
  const w = unwrap(await alice.wrapOutgoingMessage({ channelId: "c", messageId: "m1", content: new TextEncoder().encode("hi") }));
  const r = unwrap(await bob.unwrapReceivedMessage({ data: w.wireBytes }));
  assert.equal(r.kind, MessageKind.CONTENT);
  assert.equal(r.delivered, true);
  assert.deepEqual(ready, ["m1"]);
  const acked = alice.events.next("messageAcknowledged");
  const reply = unwrap(await bob.wrapOutgoingMessage({ channelId: "c", messageId: "m2", content: new TextEncoder().encode("yo") }));
  unwrap(await alice.unwrapReceivedMessage({ data: reply.wireBytes }));
  assert.equal((await acked).messageId, "m1");
  unwrap(await alice.close());
  unwrap(await bob.close());
});
