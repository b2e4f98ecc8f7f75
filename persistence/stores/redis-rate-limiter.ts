/**
 * Per-user token buckets in Redis, shared by every gateway thread and node (config
 * `gateway.rateLimitStore = redis`). One Lua script reads, refills, spends and writes a bucket
 * atomically, so two nodes racing for the same user's last token cannot both get it.
 *
 *   take(user) ─EVALSHA─▶ Redis: HMGET → refill by TIME → spend → HSET + PEXPIRE ─▶ 1 | 0
 *                (NOSCRIPT ─▶ EVAL, which also loads the script again)
 *
 * The refill uses the Redis server's clock (`TIME`), not the caller's `nowMs`: the gateway's
 * clock is `performance.now()`, which means nothing outside its process, and even wall clocks
 * of different nodes drift; one clock for every node keeps a bucket's refill consistent. Redis
 * 5+ replicates scripts by their effects, so `TIME` in a writing script is allowed.
 *
 * Each key expires once its bucket would be full again (burst / rate, plus a second), so idle
 * users cost Redis nothing; an absent key is a full bucket.
 *
 * Redis down: fail open to the local buckets. A rejected or timed-out command (the client fails
 * fast: no offline queue, a command timeout) makes this call use the in-process `fallback`
 * limiter, and so do the calls after it, answered at once without asking Redis, except one
 * call per `probeMs` that tries Redis again (a stalled Redis would otherwise cost every
 * purchase the command timeout). Each gateway thread keeps enforcing its share of the limit. The
 * limit is abuse control, not correctness (stock and idempotency live in the
 * engine): refusing every purchase because a cache is down would turn a Redis outage into a
 * sale outage, while allowing everything would drop the protection exactly when it is needed.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createRedis, redisReady } from './redis-client.js';

/**
 * What a limiter does, as the gateway's `RateLimiter` port says (gateway/rate-limiter.ts): this
 * module implements the port without importing the gateway, and takes one as its fallback.
 */
export interface TokenTaker {
  take(userId: string, nowMs: number): boolean | Promise<boolean>;
}

const SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
elseif now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end
local ok = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return ok
`;

export interface RedisLimiterOptions {
  redis: Redis;
  /** Tokens refilled per second, shared by every node. */
  perS: number;
  /** Bucket size. */
  burst: number;
  /** Prefix of the bucket keys; the user id follows it. */
  keyPrefix?: string;
  /** Used while Redis does not answer; usually the in-process `TokenBucketLimiter`. */
  fallback: TokenTaker;
  /** Told once per outage (when Redis stops answering), not once per request. */
  onError?: (err: unknown) => void;
  /** While Redis is failing, how often one call tries it again (default 1000 ms). */
  probeMs?: number;
  /** Told of every call the fallback answered (the gateway counts them on /metrics). */
  onFallback?: () => void;
}

export class RedisTokenBucketLimiter implements TokenTaker {
  /** Calls answered by the fallback because Redis failed. */
  fallbacks = 0;
  /** Times the script was missing from the server (NOSCRIPT) and sent in full. */
  scriptLoads = 0;
  private readonly redis: Redis;
  private readonly sha: string;
  private readonly perMs: string;
  private readonly burst: string;
  private readonly ttlMs: string;
  private readonly keyPrefix: string;
  private readonly fallback: TokenTaker;
  private readonly onError: (err: unknown) => void;
  private readonly onFallback: () => void;
  private failing = false;
  /** While failing: when (caller's clock) the next call may probe Redis. */
  private probeAt = 0;
  private readonly probeMs: number;
  private readonly ownsClient: boolean;

  constructor(options: RedisLimiterOptions, ownsClient = false) {
    const { perS, burst } = options;
    if (!(perS > 0)) throw new RangeError(`rate limit perS must be > 0, got ${perS}`);
    if (!Number.isInteger(burst) || burst < 1)
      throw new RangeError(`rate limit burst must be an integer >= 1, got ${burst}`);
    this.redis = options.redis;
    this.sha = sha1(SCRIPT);
    this.perMs = String(perS / 1000);
    this.burst = String(burst);
    this.ttlMs = String(Math.ceil((burst / perS) * 1000) + 1000);
    this.keyPrefix = options.keyPrefix ?? 'stockade:ratelimit:';
    this.fallback = options.fallback;
    this.onError = options.onError ?? (() => {});
    this.onFallback = options.onFallback ?? (() => {});
    this.probeMs = options.probeMs ?? 1000;
    this.ownsClient = ownsClient;
  }

  /** A limiter with its own fail-fast client for `url` (closed by `close`). */
  static open(options: Omit<RedisLimiterOptions, 'redis'> & { url: string }) {
    const redis = createRedis(options.url, { commandTimeoutMs: 100 });
    return new RedisTokenBucketLimiter({ ...options, redis }, true);
  }

  /**
   * Resolves once the client is connected, or after `timeoutMs` (then the local buckets serve
   * until it is). The client has no offline queue, so without this wait the first requests
   * after a start would all fall back.
   */
  async connected(timeoutMs: number): Promise<boolean> {
    return redisReady(this.redis, timeoutMs);
  }

  take(userId: string, nowMs: number): boolean | Promise<boolean> {
    if (this.failing) {
      if (nowMs < this.probeAt) return this.fellBack(userId, nowMs);
      this.probeAt = nowMs + this.probeMs; // this call is the probe
    }
    const key = this.keyPrefix + userId;
    return this.run(key).then(
      (r) => {
        this.failing = false;
        return r === 1;
      },
      (err: unknown) => {
        if (!this.failing) {
          this.failing = true;
          this.probeAt = nowMs + this.probeMs;
          this.onError(err);
        }
        return this.fellBack(userId, nowMs);
      },
    );
  }

  private fellBack(userId: string, nowMs: number): boolean | Promise<boolean> {
    this.fallbacks++;
    this.onFallback();
    return this.fallback.take(userId, nowMs);
  }

  private async run(key: string): Promise<unknown> {
    const { perMs, burst, ttlMs } = this;
    try {
      return await this.redis.evalsha(this.sha, 1, key, perMs, burst, ttlMs);
    } catch (err) {
      // The server lost its script cache (restart, SCRIPT FLUSH, a failover): EVAL sends the
      // script itself and caches it again, so the next EVALSHA finds it.
      if (!String((err as Error)?.message).startsWith('NOSCRIPT')) throw err;
      this.scriptLoads++;
      return this.redis.eval(SCRIPT, 1, key, perMs, burst, ttlMs);
    }
  }

  close(): void {
    if (this.ownsClient) this.redis.disconnect();
  }
}

/**
 * The shared limiter `stockade serve` plugs into every gateway thread (the gateway loads this
 * module by its URL, `SHARED_LIMITER_MODULE`: see gateway/rate-limiter.ts).
 */
export function openSharedLimiter(options: Omit<RedisLimiterOptions, 'redis'> & { url: string }) {
  return RedisTokenBucketLimiter.open(options);
}

/** This module's URL, for `GatewayOptions.sharedLimiterModule`. */
export const SHARED_LIMITER_MODULE = import.meta.url;

function sha1(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}
