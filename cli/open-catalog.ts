/**
 * Opens what `products.enabled` and `products.moderation` ask for — the MySQL pool (migrated to
 * the current schema), the Redis cache, the moderation pool — and builds the main thread's
 * `CatalogService` on them. `stockade serve --products --moderation` calls it; `close()` stops
 * them all, after the gateway has answered its last request.
 */
import type { Logger } from 'pino';
import { redactedUrl } from '../config/index.js';
import type { StockadeConfig } from '../config/index.js';
import { createModerator } from '../moderation/index.js';
import type { Moderator } from '../moderation/index.js';
import {
  ProductCache,
  ProductStore,
  createRedis,
  migrate,
  openMysqlPool,
  redisReady,
} from '../persistence/stores/index.js';
import { noAudit } from '../gateway/index.js';
import type { AuditSink } from '../gateway/index.js';
import type { Product } from '../persistence/stores/index.js';
import { CatalogService } from './catalog-service.js';

export interface OpenCatalog {
  readonly catalog: CatalogService;
  /** The record, for tests and tools; null without products. */
  readonly store: ProductStore | null;
  readonly cache: ProductCache<Product> | null;
  readonly moderator: Moderator | null;
  close(): Promise<void>;
}

const REDIS_READY_MS = 3000;

export async function openCatalog(
  config: StockadeConfig,
  log: Logger,
  /** Where the catalog records verdicts, overrides and product writes (the gateway's log). */
  audit: AuditSink = noAudit,
): Promise<OpenCatalog> {
  const p = config.products;
  const closers: (() => Promise<unknown>)[] = [];
  const close = async (): Promise<void> => {
    // Last opened, first closed; each closer runs once even if close is called again.
    for (let c = closers.pop(); c !== undefined; c = closers.pop()) await c().catch(() => {});
  };
  try {
    let store: ProductStore | null = null;
    let cache: ProductCache<Product> | null = null;
    if (p.enabled) {
      const pool = openMysqlPool(config.mysql.url, {
        connectionLimit: 8,
        multipleStatements: false,
      });
      closers.push(() => pool.end());
      await migrate(pool);
      store = new ProductStore(pool);
      const records = store;
      const redis = createRedis(config.redis.url);
      closers.push(() => redis.quit());
      // The cache falls back to MySQL while Redis is down; say so at start rather than per read.
      if (!(await redisReady(redis, REDIS_READY_MS))) {
        const url = redactedUrl(config.redis.url);
        log.warn({ url }, 'products: Redis is not reachable; reading MySQL');
      }
      cache = new ProductCache<Product>({
        redis,
        load: (id) => records.get(id),
        ttlS: p.cacheTtlS,
        keyPrefix: p.cacheKeyPrefix,
      });
    }
    let moderator: Moderator | null = null;
    if (p.moderation) {
      moderator = await createModerator(config.moderation);
      const m = moderator;
      closers.push(() => m.close());
    }
    const catalog = new CatalogService({
      records: store,
      cache,
      moderator,
      requireModeration: p.requireModeration,
      log,
      audit,
    });
    return { catalog, store, cache, moderator, close };
  } catch (err) {
    await close();
    throw err;
  }
}
