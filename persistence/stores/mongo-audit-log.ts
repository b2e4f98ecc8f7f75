/**
 * The audit log in MongoDB (or FerretDB): an `AuditSink` whose `record` only puts the entry in
 * a bounded ring; batches leave it by `insertMany(docs, { ordered: false })`, one insert in
 * flight at a time, when `batchMax` entries wait or every `flushMs`.
 *
 *   record(e) ─▶ ring [head … head+count) ≤ bufferMax ──batch of ≤ batchMax──▶ insertMany
 *                  full: dropped++ (never waits)          ok: advance head
 *                                                         fault: same docs again after backoff
 *
 * An entry stays in the ring until MongoDB acknowledges it, so the bound covers the batch in
 * flight as well and memory is bounded while MongoDB is down. A retried batch carries the same
 * client-made `_id`s, so documents the failed attempt did write come back as duplicate-key
 * errors, which count as written: no document is stored twice.
 *
 * Document: the entry's fields, `at` as a BSON date (TTL indexes need one) and `sec`, the epoch
 * second, precomputed because FerretDB 1.x has no `$floor`, `$subtract` or `$dateTrunc` to
 * bucket times with in a pipeline.
 *
 * Indexes (made before the first insert): a TTL index on `at` (`ttlDays`); on a server without
 * TTL indexes (FerretDB 1.x answers "not implemented") a plain index on `at` and a sweep that
 * deletes expired documents every `sweepMs`. `{sku, kind, outcome, at}` serves
 * `salesPerSecond`, `{outcome, at}` serves `rejectionsByReason`.
 */
import { performance } from 'node:perf_hooks';
import type * as MongoDriver from 'mongodb';
import { loadPackage } from '../../config/index.js';
import type { Collection, Document, MongoClient } from 'mongodb';
import type { AuditEntry, AuditStats } from './audit-log.js';

export interface MongoAuditLogOptions {
  /** `mongodb://host:port/db`; the database is the URL's. */
  url: string;
  collection: string;
  bufferMax: number;
  batchMax: number;
  flushMs: number;
  ttlDays: number;
  /** First retry delay after a failed write; doubles up to `retryMaxMs`. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** How often expired documents are deleted where the server has no TTL index. */
  sweepMs?: number;
  /** Longest `close()` waits for the buffer to reach MongoDB; what is left is dropped. */
  closeTimeoutMs?: number;
  /** How long the driver looks for a server before a write fails. */
  serverSelectionTimeoutMs?: number;
  /** Told once per outage (the first failed write after a success), not once per batch. */
  onError?: (err: unknown) => void;
}

export interface SalesSecond {
  /** Epoch second. */
  second: number;
  /** Reservations made in that second. */
  reservations: number;
  /** Units they reserved. */
  units: number;
}

export interface RejectionCount {
  reason: string;
  count: number;
}

/** How documents expire: a TTL index, or the log's own sweep (FerretDB 1.x). */
export type TtlMode = 'index' | 'sweep';

// Loaded on first use: every shard worker imports persistence/, and none of them writes the
// audit log (loading the driver costs ~65 ms).
let driver: typeof MongoDriver | null = null;
function mongodb(): typeof MongoDriver {
  return (driver ??= loadPackage<typeof MongoDriver>('mongodb', 'The audit log (MongoDB)'));
}

const NOT_IMPLEMENTED = 238;
const DUPLICATE_KEY = 11000;

/**
 * A wait that keeps the process alive: `close` must not end with the process because the
 * driver's own timers (server selection) do not hold the event loop.
 */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function intOption(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min)
    throw new RangeError(`MongoAuditLog ${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

export class MongoAuditLog {
  readonly stats: AuditStats = { written: 0, dropped: 0, failed: 0, rejected: 0 };
  /** Set once the indexes exist; `sweep` on servers without TTL indexes. */
  ttlMode: TtlMode | null = null;
  readonly client: MongoClient;
  readonly collection: Collection;
  private readonly ring: (AuditEntry | undefined)[];
  private head = 0;
  private count = 0;
  private readonly bufferMax: number;
  private readonly batchMax: number;
  private readonly ttlS: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly sweepMs: number;
  private readonly closeTimeoutMs: number;
  private readonly onError: (err: unknown) => void;
  /** The batch being written (kept for retries: the same `_id`s), or null. */
  private batch: Document[] | null = null;
  private inFlight: Promise<void> | null = null;
  private retryAt = 0;
  private backoffMs = 0;
  private failing = false;
  private soon = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private sweeper: NodeJS.Timeout | null = null;

  constructor(options: MongoAuditLogOptions) {
    this.bufferMax = intOption('bufferMax', options.bufferMax, 1);
    this.batchMax = intOption('batchMax', options.batchMax, 1);
    const flushMs = intOption('flushMs', options.flushMs, 1);
    this.ttlS = intOption('ttlDays', options.ttlDays, 1) * 86_400;
    this.retryMinMs = options.retryMinMs ?? 100;
    this.retryMaxMs = options.retryMaxMs ?? 10_000;
    this.sweepMs = options.sweepMs ?? 60_000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5000;
    this.onError = options.onError ?? (() => {});
    this.ring = new Array<AuditEntry | undefined>(this.bufferMax);
    this.client = new (mongodb().MongoClient)(options.url, {
      serverSelectionTimeoutMS: options.serverSelectionTimeoutMs ?? 5000,
    });
    this.collection = this.client.db().collection(options.collection);
    this.timer = setInterval(this.flush, flushMs);
    this.timer.unref();
  }

  /** A log whose indexes exist (rejects when MongoDB cannot be reached). */
  static async open(options: MongoAuditLogOptions): Promise<MongoAuditLog> {
    const log = new MongoAuditLog(options);
    try {
      await log.ensureIndexes();
    } catch (err) {
      await log.close();
      throw err;
    }
    return log;
  }

  /** Entries waiting in the buffer (the batch in flight included). */
  get buffered(): number {
    return this.count;
  }

  record(entry: AuditEntry): void {
    if (this.count >= this.bufferMax || this.closed) {
      this.stats.dropped++;
      return;
    }
    this.ring[(this.head + this.count) % this.bufferMax] = entry;
    this.count++;
    if (this.count >= this.batchMax && !this.soon && this.inFlight === null) {
      this.soon = true;
      setImmediate(this.flush);
    }
  }

  /** Starts writing one batch unless one is in flight, the buffer is empty or in backoff. */
  private readonly flush = (): void => {
    this.soon = false;
    if (this.inFlight !== null || this.count === 0) return;
    if (performance.now() < this.retryAt) return;
    this.batch ??= this.documents(Math.min(this.count, this.batchMax));
    const batch = this.batch;
    this.inFlight = this.write(batch).then(
      (rejected) => this.written(batch.length, rejected),
      (err: unknown) => this.failed(err),
    );
  };

  /** The documents of the oldest `n` entries, each with its own `_id` for safe retries. */
  private documents(n: number): Document[] {
    const docs = new Array<Document>(n);
    const { ObjectId } = mongodb();
    for (let i = 0; i < n; i++) {
      const e = this.ring[(this.head + i) % this.bufferMax]!;
      docs[i] = { _id: new ObjectId(), ...e, at: new Date(e.at), sec: Math.floor(e.at / 1000) };
    }
    return docs;
  }

  /**
   * Writes a batch; resolves to the number of its documents the server refused for good.
   * Per-document errors mean the server answered: a duplicate `_id` was written by an earlier
   * attempt of this batch, and any other is a document it will never take (retrying the batch
   * would block the log behind it). An error without per-document errors (no server, a
   * timeout) rejects, and the batch is retried.
   */
  private async write(docs: Document[]): Promise<number> {
    if (this.ttlMode === null) await this.ensureIndexes();
    try {
      await this.collection.insertMany(docs, { ordered: false });
      return 0;
    } catch (err) {
      const writeErrors = (err as { writeErrors?: { code: number }[] }).writeErrors;
      if (!writeErrors || writeErrors.length === 0) throw err;
      const refused = writeErrors.filter((w) => w.code !== DUPLICATE_KEY).length;
      if (refused > 0) this.report(err);
      return refused;
    }
  }

  private written(taken: number, rejected: number): void {
    // After a timed-out `close` the buffer was already counted as dropped.
    const n = Math.min(taken, this.count);
    for (let i = 0; i < n; i++) this.ring[(this.head + i) % this.bufferMax] = undefined;
    this.head = (this.head + n) % this.bufferMax;
    this.count -= n;
    this.stats.written += n - Math.min(n, rejected);
    this.stats.rejected += Math.min(n, rejected);
    this.batch = null;
    this.inFlight = null;
    this.backoffMs = 0;
    this.retryAt = 0;
    this.failing = false;
    if (this.count >= this.batchMax) this.flush();
  }

  private failed(err: unknown): void {
    this.stats.failed++;
    this.inFlight = null;
    this.backoffMs = Math.min(this.retryMaxMs, Math.max(this.retryMinMs, this.backoffMs * 2));
    this.retryAt = performance.now() + this.backoffMs;
    if (!this.failing) {
      this.failing = true;
      this.report(err);
    }
  }

  /** Tells the owner's listener; a listener that throws does not stop the log. */
  private report(err: unknown): void {
    try {
      this.onError(err);
    } catch {
      // The listener's own failure: nothing to do with the entries.
    }
  }

  /**
   * Creates the TTL index and the dashboard's indexes (idempotent). FerretDB 1.x rejects
   * `expireAfterSeconds` as not implemented: then `at` gets a plain index and the log deletes
   * expired documents itself.
   */
  async ensureIndexes(): Promise<TtlMode> {
    const c = this.collection;
    let mode: TtlMode = 'index';
    try {
      await c.createIndex({ at: 1 }, { name: 'at_ttl', expireAfterSeconds: this.ttlS });
    } catch (err) {
      if ((err as { code?: number }).code !== NOT_IMPLEMENTED) throw err;
      await c.createIndex({ at: 1 }, { name: 'at' });
      mode = 'sweep';
    }
    await c.createIndex({ sku: 1, kind: 1, outcome: 1, at: 1 }, { name: 'sku_kind_outcome_at' });
    await c.createIndex({ outcome: 1, at: 1 }, { name: 'outcome_at' });
    if (mode === 'sweep' && this.sweeper === null && !this.closed) {
      this.sweeper = setInterval(() => void this.sweepExpired().catch(() => {}), this.sweepMs);
      this.sweeper.unref();
    }
    this.ttlMode = mode;
    return mode;
  }

  /** Deletes documents older than `ttlDays` (what a TTL index does); returns how many. */
  async sweepExpired(nowMs = Date.now()): Promise<number> {
    const cutoff = new Date(nowMs - this.ttlS * 1000);
    const r = await this.collection.deleteMany({ at: { $lt: cutoff } });
    return r.deletedCount;
  }

  /**
   * Reservations made per second for one SKU since `sinceMs`, oldest first. (Grouped by second
   * and quantity and added up here: FerretDB 1.x answers 0 for `$sum` of a field.)
   */
  async salesPerSecond(sku: string, sinceMs: number): Promise<SalesSecond[]> {
    const rows = await this.collection
      .aggregate<{ _id: { s: number; q: number | null }; n: number }>([
        {
          $match: {
            sku,
            kind: 'reservation',
            outcome: 'reserved',
            at: { $gte: new Date(sinceMs) },
          },
        },
        { $group: { _id: { s: '$sec', q: '$qty' }, n: { $sum: 1 } } },
      ])
      .toArray();
    const bySecond = new Map<number, SalesSecond>();
    for (const r of rows) {
      const s = r._id.s;
      let out = bySecond.get(s);
      if (!out) bySecond.set(s, (out = { second: s, reservations: 0, units: 0 }));
      out.reservations += r.n;
      out.units += r.n * (r._id.q ?? 0);
    }
    return [...bySecond.values()].sort((a, b) => a.second - b.second);
  }

  /** Purchase attempts refused since `sinceMs`, by reason (error code), most frequent first. */
  async rejectionsByReason(sinceMs: number): Promise<RejectionCount[]> {
    const rows = await this.collection
      .aggregate<{ _id: string; n: number }>([
        {
          $match: {
            kind: 'reservation',
            outcome: { $ne: 'reserved' },
            at: { $gte: new Date(sinceMs) },
          },
        },
        { $group: { _id: '$outcome', n: { $sum: 1 } } },
      ])
      .toArray();
    return rows
      .map((r) => ({ reason: r._id, count: r.n }))
      .sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1));
  }

  /**
   * Writes what the buffer holds (waiting at most `closeTimeoutMs`; what is still unwritten
   * then is counted as dropped), stops the timers and closes the client. Entries recorded
   * after `close` began are dropped.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    if (this.sweeper !== null) clearInterval(this.sweeper);
    const deadline = performance.now() + this.closeTimeoutMs;
    for (let left = this.closeTimeoutMs; this.count > 0 && left > 0;) {
      const backoff = this.retryAt - performance.now();
      if (this.inFlight === null && backoff > 0) await delay(Math.min(backoff, left));
      else {
        if (this.inFlight === null) this.flush();
        // Whichever comes first; the timer goes with the race, so it cannot hold the process
        // for the rest of closeTimeoutMs after the insert is done.
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, left)));
        await Promise.race([this.inFlight, timeout]);
        clearTimeout(timer);
      }
      left = deadline - performance.now();
    }
    // Unwritten now means lost: count it, so written + dropped adds up to what was recorded.
    this.stats.dropped += this.count;
    this.count = 0;
    await this.client.close();
  }
}
