/**
 * A shard served on the engine's own thread (`engine.shardThreads: 'inline'`), behind the same
 * face as its worker: `postMessage` hands a batch to the shard at once, results come back as
 * 'message' events, and a failure (a throw while deciding a batch, in the expiry timer or in a
 * journal callback) is an 'error' then an 'exit', as a crashed worker's would be: the engine
 * answers what was in flight and restarts the shard from its journal.
 * The control plane still goes through Comlink, over a MessageChannel inside the thread.
 *
 * Why: a batch then crosses no thread. On a small machine under a network load the shard's
 * decisions are a small part of a request's cost, and each hop to a worker and back is a
 * wake-up on a busy CPU (see the README's measurements).
 */
import { EventEmitter } from 'node:events';
import { serveShard } from './shard-service.js';
import type { ShardPort } from './shard-service.js';
import type { BatchMessage, ShardWorkerData, WorkerToMain } from './shard-messages.js';

export class InlineShard extends EventEmitter {
  private deliver: ((msg: BatchMessage) => void) | null = null;
  private ended = false;
  private readonly served: { stop(): void };

  constructor(data: ShardWorkerData) {
    super();
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
    this.served = serveShard(data, port, (err) =>
      this.end(1, err instanceof Error ? err : new Error(String(err))),
    );
  }

  postMessage(msg: BatchMessage, _transfer?: ArrayBuffer[]): void {
    if (this.ended) return;
    try {
      this.deliver!(msg);
    } catch (err) {
      // What would kill a worker: the shard is abandoned and the engine recovers it afresh.
      this.end(1, err instanceof Error ? err : new Error(String(err)));
    }
  }

  terminate(): Promise<number> {
    this.end(1);
    return Promise.resolve(1);
  }

  private end(code: number, error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.served.stop();
    setImmediate(() => {
      if (error) this.emit('error', error);
      this.emit('exit', code);
    });
  }
}
