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
