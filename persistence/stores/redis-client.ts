/**
 * The ioredis client the cache and the shared rate limiter use. Both treat Redis as optional
 * (never the record of stock or idempotency), so the client fails fast instead of waiting:
 * with the offline queue off, a command issued while the connection is down is rejected at once
 * rather than queued until a reconnect, and `commandTimeout` bounds a command on a connection
 * that is up but stalled. The client keeps reconnecting in the background.
 */
import type * as IORedis from 'ioredis';
import { loadPackage } from '../../config/index.js';
import type { Redis } from 'ioredis';

// Loaded on first use: every shard worker imports persistence/, and none of them talks to
// Redis (loading ioredis costs ~40 ms).

export interface RedisClientOptions {
  /** Longest one command may take before it is rejected (and the caller falls back). */
  commandTimeoutMs?: number;
  /** Longest a TCP connection may take to open. */
  connectTimeoutMs?: number;
}

export function createRedis(url: string, options: RedisClientOptions = {}): Redis {
  const { Redis: RedisClient } = loadPackage<typeof IORedis>(
    'ioredis',
    'Redis (product cache, shared rate limits)',
  );
  const redis = new RedisClient(url, {
    enableOfflineQueue: false,
    // Commands issued in one event-loop turn go out as one pipeline (one write, one round trip).
    enableAutoPipelining: true,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? 200,
    connectTimeout: options.connectTimeoutMs ?? 1000,
    // Reconnect with a capped backoff, forever: Redis coming back is the normal way out.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  });
  // Without a listener ioredis prints every connection error; the callers count failures.
  redis.on('error', () => {});
  return redis;
}

/** Resolves when the client is connected, or false after `timeoutMs`. */
export function redisReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ok);
    };
    const onReady = (): void => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    redis.on('ready', onReady);
  });
}
