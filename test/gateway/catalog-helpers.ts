/**
 * Fixtures for the product and moderation routes: a real engine and gateway in this process,
 * products in a fresh MariaDB database (test/persistence/mysql-helpers.ts), a Redis cache under
 * a key prefix of this test's own, the tiny generated ViT (test/moderation/helpers.ts) and a
 * recording audit sink.
 */
import type { Test } from 'tap';
import { requireService } from '../persistence/service-helpers.js';
import type { Redis } from 'ioredis';
import { createEngine, loadConfig } from '../../engine/index.js';
import type { ConfigInput, Engine, StockadeConfig } from '../../engine/index.js';
import { createLogger, openCatalog, startGateway } from '../../gateway/index.js';
import type { Gateway } from '../../gateway/index.js';
import type { ModerationSettings } from '../../config/index.js';
import { MemoryAudit, createRedis, redisReady } from '../../persistence/index.js';
import type { Product, ProductCache, ProductStore } from '../../persistence/index.js';
import { freshDatabase, requireMysql } from '../persistence/mysql-helpers.js';
import { testSettings } from '../moderation/helpers.js';

/** The configured `redis.url` (`STOCKADE_REDIS_URL`; other variables are left out). */
export function redisTestUrl(): string {
  const vars = Object.entries(process.env).filter(([k]) => k.startsWith('STOCKADE_REDIS_'));
  return loadConfig({ env: Object.fromEntries(vars) }).redis.url;
}

/** Fails when CI=true and Redis is unreachable, else skips loudly; a client when usable. */
export async function requireRedis(t: Test): Promise<Redis | null> {
  const url = redisTestUrl();
  const redis = createRedis(url);
  if (await redisReady(redis, 3000)) {
    t.teardown(() => redis.quit().then(() => {}));
    return redis;
  }
  redis.disconnect();
  const fix = 'run `bash scripts/services.sh up redis`';
  requireService(t, 'Redis', `no Redis at ${new URL(url).host}`, fix);
  return null;
}

let counter = 0;

/** Deletes every key under `prefix` (SCAN, not KEYS: other tests share this Redis). */
export async function dropKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

export interface CatalogServer {
  url: string;
  /** Every gateway thread's port, main thread first. */
  ports: readonly number[];
  engine: Engine;
  gateway: Gateway;
  config: StockadeConfig;
  store: ProductStore;
  cache: ProductCache<Product>;
  audit: MemoryAudit;
}

export interface CatalogServerOptions {
  /** Directory of the model; omit for a server without moderation. */
  modelDir?: string;
  moderation?: Partial<ModerationSettings>;
  overrides?: ConfigInput;
}

/**
 * A server with products (and moderation when `modelDir` is given), or null when MySQL or Redis
 * is missing (the test is then failed in CI or skipped). Everything is closed at teardown.
 */
export async function startCatalogServer(
  t: Test,
  options: CatalogServerOptions = {},
): Promise<CatalogServer | null> {
  if (!(await requireMysql(t))) return null;
  const redis = await requireRedis(t);
  if (redis === null) return null;
  const db = await freshDatabase(t);
  const prefix = `stockade-test:products:${process.pid}:${++counter}:`;
  t.teardown(() => dropKeys(redis, prefix));
  const over = options.overrides ?? {};
  const moderation = testSettings(options.modelDir ?? '/nonexistent', options.moderation);
  const config = loadConfig({
    env: {},
    overrides: {
      ...over,
      engine: { shards: 1, ...over.engine },
      journal: { kind: 'none', ...over.journal },
      log: { level: 'silent', ...over.log },
      gateway: { port: 0, host: '127.0.0.1', auth: 'none', rateLimitPerS: 0, ...over.gateway },
      products: {
        enabled: true,
        moderation: options.modelDir !== undefined,
        cacheKeyPrefix: prefix,
        ...over.products,
      },
      moderation: { ...moderation, ...over.moderation },
      mysql: { url: db.url },
      redis: { url: redisTestUrl() },
    },
  });
  // What `stockade serve --products [--moderation]` opens, the same way.
  const audit = new MemoryAudit();
  const opened = await openCatalog(config, createLogger(config.log.level), audit);
  t.teardown(() => opened.close());
  const { catalog, store, cache } = opened;
  const engine = await createEngine({ config });
  const gateway = await startGateway({
    engine,
    config,
    logger: createLogger(config.log.level),
    audit,
    catalog,
  });
  t.teardown(async () => {
    await gateway.close();
    await engine.close();
  });
  const url = `http://127.0.0.1:${gateway.port}`;
  return { url, ports: gateway.ports, engine, gateway, config, store: store!, cache: cache!, audit };
}

/** POSTs raw bytes with a content type; the reply parsed as JSON. */
export async function upload(
  url: string,
  bytes: Uint8Array | string,
  contentType: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> & { error?: Record<string, string> } }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': contentType, ...headers },
    body: bytes,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
