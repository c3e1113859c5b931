#!/usr/bin/env node
// Prints JSON test vectors computed by the real @waku/sds 0.0.8 package.
//
// Usage:
//   node tools/vectors/waku-sds-vectors.mjs <dir>
//   WAKU_SDS_DIR=<dir> node tools/vectors/waku-sds-vectors.mjs
//
// <dir> is either a folder into which `npm install @waku/sds@0.0.8` was run
// (so that <dir>/node_modules/@waku/sds exists) or the package folder itself.
// The package is never vendored into this repository.

import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const EXPECTED_VERSION = "0.0.8";

function locatePackage() {
  const arg = process.argv[2] ?? process.env.WAKU_SDS_DIR;
  if (!arg) {
    console.error("usage: node waku-sds-vectors.mjs <dir>   (or set WAKU_SDS_DIR)");
    process.exit(2);
  }
  const base = resolve(arg);
  for (const cand of [join(base, "node_modules", "@waku", "sds"), base]) {
    const pj = join(cand, "package.json");
    if (!existsSync(pj)) continue;
    const meta = JSON.parse(readFileSync(pj, "utf8"));
    if (meta.name === "@waku/sds") return { dir: cand, version: meta.version };
  }
  console.error(`@waku/sds not found under ${base}`);
  process.exit(2);
}

const pkg = locatePackage();
if (pkg.version !== EXPECTED_VERSION) {
  console.error(`warning: found @waku/sds ${pkg.version}, vectors are meant for ${EXPECTED_VERSION}`);
}
const distURL = (rel) => pathToFileURL(join(pkg.dir, "dist", rel)).href;

const nimPath = join(pkg.dir, "dist", "nim_hashn", "nim_hashn.mjs");
const { hashN } = await import(distURL("nim_hashn/nim_hashn.mjs"));
const { DefaultBloomFilter } = await import(distURL("bloom_filter/bloom.js"));
const { DEFAULT_BLOOM_FILTER_OPTIONS } = await import(distURL("message_channel/message_channel.js"));
const { RepairManager, DEFAULT_REPAIR_CONFIG } = await import(distURL("message_channel/repair/repair.js"));
const { hashToInteger } = await import(distURL("message_channel/repair/utils.js"));

// The raw string hash used by hashN is not exported. Load the same generated
// source as a separate module instance and additionally export the internal
// function, so the signed 32-bit value can be observed directly.
const nimSource = readFileSync(nimPath, "utf8");
const hashFnName = (nimSource.match(/function (hash__pureZhashes_u\d+)\(/) ?? [])[1];
if (!hashFnName) throw new Error("internal Nim string hash function not found in nim_hashn.mjs");
const rawMod = await import(
  "data:text/javascript;base64," +
    Buffer.from(`${nimSource}\nexport { ${hashFnName} as __rawHash };\n`).toString("base64")
);
// Mirrors the conversion done by the package's exported hashN wrapper.
const rawHash = (s) => rawMod.__rawHash(Array.from(s).map((c) => c.charCodeAt(0)));

const sha256hex = (s) => createHash("sha256").update(s).digest("hex");
const hex = (u8) => Buffer.from(u8).toString("hex");

function setBits(bytes) {
  // Serialized bit index = byteIndex*8 + bit, bit 0 = least significant bit.
  const out = [];
  for (let i = 0; i < bytes.length; i++) {
    for (let b = 0; b < 8; b++) if (bytes[i] & (1 << b)) out.push(i * 8 + b);
  }
  return out;
}

const asciiStrings = [
  "", "a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh", "abcdefghi",
  "dummy", "msg1", "msg1 b", "msg2", "alice", "bob", "carol", "m1", "alicem1", "bobm1",
  "a b", " b", "0123456789", "alphabet", "Amazon Redshift", "hello world",
  "Hello, World!", "The quick brown fox jumps over the lazy dog",
  "~!@#$%^&*()_+`-=[]{}|;':\",./<>?", "\t\n\r\u0000\u007f",
  "x".repeat(101),
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
  sha256hex("1"), sha256hex("2"), sha256hex("hello"), sha256hex("1").toUpperCase(),
  sha256hex("1") + " b", "0x" + sha256hex("3"),
  "participant-" + "0".repeat(30), "\u007f\u007e\u007d",
];

const nonASCIIStrings = [
  "é", "café", "\u00ff\u0100", "€", "日本語", "日本語テキスト", "😀", "a😀b", "Ünïcödé strîng", "ñandú🦤",
];

function hashVector(s) {
  return {
    s,
    hash: rawHash(s),
    // Exported hashN(s, 0, 2^31) = |hash| mod 2^31, as a cross-check.
    hashN0_2p31: hashN(s, 0, 2 ** 31),
    hashB: rawHash(s + " b"),
  };
}

// ---- bloom filters -------------------------------------------------------

function bloomVector(name, options, items, probes) {
  const f = new DefaultBloomFilter(options);
  for (const it of items) f.insert(it);
  const bytes = f.toBytes();
  const v = {
    name,
    options,
    k: f.kHashes,
    totalBits: f.totalBits,
    words: f.data.length,
    byteLength: bytes.length,
    items: items.map((it) => ({ item: it, positions: f.computeHashes(it) })),
    probes: probes.map((p) => ({ item: p, positions: f.computeHashes(p), lookup: f.lookup(p) })),
    setBits: setBits(bytes),
    sha256: createHash("sha256").update(bytes).digest("hex"),
  };
  if (bytes.length <= 256) v.hex = hex(bytes);
  return v;
}

const bloomItems = ["msg1", "msg2", "alice", "", sha256hex("1"), sha256hex("2"), "Hello, World!"];
const bloomProbes = ["msg3", "bob", sha256hex("3"), "x".repeat(101)];

const blooms = [
  bloomVector("default", { ...DEFAULT_BLOOM_FILTER_OPTIONS }, bloomItems, bloomProbes),
  bloomVector("default-empty", { ...DEFAULT_BLOOM_FILTER_OPTIONS }, [], ["msg1"]),
  bloomVector("small-c20-e0.01", { capacity: 20, errorRate: 0.01 }, bloomItems, bloomProbes),
  bloomVector("small-c10-e0.001", { capacity: 10, errorRate: 0.001 }, ["a", "b", "c"], ["d", "e"]),
  bloomVector("k4-c50-e0.01", { capacity: 50, errorRate: 0.01, kHashes: 4 }, bloomItems, bloomProbes),
  bloomVector("k3-force8-c16", { capacity: 16, errorRate: 0.05, kHashes: 3, forceNBitsPerElem: 8 }, bloomItems, bloomProbes),
];

// Behaviour of fromBytes with default options for inputs of various lengths.
const defaultBytes = new DefaultBloomFilter(DEFAULT_BLOOM_FILTER_OPTIONS).toBytes().length;
const fromBytes = [0, 8, defaultBytes - 1, defaultBytes, defaultBytes + 1, defaultBytes + 64].map((n) => {
  try {
    const g = DefaultBloomFilter.fromBytes(new Uint8Array(n), DEFAULT_BLOOM_FILTER_OPTIONS);
    return { length: n, ok: true, words: g.data.length };
  } catch (e) {
    return { length: n, ok: false, error: `${e.constructor.name}: ${e.message}` };
  }
});

// ---- SDS-R ----------------------------------------------------------------

const people = ["alice", "bob", "carol", "dave", "", sha256hex("peer-1")];
const messages = ["m1", "msg1", sha256hex("1"), sha256hex("payload")];
const configs = [
  { ...DEFAULT_REPAIR_CONFIG, numResponseGroups: 1 },
  { tMin: 30000, tMax: 300000, numResponseGroups: 10 },
  { tMin: 0, tMax: 1000, numResponseGroups: 2 },
  { tMin: 5000, tMax: 5001, numResponseGroups: 3 },
  { tMin: 1, tMax: 7919, numResponseGroups: 128 },
  { tMin: 60000, tMax: 30000, numResponseGroups: 0 }, // tMax < tMin
  { tMin: 0, tMax: 0, numResponseGroups: 1 }, // zero ranges
];

function attempt(fn) {
  try {
    return { value: fn() };
  } catch (e) {
    return { error: `${e.constructor.name}: ${e.message}` };
  }
}

const prefixes = [...new Set([...asciiStrings, ...nonASCIIStrings, ...people, ...messages])].map((s) => ({
  s,
  prefix: hashToInteger(s).toString(),
}));

const repair = [];
for (const cfg of configs) {
  for (const p of people) {
    for (const s of people) {
      for (const m of messages) {
        // Keep the file reasonably small: full cross product only for the
        // first two configs, a diagonal-ish subset for the rest.
        if (cfg !== configs[0] && cfg !== configs[1] && (p.length + s.length + m.length) % 3 !== 0) continue;
        const rm = new RepairManager(p, { ...cfg });
        const tReq = attempt(() => rm.calculateTReq(m, 0));
        const tResp = attempt(() => rm.calculateTResp(s, m, 0));
        const group = attempt(() => rm.isInResponseGroup(s, m));
        repair.push({
          participant: p,
          sender: s,
          message: m,
          tMin: cfg.tMin,
          tMax: cfg.tMax,
          numGroups: cfg.numResponseGroups,
          tReq: tReq.value ?? null,
          tReqError: tReq.error,
          tResp: tResp.value ?? null,
          tRespError: tResp.error,
          inGroup: group.value ?? null,
          inGroupError: group.error,
        });
      }
    }
  }
}

const out = {
  package: "@waku/sds",
  version: pkg.version,
  notes: [
    "hash: signed 32-bit Nim murmur hash of the string as seen by nim_hashn.mjs (one element per code point, value = first UTF-16 code unit)",
    "hashN0_2p31: exported hashN(s, 0, 2^31)",
    "bloom setBits: byteIndex*8 + bit (bit 0 = LSB) of toBytes()",
    "sha256 prefixes are decimal strings of uint64",
    "repair times are offsets in ms (currentTime = 0)",
  ],
  hashes: asciiStrings.map(hashVector),
  nonASCII: nonASCIIStrings.map(hashVector),
  bloom: blooms,
  fromBytes,
  sha256Prefix: prefixes,
  repair,
};

process.stdout.write(JSON.stringify(out, null, 1) + "\n");
