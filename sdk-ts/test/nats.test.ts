import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { ReliableChannel } from "@sdskit/sdk";
import { NatsTransport } from "@sdskit/sdk/nats";

// The tests that need a server run against NATS_URL (e.g. nats://127.0.0.1:4222; the Go
// nats-server: `go run github.com/nats-io/nats-server/v2@v2.15.2 -a 127.0.0.1 -p 4222`)
// and are skipped without it. The Go orchestrator's tests (make demo) exercise this
// transport end to end as well.
const url = process.env["NATS_URL"];
const skip = url === undefined || url === "" ? "NATS_URL is not set: no NATS server to test against" : false;

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("NatsTransport: an empty subject is refused before connecting", async () => {
  await assert.rejects(NatsTransport.connect("nats://127.0.0.1:1", ""), /empty subject/);
});

test("NatsTransport: connecting to a port nobody serves rejects", async () => {
  // A port we held and released: nothing listens there.
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  await assert.rejects(NatsTransport.connect(`nats://127.0.0.1:${port}`, "s", { timeout: 2000, maxReconnectAttempts: 0 }));
});

test("NatsTransport: publish/subscribe without echo, unsubscribe, idempotent close", { skip }, async () => {
  const subject = `sdskit.test.${process.pid}.${Date.now()}`;
  const a = await NatsTransport.connect(url!, subject);
  const b = await NatsTransport.connect(url!, subject);
  const gotA: string[] = [];
  const gotB: string[] = [];
  const stopA = await a.subscribe((p) => void gotA.push(dec(p)));
  const stopB = await b.subscribe((p) => void gotB.push(dec(p)));
  await a.publish(enc("from a"));
  await b.publish(enc("from b"));
  await waitFor(() => gotA.length === 1 && gotB.length === 1, "one payload each");
  assert.deepEqual(gotA, ["from b"], "a received its own publication (echo) or lost b's");
  assert.deepEqual(gotB, ["from a"]);
  await stopB();
  await stopB(); // a second unsubscribe is harmless
  await a.publish(enc("after b left"));
  await b.publish(enc("b still publishes"));
  await waitFor(() => gotA.length === 2, "a to keep receiving");
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(gotB, ["from a"], "b received after unsubscribing");
  await a.close();
  await a.close();
  await stopA(); // after close: returns once the subscription ended
  await assert.rejects(a.publish(enc("closed")));
  await b.close();
});

test("NatsTransport: a throwing handler keeps the subscription; unsubscribe reports it", { skip }, async () => {
  const subject = `sdskit.test.throw.${process.pid}.${Date.now()}`;
  const a = await NatsTransport.connect(url!, subject);
  const b = await NatsTransport.connect(url!, subject);
  const got: string[] = [];
  const stop = await b.subscribe((p) => {
    got.push(dec(p));
    if (got.length === 1) throw new Error("handler failed");
  });
  await a.publish(enc("one"));
  await a.publish(enc("two"));
  await waitFor(() => got.length === 2, "the payload after the failing one");
  assert.deepEqual(got, ["one", "two"]);
  await assert.rejects(stop(), /handler failed/);
  await a.close();
  await b.close();
});

test("NatsTransport: two ReliableChannels over a real NATS server", { skip }, async () => {
  const subject = `sdskit.test.rc.${process.pid}.${Date.now()}`;
  const ta = await NatsTransport.connect(url!, subject);
  const tb = await NatsTransport.connect(url!, subject);
  const got: string[] = [];
  const acked: string[] = [];
  const cfg = { resendIntervalMs: 200n, syncIntervalMs: 200n, sweepIntervalMs: 20n };
  const a = await ReliableChannel.open({ participantId: "alice", channelId: "room", transport: ta, persistence: "memory", config: cfg, onAcknowledged: (id) => acked.push(id) });
  const b = await ReliableChannel.open({ participantId: "bob", channelId: "room", transport: tb, persistence: "memory", config: cfg, onMessage: (m) => got.push(dec(m.content)) });
  for (let i = 0; i < 5; i++) await a.send(enc(`m${i}`), `a-${i}`);
  await waitFor(() => got.length === 5, "bob to receive five messages");
  assert.deepEqual(got, ["m0", "m1", "m2", "m3", "m4"]);
  await b.send(enc("reply"), "b-0"); // carries bob's causal history: acknowledges alice's
  await waitFor(() => acked.length === 5, "alice to see her five messages acknowledged");
  await a.close();
  await b.close();
  await ta.close();
  await tb.close();
});
