// @sdskit/sdk: the sdskit TypeScript SDK. Messages come from protoc-gen-es; the
// Result/SdsError runtime, the typed ReliabilityManager API, host-service interfaces
// and typed events from protoc-gen-sdskit-ts (both generated from the IDL, src/gen).

export * from "./gen/sdskit/v1/wire_pb.js";
export * from "./gen/sdskit/v1/state_pb.js";
export * from "./gen/sdskit/v1/errors_pb.js";
export * from "./gen/sdskit/v1/events_pb.js";
export * from "./gen/sdskit/v1/api_pb.js";
export * from "./gen/sdskit/v1/events_sdk.js";
export {
  ABI_VERSION,
  IDL_HASH,
  SdsError,
  errorCodeName,
  ok,
  err,
  fail,
  unwrap,
  implementsPersistenceTransactions,
  dispatchPersistence,
  PersistenceMethod,
  PersistenceServiceName,
  ReliabilityManagerMethod,
  ReliabilityManagerServiceName,
} from "./gen/sdskit/v1/api_sdk.js";
export type {
  Ok,
  Err,
  Result,
  CallFunc,
  Persistence,
  PersistenceTransactions,
  RetrievalHintProvider,
  EventSink,
} from "./gen/sdskit/v1/api_sdk.js";
export { ReliabilityManager } from "./manager.js";
export type { ReliabilityManagerOptions, PersistenceOption, RetrievalHintFunc } from "./manager.js";
export { loadCore, checkCore, defaultWasmUrl, CoreLoadError } from "./core.js";
export type { Core, CoreHost, CoreCreated, LoadOptions, WasmSource } from "./core.js";
export { MemoryPersistence } from "./backends/memory.js";
export type { FailureMode, FailureOptions } from "./backends/memory.js";
export { PersistenceMethods, isPersistenceMethod } from "./backends/common.js";
export type { PersistenceMethodName } from "./backends/common.js";
export { ReliableChannel, LoopbackBus } from "./reliable.js";
export type { Transport, ReliableChannelOptions } from "./reliable.js";
