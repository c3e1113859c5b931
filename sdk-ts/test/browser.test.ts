// A real browser: Debian's Chromium (/usr/bin/chromium, or $CHROMIUM), driven headless
// by playwright-core (never a downloaded browser), loads a page that uses the built
// package with the IndexedDB backend: two managers exchange messages, the page reloads,
// and the state comes back from IndexedDB.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import type { PageReport } from "./browser/page.js";

const root = fileURLToPath(new URL("../../", import.meta.url)); // sdk-ts/
const executablePath = process.env["CHROMIUM"] ?? "/usr/bin/chromium";

const importMap = {
  imports: {
    "@sdskit/sdk": "/dist/index.js",
    "@sdskit/sdk/indexeddb": "/dist/backends/indexeddb.js",
    "@bufbuild/protobuf": "/node_modules/@bufbuild/protobuf/dist/esm/index.js",
    "@bufbuild/protobuf/codegenv2": "/node_modules/@bufbuild/protobuf/dist/esm/codegenv2/index.js",
    "@bufbuild/protobuf/wkt": "/node_modules/@bufbuild/protobuf/dist/esm/wkt/index.js",
    "@bufbuild/protobuf/wire": "/node_modules/@bufbuild/protobuf/dist/esm/wire/index.js",
  },
};

const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>sdskit IndexedDB</title>
<script type="importmap">${JSON.stringify(importMap)}</script>
<script type="module" src="/build/test/browser/page.js"></script>
</head><body>sdskit</body></html>`;

const types: Record<string, string> = {
  ".js": "text/javascript",
  ".wasm": "application/wasm",
  ".html": "text/html",
  ".json": "application/json",
};

const notFound: string[] = [];

/** Serves the page, the built package and @bufbuild/protobuf from sdk-ts/. */
async function serve(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (path === "/favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    if (path === "/" || path === "/index.html") {
      res.writeHead(200, { "content-type": "text/html" }).end(page);
      return;
    }
    const file = normalize(join(root, path));
    const allowed = ["dist/", "build/test/browser/", "node_modules/@bufbuild/protobuf/"].some((p) => file.startsWith(join(root, p)));
    if (!allowed || !existsSync(file)) {
      notFound.push(path);
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/index.html`, close: () => new Promise((r) => server.close(() => r())) };
}

test("Chromium: two managers over IndexedDB, state restored after a reload", async (t) => {
  assert.ok(existsSync(executablePath), `${executablePath} is missing: install Debian's chromium (apt-get install chromium) or set CHROMIUM`);
  const server = await serve();
  const profile = mkdtempSync(join(tmpdir(), "sdskit-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  t.after(async () => {
    await context.close();
    await server.close();
    rmSync(profile, { recursive: true, force: true });
  });
  const tab = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  tab.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  tab.on("console", (m) => {
    if (m.type() === "error") {
      problems.push(`console error: ${m.text()}`);
    }
  });
  const version = await tab.evaluate(() => navigator.userAgent);

  const report = async (): Promise<PageReport> => {
    await tab.waitForFunction(() => window.__sdskit !== undefined, undefined, { timeout: 60_000 });
    const r = await tab.evaluate(() => window.__sdskit);
    assert.ok(r !== undefined);
    assert.equal(r.error, undefined, r.error);
    return r;
  };

  await tab.goto(server.url);
  const first = await report();
  assert.equal(first.phase, 1);
  assert.deepEqual(first.delivered, ["bob:a1", "bob:a2", "bob:a3", "alice:b1"]);
  assert.deepEqual(first.state?.["bob"]?.log, ["a1", "a2", "a3", "b1", "b2", "b3"]);
  assert.deepEqual(first.state?.["alice"]?.incoming, ["b3"], "b3 waits for b2");
  assert.ok((first.acknowledged ?? []).length > 0, "bob's reply acknowledged alice's messages");
  assert.equal(first.readwriteTransactions, first.batches, "one IndexedDB transaction per batch");
  assert.deepEqual(first.syncPath?.events, ["ready:c1", "acked:c1"], "managers without persistence exchange on the synchronous path");
  assert.equal(first.syncPath?.syncCalls, 4, "their four calls ran through the synchronous export");

  await tab.reload();
  const second = await report();
  assert.equal(second.phase, 2);
  assert.deepEqual(second.state, first.state, "the state came back from IndexedDB exactly");
  assert.deepEqual(second.delivered, ["alice:b2", "alice:b3", "bob:a4"]);
  assert.equal(second.continued, true, "a message sent after the reload is delivered at once");
  assert.equal(second.readwriteTransactions, second.batches, "one IndexedDB transaction per batch");
  assert.deepEqual(problems, [], `not found: ${notFound.join(", ")}`);

  const line = `Chromium ran: ${version.match(/Chrome\/[\d.]+/)?.[0] ?? version} (${executablePath}, headless) — IndexedDB state restored after reload`;
  t.diagnostic(line);
  console.log(line);
});
