/**
 * The only module both sides of the shard thread boundary import: what the worker is started
 * with, the data-plane messages (binary batches, see codec.ts), and the control-plane API that
 * Comlink carries.
 *
 *   main thread (engine)                     shard worker
 *   ─────────────────────                    ────────────
 *   BatchWriter ──BatchMessage (transfer)──▶ Shard.applyBatch
 *   waiters     ◀─ResultsMessage (transfer)─ Float64Array results
 *   (both buffers travel back and forth and are reused: no allocation per batch)
 *   subscribers ◀─EventsMessage──────────── CollectingEventLog (only while subscribed)
 *   Comlink ◀──────── control port ───────▶ ShardControl (define, get, stats, ...)
 */
import type { MessagePort } from 'node:worker_threads';
import type { ClockSpec } from './clock.js';
import type { ControlResult, ShardOptions } from './shard.js';
import type { SkuDefinition, SkuEvent, SkuSnapshot, SkuUpdate } from './types.js';

export interface ShardWorkerData {
  shard: number;
  options: ShardOptions;
  clock: ClockSpec;
  control: MessagePort;
}

export interface BatchMessage {
  kind: 'batch';
  id: number;
  buffer: ArrayBuffer;
  bytes: number;
  count: number;
  /** Where the worker writes the results: at least `count * RESULT_STRIDE` float64s. */
  results: ArrayBuffer;
}

export interface ResultsMessage {
  kind: 'results';
  id: number;
  /** The request buffer, handed back for reuse. */
  buffer: ArrayBuffer;
  results: ArrayBuffer;
}

export interface EventsMessage {
  kind: 'events';
  events: SkuEvent[];
}

export type WorkerToMain = ResultsMessage | EventsMessage;

export interface ShardStats {
  shard: number;
  skus: number;
  commandsApplied: number;
  batchesApplied: number;
  holdsScheduled: number;
  expiredTotal: number;
  heapUsedBytes: number;
}

/** The control plane of one shard, called through Comlink (so every method is async there). */
export interface ShardControl {
  define(def: SkuDefinition): ControlResult;
  update(sku: string, update: SkuUpdate): ControlResult;
  get(sku: string): SkuSnapshot | null;
  stats(): ShardStats;
  /** Runs the expiry timer now (tests with a manual clock); returns how many holds expired. */
  tick(): number;
  setEventForwarding(on: boolean): void;
  /** Resolves once every message sent to the worker before it has been applied. */
  drain(): boolean;
  shutdown(): void;
}
