// Types of dist/wasm_exec.js, which `make sdk-ts` writes at build time from the Go
// toolchain's $(go env GOROOT)/lib/wasm/wasm_exec.js, wrapped in a function so that
// its polyfills (fs, process, path) land on a private scope instead of globalThis.

/** The Go class of wasm_exec.js: one instance runs one Go program. */
export interface GoInstance {
  argv: string[];
  env: Record<string, string>;
  importObject: WebAssembly.Imports;
  exited: boolean;
  run(instance: WebAssembly.Instance): Promise<void>;
}

/** goClass runs wasm_exec.js with scope as its globalThis and returns its Go class. */
export declare function goClass(scope: object): new () => GoInstance;
