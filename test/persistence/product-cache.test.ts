import t from 'tap';
import type { Test } from 'tap';
import { ProductCache, createRedis } from '../../persistence/stores/index.js';
import type { Redis } from 'ioredis';
import { closedPort, dropKeys, redisClient, requireRedis, uniqueName } from './store-helpers.js';

interface Product {
  id: string;
  name: string;
  price: number;
}

/** A record store that counts its reads; `gate` holds loads until released. */
class Records {
  calls = 0;
  readonly rows = new Map<string, Product>();
  gate: Promise<void> | null = null;
  load = async (id: string): Promise<Product | null> => {
    this.calls++;
    if (this.gate) await this.gate;
    return this.rows.get(id) ?? null;
  };
}

/** A cache with a key prefix of its own; its keys are deleted when the test ends. */
async function setup(t: Test, ttlS = 60, notFoundTtlS?: number) {
  const redis = await redisClient(t);
  const keyPrefix = `${uniqueName('stockade_test_product')}:`;
  t.teardown(() => dropKeys(redis, keyPrefix));
  const records = new Records();
  const load = records.load;
  const cache = new ProductCache<Product>({ redis, load, ttlS, keyPrefix, notFoundTtlS });
  return { redis, records, cache, keyPrefix };
}

t.test('redis product cache', async (t) => {
  if (!(await requireRedis(t))) return;

  t.test('a hit is served by Redis without calling load', async (t) => {
    const { records, cache, redis, keyPrefix } = await setup(t);
    records.rows.set('p1', { id: 'p1', name: 'Tee', price: 1999 });
    t.same(await cache.get('p1'), { id: 'p1', name: 'Tee', price: 1999 });
    t.equal(records.calls, 1, 'the miss loaded the record');
    t.same(JSON.parse((await redis.get(`${keyPrefix}p1`))!), records.rows.get('p1'));
    const ttl = await redis.ttl(`${keyPrefix}p1`);
    t.ok(ttl > 0 && ttl <= 60, `stored with EX ttl (${ttl})`);
    records.rows.set('p1', { id: 'p1', name: 'changed in the record', price: 1 });
    for (let i = 0; i < 5; i++) t.equal((await cache.get('p1'))!.name, 'Tee');
    t.equal(records.calls, 1, 'hits never call load');
    t.match(cache.stats, { hits: 5, misses: 1, loads: 1, errors: 0 });
  });

  t.test(
    'getText serves the stored JSON as it is, and reads the record past a foreign value',
    async (t) => {
      const { records, cache, redis, keyPrefix } = await setup(t);
      records.rows.set('p1', { id: 'p1', name: 'Tee', price: 1999 });
      const first = await cache.getText('p1');
      t.same(JSON.parse(first!), records.rows.get('p1'), 'a miss gives the record as JSON');
      // Stored text is returned byte for byte, not re-serialized (spacing kept).
      await redis.set(`${keyPrefix}p1`, '{ "id": "p1", "name": "Tee" }');
      t.equal(await cache.getText('p1'), '{ "id": "p1", "name": "Tee" }');
      t.equal(records.calls, 1, 'the hit did not load');
      await redis.set(`${keyPrefix}p1`, '{"id":"p1","na');
      t.same(
        JSON.parse((await cache.getText('p1'))!),
        records.rows.get('p1'),
        'a cut-short value: the record',
      );
      t.equal(records.calls, 2);
      t.equal(cache.stats.errors, 1, 'counted as an error');
      t.equal(await cache.getText('nope'), null, 'not found');
      t.equal(await cache.getText('nope'), null, 'not found, cached');
      t.equal(records.calls, 3);
    },
  );

  t.test('concurrent misses of one id share one load (single-flight)', async (t) => {
    const { records, cache } = await setup(t);
    records.rows.set('hot', { id: 'hot', name: 'Hot', price: 5 });
    let release!: () => void;
    records.gate = new Promise((r) => (release = r));
    const reads = Array.from({ length: 50 }, () => cache.get('hot'));
    const other = cache.get('other');
    // Every read has passed its Redis GET (a miss) once 51 misses are counted.
    while (cache.stats.misses < 51) await new Promise((r) => setImmediate(r));
    t.equal(records.calls, 2, 'one load for "hot", one for "other"');
    release();
    const values = await Promise.all(reads);
    t.ok(
      values.every((v) => v?.name === 'Hot'),
      'every reader gets the loaded value',
    );
    t.equal(await other, null);
    t.equal(cache.stats.loads, 2);
  });

  t.test('invalidate makes the next get load the record again', async (t) => {
    const { records, cache, redis, keyPrefix } = await setup(t);
    records.rows.set('p', { id: 'p', name: 'Old', price: 1 });
    t.equal((await cache.get('p'))!.name, 'Old');
    records.rows.set('p', { id: 'p', name: 'New', price: 2 });
    t.equal((await cache.get('p'))!.name, 'Old', 'cached');
    await cache.invalidate('p');
    t.equal(await redis.exists(`${keyPrefix}p`), 0, 'the key is deleted');
    t.equal((await cache.get('p'))!.name, 'New');
    t.equal(records.calls, 2);
  });

  t.test('an invalidate during a load keeps the stale value out of Redis', async (t) => {
    const { records, cache, redis, keyPrefix } = await setup(t);
    records.rows.set('p', { id: 'p', name: 'Old', price: 1 });
    let release!: () => void;
    records.gate = new Promise((r) => (release = r));
    const read = cache.get('p');
    while (records.calls < 1) await new Promise((r) => setImmediate(r));
    records.rows.set('p', { id: 'p', name: 'New', price: 2 });
    await cache.invalidate('p');
    release();
    await read;
    records.gate = null;
    t.equal(await redis.exists(`${keyPrefix}p`), 0, 'the in-flight load did not write back');
    t.equal((await cache.get('p'))!.name, 'New');
  });

  t.test('"not found" is cached, briefly', async (t) => {
    const { records, cache, redis, keyPrefix } = await setup(t, 60, 2);
    t.equal(await cache.get('ghost'), null);
    t.equal(await cache.get('ghost'), null);
    t.equal(records.calls, 1, 'the second read was a hit on the cached "not found"');
    const ttl = await redis.ttl(`${keyPrefix}ghost`);
    t.ok(ttl > 0 && ttl <= 2, `"not found" expires in ${ttl} s`);
  });

  t.test('a value expires after its TTL and is loaded again', async (t) => {
    const { records, cache, redis, keyPrefix } = await setup(t, 1);
    records.rows.set('p', { id: 'p', name: 'Short', price: 1 });
    await cache.get('p');
    t.equal(await cache.get('p').then((v) => v?.name), 'Short');
    t.equal(records.calls, 1);
    // Redis expires the key by itself; wait for that (bounded), then read again.
    const deadline = Date.now() + 5000;
    while ((await redis.exists(`${keyPrefix}p`)) === 1) {
      if (Date.now() > deadline) throw new Error('the key did not expire within 5 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    await cache.get('p');
    t.equal(records.calls, 2, 'loaded again after expiry');
  });

  t.test('Redis down: reads fall through to load, counted, and never fail', async (t) => {
    const redis: Redis = createRedis(`redis://127.0.0.1:${await closedPort()}`);
    t.teardown(() => redis.disconnect());
    const records = new Records();
    records.rows.set('p', { id: 'p', name: 'From the record', price: 1 });
    const cache = new ProductCache<Product>({
      redis,
      load: records.load,
      ttlS: 60,
      keyPrefix: 'x:',
    });
    const started = Date.now();
    t.equal((await cache.get('p'))!.name, 'From the record');
    t.equal((await cache.get('p'))!.name, 'From the record');
    await cache.invalidate('p');
    t.ok(Date.now() - started < 1000, 'no waiting for a Redis that is not there');
    t.equal(records.calls, 2, 'each read went to the record');
    t.ok(cache.stats.errors >= 3, `errors counted (${cache.stats.errors})`);
    t.equal(cache.stats.hits, 0);
  });
});
