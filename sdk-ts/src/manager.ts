// ReliabilityManager: the generated typed API of the core, bound to the WebAssembly
// core, with typed events and host services written in TypeScript.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import * as api from "./gen/sdskit/v1/api_pb.js";
import {
  decodeResult,
  dispatchPersistence,
  dispatchPersistenceBatch,
  dispatchRetrievalHintProvider,
  encodeResultError,
  encodeResultValue,
  EventSinkMethod,
  EventSinkServiceName,
  implementsPersistenceTransactions,
  ok,
  PersistenceServiceName,
  ReliabilityManager as ReliabilityManagerApi,
  ReliabilityManagerMethod,
  RetrievalHintProviderServiceName,
  SdsError,
} from "./gen/sdskit/v1/api_sdk.js";
import type { CallFunc, Persistence, Result, RetrievalHintProvider } from "./gen/sdskit/v1/api_sdk.js";
import { ErrorCode } from "./gen/sdskit/v1/errors_pb.js";
import { EventSchema } from "./gen/sdskit/v1/events_pb.js";
import type { Event } from "./gen/sdskit/v1/events_pb.js";
import { Events } from "./gen/sdskit/v1/events_sdk.js";
import { loadCore } from "./core.js";
import type { Core, CoreHost, LoadOptions } from "./core.js";

/** A retrieval hint of one of our messages (e.g. the transport's message hash), or none. */
export type RetrievalHintFunc = (
  channelId: string,
  messageId: string,
) => Uint8Array | undefined | PromiseLike<Uint8Array | undefined>;

/** Where a manager keeps its state. */
export type PersistenceOption =
  /** No persistence: state lives in memory only (the default). */
  | "none"
  /** The core's in-memory backend (inside the WebAssembly module). */
  | "memory"
  /** A backend written in TypeScript (MemoryPersistence, IndexedDbPersistence, SqlitePersistence, …). */
  | Persistence;

/** Options of ReliabilityManager.create. */
export interface ReliabilityManagerOptions {
  /** Our participant id, stamped on our messages (empty disables SDS-R). */
  participantId?: string;
  /** The protocol configuration; unset fields keep the core's defaults. */
  config?: MessageInitShape<typeof api.ConfigSchema>;
  /** The backend (default "none"). */
  persistence?: PersistenceOption;
  /** Supplies retrieval hints of our own messages. */
  retrievalHints?: RetrievalHintFunc;
  /** Replaces the wall clock (Unix milliseconds): deterministic tests and simulations. */
  clock?: () => number;
  /** Receives what an event listener threw (default: console.error). */
  onListenerError?: (error: unknown, event: Event) => void;
  /** The core to use (one loaded with loadCore), or how to load it (default: the shared core). */
  core?: Core | LoadOptions;
}

/** The method id of the Persistence service that carries a whole batch (CoreHost.batches). */
const batchMethodId = 0;

/** The encoded Result{value: CloseResponse}: what a second close() answers. */
const closedOk = encodeResultValue(api.CloseResponseSchema, {});

/**
 * ReliabilityManager is a multi-channel reliability manager running in the sdskit core
 * (WebAssembly). Its methods — generated from the IDL — resolve with a Result and never
 * reject; events arrive on `events`, during the call that produced them, before its
 * Promise resolves.
 */
export class ReliabilityManager extends ReliabilityManagerApi {
  /** The manager's typed events. */
  readonly events: Events;
  readonly #core: Core;
  readonly #handle: number;
  readonly #state: { closed: boolean };

  private constructor(core: Core, handle: number, events: Events, state: { closed: boolean }) {
    const call: CallFunc = async (methodId, request) => {
      if (state.closed) {
        if (methodId === ReliabilityManagerMethod.Close) {
          return closedOk; // Close is idempotent
        }
        return encodeResultError(new SdsError(ErrorCode.CLOSED, "the manager is closed", methodName(methodId)));
      }
      const res = await core.call(handle, methodId, request);
      if (methodId === ReliabilityManagerMethod.Close) {
        state.closed = true; // the core releases the handle on Close
      }
      return res;
    };
    super(call);
    this.#core = core;
    this.#handle = handle;
    this.#state = state;
    this.events = events;
  }

  /**
   * Creates a manager. A bad configuration or persistence choice is an error Result; a
   * core that cannot be loaded, or that does not match this SDK, rejects with a
   * CoreLoadError.
   */
  static async create(options: ReliabilityManagerOptions = {}): Promise<Result<ReliabilityManager>> {
    const core = isCore(options.core) ? options.core : await loadCore(options.core ?? {});
    const events = new Events(options.onListenerError === undefined ? {} : { onListenerError: options.onListenerError });
    const p = options.persistence ?? "none";
    const persistence = typeof p === "object" ? p : undefined;
    const hints = options.retrievalHints === undefined ? undefined : hintProvider(options.retrievalHints);
    const req = create(api.CreateRequestSchema, {
      participantId: options.participantId ?? "",
      persistence: { kind: persistenceKind(p) },
      hostHintProvider: hints !== undefined,
      ...(options.config === undefined ? {} : { config: options.config }),
    });
    const host: CoreHost = {
      persistence: persistence !== undefined,
      transactions: persistence !== undefined && implementsPersistenceTransactions(persistence),
      // One host call per batch: the generated batch adapter makes the typed calls here.
      batches: persistence !== undefined,
      hints: hints !== undefined,
      events: true,
      call: (service, methodId, request) => {
        switch (service) {
          case EventSinkServiceName:
            return deliverEvent(events, methodId, request);
          case PersistenceServiceName:
            if (persistence !== undefined) {
              // A backend that throws or rejects fails the operation with PERSISTENCE.
              if (methodId === batchMethodId) {
                return dispatchPersistenceBatch(persistence, request, ErrorCode.PERSISTENCE);
              }
              return dispatchPersistence(persistence, methodId, request, ErrorCode.PERSISTENCE);
            }
            break;
          case RetrievalHintProviderServiceName:
            if (hints !== undefined) {
              return dispatchRetrievalHintProvider(hints, methodId, request);
            }
            break;
        }
        return encodeResultError(new SdsError(ErrorCode.INVALID_ARGUMENT, `the host does not implement ${service}`, "HostCall"));
      },
    };
    if (options.clock !== undefined) {
      host.nowMs = options.clock;
    }
    const created = await core.create(toBinary(api.CreateRequestSchema, req), host);
    const r = decodeResult(api.CreateResponseSchema, created.result, "Create");
    if (!r.ok) {
      return r;
    }
    return ok(new ReliabilityManager(core, created.handle, events, { closed: false }));
  }

  /** The core this manager runs in. */
  get core(): Core {
    return this.#core;
  }

  /** The manager's handle in the core. */
  get handle(): number {
    return this.#handle;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#state.closed;
  }
}

function isCore(c: Core | LoadOptions | undefined): c is Core {
  return c !== undefined && typeof (c as Partial<Core>).call === "function";
}

function persistenceKind(p: PersistenceOption): NonNullable<MessageInitShape<typeof api.PersistenceChoiceSchema>["kind"]> {
  if (p === "none") {
    return { case: "none", value: {} };
  }
  if (p === "memory") {
    return { case: "memory", value: {} };
  }
  return { case: "host", value: {} };
}

/** deliverEvent decodes one EventSink call and emits it synchronously (undefined: success). */
function deliverEvent(events: Events, methodId: number, request: Uint8Array): Uint8Array | undefined {
  if (methodId !== EventSinkMethod.OnEvent) {
    return encodeResultError(new SdsError(ErrorCode.INVALID_ARGUMENT, `unknown method id ${methodId} of service ${EventSinkServiceName}`, "EventSink"));
  }
  let ev: Event;
  try {
    ev = fromBinary(EventSchema, request);
  } catch (e) {
    return encodeResultError(SdsError.from(e, ErrorCode.INVALID_ARGUMENT, "OnEvent"));
  }
  events.emit(ev); // never throws: listener errors go to onListenerError
  return undefined;
}

function hintProvider(f: RetrievalHintFunc): RetrievalHintProvider {
  return {
    async getRetrievalHint(req) {
      const hint = await f(req.channelId, req.messageId);
      return ok(hint === undefined ? {} : { retrievalHint: hint });
    },
  };
}

const methodNames = new Map<number, string>(Object.entries(ReliabilityManagerMethod).map(([k, v]) => [v, k]));

function methodName(id: number): string {
  return methodNames.get(id) ?? `method ${id}`;
}
