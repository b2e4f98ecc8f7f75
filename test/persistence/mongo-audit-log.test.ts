import t from 'tap';
import type { Test } from 'tap';
import { performance } from 'node:perf_hooks';
import { MongoClient } from 'mongodb';
import { MongoAuditLog } from '../../persistence/stores/index.js';
import type { AuditEntry, MongoAuditLogOptions } from '../../persistence/stores/index.js';
import { closedPort, mongoUrl, requireMongo, uniqueName } from './store-helpers.js';

function options(over: Partial<MongoAuditLogOptions> = {}): MongoAuditLogOptions {
  return {
    url: mongoUrl(),
    collection: uniqueName('audit_test'),
    bufferMax: 10_000,
    batchMax: 100,
    flushMs: 20,
    ttlDays: 7,
    ...over,
  };
}

function entry(over: Partial<AuditEntry> = {}): AuditEntry {
  return {
    kind: 'reservation',
    outcome: 'reserved',
    at: Date.now(),
    sku: 'a',
    userId: 'u',
    qty: 1,
    ...over,
  };
}

/**
 * Opens a log on a collection of its own, dropped when the test ends; `collection` is the same
 * collection through a client of the test's (the log's closes with it).
 */
async function open(t: Test, over: Partial<MongoAuditLogOptions> = {}) {
  const log = await MongoAuditLog.open(options(over));
  const client = new MongoClient(mongoUrl());
  const collection = client.db().collection(log.collection.collectionName);
  t.teardown(async () => {
    await log.close();
    await collection.drop().catch(() => {});
    await client.close();
  });
  return { log, collection };
}

t.test('mongo audit log', async (t) => {
  if (!(await requireMongo(t))) return;

  t.test('the TTL (or sweep) and the dashboard indexes exist', async (t) => {
    const { log, collection } = await open(t, { ttlDays: 3 });
    const indexes = await collection.indexes();
    const byName = new Map(indexes.map((i) => [i.name, i]));
    t.same(byName.get('sku_kind_outcome_at')?.key, { sku: 1, kind: 1, outcome: 1, at: 1 });
    t.same(byName.get('outcome_at')?.key, { outcome: 1, at: 1 });
    if (log.ttlMode === 'index') {
      t.equal(byName.get('at_ttl')?.expireAfterSeconds, 3 * 86_400, 'TTL index on at');
    } else {
      // FerretDB 1.x: no TTL indexes; a plain index on `at` and the log's own sweep.
      t.equal(log.ttlMode, 'sweep');
      t.same(byName.get('at')?.key, { at: 1 }, 'index on at for the sweep');
    }
    const now = Date.now();
    log.record(entry({ at: now - 4 * 86_400_000, sku: 'old' }));
    log.record(entry({ at: now, sku: 'new' }));
    await log.close();
    // (A real MongoDB's TTL monitor may already have removed the old one.)
    if (log.ttlMode === 'sweep') t.equal(await collection.countDocuments(), 2);
    // Whatever removes expired documents on this server, the sweep agrees with the TTL.
    const name = collection.collectionName;
    const reopened = await MongoAuditLog.open(options({ collection: name, ttlDays: 3 }));
    t.teardown(() => reopened.close());
    const swept = await reopened.sweepExpired(now);
    if (log.ttlMode === 'sweep') t.equal(swept, 1, 'the 4-day-old document expired');
    const left = await reopened.collection.find({}).toArray();
    t.same(
      left.map((d) => d.sku as string),
      ['new'],
    );
    t.type(left[0].at, Date, 'at is a BSON date');
    t.equal(left[0].sec, Math.floor(now / 1000), 'sec is the epoch second');
  });

  t.test('the two dashboard aggregations return the right numbers', async (t) => {
    const { log } = await open(t);
    const base = Math.floor(Date.now() / 1000) * 1000 - 10_000; // a second boundary, 10 s ago
    const s0 = base / 1000;
    const add = (dtMs: number, over: Partial<AuditEntry>) =>
      log.record(entry({ at: base + dtMs, ...over }));
    add(0, { qty: 1 });
    add(300, { qty: 2 });
    add(999, { qty: 1 });
    add(1000, { qty: 3 });
    add(2500, { qty: 1 });
    add(2600, { sku: 'b', qty: 5 }); // another SKU
    add(2700, { outcome: 'sold_out', qty: 1 });
    add(2800, { outcome: 'sold_out', qty: 1 });
    add(2900, { outcome: 'rate_limited', qty: 1 });
    add(3000, { kind: 'transition', outcome: 'confirmed', qty: 1 }); // not a purchase attempt
    add(3100, { kind: 'transition', outcome: 'hold_expired', qty: null });
    add(-60_000, { outcome: 'limit_exceeded' }); // before the window
    add(-60_000, { qty: 7 });
    await log.close();
    t.equal(log.stats.written, 13);

    const q = await MongoAuditLog.open(options({ collection: log.collection.collectionName }));
    t.teardown(() => q.close());
    t.same(await q.salesPerSecond('a', base), [
      { second: s0, reservations: 3, units: 4 },
      { second: s0 + 1, reservations: 1, units: 3 },
      { second: s0 + 2, reservations: 1, units: 1 },
    ]);
    t.same(await q.salesPerSecond('b', base), [{ second: s0 + 2, reservations: 1, units: 5 }]);
    t.same(await q.salesPerSecond('a', base + 1000), [
      { second: s0 + 1, reservations: 1, units: 3 },
      { second: s0 + 2, reservations: 1, units: 1 },
    ]);
    t.same(await q.rejectionsByReason(base), [
      { reason: 'sold_out', count: 2 },
      { reason: 'rate_limited', count: 1 },
    ]);
    t.same(await q.rejectionsByReason(base - 120_000), [
      { reason: 'sold_out', count: 2 },
      { reason: 'limit_exceeded', count: 1 },
      { reason: 'rate_limited', count: 1 },
    ]);
  });

  t.test('batches by size: many entries, every one written once', async (t) => {
    const { log, collection } = await open(t, { batchMax: 50, flushMs: 60_000 });
    for (let i = 0; i < 1000; i++) log.record(entry({ userId: `u${i}` }));
    await log.close();
    t.equal(log.stats.written, 1000);
    t.equal(log.stats.dropped, 0);
    t.equal(await collection.countDocuments(), 1000);
    t.equal((await collection.distinct('userId')).length, 1000, 'no document twice');
  });

  t.test('a document the server refuses is counted, and the log goes on', async (t) => {
    const seen: unknown[] = [];
    const onError = (err: unknown) => {
      seen.push(err);
      throw new Error('a listener that throws');
    };
    const { log, collection } = await open(t, { batchMax: 10, flushMs: 10, onError });
    log.record(entry({ userId: 'before' }));
    log.record(entry({ userId: 'refused', $bad: 1 })); // a key no MongoDB server stores
    log.record(entry({ userId: 'after' }));
    await log.close();
    t.match(log.stats, { written: 2, rejected: 1, dropped: 0 });
    t.same(
      (await collection.distinct('userId')).sort(),
      ['after', 'before'],
      'its neighbours are written',
    );
    t.equal(seen.length, 1, 'the refusal is reported once');
    log.record(entry());
    t.equal(log.stats.dropped, 1, 'closed: counted as dropped, as before');
  });
});

t.test('MongoDB unreachable: record never blocks, drops past the bound and counts', async (t) => {
  const errors: unknown[] = [];
  const log = new MongoAuditLog(
    options({
      onError: (e) => errors.push(e),
      url: `mongodb://127.0.0.1:${await closedPort()}/stockade`,
      bufferMax: 10,
      batchMax: 4,
      flushMs: 5,
      serverSelectionTimeoutMs: 200,
      retryMinMs: 10,
      closeTimeoutMs: 300,
    }),
  );
  const started = performance.now();
  for (let i = 0; i < 10_000; i++) log.record(entry());
  const ms = performance.now() - started;
  t.ok(ms < 200, `10,000 records took ${ms.toFixed(1)} ms, with MongoDB down`);
  t.equal(log.buffered, 10, 'the buffer holds its bound');
  t.equal(log.stats.dropped, 9990, 'the rest were dropped and counted');
  // A write attempt fails (server selection times out) and is retried with backoff.
  const deadline = Date.now() + 5000;
  while (log.stats.failed < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.ok(log.stats.failed >= 2, `writes failed and were retried (${log.stats.failed})`);
  t.equal(log.buffered, 10, 'a failed batch stays in the buffer for the retry');
  t.equal(errors.length, 1, 'the outage is reported once');
  await log.close();
  t.equal(log.stats.written, 0);
  t.equal(log.stats.dropped, 10_000, 'close gave up after its timeout: all counted as dropped');
});
