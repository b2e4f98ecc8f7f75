import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
// persistence/ reads actors/ for the event decoder only (as `stockade tail` does): a second
// copy of the decoder could drift from the one the engine replays with.
import { decodeEvents } from '../../actors/index.js';
import type { SkuEvent } from '../../actors/index.js';
import type { JournalSource } from '../journal/index.js';
import { migrate } from './mysql-migrations.js';
import { inTransaction } from './mysql-pool.js';
import { ProjectionError } from './projection-error.js';
import {
  SKU_COLUMNS,
  insertSkuSql,
  skuRowOf,
  updateSkuSql,
  upsertReservationsSql,
} from './mysql-rows.js';
import type { Escape } from './mysql-rows.js';
import { FoldError, foldSku, sameCounters } from './sku-fold.js';
import type { ReservationRow, SkuRow } from './sku-fold.js';

/**
 * The MySQL projector: follows every shard of the journal and folds its events into `skus`
 * and `reservations`, one transaction per batch.
 *
 *   journal shard k ──payloads──▶ decode ──▶ batch (≤ batchEventsMax events, one shard)
 *        ▲                                      │ BEGIN
 *        │                                      │  SELECT skus not in the cache
 *        │                                      │  per SKU: UPDATE … WHERE id=? AND version=?
 *        │                                      │  INSERT reservations … ON DUPLICATE KEY UPDATE
 *        └──── resume from ◀── projection_offsets (projector, k) = position after the batch
 *                                               │ COMMIT
 *
 * Exactly-once effect: the rows and the journal position move in one transaction, so a crash
 * anywhere before COMMIT leaves both as they were and the batch is read again; a crash after it
 * leaves both moved. Independently of positions, every SKU row carries `version` (the seq of
 * its last applied event) and events at or below it are skipped, so a replay from position 0,
 * a duplicate delivery or a batch split across a payload changes nothing.
 *
 * The CAS guard: the projector keeps the rows it wrote in memory (`skuCacheMax`) and writes
 * absolute values `WHERE version = <the version it wrote last>`. A miss (0 rows) means someone
 * else wrote the row since. The projector then locks and re-reads the row and writes the row
 * the journal implies, guarded by the version it found: the journal is the source of truth.
 * A row that does not match the journal at its own version (a foreign write, not another
 * projector's) is counted in `conflicts`; a row already past the batch is left alone and read
 * again when next touched.
 */
export interface MysqlProjectorOptions {
  pool: Pool;
  /**
   * Opens the journal (again after a failure), e.g.
   * `() => fileJournalSource(dir, null, { durable: true })`.
   */
  source: () => Promise<JournalSource> | JournalSource;
  /** Name in `projection_offsets` (default `mysql`). */
  name?: string;
  batchEventsMax: number;
  flushMs: number;
  retryMsMax: number;
  skuCacheMax: number;
  /** Apply pending migrations before the first batch (default true). */
  migrate?: boolean;
  /** Every failure, before the wait that precedes its retry. */
  onError?: (err: Error, retryInMs: number) => void;
  /** Tests: runs inside each batch's transaction after its writes, before COMMIT. */
  beforeCommit?: (batch: { shard: number; events: number; position: number }) => unknown;
}

export interface ShardLag {
  shard: number;
  /** Journal position after the last applied batch. */
  position: number;
  /** Position after the last payload in the journal (as of the last read or stat). */
  end: number;
  /** `end - position`, in the journal's units (file: bytes; Kafka: records). */
  lag: number;
}

export interface ProjectorStats {
  running: boolean;
  /** Events whose effect this projector wrote. */
  eventsApplied: number;
  /** Events at or below their row's version (replays, duplicates), so not written again. */
  eventsSkipped: number;
  /** Committed transactions. */
  batches: number;
  /** CAS updates that matched no row at the expected version. */
  casMisses: number;
  /** CAS misses where the row disagreed with the journal at its version (a foreign write). */
  conflicts: number;
  /** Failed attempts (MySQL or journal unreachable, ...), each retried. */
  retries: number;
  lastError: string | null;
  shards: ShardLag[];
  /** Sum of the shards' lag. */
  lag: number;
  /**
   * While there is lag, how long its oldest event may have waited: the time since the later of
   * the newest applied event and the start of the last pass that reached the end (0 when
   * caught up; null before anything is known).
   */
  lagMs: number | null;
}

const SKU_STATEMENTS_PER_QUERY = 500;
const RESERVATION_ROWS_PER_QUERY = 2000;

interface Plan {
  sku: string;
  events: SkuEvent[];
  start: SkuRow | null;
  final: SkuRow | null;
  /** Events of the batch above `start`'s version. */
  applied: number;
  /** After the commit, drop the SKU from the cache rather than remember `final`. */
  forget: boolean;
}

/** One transaction's worth of events from one shard. */
class Batch {
  readonly groups = new Map<string, SkuEvent[]>();
  count = 0;
  position: number;
  lastAt = 0;

  constructor(
    readonly shard: number,
    position: number,
  ) {
    this.position = position;
  }

  add(events: readonly SkuEvent[], from: number, to: number, position: number): void {
    for (let i = from; i < to; i++) {
      const ev = events[i];
      let group = this.groups.get(ev.sku);
      if (!group) {
        group = [];
        this.groups.set(ev.sku, group);
      }
      group.push(ev);
      if (ev.at > this.lastAt) this.lastAt = ev.at;
    }
    this.count += to - from;
    this.position = position;
  }

  reset(): void {
    this.groups.clear();
    this.count = 0;
  }
}

export class MysqlProjector {
  private readonly pool: Pool;
  private readonly name: string;
  private readonly esc: Escape;
  /** SKU id → its row as committed by this projector (null: no row), oldest first. */
  private readonly cache = new Map<string, SkuRow | null>();
  private positions: Map<number, number> | null = null;
  private readonly ends = new Map<number, number>();
  private source: JournalSource | null = null;
  private migrated: boolean;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;
  private lastAppliedAt: number | null = null;
  /** Shards whose saved position was checked against the current source's journal. */
  private readonly checked = new Set<number>();
  /** When the last pass that reached every shard's end started (ms since the epoch). */
  private caughtUpAt: number | null = null;
  private readonly counters = {
    eventsApplied: 0,
    eventsSkipped: 0,
    batches: 0,
    casMisses: 0,
    conflicts: 0,
    retries: 0,
  };
  private lastError: string | null = null;

  constructor(private readonly options: MysqlProjectorOptions) {
    for (const k of ['batchEventsMax', 'flushMs', 'retryMsMax', 'skuCacheMax'] as const) {
      const v = options[k];
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`MysqlProjector: ${k} must be a positive integer, got ${v}`);
      }
    }
    this.pool = options.pool;
    this.name = options.name ?? 'mysql';
    this.esc = (v) => options.pool.escape(v);
    this.migrated = options.migrate === false;
  }

  /** Follows the journal in the background until `stop()`; failures are retried, never thrown. */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  /** Finishes the batch in progress, then stops following and closes the journal source. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    this.loop = null;
    await this.source?.close().catch(() => {});
    this.source = null;
  }

  /** Applies everything the journal holds now, then resolves (rejects on the first failure). */
  async catchUp(): Promise<void> {
    this.stopping = false;
    while ((await this.pass()) > 0);
  }

  stats(): ProjectorStats {
    const shards: ShardLag[] = [];
    let lag = 0;
    for (const [shard, position] of this.positions ?? []) {
      const known = this.ends.get(shard) ?? 0;
      let end = known;
      try {
        end = Math.max(known, this.source?.endPosition(shard) ?? 0);
      } catch {
        // the source is being reopened; the last known end stands
      }
      const l = Math.max(0, end - position);
      shards.push({ shard, position, end, lag: l });
      lag += l;
    }
    // Whatever is not applied yet was written after the newest applied event and after the
    // start of the last pass that reached the end: the later of the two bounds the lag.
    const at = Math.max(this.lastAppliedAt ?? -Infinity, this.caughtUpAt ?? -Infinity);
    return {
      running: this.loop !== null && !this.stopping,
      ...this.counters,
      lastError: this.lastError,
      shards,
      lag,
      lagMs: lag === 0 ? 0 : at === -Infinity ? null : Math.max(0, Date.now() - at),
    };
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      let moved: number;
      try {
        const started = Date.now();
        moved = await this.pass();
        if (!this.stopping) this.caughtUpAt = started;
        failures = 0;
      } catch (e) {
        failures++;
        const waitMs = Math.min(this.options.retryMsMax, 100 * 2 ** Math.min(failures - 1, 16));
        const err = e instanceof Error ? e : new Error(String(e));
        this.counters.retries++;
        this.lastError = `${(err as { code?: string }).code ?? err.name}: ${err.message}`;
        try {
          this.options.onError?.(err, waitMs);
        } catch {
          // a failing listener must not stop the projector
        }
        // A journal failure: open the source afresh (a MySQL one keeps it).
        if (!(err instanceof ProjectionError)) await this.dropSource();
        await this.sleep(waitMs);
        continue;
      }
      if (moved === 0) await this.sleep(this.options.flushMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    }).then(() => {
      this.wake = null;
    });
  }

  private async dropSource(): Promise<void> {
    const s = this.source;
    this.source = null;
    this.checked.clear();
    await s?.close().catch(() => {});
  }

  /** One pass over every shard to its end; resolves to the number of events read. */
  private async pass(): Promise<number> {
    if (!this.migrated) {
      await this.unavailableOnFailure('migrating the schema', () => migrate(this.pool));
      this.migrated = true;
    }
    this.positions ??= await this.loadPositions();
    this.source ??= await this.options.source();
    let events = 0;
    for (const shard of this.source.shards()) {
      if (this.stopping) break;
      events += await this.drainShard(this.source, shard);
    }
    return events;
  }

  private async loadPositions(): Promise<Map<number, number>> {
    const [rows] = await this.unavailableOnFailure('reading projection_offsets', () =>
      this.pool.query<RowDataPacket[]>(
        'SELECT shard, position FROM projection_offsets WHERE projector = ?',
        [this.name],
      ),
    );
    return new Map(rows.map((r) => [Number(r.shard), Number(r.position)]));
  }

  /** Reads one shard from its position to its end, committing a batch at every bound. */
  private async drainShard(source: JournalSource, shard: number): Promise<number> {
    const positions = this.positions!;
    const from = positions.get(shard) ?? 0;
    if (!positions.has(shard)) positions.set(shard, from);
    const max = this.options.batchEventsMax;
    // Once per shard and source (endPosition reads the file's headers synchronously).
    if (source.kind === 'file' && !this.checked.has(shard) && from > source.endPosition(shard)) {
      // (Kafka's reader refuses such a position itself, with journal_mismatch.)
      throw new ProjectionError(
        'projection_corrupt',
        `projection_offsets says shard ${shard} was applied up to position ${from}, but the ` +
          `journal file is shorter (${source.endPosition(shard)} bytes): it was replaced. ` +
          'Empty skus, reservations and projection_offsets to project the new journal.',
      );
    }
    this.checked.add(shard);
    const batches = source.batches(shard, from);
    const batch = new Batch(shard, from);
    let read = 0;
    try {
      for (;;) {
        const next = await batches.next();
        if (next.done) {
          this.ends.set(shard, Math.max(next.value, this.ends.get(shard) ?? 0));
          break;
        }
        for (const p of next.value) {
          const events = decodeEvents(p.payload);
          read += events.length;
          if (batch.count > 0 && batch.count + events.length > max) await this.commit(batch);
          // A payload larger than a batch is split; its parts before the last keep the
          // position before it, so a crash between them re-reads it (the seq guard skips
          // what was applied).
          let i = 0;
          for (; events.length - i > max; i += max) {
            batch.add(events, i, i + max, batch.position);
            await this.commit(batch);
          }
          batch.add(events, i, events.length, p.position);
        }
        if (this.stopping) break;
      }
      if (batch.count > 0 || batch.position !== positions.get(shard)) await this.commit(batch);
    } finally {
      await batches.return(batch.position);
    }
    return read;
  }

  private async commit(batch: Batch): Promise<void> {
    let plans: Plan[];
    try {
      plans = await inTransaction(this.pool, async (conn) => {
        const written = await this.write(conn, batch);
        await this.options.beforeCommit?.({
          shard: batch.shard,
          events: batch.count,
          position: batch.position,
        });
        return written;
      });
    } catch (e) {
      for (const sku of batch.groups.keys()) this.cache.delete(sku);
      if (e instanceof FoldError) {
        throw new ProjectionError('projection_corrupt', e.message, { cause: e });
      }
      throw e instanceof ProjectionError ? e : unavailable(`batch of shard ${batch.shard}`, e);
    }
    this.committed(batch, plans);
  }

  private committed(batch: Batch, plans: Plan[]): void {
    for (const p of plans) {
      if (p.forget) this.cache.delete(p.sku);
      else this.remember(p.sku, p.final);
      this.counters.eventsApplied += p.applied;
      this.counters.eventsSkipped += p.events.length - p.applied;
    }
    this.positions!.set(batch.shard, batch.position);
    this.counters.batches++;
    if (batch.count > 0) this.lastAppliedAt = batch.lastAt;
    batch.reset();
  }

  /** Keeps a row as committed; the cache drops its oldest entry past `skuCacheMax`. */
  private remember(sku: string, row: SkuRow | null): void {
    this.cache.delete(sku);
    this.cache.set(sku, row);
    if (this.cache.size > this.options.skuCacheMax) {
      this.cache.delete(this.cache.keys().next().value!);
    }
  }

  /** The batch's statements, inside the open transaction; returns the rows to remember. */
  private async write(conn: PoolConnection, batch: Batch): Promise<Plan[]> {
    const starts = await this.startRows(conn, batch);
    const reservations = new Map<string, ReservationRow>();
    const plans: Plan[] = [];
    const writes: Plan[] = [];
    for (const [sku, events] of batch.groups) {
      const start = starts.get(sku) ?? null;
      const final = foldSku(start, events, reservations);
      const applied = final === null ? 0 : final.version - (start?.version ?? 0);
      const plan = { sku, events, start, final, applied, forget: false };
      plans.push(plan);
      if (final !== start) writes.push(plan);
    }
    writes.sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0)); // one lock order
    const sqls = writes.map((p) => this.casSql(p.final!, p.start));
    const missed = (await this.execAll(conn, sqls)).flatMap((n, i) => (n === 1 ? [] : [writes[i]]));
    if (missed.length > 0) await this.resolveMisses(conn, missed);
    const rows = [...reservations.values()];
    for (let i = 0; i < rows.length; i += RESERVATION_ROWS_PER_QUERY) {
      const chunk = rows.slice(i, i + RESERVATION_ROWS_PER_QUERY);
      await conn.query(upsertReservationsSql(chunk, this.esc));
    }
    await conn.query(
      'INSERT INTO projection_offsets (projector, shard, position, updated_at) ' +
        'VALUES (?, ?, ?, UTC_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE ' +
        'position = VALUES(position), updated_at = VALUES(updated_at)',
      [this.name, batch.shard, batch.position],
    );
    return plans;
  }

  /** The rows the batch starts from: the cache, and MySQL for SKUs not in it. */
  private async startRows(conn: PoolConnection, batch: Batch): Promise<Map<string, SkuRow | null>> {
    const starts = new Map<string, SkuRow | null>();
    const unknown: string[] = [];
    for (const sku of batch.groups.keys()) {
      const row = this.cache.get(sku);
      if (row === undefined) unknown.push(sku);
      else starts.set(sku, row);
    }
    if (unknown.length > 0) {
      const read = await this.readRows(conn, unknown, false);
      for (const sku of unknown) starts.set(sku, read.get(sku) ?? null);
    }
    return starts;
  }

  private async readRows(
    conn: PoolConnection,
    skus: string[],
    forUpdate: boolean,
  ): Promise<Map<string, SkuRow>> {
    const sql = `SELECT ${SKU_COLUMNS} FROM skus WHERE id IN (?)${forUpdate ? ' FOR UPDATE' : ''}`;
    const [rows] = await conn.query<RowDataPacket[]>(sql, [skus]);
    return new Map(rows.map((r) => [String(r.id), skuRowOf(r)]));
  }

  private casSql(final: SkuRow, start: SkuRow | null): string {
    if (start === null) return insertSkuSql(final, this.esc);
    return updateSkuSql(final, start.version, this.esc);
  }

  /** Runs statements a few hundred per round trip; resolves to each one's affected rows. */
  private async execAll(conn: PoolConnection, sqls: string[]): Promise<number[]> {
    const affected: number[] = [];
    for (let i = 0; i < sqls.length; i += SKU_STATEMENTS_PER_QUERY) {
      const chunk = sqls.slice(i, i + SKU_STATEMENTS_PER_QUERY);
      const [res] = await conn.query<ResultSetHeader | ResultSetHeader[]>(chunk.join(';\n'));
      for (const r of Array.isArray(res) ? res : [res]) affected.push(r.affectedRows);
    }
    return affected;
  }

  /**
   * CAS misses: lock and re-read the rows, then write what the journal implies, guarded by
   * the version found (the lock makes that write succeed). See the class comment.
   */
  private async resolveMisses(conn: PoolConnection, missed: Plan[]): Promise<void> {
    this.counters.casMisses += missed.length;
    const fresh = await this.readRows(
      conn,
      missed.map((p) => p.sku),
      true,
    );
    const sqls: string[] = [];
    for (const p of missed) {
      const row = fresh.get(p.sku) ?? null;
      const final = p.final!;
      const last = p.events[p.events.length - 1].seq;
      if (row === null) {
        // The row was deleted under us: write it again from what we know.
        this.counters.conflicts++;
        sqls.push(insertSkuSql(final, this.esc));
        continue;
      }
      if (row.version >= last) {
        if (row.version !== last || !sameCounters(row, final)) {
          this.counters.conflicts++;
          p.forget = true; // trust neither: read it again when next touched
        } else {
          p.final = row;
        }
        sqls.push('DO 0'); // keeps the results aligned with `missed`
        continue;
      }
      const expected = foldSku(p.start, p.events, null, row.version);
      if (expected === null || !sameCounters(expected, row)) this.counters.conflicts++;
      sqls.push(updateSkuSql(final, row.version, this.esc));
    }
    const affected = await this.execAll(conn, sqls);
    for (let i = 0; i < missed.length; i++) {
      if (sqls[i] !== 'DO 0' && affected[i] !== 1) {
        throw new ProjectionError(
          'projection_unavailable',
          `the row of SKU ${missed[i].sku} changed while locked; the batch will be retried`,
        );
      }
    }
  }

  private async unavailableOnFailure<T>(what: string, job: () => Promise<T>): Promise<T> {
    try {
      return await job();
    } catch (e) {
      throw e instanceof ProjectionError ? e : unavailable(what, e);
    }
  }
}

function unavailable(what: string, cause: unknown): ProjectionError {
  const code = (cause as { code?: unknown }).code;
  const detail = cause instanceof Error ? cause.message : String(cause);
  const prefix = typeof code === 'string' ? `${code}: ` : '';
  const message = `MySQL projection, ${what}: ${prefix}${detail}`;
  return new ProjectionError('projection_unavailable', message, { cause });
}
