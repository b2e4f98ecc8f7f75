/**
 * Fixtures for the product and moderation routes: a real engine and gateway in this process,
 * products in a fresh MariaDB database (test/persistence/mysql-helpers.ts), a Redis cache under
 * a key prefix of this test's own, the tiny generated ViT (test/moderation/helpers.ts) and a
 * recording audit sink.
 */
import type { Test } from 'tap';
import type { ConfigInput, Engine, StockadeConfig } from '../../engine/index.js';
import { createLogger } from '../../gateway/index.js';
import { openCatalog } from '../../cli/index.js';
import type { Gateway } from '../../gateway/index.js';
import type { ModerationSettings } from '../../config/index.js';
import { MemoryAudit } from '../../gateway/index.js';
import type { Product, ProductCache, ProductStore } from '../../persistence/stores/index.js';
import { freshDatabase, requireMysql } from '../persistence/mysql-helpers.js';
import { dropKeys, redisClient, redisUrl, requireRedis } from '../persistence/store-helpers.js';
import { testSettings } from '../moderation/helpers.js';
import { startServer, testConfig } from './helpers.js';

let counter = 0;

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
  if (!(await requireRedis(t))) return null;
  const redis = await redisClient(t);
  const db = await freshDatabase(t);
  const prefix = `stockade-test:products:${process.pid}:${++counter}:`;
  t.teardown(() => dropKeys(redis, prefix));
  const over = options.overrides ?? {};
  const moderation = testSettings(options.modelDir ?? '/nonexistent', options.moderation);
  const overrides: ConfigInput = {
    ...over,
    products: {
      enabled: true,
      moderation: options.modelDir !== undefined,
      cacheKeyPrefix: prefix,
      ...over.products,
    },
    moderation: { ...moderation, ...over.moderation },
    mysql: { url: db.url },
    redis: { url: redisUrl() },
  };
  const config = testConfig(overrides);
  // What `stockade serve --products [--moderation]` opens, the same way.
  const audit = new MemoryAudit();
  const opened = await openCatalog(config, createLogger(config.log.level), audit);
  t.teardown(() => opened.close());
  const { catalog, store, cache } = opened;
  const s = await startServer(overrides, { audit, catalog });
  t.teardown(() => s.close());
  const { url, engine, gateway } = s;
  return {
    url,
    ports: gateway.ports,
    engine,
    gateway,
    config,
    store: store!,
    cache: cache!,
    audit,
  };
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
