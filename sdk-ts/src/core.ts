// Loading the sdskit core (Go compiled to WebAssembly, GOOS=js) in Node 20+ and in
// browsers. The browser path uses only fetch and WebAssembly; Node's fs is imported
// dynamically, and only for file: URLs.

import { goClass } from "./wasm_exec.js";
import {
  ABI_VERSION,
  EventSinkServiceName,
  IDL_HASH,
  PersistenceServiceName,
  RetrievalHintProviderServiceName,
  SdsError,
  encodeResultError,
} from "./gen/sdskit/v1/api_sdk.js";
import { ErrorCode } from "./gen/sdskit/v1/errors_pb.js";

/** The host side of one manager, as the core's create() takes it. */
export interface CoreHost {
  /** The host implements Persistence (CreateRequest selects host persistence). */
  persistence?: boolean;
  /** It also implements the optional Transactions capability. */
  transactions?: boolean;
  /**
   * The core sends each persistence batch as one call: method id 0 of the Persistence
   * service, with a PersistenceBatch, answered with Result{value: Empty}.
   */
  batches?: boolean;
  /** It implements RetrievalHintProvider. */
  hints?: boolean;
  /** It implements EventSink. */
  events?: boolean;
  /**
   * Calls one method of a host service: the service's full name, the method id and
   * the encoded request in, encoded Result bytes out (undefined: success without a
   * value), at once or as a Promise.
   */
  call?: (service: string, methodId: number, request: Uint8Array) => Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** Replaces the wall clock (Unix milliseconds); tests and simulations. */
  nowMs?: () => number;
}

/** What create() resolves with: the manager's handle (0 on failure) and a Result. */
export interface CoreCreated {
  handle: number;
  result: Uint8Array;
}

/**
 * Core is the object the WebAssembly glue (core/wasm) exports. Every method returns a
 * Promise that never rejects: failures are errors inside the Result bytes.
 */
export interface Core {
  readonly abiVersion: number;
  readonly idlHash: string;
  create(createRequest: Uint8Array, host?: CoreHost): Promise<CoreCreated>;
  call(handle: number, methodId: number, request: Uint8Array): Promise<Uint8Array>;
  close(handle: number): Promise<Uint8Array>;
  /** The number of live managers. */
  live(): Promise<number>;
  /** Helpers for conformance runners and diagnostics. */
  readonly testing: {
    /** A spec-profile bloom filter holding ids. */
    bloom(ids: readonly string[], capacity?: number, errorRate?: number): Promise<Uint8Array>;
    /** Whether a spec-profile bloom filter holds id. */
    bloomContains(bloom: Uint8Array, id: string, capacity?: number, errorRate?: number): Promise<boolean>;
    /** How many calls ran through the module's synchronous export (core/wasm: "Synchronous calls"). */
    syncCalls(): number;
  };
}

/** Where the core's WebAssembly comes from. */
export type WasmSource = URL | string | ArrayBuffer | ArrayBufferView | Response | WebAssembly.Module;

/** LoadOptions says how to load the core. */
export interface LoadOptions {
  /**
   * The module: a URL (file: URLs are read with Node's fs), the bytes, a fetch Response
   * or a compiled module. Default: sdskit.wasm next to this file, which bundlers that
   * understand `new URL("…", import.meta.url)` pick up.
   */
  wasm?: WasmSource | PromiseLike<WasmSource>;
  /**
   * Use the glue's fast path (default true): Result and request bytes are copied straight
   * through the module's memory instead of crossing syscall/js as Uint8Arrays. false is
   * for testing the plain path.
   */
  fast?: boolean;
}

/** CoreLoadError is thrown when the core cannot be loaded or does not match the SDK. */
export class CoreLoadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CoreLoadError";
  }
}

/** The default location of the module, next to this file. */
export function defaultWasmUrl(): URL {
  return new URL("./sdskit.wasm", import.meta.url);
}

let shared: Promise<Core> | undefined;

/**
 * loadCore loads and starts the core, checking that it speaks this SDK's ABI version
 * and was built from the same IDL (CoreLoadError otherwise). Without options the core
 * is loaded once and shared by every manager; with options each call starts its own.
 */
export function loadCore(options: LoadOptions = {}): Promise<Core> {
  if (options.wasm !== undefined || options.fast === false) {
    return startCore(options.wasm ?? defaultWasmUrl(), options.fast ?? true);
  }
  if (shared === undefined) {
    const p = startCore(defaultWasmUrl(), true);
    p.catch(() => {
      if (shared === p) {
        shared = undefined; // let a later call retry
      }
    });
    shared = p;
  }
  return shared;
}

/**
 * checkCore throws a CoreLoadError unless core speaks the expected ABI version and
 * was built from the expected IDL (by default, the ones this SDK was generated from).
 */
export function checkCore(core: Pick<Core, "abiVersion" | "idlHash">, expected = { abiVersion: ABI_VERSION, idlHash: IDL_HASH }): void {
  if (core.abiVersion !== expected.abiVersion || core.idlHash !== expected.idlHash) {
    throw new CoreLoadError(
      `sdskit: the core WebAssembly module does not match this SDK: it speaks ABI version ${String(core.abiVersion)} ` +
        `and was built from IDL ${String(core.idlHash)}, but the SDK was generated for ABI version ${expected.abiVersion} ` +
        `and IDL ${expected.idlHash}. Use the sdskit.wasm shipped with this package version ` +
        "(rebuild both with `make sdk-ts` after changing the IDL).",
    );
  }
}

async function startCore(source: WasmSource | PromiseLike<WasmSource>, fast: boolean): Promise<Core> {
  // wasm_exec.js runs against a private scope: its polyfills (fs, process, path) and the
  // ready callback never touch the real globalThis. Accessors of the real global that
  // check their receiver (crypto, performance in browsers) are copied as values.
  const scope: Record<string, unknown> = Object.create(globalThis, {
    crypto: { value: globalThis.crypto, writable: true, configurable: true },
    performance: { value: globalThis.performance, writable: true, configurable: true },
  }) as Record<string, unknown>;
  const Go = goClass(scope);
  const go = new Go();
  const readyName = "__sdskitReady";
  const helperName = "__sdskitFast";
  const ready = new Promise<RawCore>((resolve) => {
    scope[readyName] = resolve;
  });
  go.argv = fast ? ["sdskit", readyName, helperName] : ["sdskit", readyName];
  let instance: WebAssembly.Instance;
  try {
    instance = await instantiate(await source, go.importObject);
  } catch (e) {
    throw new CoreLoadError(`sdskit: cannot load the core WebAssembly module: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  const mem = instance.exports["mem"];
  if (!(mem instanceof WebAssembly.Memory)) {
    throw new CoreLoadError("sdskit: the core WebAssembly module exports no memory");
  }
  const gate: Gate = { depth: 0 };
  if (fast) {
    scope[helperName] = fastHelper(mem, gate);
  }
  const exited = go.run(instance).then(() => {
    throw new CoreLoadError("sdskit: the core exited during startup");
  });
  const raw = await Promise.race([ready, exited]);
  delete scope[readyName];
  delete scope[helperName];
  checkCore(raw);
  const callSync = instance.exports["sdskitCallSync"];
  return wrapRaw(raw, mem, gate, fast && typeof callSync === "function" ? (callSync as SyncCall) : undefined);
}

/** Gate counts the module's calls into JavaScript in progress (host calls, events). */
interface Gate {
  depth: number;
}

/** core/wasm's sdskitCallSync export: Result length, or -1 for "use call()". */
type SyncCall = (handle: number, methodId: number, requestLength: number) => number;

/** The object core/wasm hands over: Core plus its staging buffer. */
interface RawCore extends Omit<Core, "call" | "testing"> {
  readonly testing: Omit<Core["testing"], "syncCalls">;
  readonly fast: boolean;
  readonly stageAddr: number;
  readonly stageSize: number;
  readonly syncResultAddr?: number;
  readonly syncSeqAddr?: number;
  call(handle: number, methodId: number, request: Uint8Array | number): Promise<Uint8Array>;
}

const services = [PersistenceServiceName, RetrievalHintProviderServiceName, EventSinkServiceName];

/**
 * fastHelper is the loader side of core/wasm's fast path: the Result bytes of a call and
 * the request of a host call are copied straight out of the module's memory, so that no
 * Uint8Array crosses syscall/js.
 */
function fastHelper(mem: WebAssembly.Memory, gate: Gate): object {
  const pending = new Map<number, (result: Uint8Array) => void>();
  return {
    promise(id: number): Promise<Uint8Array> {
      return new Promise<Uint8Array>((resolve) => pending.set(id, resolve));
    },
    settle(id: number, ptr: number, len: number): void {
      const resolve = pending.get(id);
      pending.delete(id);
      resolve?.(new Uint8Array(mem.buffer, ptr, len).slice());
    },
    host(fn: NonNullable<CoreHost["call"]>, service: number, methodId: number, ptr: number, len: number): unknown {
      gate.depth++;
      try {
        return fn(services[service] ?? "", methodId, new Uint8Array(mem.buffer, ptr, len).slice());
      } finally {
        gate.depth--;
      }
    },
  };
}

/**
 * wrapRaw writes requests into the core's staging buffer instead of passing them as
 * Uint8Arrays, and runs the calls of managers without async host services through the
 * synchronous export when the module has it (core/wasm package doc: "Synchronous calls").
 */
function wrapRaw(raw: RawCore, mem: WebAssembly.Memory, gate: Gate, callSync?: SyncCall): Core {
  const { fast, stageAddr, stageSize, syncResultAddr, syncSeqAddr } = raw;
  let sync = callSync !== undefined && typeof syncResultAddr === "number" && typeof syncSeqAddr === "number" ? callSync : undefined;
  // The host functions of the managers, for the events a synchronous call queues.
  const hosts = new Map<number, NonNullable<CoreHost["call"]>>();
  let syncCalls = 0;
  const core: Core = {
    abiVersion: raw.abiVersion,
    idlHash: raw.idlHash,
    testing: { bloom: raw.testing.bloom, bloomContains: raw.testing.bloomContains, syncCalls: () => syncCalls },
    async create(createRequest, host) {
      const created = await raw.create(createRequest, host);
      if (created.handle !== 0 && typeof host?.call === "function") {
        hosts.set(created.handle, host.call);
      }
      return created;
    },
    call(handle, methodId, request) {
      if (gate.depth > 0) {
        // Called from an event listener or host function while the module runs: the
        // synchronous export must not be re-entered, so the call runs right after.
        return Promise.resolve().then(() => core.call(handle, methodId, request));
      }
      if (fast && request instanceof Uint8Array && request.length <= stageSize) {
        new Uint8Array(mem.buffer, stageAddr, request.length).set(request);
        if (sync !== undefined && handle <= 0x7fffffff) {
          const seq = new Uint32Array(mem.buffer, syncSeqAddr, 1)[0] ?? 0;
          let n: number;
          gate.depth++;
          try {
            n = sync(handle, methodId, request.length);
          } finally {
            gate.depth--;
          }
          if (n >= 0) {
            if (new Uint32Array(mem.buffer, syncSeqAddr, 1)[0] !== ((seq + 1) >>> 0)) {
              sync = undefined; // never again: the module did not finish the call
              return Promise.resolve(encodeResultError(new SdsError(ErrorCode.INTERNAL, "the core did not complete a synchronous call", "Call")));
            }
            syncCalls++;
            const [ptr = 0, len = 0, evPtr = 0, evLen = 0] = new Uint32Array(mem.buffer, syncResultAddr, 4);
            const result = new Uint8Array(mem.buffer, ptr, len).slice();
            if (evLen > 0) {
              deliverQueued(hosts.get(handle), new Uint8Array(mem.buffer, evPtr, evLen).slice(), gate);
            }
            return Promise.resolve(result);
          }
        }
        return raw.call(handle, methodId, request.length);
      }
      return raw.call(handle, methodId, request);
    },
    close(handle) {
      hosts.delete(handle);
      return raw.close(handle);
    },
    live: () => raw.live(),
  };
  return core;
}

/**
 * deliverQueued hands the event-sink calls a synchronous call queued, in order, to the
 * manager's host function (records: method id and length as little-endian uint32, then
 * the request). They are notifications: answers and throws are ignored, as the core
 * ignores a failing event sink.
 */
function deliverQueued(call: NonNullable<CoreHost["call"]> | undefined, queue: Uint8Array, gate: Gate): void {
  if (call === undefined) {
    return;
  }
  const view = new DataView(queue.buffer, queue.byteOffset, queue.byteLength);
  gate.depth++;
  try {
    for (let at = 0; at + 8 <= queue.length; ) {
      const methodId = view.getUint32(at, true);
      const len = view.getUint32(at + 4, true);
      const request = queue.subarray(at + 8, at + 8 + len);
      at += 8 + len;
      try {
        call(EventSinkServiceName, methodId, request);
      } catch {
        // a notification: see the doc comment
      }
    }
  } finally {
    gate.depth--;
  }
}

async function instantiate(src: WasmSource, imports: WebAssembly.Imports): Promise<WebAssembly.Instance> {
  if (src instanceof WebAssembly.Module) {
    return WebAssembly.instantiate(src, imports);
  }
  if (src instanceof ArrayBuffer || ArrayBuffer.isView(src)) {
    return (await WebAssembly.instantiate(src as BufferSource, imports)).instance;
  }
  if (isResponse(src)) {
    return instantiateResponse(src, imports);
  }
  const url = typeof src === "string" ? new URL(src, baseUrl()) : src;
  if (url.protocol === "file:") {
    const bytes = await readFileUrl(url);
    return (await WebAssembly.instantiate(bytes as BufferSource, imports)).instance;
  }
  return instantiateResponse(await fetch(url), imports);
}

async function instantiateResponse(resp: Response, imports: WebAssembly.Imports): Promise<WebAssembly.Instance> {
  if (!resp.ok) {
    throw new Error(`fetching ${resp.url}: HTTP ${resp.status}`);
  }
  const type = resp.headers.get("content-type") ?? "";
  if (typeof WebAssembly.instantiateStreaming === "function" && type.startsWith("application/wasm")) {
    return (await WebAssembly.instantiateStreaming(resp, imports)).instance;
  }
  return (await WebAssembly.instantiate(await resp.arrayBuffer(), imports)).instance;
}

function isResponse(v: unknown): v is Response {
  return typeof Response !== "undefined" && v instanceof Response;
}

function baseUrl(): string {
  const loc = (globalThis as { location?: { href?: string } }).location;
  return loc?.href ?? import.meta.url;
}

/** readFileUrl reads a file: URL with Node's fs (imported only on this path). */
async function readFileUrl(url: URL): Promise<Uint8Array> {
  const specifier = "node:fs/promises"; // a variable, so that bundlers leave it alone
  const fs = (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as {
    readFile(path: URL): Promise<Uint8Array>;
  };
  return fs.readFile(url);
}
