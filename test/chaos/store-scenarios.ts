/**
 * The battery's scenarios for the stores beside the journal. They stop and kill the services,
 * so `npm test` runs them on a private set (`privateStores`: scripts/services.sh with a
 * directory and ports of their own), never on the shared instances other test files use.
 *
 *   storeFault   one of MariaDB, Redis and the MongoDB-compatible server SIGSTOPped (or
 *                kill -9'd and restarted by scripts/services.sh) for `faultMs` under purchase
 *                and product-read load, with everything that uses them running in the server:
 *                the MySQL projector (`--project`), the audit log (`--audit`), the product
 *                API and its Redis cache (`--products`) and the Redis rate limiter
 *                (`--rate-limit-store redis`, at a rate no honest buyer reaches). Purchases must
 *                go on while the store is away (the journal is the record) and never wait for
 *                it; product reads keep being answered while the cache is down; afterwards,
 *                by itself, the projection catches up with every 201 in MySQL exactly once, the
 *                audit log holds a `reserved` document for every 201 and dropped none, and the
 *                cache refills.
 */
import { createConnection } from 'mysql2/promise';
import { MongoClient } from 'mongodb';
import { Redis } from 'ioredis';
import { migrate, openMysqlPool, withDatabase } from '../../persistence/stores/index.js';
import { services } from '../persistence/service-helpers.js';
import type { ServiceName } from '../persistence/service-helpers.js';
import { closedPort } from '../persistence/store-helpers.js';
import { tempDir } from '../engine/helpers.js';
import { prng } from '../simulation/simulation.js';
import { History, check } from './history.js';
import {
  Server,
  defineSkus,
  fileJournal,
  http,
  serviceFault,
  settleUnknowns,
  sleep,
  startBuyers,
  tally,
} from './scenarios.js';
import type { Report } from './scenarios.js';

export type Store = 'mariadb' | 'redis' | 'ferretdb';

/** A counter or gauge of the server's /metrics, summed over its labels (null: not readable). */
async function metric(server: Server, name: string): Promise<number | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${server.port}/metrics`, {
      signal: AbortSignal.timeout(5_000),
    });
    const text = await r.text();
    const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))];
    return values.length === 0 ? null : values.reduce((sum, m) => sum + Number(m[1]), 0);
  } catch {
    return null;
  }
}

export interface StoreFaultOptions {
  seed: number;
  store: Store;
  fault: 'pause' | 'kill';
  faultMs: number;
  /** `mysql.url` of a user who may create databases (STOCKADE_MYSQL_URL). */
  mysqlUrl: string;
  redisUrl: string;
  /** `mongo.url`; the scenario uses a database of its own on that server. */
  mongoUrl: string;
  /** A private set of services (privateStores) instead of the checkout's. */
  private?: PrivateStores;
  lanes: number;
  progress?: (line: string) => void;
}

/** MariaDB, Redis and FerretDB of the scenario's own, started by scripts/services.sh. */
export interface PrivateStores {
  dir: string;
  env: Record<string, string>;
  mysqlUrl: string;
  redisUrl: string;
  mongoUrl: string;
  down(): Promise<void>;
}

export async function privateStores(): Promise<PrivateStores> {
  const dir = tempDir('stockade-stores-');
  const [mariadb, redis, ferretdb] = [await closedPort(), await closedPort(), await closedPort()];
  const env = {
    SERVICES_DIR: dir,
    SERVICES_MARIADB_PORT: String(mariadb),
    SERVICES_REDIS_PORT: String(redis),
    SERVICES_FERRETDB_PORT: String(ferretdb),
  };
  const names: ServiceName[] = ['mariadb', 'redis', 'ferretdb'];
  try {
    await services('up', names, env);
  } catch (e) {
    // Whatever did start is stopped before its directory (and PID files) goes away.
    await services('down', names, env).catch(() => {});
    throw e;
  }
  return {
    dir,
    env,
    mysqlUrl: `mysql://stockade:stockade@127.0.0.1:${mariadb}/stockade`,
    redisUrl: `redis://127.0.0.1:${redis}`,
    mongoUrl: `mongodb://127.0.0.1:${ferretdb}/stockade`,
    down: () => services('down', names, env),
  };
}

export async function storeFault(o: StoreFaultOptions): Promise<Report> {
  const rand = prng(o.seed);
  const name = `stockade_chaos_${process.pid}_${Date.now()}`;
  const fault = serviceFault(o.store, o.fault, o.private);
  const admin = await createConnection({ uri: o.mysqlUrl, connectTimeout: 3000 });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  await admin.end();
  const mysqlUrl = withDatabase(o.mysqlUrl, name);
  const pool = openMysqlPool(mysqlUrl);
  const mongoUrl = new URL(o.mongoUrl);
  mongoUrl.pathname = `/${name}`;
  const journal = fileJournal();
  const server = new Server(
    [
      ...journal.args,
      '--project',
      '--audit',
      '--products',
      ...['--rate-limit', '1000000', '--rate-limit-store', 'redis'],
    ],
    {
      STOCKADE_MYSQL_URL: mysqlUrl,
      STOCKADE_REDIS_URL: o.redisUrl,
      STOCKADE_MONGO_URL: mongoUrl.href,
      STOCKADE_PRODUCTS_CACHE_KEY_PREFIX: `${name}:product:`,
    },
  );
  const h = new History();
  const skus = ['st-0', 'st-1', 'st-2'];
  const stock = 1_000_000;
  let buyers: { stop(): Promise<void> } | null = null;
  let reading = false;
  let reader: Promise<void> = Promise.resolve();
  const what = o.fault === 'pause' ? 'stopped (SIGSTOP)' : 'killed (kill -9)';
  try {
    await migrate(pool);
    await server.start();
    await defineSkus(server, skus, stock);
    const product = await http(server.port, 'PUT', '/v1/products/p-0', {
      name: 'Chaos tee',
      price: 10,
      sku: 'st-0',
    });
    if (product.status !== 201) throw new Error(`PUT product: ${product.status}`);
    let faultAt = Infinity;
    let backAt = Infinity;
    let slowest = 0;
    buyers = startBuyers({
      ...{ h, server, rand, skus, lanes: o.lanes, prefix: 's' },
      seen: (_p, _outcome, sent, answered) => {
        if (sent >= faultAt && sent < backAt) slowest = Math.max(slowest, answered - sent);
      },
    });
    // A reader of the product page all along: it must always be answered.
    const reads: Record<string, number> = {};
    let slowestRead = 0;
    reading = true;
    reader = (async () => {
      while (reading) {
        const started = Date.now();
        const r = await http(server.port, 'GET', '/v1/products/p-0');
        if (started >= faultAt && started < backAt) {
          slowestRead = Math.max(slowestRead, Date.now() - started);
        }
        const key = String(r.status ?? r.failure);
        reads[key] = (reads[key] ?? 0) + 1;
        await sleep(20);
      }
    })();
    await sleep(1_000);
    const okBefore = h.count('ok');
    fault.inject();
    faultAt = Date.now();
    o.progress?.(`storeFault: ${o.store} ${what} for ${o.faultMs} ms after ${okBefore} purchases`);
    let maxLag = 0;
    while (Date.now() < faultAt + o.faultMs) {
      maxLag = Math.max(maxLag, (await metric(server, 'stockade_projection_lag')) ?? 0);
      await sleep(250);
    }
    // The buyers stop with the fault, so that the catch-up is timed on a fixed backlog.
    await buyers.stop();
    const okDuringFault = h.count('ok') - okBefore;
    const restoredAt = Date.now();
    await fault.cure();
    backAt = Date.now();
    const restartMs = backAt - restoredAt;
    reading = false;
    await reader;
    const resolved = await settleUnknowns(h, server, 60_000);
    const acked = [...new Set(h.ops.filter((x) => x.outcome === 'ok').map((x) => x.key))];
    // Everything downstream catches up by itself: no restart, no operator.
    const deadline = Date.now() + 120_000;
    let caughtUpMs: number | null = null;
    let auditedMs: number | null = null;
    const mongo = new MongoClient(mongoUrl.href, { serverSelectionTimeoutMS: 5_000 });
    const audit = mongo.db(name).collection('audit');
    while (Date.now() < deadline && (caughtUpMs === null || auditedMs === null)) {
      if (caughtUpMs === null && (await metric(server, 'stockade_projection_lag')) === 0) {
        caughtUpMs = Date.now() - backAt;
      }
      if (
        auditedMs === null &&
        (await audit.countDocuments({ kind: 'reservation', outcome: 'reserved' })) >= acked.length
      ) {
        auditedMs = Date.now() - backAt;
      }
      await sleep(200);
    }
    // The cache refills: a read after the fault puts the product back in Redis.
    const redis = new Redis(o.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    const cacheKey = `${name}:product:p-0`;
    await redis.del(cacheKey);
    const refillReads: string[] = [];
    let refilledMs: number | null = null;
    const refillFrom = Date.now();
    while (Date.now() < refillFrom + 30_000) {
      const r = await http(server.port, 'GET', '/v1/products/p-0');
      refillReads.push(String(r.status ?? r.failure));
      if (r.status === 200 && (await redis.exists(cacheKey)) === 1) {
        refilledMs = Date.now() - refillFrom;
        break;
      }
      await sleep(100);
    }
    await redis.quit();
    const dropped = (await metric(server, 'stockade_audit_dropped_total')) ?? -1;
    const [rows] = await pool.query('SELECT idempotency_key AS k FROM reservations');
    const documents = await audit
      .find({ kind: 'reservation', outcome: 'reserved' }, { projection: { idempotencyKey: 1 } })
      .toArray();
    await mongo.close();
    const code = await server.stop();
    const verdict = check(
      h,
      await journal.events(),
      await journal.replay(skus),
      new Map(skus.map((s) => [s, stock])),
    );
    const count = (keys: string[]) => {
      const m = new Map<string, number>();
      for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
      return m;
    };
    const inMysql = count((rows as { k: string }[]).map((r) => r.k));
    const audited = count(documents.map((d) => String(d.idempotencyKey)));
    // Each reply is audited once: a key answered reserved n times (retries) has n documents.
    const replies = count(h.ops.filter((x) => x.outcome === 'ok').map((x) => x.key));
    const notInMysqlOnce = acked.filter((k) => inMysql.get(k) !== 1);
    const notAudited = acked.filter((k) => (audited.get(k) ?? 0) < 1);
    const overAudited = [...audited].filter(([k, n]) => n > (replies.get(k) ?? 0));
    const notRead = Object.keys(reads).filter((k) => k !== '200');
    const violations = [
      ...verdict.violations,
      ...(okDuringFault > 0 ? [] : [`no purchase confirmed while ${o.store} was away`]),
      ...(slowest < 2_000 ? [] : [`a purchase sent during the fault waited ${slowest} ms`]),
      ...notRead.map((k) => `${reads[k]} product reads answered ${k}`),
      ...(slowestRead < 2_000 ? [] : [`a product read during the fault waited ${slowestRead} ms`]),
      ...(caughtUpMs !== null ? [] : ['the projection did not catch up within 120 s']),
      ...(auditedMs !== null ? [] : ['the audit log did not catch up within 120 s']),
      ...notInMysqlOnce.slice(0, 5).map((k) => `key ${k}: ${inMysql.get(k) ?? 0} rows in MySQL`),
      ...(inMysql.size === verdict.inJournal
        ? []
        : [`MySQL holds ${inMysql.size} reservations, the journal ${verdict.inJournal}`]),
      ...notAudited.slice(0, 5).map((k) => `key ${k}: confirmed, not in the audit log`),
      ...overAudited.slice(0, 5).map(([k, n]) => `key ${k}: ${n} audit documents`),
      ...(dropped === 0 ? [] : [`the audit log dropped ${dropped} entries`]),
      ...(refilledMs !== null
        ? []
        : [`the product cache did not refill: ${refillReads.slice(0, 5).join(', ')}`]),
      ...(code === 0 ? [] : [`serve exited ${code} on SIGTERM`]),
    ];
    return {
      scenario: `${o.store} ${what} for ${o.faultMs / 1000} s under load (projector, audit log, cache, rate limiter)`,
      seed: o.seed,
      ...tally(h),
      resolvedByRetry: resolved,
      ...verdict,
      violations,
      extra: {
        confirmedDuringFault: okDuringFault,
        slowestPurchaseDuringFaultMs: slowest,
        productReads: reads,
        slowestProductReadDuringFaultMs: slowestRead,
        ...(o.fault === 'kill' ? { restartToReadyMs: restartMs } : {}),
        // Bytes of journal not yet applied, summed over shards (the file journal's offsets).
        maxProjectionLagBytes: maxLag,
        projectionCaughtUpAfterMs: caughtUpMs,
        auditCaughtUpAfterMs: auditedMs,
        rowsInMysql: inMysql.size,
        auditDocuments: documents.length,
        cacheRefilledAfterMs: refilledMs,
        readsUntilRefilled: refillReads.length,
      },
    };
  } finally {
    // Each step on its own: one that fails must neither skip the others nor hide the error.
    const curing = fault.cure(); // leave the service as it was found (a pause: at once)
    reading = false;
    await Promise.all([buyers?.stop(), reader]);
    await server.end();
    const steps: (() => Promise<unknown>)[] = [
      () => curing,
      () => pool.end(),
      async () => {
        // New connections: a killed server's old ones are gone.
        const drop = await createConnection({ uri: o.mysqlUrl, connectTimeout: 3000 });
        await drop.query(`DROP DATABASE IF EXISTS \`${name}\``);
        await drop.end();
      },
      async () => {
        const mongo = new MongoClient(mongoUrl.href, { serverSelectionTimeoutMS: 5_000 });
        await mongo.db(name).dropDatabase();
        await mongo.close();
      },
    ];
    for (const step of steps) {
      await step().catch((e: Error) => process.stderr.write(`storeFault cleanup: ${e.message}\n`));
    }
  }
}
