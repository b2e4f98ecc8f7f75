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
 *   subscribers ◀─EventsMessage──────────── durable events, decoded (only while subscribed)
 *   Comlink ◀──────── control port ───────▶ ShardControl (define, get, stats, ...)
 *
 * Replies to a batch are posted only when its events are durable (see shard-host.ts).
 */
import type { MessagePort } from 'node:worker_threads';
import type {
  ClockSpec,
  ControlResult,
  ShardOptions,
  SkuDefinition,
  SkuEvent,
  SkuSnapshot,
  SkuUpdate,
} from '../actors/index.js';
import type { StockadeConfig } from '../config/index.js';
import type { RecoveryStats } from './shard-host.js';

export interface ShardWorkerData {
  shard: number;
  options: ShardOptions;
  clock: ClockSpec;
  control: MessagePort;
  /** The engine's configuration; the worker opens its own journal from `journal`. */
  config: StockadeConfig;
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
  /**
   * The heap of the shard's thread: its worker's, or with inline shards the engine thread's (the
   * same for all).
   */
  heapUsedBytes: number;
  /** The thread the shard runs on: its worker's `threadId`, or the engine's own when inline. */
  threadId: number;
  appends: number;
  appendsFailed: number;
  recovery: RecoveryStats | null;
}

/** The control plane of one shard, called through Comlink (so every method is async there). */
export interface ShardControl {
  /** Resolves once the shard has replayed its journal and takes commands. */
  ready(): Promise<RecoveryStats>;
  define(def: SkuDefinition): Promise<ControlResult>;
  update(sku: string, update: SkuUpdate): Promise<ControlResult>;
  get(sku: string): SkuSnapshot | null;
  /** `get` for several SKUs of this shard in one call. */
  getMany(skus: string[]): (SkuSnapshot | null)[];
  stats(): ShardStats;
  /** Runs the expiry timer now (tests with a manual clock); returns how many holds expired. */
  tick(): number;
  setEventForwarding(on: boolean): void;
  /** Resolves once every decision so far is durable. */
  drain(): Promise<boolean>;
  /** Flushes the journal, closes it and lets the worker exit. */
  shutdown(): Promise<void>;
}
