/**
 * The battery's scenarios for the read-side stores (`npm run chaos` only: pausing the shared
 * MariaDB inside `npm test` would stall the MySQL tests that run beside it).
 *
 *   mysqlPause   MariaDB SIGSTOPped for `pauseMs` under purchase load, with the MySQL projector
 *                running in the server (`serve --project`): purchases go on while it is away
 *                (the journal is the record), the projector's lag grows, and once MariaDB is
 *                back the projection catches up by itself with every 201 in MySQL exactly once.
 */
import { createConnection } from 'mysql2/promise';
import { migrate, openMysqlPool, withDatabase } from '../../persistence/stores/index.js';
import { prng } from '../simulation/simulation.js';
import { History, check } from './history.js';
import {
  Server,
  defineSkus,
  fileJournal,
  servicePid,
  settleUnknowns,
  sleep,
  startBuyers,
  tally,
} from './scenarios.js';
import type { Report } from './scenarios.js';

/** The projector's lag summed over shards, from the server's /metrics (null: not readable). */
async function projectionLag(server: Server): Promise<number | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${server.port}/metrics`, {
      signal: AbortSignal.timeout(5_000),
    });
    const text = await r.text();
    const lags = [...text.matchAll(/^stockade_projection_lag\{shard="\d+"\} (\d+)/gm)];
    return lags.length === 0 ? null : lags.reduce((sum, m) => sum + Number(m[1]), 0);
  } catch {
    return null;
  }
}

export interface MysqlPauseOptions {
  seed: number;
  /** `mysql.url` of a user who may create databases (STOCKADE_MYSQL_URL). */
  mysqlUrl: string;
  pauseMs: number;
  lanes: number;
  progress?: (line: string) => void;
}

export async function mysqlPause(o: MysqlPauseOptions): Promise<Report> {
  const rand = prng(o.seed);
  const database = `stockade_chaos_${process.pid}_${Date.now()}`;
  const admin = await createConnection({ uri: o.mysqlUrl, connectTimeout: 3000 });
  await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
  const url = withDatabase(o.mysqlUrl, database);
  const pool = openMysqlPool(url);
  await migrate(pool);
  const journal = fileJournal();
  const server = new Server([...journal.args, '--project'], { STOCKADE_MYSQL_URL: url });
  const h = new History();
  const skus = ['m-0', 'm-1', 'm-2'];
  const stock = 1_000_000;
  const pid = servicePid('mariadb');
  let paused = false;
  try {
    await server.start();
    await defineSkus(server, skus, stock);
    let pausedAt = Infinity;
    let resumedAt = Infinity;
    let slowest = 0;
    const buyers = startBuyers({
      ...{ h, server, rand, skus, lanes: o.lanes, prefix: 'm' },
      seen: (_p, _outcome, sent, answered) => {
        if (sent >= pausedAt && sent < resumedAt) slowest = Math.max(slowest, answered - sent);
      },
    });
    await sleep(1_000);
    process.kill(pid, 'SIGSTOP');
    paused = true;
    pausedAt = Date.now();
    const okBefore = h.count('ok');
    o.progress?.(`mysqlPause: MariaDB stopped for ${o.pauseMs} ms after ${okBefore} purchases`);
    let maxLag = 0;
    while (Date.now() < pausedAt + o.pauseMs) {
      maxLag = Math.max(maxLag, (await projectionLag(server)) ?? 0);
      await sleep(250);
    }
    // The buyers stop with the pause, so that the catch-up is timed on a fixed backlog.
    await buyers.stop();
    const okWhilePaused = h.count('ok') - okBefore;
    process.kill(pid, 'SIGCONT');
    paused = false;
    resumedAt = Date.now();
    // The projection catches up by itself: no restart, no operator.
    let caughtUpMs: number | null = null;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if ((await projectionLag(server)) === 0) {
        caughtUpMs = Date.now() - resumedAt;
        break;
      }
      await sleep(100);
    }
    const resolved = await settleUnknowns(h, server, 60_000);
    while ((await projectionLag(server)) !== 0 && Date.now() < deadline) await sleep(100);
    const [rows] = await pool.query('SELECT idempotency_key AS k FROM reservations');
    const code = await server.stop();
    const verdict = check(
      h,
      await journal.events(),
      await journal.replay(skus),
      new Map(skus.map((s) => [s, stock])),
    );
    const inMysql = new Map<string, number>();
    for (const row of rows as { k: string }[]) inMysql.set(row.k, (inMysql.get(row.k) ?? 0) + 1);
    const acked = [...new Set(h.ops.filter((x) => x.outcome === 'ok').map((x) => x.key))];
    const notOnce = acked.filter((k) => inMysql.get(k) !== 1);
    const violations = [
      ...verdict.violations,
      ...(okWhilePaused > 0 ? [] : ['no purchase confirmed while MariaDB was stopped']),
      ...(slowest < 2_000 ? [] : [`a purchase sent during the pause waited ${slowest} ms`]),
      ...(caughtUpMs !== null ? [] : ['the projection did not catch up within 120 s']),
      ...notOnce.slice(0, 10).map((k) => `key ${k}: ${inMysql.get(k) ?? 0} rows in MySQL`),
      ...(inMysql.size === verdict.inJournal
        ? []
        : [`MySQL holds ${inMysql.size} reservations, the journal ${verdict.inJournal}`]),
      ...(code === 0 ? [] : [`serve exited ${code} on SIGTERM`]),
    ];
    return {
      scenario: `MariaDB stopped (SIGSTOP) for ${o.pauseMs / 1000} s under load, projector running`,
      seed: o.seed,
      ...tally(h),
      resolvedByRetry: resolved,
      ...verdict,
      violations,
      extra: {
        confirmedWhilePaused: okWhilePaused,
        slowestPurchaseDuringPauseMs: slowest,
        maxProjectionLagBytes: maxLag,
        caughtUpAfterResumeMs: caughtUpMs,
        rowsInMysql: inMysql.size,
      },
    };
  } finally {
    if (paused) process.kill(pid, 'SIGCONT');
    await server.end();
    await pool.end().catch(() => {});
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``).catch(() => {});
    await admin.end();
  }
}
