/**
 * A look-aside Redis cache of product data (name, price, images, moderation state) whose record
 * lives elsewhere (MySQL). Redis is never the record of stock or idempotency: losing it costs
 * only reads of the record.
 *
 *   getText(id) ─▶ GET prefix+id ──hit──▶ the JSON text as stored (a reply body as it is)
 *                 │ miss (or Redis down)
 *                 ▼
 *              one load(id) per id per process (single-flight) ─▶ SET prefix+id EX ttl
 *
 * "Not found" (load → null) is cached too, as the JSON `null`, for `notFoundTtlS` (short): a
 * crowd asking for an id that does not exist yet would otherwise send every request to the
 * record. `invalidate` deletes the key; a load that was in flight when it ran does not write its
 * (possibly stale) value back. Invalidation across processes is by the DEL alone, so another
 * process's load that read the record before the update may still write the old value back,
 * for at most `ttlS`: keep the TTL short enough for that to be acceptable.
 *
 * Redis errors never fail a read: the cache falls through to `load` and counts an error. Use a
 * client that fails fast (`createRedis`: no offline queue, a command timeout), or a read waits
 * for Redis first.
 */
import type { Redis } from 'ioredis';

export interface ProductCacheOptions<T> {
  redis: Redis;
  /** Reads the record; null when there is no such product. */
  load: (id: string) => Promise<T | null>;
  /** Seconds a loaded value stays cached. */
  ttlS: number;
  /** Prefix of every key (`stockade:product:`), so several caches can share one Redis. */
  keyPrefix: string;
  /** Seconds a "not found" stays cached; default min(ttlS, 5). 0 caches no "not found". */
  notFoundTtlS?: number;
}

export interface ProductCacheStats {
  /** Reads answered by Redis. */
  hits: number;
  /** Reads Redis could not answer (absent, or Redis failed). */
  misses: number;
  /** Calls of `load` (single-flight: at most one per id at a time). */
  loads: number;
  /** Redis commands that failed (the read fell through to `load`). */
  errors: number;
}

export class ProductCache<T> {
  readonly stats: ProductCacheStats = { hits: 0, misses: 0, loads: 0, errors: 0 };
  private readonly redis: Redis;
  private readonly load: (id: string) => Promise<T | null>;
  private readonly ttlS: number;
  private readonly notFoundTtlS: number;
  private readonly keyPrefix: string;
  /** Loads in flight, by id. Bounded by the reads in flight, which the caller bounds. */
  private readonly loading = new Map<string, Promise<T | null>>();

  constructor(options: ProductCacheOptions<T>) {
    const { ttlS, keyPrefix } = options;
    if (!Number.isInteger(ttlS) || ttlS < 1)
      throw new RangeError(`ProductCache ttlS must be an integer >= 1, got ${ttlS}`);
    const nf = options.notFoundTtlS ?? Math.min(ttlS, 5);
    if (!Number.isInteger(nf) || nf < 0)
      throw new RangeError(`ProductCache notFoundTtlS must be an integer >= 0, got ${nf}`);
    this.redis = options.redis;
    this.load = options.load;
    this.ttlS = ttlS;
    this.notFoundTtlS = nf;
    this.keyPrefix = keyPrefix;
  }

  /**
   * The value as JSON text, or null when there is no such product. A hit is returned as Redis
   * holds it, without parsing and re-serializing it: a product read during a sale is answered
   * with the stored text as its body. Values are objects, so a stored text that is not `null`
   * and not braced was not written by this cache (or was cut short): the record is read instead.
   */
  async getText(id: string): Promise<string | null> {
    const key = this.keyPrefix + id;
    let cached: string | null = null;
    try {
      cached = await this.redis.get(key);
    } catch {
      this.stats.errors++;
    }
    if (cached !== null) {
      if (cached === 'null' || (cached.startsWith('{') && cached.endsWith('}'))) {
        this.stats.hits++;
        return cached === 'null' ? null : cached;
      }
      this.stats.errors++;
    }
    this.stats.misses++;
    const value = await this.loadOnce(id, key);
    return value === null ? null : JSON.stringify(value);
  }

  /** `getText`, parsed. */
  async get(id: string): Promise<T | null> {
    const text = await this.getText(id);
    return text === null ? null : (JSON.parse(text) as T);
  }

  private loadOnce(id: string, key: string): Promise<T | null> {
    const running = this.loading.get(id);
    if (running !== undefined) return running;
    this.stats.loads++;
    const p = this.load(id).then(
      (value) => {
        // Written back only if no invalidate ran meanwhile (it removes the entry).
        if (this.loading.get(id) === p) {
          this.loading.delete(id);
          this.store(key, value);
        }
        return value;
      },
      (err: unknown) => {
        if (this.loading.get(id) === p) this.loading.delete(id);
        throw err;
      },
    );
    this.loading.set(id, p);
    return p;
  }

  /** Not awaited by readers: the value is theirs already, the write only helps the next. */
  private store(key: string, value: T | null): void {
    const ttl = value === null ? this.notFoundTtlS : this.ttlS;
    if (ttl === 0) return;
    this.redis.set(key, JSON.stringify(value), 'EX', ttl).catch(() => this.stats.errors++);
  }

  /**
   * Drops the cached value: the next `get` loads the record again. Never rejects: with Redis
   * down the DEL fails (counted in `errors`), and a value cached before the outage may be
   * served for at most `ttlS` once Redis is back. An update of the record must not fail
   * because its cache is down.
   */
  async invalidate(id: string): Promise<void> {
    this.loading.delete(id);
    try {
      await this.redis.del(this.keyPrefix + id);
    } catch {
      this.stats.errors++;
    }
  }
}
