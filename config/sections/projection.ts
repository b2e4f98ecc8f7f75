import { field } from '../field.js';

/**
 * The MySQL projection (persistence/stores/): the journal's events folded into `skus` and
 * `reservations` tables, batch by batch, off the purchase path. Off by default, so `npm start`
 * needs no MySQL.
 */
export const projectionFields = [
  field({
    key: 'projection.mysql',
    kind: 'bool',
    default: false,
    env: 'STOCKADE_PROJECTION_MYSQL',
    doc:
      'Run the MySQL projector (`mysql.url`) inside `stockade serve`; `stockade serve ' +
      '--project` sets it. `stockade project` runs it on its own.',
  }),
  field({
    key: 'projection.batchEventsMax',
    kind: 'int',
    min: 1,
    max: 1_000_000,
    default: 20_000,
    env: 'STOCKADE_PROJECTION_BATCH_EVENTS_MAX',
    doc: 'Events applied to MySQL in one transaction at most.',
  }),
  field({
    key: 'projection.flushMs',
    kind: 'int',
    min: 1,
    max: 60_000,
    default: 200,
    env: 'STOCKADE_PROJECTION_FLUSH_MS',
    doc:
      'How often the projector looks for new journal events once it has caught up (the lag ' +
      'it adds at most when idle).',
  }),
  field({
    key: 'projection.retryMsMax',
    kind: 'int',
    min: 1,
    max: 600_000,
    default: 5000,
    env: 'STOCKADE_PROJECTION_RETRY_MS_MAX',
    doc:
      'Longest wait between retries while MySQL or the journal is unreachable (the wait ' +
      'doubles from 100 ms up to this); no event is ever skipped.',
  }),
  field({
    key: 'projection.skuCacheMax',
    kind: 'int',
    min: 1,
    max: 10_000_000,
    default: 100_000,
    env: 'STOCKADE_PROJECTION_SKU_CACHE_MAX',
    doc:
      'SKU rows the projector keeps in memory between batches (the oldest are dropped past ' +
      'it and read again from MySQL when next touched).',
  }),
] as const;
