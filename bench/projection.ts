/**
 * `npm run bench -- projection`: purchases per second the MySQL projector brings into MySQL,
 * against the classic design in the same run.
 *
 *   projector   the engine writes a file journal (N reservations over K SKUs, a share of them
 *               confirmed); then the projector applies it to a fresh MySQL database, batch by
 *               batch (`throughput_per_s` = purchases, i.e. reservations, per second, with their
 *               confirmations and SKU definitions applied too; `events_per_s` counts every
 *               event; latency = time per batch transaction)
 *   classic     the design a user would otherwise pick: one autocommitted
 *               `UPDATE … SET available = available - 1 WHERE id = ? AND available > 0` per
 *               purchase, from --classic-connections connections at once, over
 *               --classic-purchases purchases (latency = per statement). Its throughput is the
 *               `ceiling_throughput_per_s` the projector's `ratio_to_ceiling` is taken against.
 *   http_lag    (with --cases …,http_lag) `stockade serve --project` under the HTTP benchmark's
 *               wrk load: the projector's lag (`stockade_projection_lag` on /metrics) sampled
 *               every 250 ms; reports the max and final lag and how long it took to catch up.
 *
 * Flags: --reservations N (200,000), --skus N (1,000), --confirm-share F (0.5),
 * --classic-purchases N (20,000), --classic-connections N (16), --batch N (projector batch,
 * default projection.batchEventsMax), --cases projector,classic[,http_lag], --duration 10s
 * (http_lag), --json FILE. MySQL comes from `mysql.url` (STOCKADE_MYSQL_URL); the run works in
 * its own database `stockade_bench_<pid>` and drops it at the end.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createConnection } from 'mysql2/promise';
import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { createEngine, loadConfig } from '../engine/index.js';
import type { Engine } from '../engine/index.js';
import { fileJournalSource } from '../persistence/journal/index.js';
import {
  migrate,
  MysqlProjector,
  openMysqlPool,
  withDatabase,
} from '../persistence/stores/index.js';
import { benchStockade, LUA } from './http.js';
import { benchStart, percentile, round, writeReport } from './report.js';
import type { BenchCase } from './report.js';

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

interface Written {
  events: number;
  reservations: number;
  confirms: number;
  seconds: number;
}

/** Drives a sale through the engine on the file journal; returns what it wrote. */
async function writeJournal(
  dir: string,
  reservations: number,
  skus: number,
  confirmShare: number,
): Promise<Written> {
  const config = loadConfig({
    env: {},
    overrides: {
      engine: { shards: 2 },
      journal: { kind: 'file', dir, durability: 'os' },
    },
  });
  const engine = await createEngine({ config });
  const t0 = performance.now();
  try {
    for (let i = 0; i < skus; i++) {
      await engine.defineSku({ sku: `sku-${i}`, stock: 1_000_000, name: `SKU ${i}`, price: 999 });
    }
    let made = 0;
    let confirms = 0;
    const chunk = 10_000;
    for (let from = 0; from < reservations; from += chunk) {
      const n = Math.min(chunk, reservations - from);
      const results = await engine.reserveMany(
        Array.from({ length: n }, (_, k) => ({
          sku: `sku-${(from + k) % skus}`,
          userId: `user-${(from + k) % 50_000}`,
          qty: 1,
          idempotencyKey: `order-${from + k}`,
        })),
      );
      const ids = results.flatMap((r) => (r.status === 'reserved' ? [r.reservationId] : []));
      made += ids.length;
      confirms += await confirmSome(engine, ids, confirmShare);
      if ((from / chunk) % 5 === 4) {
        say(`  journal: ${fmt(from + n)} of ${fmt(reservations)} reservations`);
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    return { events: skus + made + confirms, reservations: made, confirms, seconds };
  } finally {
    await engine.close();
  }
}

async function confirmSome(engine: Engine, ids: string[], share: number): Promise<number> {
  const every = share <= 0 ? 0 : Math.max(1, Math.round(1 / share));
  const picked = every === 0 ? [] : ids.filter((_, i) => i % every === 0);
  const results = await Promise.all(picked.map((id) => engine.confirm(id)));
  return results.filter((r) => r.status === 'confirmed').length;
}

async function benchProjector(
  pool: Pool,
  dir: string,
  written: Written,
  batch: number,
): Promise<BenchCase> {
  const commits: number[] = [];
  let last = 0;
  const projector = new MysqlProjector({
    pool,
    source: () => fileJournalSource(dir, null, { durable: true }),
    batchEventsMax: batch,
    flushMs: 100,
    retryMsMax: 1000,
    skuCacheMax: 100_000,
    migrate: false,
    beforeCommit: () => {
      const now = performance.now();
      commits.push(now - last);
      last = now;
    },
  });
  const progress = setInterval(() => {
    const s = projector.stats();
    const of = `${fmt(s.eventsApplied)} of ${fmt(written.events)} events`;
    say(`  projector: ${of}, ${s.batches} batches`);
  }, 2000);
  const t0 = performance.now();
  last = t0;
  try {
    await projector.catchUp();
  } finally {
    clearInterval(progress);
    await projector.stop();
  }
  const seconds = (performance.now() - t0) / 1000;
  const s = projector.stats();
  const [[sums]] = await pool.query<RowDataPacket[]>(
    'SELECT SUM(sold) AS sold, SUM(reserved) AS reserved, ' +
      'SUM(GREATEST(0, sold + reserved - stock)) AS oversold, COUNT(*) AS skus FROM skus',
  );
  const [[res]] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM reservations');
  return {
    name: 'projector',
    // Purchases per second, the unit of the classic design's figure (one UPDATE per purchase).
    throughput_per_s: Math.round(written.reservations / seconds),
    latency_ms: { p50: round(percentile(commits, 50)), p99: round(percentile(commits, 99)) },
    oversold: Number(sums.oversold),
    events_per_s: Math.round(s.eventsApplied / seconds),
    events: s.eventsApplied,
    batches: s.batches,
    seconds: round(seconds, 2),
    batch_events_max: batch,
    mysql_sold: Number(sums.sold),
    mysql_reserved: Number(sums.reserved),
    mysql_reservation_rows: Number(res.n),
    journal_reservations: written.reservations,
    journal_confirms: written.confirms,
    exact: Number(sums.sold) === written.confirms && Number(res.n) === written.reservations,
  };
}

async function benchClassic(
  url: string,
  skus: number,
  purchases: number,
  connections: number,
): Promise<BenchCase> {
  const pool = openMysqlPool(url, { connectionLimit: connections });
  try {
    await pool.query(
      'CREATE TABLE classic_skus (id VARCHAR(64) PRIMARY KEY, available BIGINT NOT NULL)',
    );
    const rows = Array.from({ length: skus }, (_, i) => [`sku-${i}`, 1_000_000]);
    await pool.query('INSERT INTO classic_skus (id, available) VALUES ?', [rows]);
    const latencies = new Float64Array(purchases);
    let next = 0;
    let oversold = 0;
    const lane = async (): Promise<void> => {
      for (let i = next++; i < purchases; i = next++) {
        const t = performance.now();
        await pool.query(
          'UPDATE classic_skus SET available = available - 1 WHERE id = ? AND available > 0',
          [`sku-${i % skus}`],
        );
        latencies[i] = performance.now() - t;
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: connections }, lane));
    const seconds = (performance.now() - t0) / 1000;
    const [[neg]] = await pool.query<RowDataPacket[]>(
      'SELECT COUNT(*) AS n FROM classic_skus WHERE available < 0',
    );
    oversold = Number(neg.n);
    return {
      name: 'classic_conditional_update',
      throughput_per_s: Math.round(purchases / seconds),
      latency_ms: { p50: round(percentile(latencies, 50)), p99: round(percentile(latencies, 99)) },
      oversold,
      purchases,
      connections,
      seconds: round(seconds, 2),
    };
  } finally {
    await pool.end();
  }
}

/** `stockade serve --project` under wrk; the projector's lag sampled from /metrics. */
async function benchHttpLag(url: string, dir: string, duration: string): Promise<BenchCase> {
  const configFile = join(dir, 'serve-config.json');
  writeFileSync(configFile, JSON.stringify({ projection: { mysql: true } }));
  const script = join(dir, 'reserve.lua');
  writeFileSync(script, LUA);
  const figures: Record<string, unknown> = {};
  const c = await benchStockade(
    { duration, warmup: '3s', connections: 100, wrkThreads: 2, script },
    ['--journal', 'file', '--data-dir', join(dir, 'http-data'), '--config', configFile],
    'http_lag',
    (base) => {
      const samples: number[] = [];
      let seconds: number[] = [];
      const timer = setInterval(() => {
        void projectionLag(base).then((l) => {
          if (l) {
            samples.push(l.lag);
            seconds.push(l.lagS);
          }
        });
      }, 250);
      return {
        stop: async () => {
          clearInterval(timer);
          const end = await projectionLag(base);
          const t0 = performance.now();
          let now = end;
          while (now && now.lag > 0 && performance.now() - t0 < 120_000) {
            await new Promise((r) => setTimeout(r, 100));
            now = await projectionLag(base);
          }
          figures.catch_up_ms = Math.round(performance.now() - t0);
          seconds = seconds.length ? seconds : [0];
          return {
            lag_samples: samples.length,
            lag_max_bytes: Math.max(0, ...samples),
            lag_final_bytes: end?.lag ?? null,
            lag_max_s: round(Math.max(...seconds), 3),
            lag_final_s: end ? round(end.lagS, 3) : null,
            catch_up_ms: figures.catch_up_ms,
            projected_events: now?.applied ?? null,
          };
        },
      };
    },
    // The run's own database: an inherited STOCKADE_MYSQL_URL would win over a config file.
    { STOCKADE_MYSQL_URL: url },
  );
  delete (c as Partial<typeof c>).raw;
  return c;
}

async function projectionLag(
  base: string,
): Promise<{ lag: number; lagS: number; applied: number } | null> {
  try {
    const text = await (await fetch(`${base}/metrics`)).text();
    let lag = 0;
    for (const m of text.matchAll(/^stockade_projection_lag\{shard="\d+"\} (\d+)/gm)) {
      lag += Number(m[1]);
    }
    const lagS = Number(/^stockade_projection_lag_seconds (\S+)/m.exec(text)?.[1] ?? 0);
    const applied = Number(/^stockade_projection_events_total (\d+)/m.exec(text)?.[1] ?? 0);
    return { lag, lagS, applied };
  } catch {
    return null;
  }
}

/** The flags, read and checked before a database is created. */
interface ProjectionFlags {
  reservations: number;
  skus: number;
  confirmShare: number;
  classicPurchases: number;
  classicConnections: number;
  /** The projector's batch; without --batch, the configuration's projection.batchEventsMax. */
  batch: number | undefined;
  cases: string[];
  duration: string;
  json: string | undefined;
}

function flagsOf(argv: string[]): ProjectionFlags {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      reservations: { type: 'string', default: '200000' },
      skus: { type: 'string', default: '1000' },
      'confirm-share': { type: 'string', default: '0.5' },
      'classic-purchases': { type: 'string', default: '20000' },
      'classic-connections': { type: 'string', default: '16' },
      batch: { type: 'string' },
      cases: { type: 'string', default: 'projector,classic' },
      duration: { type: 'string', default: '10s' },
      json: { type: 'string' },
    },
  });
  return {
    reservations: Number(v.reservations),
    skus: Number(v.skus),
    confirmShare: Number(v['confirm-share']),
    classicPurchases: Number(v['classic-purchases']),
    classicConnections: Number(v['classic-connections']),
    batch: v.batch === undefined ? undefined : Number(v.batch),
    cases: v.cases.split(','),
    duration: v.duration,
    json: v.json,
  };
}

/** What every case shares: the flags, the MySQL server, the run's database, a scratch dir. */
interface ProjectionRun {
  f: ProjectionFlags;
  batch: number;
  /** The server's URL as configured; `url` is the same server with the run's database. */
  mysqlUrl: string;
  database: string;
  url: string;
  /** A connection without a database, for creating and dropping the run's databases. */
  admin: Connection;
  dir: string;
}

/** Writes the journal through the engine, then measures the projector applying it to MySQL. */
async function projectorCase(p: ProjectionRun): Promise<BenchCase> {
  const { f, dir } = p;
  say(`writing the journal: ${fmt(f.reservations)} reservations over ${fmt(f.skus)} SKUs ...`);
  const written = await writeJournal(join(dir, 'data'), f.reservations, f.skus, f.confirmShare);
  say(`  ${fmt(written.events)} events in ${round(written.seconds, 1)} s`);
  const pool = openMysqlPool(p.url);
  try {
    await migrate(pool);
    say(`projecting into ${p.database} (batches of ${fmt(p.batch)} events) ...`);
    return await benchProjector(pool, join(dir, 'data'), written, p.batch);
  } finally {
    await pool.end();
  }
}

async function classicCase(p: ProjectionRun): Promise<BenchCase> {
  const { f } = p;
  say(`classic: ${fmt(f.classicPurchases)} conditional UPDATEs ...`);
  return benchClassic(p.url, f.skus, f.classicPurchases, f.classicConnections);
}

async function httpLagCase(p: ProjectionRun): Promise<BenchCase> {
  say(`http_lag: stockade serve --project under wrk for ${p.f.duration} ...`);
  // A database of its own: the projector case's offsets are positions in another journal.
  const httpDb = `${p.database}_http`;
  await p.admin.query(`CREATE DATABASE \`${httpDb}\``);
  try {
    return await benchHttpLag(withDatabase(p.mysqlUrl, httpDb), p.dir, p.f.duration);
  } finally {
    await p.admin.query(`DROP DATABASE IF EXISTS \`${httpDb}\``);
  }
}

/** The cases --cases names, in their fixed order, each in the run's own database. */
async function runCases(p: ProjectionRun): Promise<BenchCase[]> {
  const out: BenchCase[] = [];
  if (p.f.cases.includes('projector')) out.push(await projectorCase(p));
  if (p.f.cases.includes('classic')) out.push(await classicCase(p));
  if (p.f.cases.includes('http_lag')) out.push(await httpLagCase(p));
  return out;
}

export async function run(argv: string[]): Promise<void> {
  const head = benchStart('projection');
  const f = flagsOf(argv);
  const config = loadConfig();
  const batch = f.batch ?? config.projection.batchEventsMax;
  const database = `stockade_bench_${process.pid}`;
  const url = withDatabase(config.mysql.url, database);
  const admin = await createConnection({ uri: config.mysql.url, connectTimeout: 3000 });
  await admin.query(`CREATE DATABASE \`${database}\``);
  const dir = mkdtempSync(join(tmpdir(), 'stockade-bench-projection-'));
  let out: BenchCase[];
  try {
    out = await runCases({ f, batch, mysqlUrl: config.mysql.url, database, url, admin, dir });
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``).catch(() => {});
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
  // The classic design is the ceiling the projector is compared with, when both ran.
  const classic = out.find((c) => c.name === 'classic_conditional_update');
  const projector = out.find((c) => c.name === 'projector');
  if (classic && projector) {
    projector.ceiling_throughput_per_s = classic.throughput_per_s;
    projector.ratio_to_ceiling = round(projector.throughput_per_s / classic.throughput_per_s);
  }
  writeReport(
    {
      ...head,
      config: {
        reservations: f.reservations,
        skus: f.skus,
        confirm_share: f.confirmShare,
        batch_events_max: batch,
        classic_purchases: f.classicPurchases,
        classic_connections: f.classicConnections,
        journal: 'file (durability os)',
      },
      cases: out,
    },
    f.json,
  );
}
