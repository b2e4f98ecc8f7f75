import { availableParallelism } from 'node:os';
import { field } from '../field.js';

/** The engine: shard workers, queue bounds and reservation defaults. */
export const engineFields = [
  field({
    key: 'engine.shards',
    kind: 'int',
    min: 1,
    max: 64,
    default: Math.max(1, Math.min(64, availableParallelism())),
    env: 'STOCKADE_SHARDS',
    doc: 'Number of shards (a worker thread each unless `engine.shardThreads` is `inline`); each SKU lives on exactly one (default: CPU count).',
  }),
  field({
    key: 'engine.shardThreads',
    kind: 'enum',
    values: ['auto', 'workers', 'inline'],
    default: 'auto',
    env: 'STOCKADE_SHARD_THREADS',
    doc:
      'Where the shards run: `workers` (a worker thread each), `inline` (on the thread that ' +
      'created the engine: no thread hop per batch, no parallelism between shards) or `auto`: ' +
      '`inline` for `stockade serve` on one gateway thread with at most 2 CPUs, where it measured ' +
      'faster, `workers` otherwise (see docs/operations.md, Threads).',
  }),
  field({
    key: 'engine.shardQueueMax',
    kind: 'int',
    min: 1,
    max: 10_000_000,
    default: 262_144,
    env: 'STOCKADE_SHARD_QUEUE_MAX',
    doc: 'Requests in flight to one shard before new ones are rejected as `overloaded`.',
  }),
  field({
    key: 'engine.batchSizeMax',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    default: 16_384,
    env: 'STOCKADE_BATCH_SIZE_MAX',
    doc: 'Requests carried by one message to a shard; larger bursts are split.',
  }),
  field({
    key: 'engine.qtyMax',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    default: 1_000,
    env: 'STOCKADE_QTY_MAX',
    doc: 'Largest quantity one reservation may ask for.',
  }),
  field({
    key: 'engine.holdTtlMsDefault',
    kind: 'int',
    min: 1,
    max: 86_400_000,
    default: 600_000,
    env: 'STOCKADE_HOLD_TTL_MS_DEFAULT',
    doc: 'How long a reservation holds stock before it expires, for SKUs that do not say.',
  }),
  field({
    key: 'engine.timerTickMs',
    kind: 'int',
    min: 1,
    max: 60_000,
    default: 100,
    env: 'STOCKADE_TIMER_TICK_MS',
    doc: 'Resolution of the hold-expiry timer wheel in each shard.',
  }),
  field({
    key: 'engine.eventsBufferMax',
    kind: 'int',
    min: 1,
    max: 10_000_000,
    default: 100_000,
    env: 'STOCKADE_EVENTS_BUFFER_MAX',
    doc: 'Events an `engine.subscribe()` subscriber may fall behind by before it is ended with `events_overflow`.',
  }),
] as const;
