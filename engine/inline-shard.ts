/**
 * A shard served on the engine's own thread (`engine.shardThreads: 'inline'`), behind the same
 * face as its worker: `postMessage` hands a batch to the shard at once, results come back as
 * 'message' events, and a failure (a throw while deciding a batch, in the expiry timer, in a
 * journal callback, in recovery or while opening the journal) is an 'error' then an 'exit', as a
 * crashed worker's would be: the engine answers what was in flight and, with a journal, starts a
 * replacement. `terminate` is such a crash too. The control plane still goes through Comlink,
 * over a MessageChannel inside the thread.
 *
 * A crashed worker stops at once; an abandoned inline shard stops appending at once but its
 * append in flight still settles. So a replacement is given `settled` of the shard it replaces
 * and reads the journal only after that: it sees everything the old one will ever write.
 *
 * Why inline at all: a batch then crosses no thread. Under a network load on a small machine
 * the shard's decisions are a small part of a request's cost, and each hop to a worker and back
 * is a wake-up on a busy CPU (see docs/operations.md, Threads).
 */
import { EventEmitter } from 'node:events';
import { serveShard } from './shard-service.js';
import type { ShardPort } from './shard-service.js';
import type { BatchMessage, ShardWorkerData, WorkerToMain } from './shard-messages.js';

export class InlineShard extends EventEmitter {
  private deliver: ((msg: BatchMessage) => void) | null = null;
  private ended = false;
  private readonly served: { stop(): Promise<void> };
  private readonly after: Promise<void>;
  /**
   * Once this shard has ended: resolves when it, and the shard it replaced, have let go of the
   * journal (see above). Until the end it never resolves: a live shard holds the journal.
   */
  settled: Promise<void> = new Promise(() => {});

  constructor(data: ShardWorkerData, after: Promise<void> = Promise.resolve()) {
    super();
    this.after = after;
    const port: ShardPort = {
      // Replies go out on a microtask: never inside the caller's `postMessage`.
      postMessage: (msg: WorkerToMain) => {
        queueMicrotask(() => {
          if (!this.ended) this.emit('message', msg);
        });
      },
      on: (_event, listener) => {
        this.deliver = listener;
      },
      close: () => this.end(0),
    };
    let failedToStart: Error | null = null;
    try {
      this.served = serveShard(data, port, (err) => this.end(1, asError(err)), after);
    } catch (err) {
      // Opening the journal failed: the shard never started. It ends at once, reported on a
      // later tick (as a worker that fails at start is), once the caller has its listeners on.
      this.served = { stop: () => Promise.resolve(data.control.close()) };
      failedToStart = asError(err);
    }
    if (failedToStart) this.end(1, failedToStart);
  }

  postMessage(msg: BatchMessage, _transfer?: ArrayBuffer[]): void {
    if (this.ended) return;
    try {
      this.deliver!(msg);
    } catch (err) {
      // What would kill a worker: the shard is abandoned and the engine recovers it afresh.
      this.end(1, asError(err));
    }
  }

  /** Ends the shard as a crash would; resolves once it has let go of the journal. */
  async terminate(): Promise<number> {
    this.end(1);
    await this.settled;
    return 1;
  }

  private end(code: number, error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    // A replacement may wait on this: it must not read the journal before the shard this one
    // replaced has let go of it either, even if this one never got to read it.
    this.settled = Promise.all([this.after, this.served.stop().catch(() => {})]).then(() => {});
    setImmediate(() => {
      if (error) this.emit('error', error);
      this.emit('exit', code);
    });
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
