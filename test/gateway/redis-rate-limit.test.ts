import t from 'tap';
import type { Test } from 'tap';
import { TokenBucketLimiter } from '../../gateway/index.js';
import {
  RedisTokenBucketLimiter,
  createRedis,
  redisReady,
} from '../../persistence/stores/index.js';
import {
  closedPort,
  dropKeys,
  redisClient,
  redisUrl,
  requireRedis,
  uniqueName,
} from '../persistence/store-helpers.js';
import { request, startServer } from './helpers.js';

/** A limiter as one gateway node would have it: its own client, the shared key prefix. */
async function node(t: Test, keyPrefix: string, perS: number, burst: number) {
  const redis = await redisClient(t);
  const fallback = new TokenBucketLimiter(perS, burst, 1000);
  return new RedisTokenBucketLimiter({ redis, perS, burst, keyPrefix, fallback });
}

async function cleanup(keyPrefix: string): Promise<void> {
  const redis = createRedis(redisUrl());
  try {
    if (await redisReady(redis, 5000)) await dropKeys(redis, keyPrefix);
  } finally {
    redis.disconnect();
  }
}

t.test('redis token bucket', async (t) => {
  if (!(await requireRedis(t))) return;

  t.test('two limiters (two nodes) enforce one combined limit per user', async (t) => {
    const keyPrefix = `${uniqueName('stockade_test_rl')}:`;
    t.teardown(() => cleanup(keyPrefix));
    // A refill of one token per 1000 s: nothing comes back during the test.
    const a = await node(t, keyPrefix, 0.001, 5);
    const b = await node(t, keyPrefix, 0.001, 5);
    const takes: (boolean | Promise<boolean>)[] = [];
    for (let i = 0; i < 20; i++) takes.push((i % 2 === 0 ? a : b).take('alice', 0));
    const results = await Promise.all(takes.map((r) => Promise.resolve(r)));
    t.equal(results.filter(Boolean).length, 5, 'burst 5 shared by both nodes');
    t.equal(await a.take('bob', 0), true, 'another user has a bucket of their own');
    t.equal(a.fallbacks + b.fallbacks, 0, 'Redis answered every call');
  });

  t.test('the bucket refills at the rate, by the server clock, and expires', async (t) => {
    const keyPrefix = `${uniqueName('stockade_test_rl')}:`;
    t.teardown(() => cleanup(keyPrefix));
    const a = await node(t, keyPrefix, 20, 2); // a token per 50 ms, ttl = 100 ms + 1 s
    t.same(await Promise.all([a.take('u', 0), a.take('u', 0), a.take('u', 0)]), [
      true,
      true,
      false,
    ]);
    const redis = createRedis(redisUrl());
    t.teardown(() => redis.disconnect());
    await redisReady(redis, 5000);
    const pttl = await redis.pttl(`${keyPrefix}u`);
    t.ok(pttl > 0 && pttl <= 1100, `an idle user's key expires (pttl ${pttl} ms)`);
    // Refill happens on the server's clock: wait (bounded) until a token is back.
    const deadline = Date.now() + 3000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 60));
      ok = await a.take('u', 0);
    }
    t.ok(ok, 'a token came back');
  });

  t.test('NOSCRIPT (the server lost its scripts): EVAL takes over', async (t) => {
    const keyPrefix = `${uniqueName('stockade_test_rl')}:`;
    t.teardown(() => cleanup(keyPrefix));
    const a = await node(t, keyPrefix, 0.001, 3);
    const admin = createRedis(redisUrl());
    t.teardown(() => admin.disconnect());
    await redisReady(admin, 5000);
    await admin.script('FLUSH');
    t.equal(await a.take('u', 0), true);
    t.equal(a.scriptLoads, 1, 'the script was sent in full once');
    t.equal(await a.take('u', 0), true);
    t.equal(a.scriptLoads, 1, 'then EVALSHA found it again');
    t.equal(await a.take('u', 0), true);
    t.equal(await a.take('u', 0), false, 'the same bucket throughout');
  });

  t.test('Redis down: fails open to the local bucket, at once', async (t) => {
    const redis = createRedis(`redis://127.0.0.1:${await closedPort()}`);
    t.teardown(() => redis.disconnect());
    const errors: unknown[] = [];
    const limiter = new RedisTokenBucketLimiter({
      redis,
      perS: 0.001,
      burst: 3,
      fallback: new TokenBucketLimiter(0.001, 3, 1000),
      onError: (err: unknown) => errors.push(err),
    });
    const started = Date.now();
    const calls = Array.from({ length: 6 }, () => Promise.resolve(limiter.take('u', 0)));
    const results = await Promise.all(calls);
    t.ok(Date.now() - started < 1000, 'no waiting for Redis');
    t.same(results, [true, true, true, false, false, false], 'the local bucket still limits');
    t.equal(limiter.fallbacks, 6);
    t.equal(errors.length, 1, 'the outage is reported once, not per call');
    // Once Redis is known to fail, calls are answered locally at once, without a round trip,
    // until a probe is due (a stalled Redis would otherwise cost each one the command timeout).
    t.equal(limiter.take('v', 10), true, 'answered synchronously by the local bucket');
    t.equal(limiter.fallbacks, 7);
    const probe = limiter.take('v', 10 + 1000);
    t.type(probe, Promise, 'one call per probeMs tries Redis again');
    t.equal(await probe, true);
    t.equal(limiter.take('v', 10 + 1001), true, 'the failed probe closes the door again');
    t.equal(limiter.fallbacks, 9);
  });

  t.test('a gateway whose Redis is down limits locally and counts it on /metrics', async (t) => {
    const gateway = { rateLimitStore: 'redis' as const, rateLimitPerS: 0.001, rateLimitBurst: 2 };
    const s = await startServer({
      gateway,
      redis: { url: `redis://127.0.0.1:${await closedPort()}` },
    });
    t.teardown(() => s.close());
    await request(`${s.url}/v1/skus/rl`, 'PUT', { stock: 100, perUserLimit: 0 });
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const body = { userId: 'local', qty: 1, idempotencyKey: `k${i}` };
      codes.push((await request(`${s.url}/v1/skus/rl/reservations`, 'POST', body)).status);
    }
    t.same(codes, [201, 201, 429, 429], 'the local bucket still limits');
    const text = (await request(`${s.url}/metrics`, 'GET')).body as string;
    t.match(
      text,
      /^stockade_rate_limit_fallbacks_total 4$/m,
      'every purchase counted as a fallback',
    );
  });

  t.test('two gateways with rateLimitStore=redis share one limit over HTTP', async (t) => {
    const user = uniqueName('buyer');
    t.teardown(() => cleanup(`stockade:ratelimit:${user}`));
    const gateway = {
      rateLimitStore: 'redis' as const,
      rateLimitPerS: 0.001,
      rateLimitBurst: 3,
    };
    const redis = { url: redisUrl() };
    const s1 = await startServer({ gateway, redis });
    t.teardown(() => s1.close());
    const s2 = await startServer({ gateway, redis });
    t.teardown(() => s2.close());
    for (const s of [s1, s2])
      await request(`${s.url}/v1/skus/rl`, 'PUT', { stock: 100, perUserLimit: 0 });
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) {
      const s = i % 2 === 0 ? s1 : s2;
      const r = await request(`${s.url}/v1/skus/rl/reservations`, 'POST', {
        userId: user,
        qty: 1,
        idempotencyKey: `k${i}`,
      });
      codes.push(r.status);
    }
    t.same(codes, [201, 201, 201, 429, 429, 429, 429, 429], 'three in all, across both nodes');
  });
});
