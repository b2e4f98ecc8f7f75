/**
 * The shard worker's entry point: hosts one `Shard`, applies binary batches from the data port
 * and serves the control plane over Comlink. All logic lives in shard.ts; this file only wires
 * messages, the clock and the expiry timer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { comlinkEndpoint } from './comlink-endpoint.js';
import { clockFromSpec } from './clock.js';
import { CollectingEventLog, nullEventLog } from './event-log.js';
import type { BatchMessage, EventsMessage, ResultsMessage, ShardControl, ShardWorkerData } from './messages.js';
import { Shard } from './shard.js';

const data = workerData as ShardWorkerData;
const port = parentPort!;
const clock = clockFromSpec(data.clock);
const shard = new Shard(data.options, nullEventLog, clock.now());
let forwarding: CollectingEventLog | null = null;
let batchesApplied = 0;

function flushEvents(): void {
  if (forwarding === null || forwarding.events.length === 0) return;
  const msg: EventsMessage = { kind: 'events', events: forwarding.take() };
  port.postMessage(msg);
}

port.on('message', (msg: BatchMessage) => {
  const bytes = new Uint8Array(msg.buffer, 0, msg.bytes);
  shard.applyBatch(bytes, msg.count, clock.now(), new Float64Array(msg.results));
  batchesApplied++;
  flushEvents();
  const reply: ResultsMessage = { kind: 'results', id: msg.id, buffer: msg.buffer, results: msg.results };
  port.postMessage(reply, [reply.buffer, reply.results]);
});

const timer = setInterval(() => {
  shard.tick(clock.now());
  flushEvents();
}, data.options.timerTickMs);
timer.unref();

const control: ShardControl = {
  define(def) {
    const r = shard.define(def, clock.now());
    flushEvents();
    return r;
  },
  update(sku, update) {
    const r = shard.update(sku, update, clock.now());
    flushEvents();
    return r;
  },
  get: (sku) => shard.get(sku),
  stats: () => ({
    shard: data.shard,
    skus: shard.skuCount,
    commandsApplied: shard.commandsApplied,
    batchesApplied,
    holdsScheduled: shard.holdsScheduled,
    expiredTotal: shard.expiredTotal,
    heapUsedBytes: process.memoryUsage().heapUsed,
  }),
  tick() {
    const n = shard.tick(clock.now());
    flushEvents();
    return n;
  },
  setEventForwarding(on) {
    forwarding = on ? new CollectingEventLog() : null;
    shard.log = forwarding ?? nullEventLog;
  },
  drain: () => true,
  shutdown() {
    clearInterval(timer);
    // Let the reply to this call go out before the ports close.
    setImmediate(() => {
      data.control.close();
      port.close();
    });
  },
};

Comlink.expose(control, comlinkEndpoint(data.control));
