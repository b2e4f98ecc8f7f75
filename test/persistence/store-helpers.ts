/**
 * Redis and MongoDB for integration tests: their URLs from the configuration (the
 * `STOCKADE_REDIS_URL` / `STOCKADE_MONGO_URL` variables, e.g. from `. .services/env`, else the
 * defaults), a reachability check that fails under CI=true and skips loudly otherwise, names
 * unique to this test process, and a URL where nothing listens.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import type { Redis } from 'ioredis';
import { loadConfig } from '../../config/index.js';
import { createRedis, redisReady } from '../../persistence/stores/index.js';
import { requireService, serviceEnv, tcpReachable } from './service-helpers.js';

export const redisUrl = (): string => loadConfig({ env: serviceEnv('STOCKADE_REDIS_') }).redis.url;
export const mongoUrl = (): string => loadConfig({ env: serviceEnv('STOCKADE_MONGO_') }).mongo.url;

let counter = 0;
/** A name no other test file (nor an earlier run) uses: `<prefix>_<pid>_<time>_<n>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
}

async function requireUrl(t: Test, name: string, url: string, defaultPort: number) {
  const u = new URL(url);
  const up = await tcpReachable(u.hostname, Number(u.port || defaultPort));
  return requireService(
    t,
    name,
    up ? null : `no ${name} at ${url}`,
    'run `bash scripts/services.sh up`',
  );
}

/** Whether the Redis tests can run (fails under CI=true when Redis is down). */
export const requireRedis = (t: Test): Promise<boolean> => requireUrl(t, 'Redis', redisUrl(), 6379);

/** A client of the test Redis, connected (checked), disconnected when the test ends. */
export async function redisClient(t: Test): Promise<Redis> {
  const redis = createRedis(redisUrl());
  t.teardown(() => redis.disconnect());
  t.ok(await redisReady(redis, 5000), 'redis connected');
  return redis;
}

/** Deletes every key under `prefix` (SCAN, not KEYS: other tests share this Redis). */
export async function dropKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** Whether the MongoDB tests can run (fails under CI=true when MongoDB is down). */
export const requireMongo = (t: Test): Promise<boolean> =>
  requireUrl(t, 'MongoDB', mongoUrl(), 27017);

/** A TCP port on 127.0.0.1 where nothing listens (bound, then closed again). */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}
