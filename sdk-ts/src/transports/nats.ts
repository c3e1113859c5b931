// ReliableChannel over NATS core publish/subscribe with the `nats` package (Node), an
// optional peer dependency: import it from "@sdskit/sdk/nats".

import { connect, type ConnectionOptions, type NatsConnection } from "nats";
import type { Transport } from "../reliable.js";

/** Publishes to and subscribes to one NATS subject. NATS core delivers at most once:
 * what a slow or disconnected subscriber misses is what SDS repairs. */
export class NatsTransport implements Transport {
  readonly #nc: NatsConnection;
  readonly #subject: string;
  readonly #owned: boolean;

  constructor(nc: NatsConnection, subject: string, owned = false) {
    if (subject === "") throw new Error("NatsTransport: empty subject");
    this.#nc = nc;
    this.#subject = subject;
    this.#owned = owned;
  }

  /** Connects with echo disabled (a participant must not receive its own messages);
   * close() closes the connection. */
  static async connect(servers: string, subject: string, options: ConnectionOptions = {}): Promise<NatsTransport> {
    if (subject === "") throw new Error("NatsTransport: empty subject");
    const nc = await connect({ ...options, servers, noEcho: true });
    return new NatsTransport(nc, subject, true);
  }

  /** Publishes payload to the subject (NATS core: at most once, no acknowledgement). */
  async publish(payload: Uint8Array): Promise<void> {
    this.#nc.publish(this.#subject, payload);
  }

  /** Subscribes to the subject; handlers run one at a time, in arrival order. A handler
   * that throws does not end the subscription: the first such error is thrown by the
   * returned unsubscribe function, which also waits for the handler in progress. */
  async subscribe(handler: (payload: Uint8Array) => Promise<void> | void): Promise<() => Promise<void>> {
    const sub = this.#nc.subscribe(this.#subject);
    let failure: { error: unknown } | undefined;
    const pump = (async () => {
      for await (const m of sub) {
        try {
          await handler(m.data);
        } catch (error) {
          failure ??= { error };
        }
      }
    })();
    await this.#nc.flush();
    return async () => {
      if (!this.#nc.isClosed() && !sub.isClosed()) sub.unsubscribe();
      await pump;
      if (failure !== undefined) throw failure.error;
    };
  }

  /** Closes the connection if connect() opened it. */
  async close(): Promise<void> {
    if (this.#owned && !this.#nc.isClosed()) await this.#nc.close();
  }
}
