/**
 * Serves one shard: hosts a `ShardHost` (shard + journal), applies binary batches from the data
 * port, posts each batch's results once they are durable, and serves the control plane over
 * Comlink. Used by the shard worker's entry point (the port is `parentPort`) and, for an engine
 * whose shards run inline, on the engine's own thread (the port is InlineShard's: direct calls).
 * All
 * logic lives in shard-host.ts and actors/shard.ts; this file only wires messages, the clock
 * and the expiry timer.
 */
import { threadId } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { clockFromSpec, comlinkEndpoint } from '../actors/index.js';
import { openJournal } from '../persistence/journal/index.js';
import type { Journal } from '../persistence/journal/index.js';
import { ShardHost } from './shard-host.js';
import type { RecoveryStats } from './shard-host.js';
import type {
  BatchMessage,
  EventsMessage,
  ResultsMessage,
  ShardControl,
  ShardStats,
  ShardWorkerData,
} from './shard-messages.js';

/** The shard's end of the data plane: a worker's `parentPort`, or the inline pair's end. */
export interface ShardPort {
  postMessage(msg: ResultsMessage | EventsMessage, transfer?: ArrayBuffer[]): void;
  on(event: 'message', listener: (msg: BatchMessage) => void): unknown;
  close(): void;
}

/**
 * Starts serving. A bug that surfaces outside a batch (in the expiry timer, a journal callback,
 * recovery) goes to `onFault`: by default it is rethrown as an uncaught error, which ends a
 * worker the way any crash does; an inline shard ends itself instead of the process. Recovery
 * reads the journal once `after` has resolved (an inline replacement waits for the shard it
 * replaces to let go of the journal). `stop` gives an inline shard up as a crash would: its
 * timer and control port stop, nothing more is appended, a recovery not yet begun never begins,
 * and it resolves once the append in flight has settled and the journal is closed. A
 * replacement waits for that without a bound: the Kafka journal bounds its appends
 * (`kafka.appendTimeoutMs`); an fdatasync that never returns keeps the shard down rather than
 * risk two hosts writing its journal.
 */
export function serveShard(
  data: ShardWorkerData,
  port: ShardPort,
  onFault: (error: unknown) => void = crash,
  after: Promise<void> = Promise.resolve(),
): { stop(): Promise<void> } {
  const served = new ServedShard(data, port, onFault);
  served.start(after);
  Comlink.expose(served.control(), comlinkEndpoint(data.control));
  return served;
}

/** The shard as `serveShard` serves it: its host, the data plane and the expiry timer. */
class ServedShard {
  private readonly journal: Journal | null;
  private readonly host: ShardHost;
  private batchesApplied = 0;
  private stopped = false;
  /**
   * Until recovery is done, batches wait here in arrival order (the engine does not send any
   * before `ready()` resolves; this only guards a restart race).
   */
  private readonly early: BatchMessage[] = [];
  private isReady = false;
  private recovered: Promise<RecoveryStats> = new Promise(() => {});
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly data: ShardWorkerData,
    private readonly port: ShardPort,
    private readonly onFault: (error: unknown) => void,
  ) {
    this.journal = openJournal(data.config);
    this.host = new ShardHost(data.shard, data.options, this.journal, clockFromSpec(data.clock), {
      onEvents(events) {
        const msg: EventsMessage = { kind: 'events', events };
        port.postMessage(msg);
      },
      onFault,
    });
    this.timer = setInterval(() => {
      try {
        this.host.tick();
      } catch (err) {
        onFault(err);
      }
    }, data.options.timerTickMs);
    this.timer.unref();
  }

  /** Recovers once `after` has resolved, then applies the batches that came meanwhile. */
  start(after: Promise<void>): void {
    // Stopped before it could recover (its replacement's turn came first, or the engine
    // closed): it never reads the journal, so it cannot race whoever does.
    this.recovered = after.then(() =>
      this.stopped ? new Promise<never>(() => {}) : this.host.recover(),
    );
    this.port.on('message', (msg: BatchMessage) => {
      if (this.isReady) this.apply(msg);
      else this.early.push(msg);
    });
    this.recovered.then(() => {
      this.isReady = true;
      try {
        for (const msg of this.early.splice(0)) this.apply(msg);
      } catch (err) {
        this.onFault(err);
      }
    }, this.onFault);
  }

  private apply(msg: BatchMessage): void {
    const results = new Float64Array(msg.results);
    const bytes = new Uint8Array(msg.buffer, 0, msg.bytes);
    this.host.applyBatch(bytes, msg.count, results, () => {
      const reply: ResultsMessage = {
        kind: 'results',
        id: msg.id,
        buffer: msg.buffer,
        results: msg.results,
      };
      this.port.postMessage(reply, [reply.buffer, reply.results]);
    });
    this.batchesApplied++;
  }

  control(): ShardControl {
    const host = this.host;
    return {
      ready: () => this.recovered,
      define: (def) => host.define(def),
      update: (sku, update) => host.update(sku, update),
      get: (sku) => host.shard.get(sku),
      getMany: (skus) => skus.map((sku) => host.shard.get(sku)),
      stats: () => this.stats(),
      tick: () => host.tick(),
      setEventForwarding: (on) => host.setForwarding(on),
      drain: () => host.flush().then(() => true),
      shutdown: () => this.shutdown(),
    };
  }

  private stats(): ShardStats {
    const host = this.host;
    return {
      shard: this.data.shard,
      skus: host.shard.skuCount,
      commandsApplied: host.shard.commandsApplied,
      batchesApplied: this.batchesApplied,
      holdsScheduled: host.shard.holdsScheduled,
      expiredTotal: host.shard.expiredTotal,
      heapUsedBytes: process.memoryUsage().heapUsed,
      threadId,
      appends: host.appends,
      appendsFailed: host.appendsFailed,
      recovery: host.recovery,
    };
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.host.flush();
    await this.journal?.close();
    // Let the reply to this call go out before the ports close.
    setImmediate(() => {
      this.data.control.close();
      this.port.close();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.data.control.close();
    await this.host.abandon();
    await this.journal?.close().catch(() => {});
  }
}

/** The worker's fault handling: an uncaught error, so the worker ends and the engine sees it. */
function crash(error: unknown): void {
  setImmediate(() => {
    throw error;
  });
}
