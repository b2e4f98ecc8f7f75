/**
 * Serves one shard: hosts a `ShardHost` (shard + journal), applies binary batches from the data
 * port, posts each batch's results once they are durable, and serves the control plane over
 * Comlink. Used by the shard worker's entry point (the port is `parentPort`) and, for an engine
 * whose shards run inline, on the engine's own thread (the port is InlineShard's: direct calls). All
 * logic lives in shard-host.ts and actors/shard.ts; this file only wires messages, the clock
 * and the expiry timer.
 */
import { threadId } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { clockFromSpec, comlinkEndpoint } from '../actors/index.js';
import { openJournal } from '../persistence/journal/index.js';
import { ShardHost } from './shard-host.js';
import type { BatchMessage, EventsMessage, ResultsMessage, ShardControl, ShardWorkerData } from './shard-messages.js';

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
  const clock = clockFromSpec(data.clock);
  const journal = openJournal(data.config);
  let batchesApplied = 0;

  const host = new ShardHost(data.shard, data.options, journal, clock, {
    onEvents(events) {
      const msg: EventsMessage = { kind: 'events', events };
      port.postMessage(msg);
    },
    onFault,
  });
  let stopped = false;
  // Stopped before it could recover (its replacement's turn came first, or the engine closed):
  // it never reads the journal, so it cannot race whoever does.
  const recovered = after.then(() => (stopped ? new Promise<never>(() => {}) : host.recover()));
  // Until recovery is done, batches wait here in arrival order (the engine does not send any
  // before `ready()` resolves; this only guards a restart race).
  const early: BatchMessage[] = [];
  let isReady = false;

  function apply(msg: BatchMessage): void {
    const results = new Float64Array(msg.results);
    host.applyBatch(new Uint8Array(msg.buffer, 0, msg.bytes), msg.count, results, () => {
      const reply: ResultsMessage = { kind: 'results', id: msg.id, buffer: msg.buffer, results: msg.results };
      port.postMessage(reply, [reply.buffer, reply.results]);
    });
    batchesApplied++;
  }

  port.on('message', (msg: BatchMessage) => {
    if (isReady) apply(msg);
    else early.push(msg);
  });

  recovered.then(() => {
    isReady = true;
    try {
      for (const msg of early.splice(0)) apply(msg);
    } catch (err) {
      onFault(err);
    }
  }, onFault);

  const timer = setInterval(() => {
    try {
      host.tick();
    } catch (err) {
      onFault(err);
    }
  }, data.options.timerTickMs);
  timer.unref();

  const control: ShardControl = {
    ready: () => recovered,
    define: (def) => host.define(def),
    update: (sku, update) => host.update(sku, update),
    get: (sku) => host.shard.get(sku),
    getMany: (skus) => skus.map((sku) => host.shard.get(sku)),
    stats: () => ({
      shard: data.shard,
      skus: host.shard.skuCount,
      commandsApplied: host.shard.commandsApplied,
      batchesApplied,
      holdsScheduled: host.shard.holdsScheduled,
      expiredTotal: host.shard.expiredTotal,
      heapUsedBytes: process.memoryUsage().heapUsed,
      threadId,
      appends: host.appends,
      appendsFailed: host.appendsFailed,
      recovery: host.recovery,
    }),
    tick: () => host.tick(),
    setEventForwarding: (on) => host.setForwarding(on),
    async drain() {
      await host.flush();
      return true;
    },
    async shutdown() {
      clearInterval(timer);
      await host.flush();
      await journal?.close();
      // Let the reply to this call go out before the ports close.
      setImmediate(() => {
        data.control.close();
        port.close();
      });
    },
  };

  Comlink.expose(control, comlinkEndpoint(data.control));
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      data.control.close();
      await host.abandon();
      await journal?.close().catch(() => {});
    },
  };
}

/** The worker's fault handling: an uncaught error, so the worker ends and the engine sees it. */
function crash(error: unknown): void {
  setImmediate(() => {
    throw error;
  });
}
