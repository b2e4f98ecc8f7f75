/**
 * Per-user abuse control. `RateLimiter` is the small interface the routes call; the in-process
 * token bucket below is the default, and a Redis (Lua) bucket shared by many gateway nodes can
 * implement the same interface later. `take` may answer synchronously (in-process) or with a
 * promise (a network store); the routes keep the synchronous case free of promises.
 */
export interface RateLimiter {
  /** Spends one token of `userId`'s bucket; false when it is empty (answer `rate_limited`). */
  take(userId: string, nowMs: number): boolean | Promise<boolean>;
  /** A networked limiter: resolves once connected, or false after `timeoutMs`. */
  connected?(timeoutMs: number): Promise<boolean>;
  /** Releases what the limiter holds (its connection). */
  close?(): void;
}

/** What a shared limiter is opened with (see `loadSharedLimiter`). */
export interface SharedLimiterOptions {
  /** Where the shared buckets live (`redis.url`). */
  url: string;
  /** Tokens refilled per second per user, shared by every thread and node. */
  perS: number;
  burst: number;
  /** Answers while the shared store does not (this thread's in-process buckets). */
  fallback: RateLimiter;
  /** Told once per outage of the shared store. */
  onError: (err: unknown) => void;
  /** Told of every call the fallback answered. */
  onFallback: () => void;
}

/**
 * The limiter shared by every gateway node (`gateway.rateLimitStore = redis`) comes from a
 * module the gateway's starter names by URL (`GatewayOptions.sharedLimiterModule`; `stockade
 * serve` names the Redis one in persistence/stores/): every gateway thread loads it itself,
 * since a function cannot cross a thread, and the gateway imports no store.
 */
export async function loadSharedLimiter(
  moduleUrl: string,
  options: SharedLimiterOptions,
): Promise<RateLimiter> {
  const m = (await import(moduleUrl)) as {
    openSharedLimiter?: (o: SharedLimiterOptions) => RateLimiter;
  };
  if (typeof m.openSharedLimiter !== 'function') {
    throw new TypeError(`${moduleUrl} does not export openSharedLimiter`);
  }
  return m.openSharedLimiter(options);
}

/** A limiter that never limits (`gateway.rateLimitPerS = 0`). */
export const unlimited: RateLimiter = { take: () => true };

class Bucket {
  constructor(
    public tokens: number,
    public lastMs: number,
  ) {}
}

/**
 * One token bucket per user, refilled continuously at `perS` up to `burst`. The map is bounded
 * by `usersMax`: past it the users first seen longest ago are forgotten (a Map iterates in
 * insertion order), which can only give a forgotten user a full bucket again — never wrongly
 * refuse one.
 */
export class TokenBucketLimiter implements RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly perS: number,
    private readonly burst: number,
    private readonly usersMax: number,
  ) {}

  take(userId: string, nowMs: number): boolean {
    let b = this.buckets.get(userId);
    if (b === undefined) {
      if (this.buckets.size >= this.usersMax) this.evictOldest();
      b = new Bucket(this.burst, nowMs);
      this.buckets.set(userId, b);
    } else {
      const refill = ((nowMs - b.lastMs) * this.perS) / 1000;
      if (refill > 0) {
        b.tokens = Math.min(this.burst, b.tokens + refill);
        b.lastMs = nowMs;
      }
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }

  private evictOldest(): void {
    // Drop a slice, not one user, so a flood of new users costs O(1) amortized per request.
    const drop = Math.max(1, this.usersMax >>> 6);
    let n = 0;
    for (const key of this.buckets.keys()) {
      this.buckets.delete(key);
      if (++n >= drop) break;
    }
  }
}

export function createRateLimiter(perS: number, burst: number, usersMax: number): RateLimiter {
  return perS === 0 ? unlimited : new TokenBucketLimiter(perS, burst, usersMax);
}
