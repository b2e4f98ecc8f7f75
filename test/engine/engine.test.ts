import t from 'tap';
import { inspect } from 'node:util';
import { ManualClock, EngineError, isRejection } from '../../engine/index.js';
import type { ReserveRequest, ReserveResult, SkuEvent } from '../../engine/index.js';
import { testEngine } from './helpers.js';

t.test('a hot SKU with many concurrent buyers sells exactly its stock', async (t) => {
  const engine = await testEngine();
  t.teardown(() => engine.close());
  await engine.defineSku({ sku: 'hot', stock: 1000, perUserLimit: 3 });
  // 600 users each try 5 times (single calls and batches interleaved): 3,000 attempts for 1,000
  // units.
  const calls: Promise<ReserveResult | ReserveResult[]>[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    const batch: ReserveRequest[] = [];
    for (let u = 0; u < 600; u++) {
      const req = { sku: 'hot', userId: `u${u}`, qty: 1, idempotencyKey: `u${u}-a${attempt}` };
      if (u % 2 === 0) calls.push(engine.reserve(req));
      else batch.push(req);
    }
    calls.push(engine.reserveMany(batch));
  }
  const results = (await Promise.all(calls)).flat();
  const reserved = results.filter((r) => r.status === 'reserved');
  t.equal(reserved.length, 1000, 'exactly the stock is reserved');
  t.equal(
    results.filter((r) => r.status === 'sold_out').length +
      results.filter((r) => r.status === 'limit_exceeded').length,
    2000,
  );
  const perUser = new Map<string, number>();
  for (const r of reserved) {
    if (r.status !== 'reserved') continue;
    const user = r.reservationId; // unique ids
    perUser.set(user, (perUser.get(user) ?? 0) + 1);
  }
  t.equal(perUser.size, 1000, 'every reservation id is distinct');
  const snap = await engine.getSku('hot');
  t.match(snap, { available: 0, reserved: 1000, sold: 0 });
});

t.test('per-user limits hold across shards and concurrent calls', async (t) => {
  const engine = await testEngine({ engine: { shards: 2 } });
  t.teardown(() => engine.close());
  const skus = ['a', 'b', 'c', 'd'];
  for (const sku of skus) await engine.defineSku({ sku, stock: 10_000, perUserLimit: 2 });
  const reqs: ReserveRequest[] = [];
  for (const sku of skus)
    for (let i = 0; i < 50; i++)
      for (const user of ['x', 'y'])
        reqs.push({ sku, userId: user, qty: 1, idempotencyKey: `${sku}-${user}-${i}` });
  const results = await Promise.all([
    engine.reserveMany(reqs.slice(0, 200)),
    engine.reserveMany(reqs.slice(200)),
  ]);
  const flat = results.flat();
  const byUserSku = new Map<string, number>();
  flat.forEach((r, i) => {
    const req = reqs[i];
    if (r.status === 'reserved')
      byUserSku.set(
        `${req.sku}/${req.userId}`,
        (byUserSku.get(`${req.sku}/${req.userId}`) ?? 0) + r.qty,
      );
  });
  t.equal(byUserSku.size, 8);
  for (const [k, units] of byUserSku) t.equal(units, 2, `${k} got exactly the limit`);
});

t.test('duplicates never double-sell, even when sent at once', async (t) => {
  const engine = await testEngine();
  t.teardown(() => engine.close());
  await engine.defineSku({ sku: 'dup', stock: 100 });
  const req = { sku: 'dup', userId: 'u', qty: 2, idempotencyKey: 'same' };
  const results = await Promise.all([
    ...Array.from({ length: 50 }, () => engine.reserve(req)),
    engine.reserveMany(Array(50).fill(req)),
  ]);
  const flat = results.flat();
  t.ok(
    flat.every((r) => r.status === 'reserved'),
    'every retry is answered reserved',
  );
  t.equal(
    new Set(flat.map((r) => (r.status === 'reserved' ? r.reservationId : ''))).size,
    1,
    'one reservation id',
  );
  t.equal(flat.filter((r) => r.status === 'reserved' && !r.duplicate).length, 1, 'one original');
  t.match(await engine.getSku('dup'), { available: 98, reserved: 2 });
  t.match(await engine.reserve({ ...req, qty: 1 }), { status: 'idempotency_conflict' });
});

t.test('invalid input is rejected before it reaches a shard, naming the field', async (t) => {
  const engine = await testEngine();
  t.teardown(() => engine.close());
  await engine.defineSku({ sku: 'v', stock: 1 });
  const base = { sku: 'v', userId: 'u', qty: 1, idempotencyKey: 'k' };
  t.match(await engine.reserve({ ...base, sku: 'bad sku!' }), { status: 'invalid', field: 'sku' });
  t.match(await engine.reserve({ ...base, userId: '' }), { status: 'invalid', field: 'userId' });
  t.match(await engine.reserve({ ...base, userId: 'x'.repeat(129) }), {
    status: 'invalid',
    field: 'userId',
  });
  t.match(await engine.reserve({ ...base, qty: 0 }), { status: 'invalid', field: 'qty' });
  t.match(await engine.reserve({ ...base, qty: 1.5 }), { status: 'invalid', field: 'qty' });
  t.match(await engine.reserve({ ...base, qty: '1' as unknown as number }), {
    status: 'invalid',
    field: 'qty',
  });
  t.match(await engine.reserve({ ...base, idempotencyKey: undefined as unknown as string }), {
    status: 'invalid',
    field: 'idempotencyKey',
  });
  // A lone surrogate would encode as U+FFFD: 'k\uD800' and 'k\uD801' would be one key.
  t.match(await engine.reserve({ ...base, idempotencyKey: 'k\uD800' }), {
    status: 'invalid',
    field: 'idempotencyKey',
  });
  t.match(await engine.reserve({ ...base, userId: 'u\uDC00' }), {
    status: 'invalid',
    field: 'userId',
  });
  t.match(await engine.confirm('v:1', { userId: 'u\uD800' }), {
    status: 'invalid',
    field: 'userId',
  });
  t.match(
    await engine.reserve({ ...base, userId: 'ü', idempotencyKey: 'k-😀' }),
    { status: 'reserved' },
    'well-formed text is fine',
  );
  t.match(await engine.reserve({ ...base, sku: 'nope' }), { status: 'unknown_sku' });
  t.match(await engine.confirm('garbage'), { status: 'invalid', field: 'reservationId' });
  t.match(await engine.confirm('v:99'), { status: 'unknown_reservation' });
  t.match(await engine.defineSku({ sku: 'w', stock: -1 }), { status: 'invalid', field: 'stock' });
  t.match(await engine.defineSku({ sku: 'w', stock: 1, startsAt: 10, endsAt: 5 }), {
    status: 'invalid',
    field: 'window',
  });
  t.match(await engine.defineSku({ sku: 'v', stock: 1 }), { status: 'sku_exists' });
  // Names too: 'A\uD800B' would come back as 'A\uFFFDB' after a replay.
  t.match(await engine.defineSku({ sku: 'w', stock: 1, name: 'A\uD800B' }), {
    status: 'invalid',
    field: 'name',
  });
  t.match(await engine.updateSku('v', { name: 'A\uDC00' }), { status: 'invalid', field: 'name' });
  t.match(await engine.updateSku('v', { perUserLimit: -1 }), {
    status: 'invalid',
    field: 'perUserLimit',
  });
  t.match(await engine.updateSku('zz', { perUserLimit: 1 }), { status: 'unknown_sku' });
  t.match(await engine.restock('v', 0), { status: 'invalid', field: 'stock' });
  t.match(
    await engine.getSku('v'),
    { available: 0, reserved: 1, seq: 2 },
    'nothing changed but the one valid reservation',
  );
});

t.test('the full lifecycle through the engine, with a manual clock driving expiry', async (t) => {
  const clock = new ManualClock(1_000);
  const engine = await testEngine({}, { clock });
  t.teardown(() => engine.close());
  await engine.defineSku({ sku: 'life', stock: 3, holdTtlMs: 500, startsAt: 2_000 });
  t.match(await engine.reserve({ sku: 'life', userId: 'u', qty: 1, idempotencyKey: 'early' }), {
    status: 'not_open',
  });
  clock.set(2_000);
  const a = await engine.reserve({ sku: 'life', userId: 'u', qty: 1, idempotencyKey: 'a' });
  const b = await engine.reserve({ sku: 'life', userId: 'v', qty: 2, idempotencyKey: 'b' });
  if (a.status !== 'reserved' || b.status !== 'reserved') throw new Error('expected reservations');
  t.equal(a.expiresAt, 2_500);
  t.match(await engine.confirm(a.reservationId), { status: 'confirmed', state: 'confirmed' });
  t.match(await engine.confirm(a.reservationId), { status: 'confirmed' }, 'confirm is idempotent');
  t.match(await engine.cancel(a.reservationId), {
    status: 'invalid_transition',
    state: 'confirmed',
  });
  clock.set(2_600);
  t.equal(await engine.tick(), 1, 'one hold expired (the confirmed one is not counted)');
  t.match(await engine.getSku('life'), { available: 2, reserved: 0, sold: 1 });
  t.match(await engine.confirm(b.reservationId), { status: 'hold_expired' });
  t.match(await engine.returnOrder(a.reservationId), { status: 'returned' });
  t.match(await engine.restock('life', 2), { status: 'restocked', available: 5 });
  t.match(await engine.closeSale('life'), { status: 'sale_closed' });
  t.match(await engine.reserve({ sku: 'life', userId: 'u', qty: 1, idempotencyKey: 'late' }), {
    status: 'closed',
  });
  t.match(await engine.updateSku('life', { price: 1234 }), {
    status: 'updated',
    sku: { price: 1234 },
  });
});

t.test('a full shard queue answers overloaded at once, and the shard recovers', async (t) => {
  const engine = await testEngine({ engine: { shards: 1, shardQueueMax: 100 } });
  t.teardown(() => engine.close());
  await engine.defineSku({ sku: 'q', stock: 1_000 });
  const reqs = Array.from({ length: 250 }, (_, i) => ({
    sku: 'q',
    userId: `u${i}`,
    qty: 1,
    idempotencyKey: `k${i}`,
  }));
  const results = await engine.reserveMany(reqs);
  t.equal(results.filter((r) => r.status === 'reserved').length, 100);
  const over = results.filter((r) => r.status === 'overloaded');
  t.equal(over.length, 150);
  t.ok(
    over.every((r) => isRejection(r) && r.retriable),
    'overloaded is retriable',
  );
  const retry = await engine.reserveMany(reqs.slice(100, 200));
  t.ok(
    retry.every((r) => r.status === 'reserved' && !r.duplicate),
    'retries succeed once the queue drains',
  );
});

t.test('events reach a subscriber in seq order per SKU', async (t) => {
  const engine = await testEngine();
  t.teardown(() => engine.close());
  const sub = await engine.subscribe();
  await engine.defineSku({ sku: 'ev', stock: 5 });
  const r = await engine.reserve({ sku: 'ev', userId: 'u', qty: 2, idempotencyKey: 'k' });
  if (r.status !== 'reserved') throw new Error('expected reserved');
  await engine.confirm(r.reservationId);
  const seen: SkuEvent[] = [];
  for await (const ev of sub) {
    seen.push(ev);
    if (seen.length === 3) break;
  }
  t.same(
    seen.map((e) => [e.type, e.seq]),
    [
      ['sku_defined', 1],
      ['reserved', 2],
      ['confirmed', 3],
    ],
  );
  t.match(seen[1], { userId: 'u', qty: 2, idempotencyKey: 'k', reservation: 1 });
  t.equal((await engine.stats()).subscribers, 0, 'break ends the subscription');
});

t.test(
  'a slow subscriber is ended with events_overflow instead of growing without bound',
  async (t) => {
    const engine = await testEngine({ engine: { eventsBufferMax: 10 } });
    t.teardown(() => engine.close());
    const sub = await engine.subscribe();
    await engine.defineSku({ sku: 'ov', stock: 100 });
    await engine.reserveMany(
      Array.from({ length: 20 }, (_, i) => ({
        sku: 'ov',
        userId: 'u',
        qty: 1,
        idempotencyKey: `${i}`,
      })),
    );
    await engine.drain();
    await t.rejects(
      async () => {
        for await (const _ of sub) {
          /* drain */
        }
      },
      { code: 'events_overflow' },
    );
  },
);

t.test('a crashed shard is detected and reported; other shards keep serving', async (t) => {
  const engine = await testEngine({ engine: { shards: 2 } });
  t.teardown(() => engine.close());
  const skuOn = (shard: number) => {
    for (let i = 0; ; i++) if (engine.shardOf(`s${i}`) === shard) return `s${i}`;
  };
  const dead = skuOn(0);
  const alive = skuOn(1);
  await engine.defineSku({ sku: dead, stock: 10 });
  await engine.defineSku({ sku: alive, stock: 10 });
  const down = new Promise<{ shard: number }>((resolve) => engine.once('shard_down', resolve));
  await engine.crashShardForTest(0);
  t.match(await down, { shard: 0 });
  const r = await engine.reserve({ sku: dead, userId: 'u', qty: 1, idempotencyKey: 'k' });
  t.match(r, { status: 'shard_unavailable', retriable: true });
  t.match(await engine.reserve({ sku: alive, userId: 'u', qty: 1, idempotencyKey: 'k' }), {
    status: 'reserved',
  });
  const stats = await engine.stats();
  t.same(
    stats.shards.map((s) => s.up),
    [false, true],
  );
  await t.rejects(engine.getSkus([dead, alive]), { code: 'shard_unavailable' });
  t.match(
    await engine.getSkus([dead, alive, 'nope'], { skipUnavailable: true }),
    [null, { sku: alive, available: 9 }, null],
    'skipUnavailable: what can be read, null for the SKU on the down shard',
  );
});

t.test('a closed engine throws engine_closed', async (t) => {
  const engine = await testEngine();
  await engine.close();
  t.throws(
    () => engine.reserve({ sku: 'x', userId: 'u', qty: 1, idempotencyKey: 'k' }),
    EngineError,
  );
  await t.rejects(engine.defineSku({ sku: 'x', stock: 1 }), { code: 'engine_closed' });
});

t.test('close() answers everything in flight before it stops', async (t) => {
  const engine = await testEngine();
  await engine.defineSku({ sku: 'c', stock: 10_000 });
  const pending = engine.reserveMany(
    Array.from({ length: 5_000 }, (_, i) => ({
      sku: 'c',
      userId: `u${i}`,
      qty: 1,
      idempotencyKey: `k${i}`,
    })),
  );
  await engine.close();
  const results = await pending;
  t.equal(results.filter((r) => r.status === 'reserved').length, 5_000);
});

t.test('with a userId, confirm/cancel/return act only on that user’s reservation', async (t) => {
  const engine = await testEngine();
  t.teardown(() => engine.close());
  await engine.defineSku({ sku: 'own', stock: 5 });
  const r = await engine.reserve({ sku: 'own', userId: 'alice', qty: 1, idempotencyKey: 'a' });
  if (r.status !== 'reserved') throw new Error('expected reserved');
  t.match(await engine.confirm(r.reservationId, { userId: 'bob' }), {
    status: 'unknown_reservation',
  });
  t.match(await engine.cancel(r.reservationId, { userId: 'bob' }), {
    status: 'unknown_reservation',
  });
  t.match(await engine.getSku('own'), { reserved: 1, sold: 0 }, 'nothing changed');
  t.match(await engine.confirm(r.reservationId, { userId: '' }), {
    status: 'invalid',
    field: 'userId',
  });
  t.match(await engine.confirm(r.reservationId, { userId: 'alice' }), { status: 'confirmed' });
  t.match(await engine.returnOrder(r.reservationId, { userId: 'bob' }), {
    status: 'unknown_reservation',
  });
  t.match(
    await engine.returnOrder(r.reservationId),
    { status: 'returned' },
    'no userId: any (admin, embedder)',
  );
});

t.test('results are plain data: they print, spread and serialize with every field', async (t) => {
  const engine = await testEngine();
  t.teardown(() => engine.close());
  await engine.defineSku({ sku: 'plain', stock: 5 });
  const req = { sku: 'plain', userId: 'u', qty: 2, idempotencyKey: 'k' };
  const reserved = await engine.reserve(req);
  const fields = ['status', 'reservationId', 'sku', 'qty', 'expiresAt', 'duplicate'];
  t.equal(Object.getPrototypeOf(reserved), Object.prototype, 'a plain object');
  t.same(Object.keys(reserved), fields, 'every documented field is its own');
  t.same({ ...reserved }, reserved, 'a spread keeps every field');
  t.same(Object.keys(JSON.parse(JSON.stringify(reserved)) as object), fields, 'JSON keeps them');
  t.match(
    inspect(reserved),
    /^\{\s+status: 'reserved',\s+reservationId: 'plain:1',\s+sku: 'plain',\s+qty: 2,/,
    'util.inspect (console.log) shows them, and nothing else',
  );
  t.match(await engine.reserve(req), { reservationId: 'plain:1', duplicate: true });
  if (reserved.status !== 'reserved') throw new Error('not reserved');
  for (const r of [
    await engine.confirm(reserved.reservationId),
    await engine.restock('plain', 1),
    await engine.reserve({ ...req, qty: 99, idempotencyKey: 'k2' }),
  ]) {
    t.equal(Object.getPrototypeOf(r), Object.prototype, `${r.status}: a plain object`);
    t.same(JSON.parse(JSON.stringify(r)), { ...r }, `${r.status}: JSON and spread agree`);
  }
});
