import { openMysqlPool } from '../persistence/stores/index.js';
import { projectorFromConfig } from './index.js';
import type { StockadeConfig } from '../config/index.js';
import type { Logger, ProjectionGauges } from '../gateway/index.js';

/**
 * The MySQL projector inside `stockade serve` (`--project`, `projection.mysql`). It is one more
 * reader of the journal, beside the engine and never in front of it: it reads the shard files
 * read-only (or the Kafka partitions) and writes MySQL in its own transactions, so a slow or
 * absent MySQL costs the purchase path nothing. Failures are logged and retried with backoff.
 */
export interface ServeProjection {
  stats(): ProjectionGauges;
  close(): Promise<void>;
}

export function openProjection(config: StockadeConfig, log: Logger): ServeProjection | null {
  if (!config.projection.mysql) return null;
  if (config.journal.kind === 'none') {
    log.warn('projection.mysql is on but journal.kind is none: nothing to project');
    return null;
  }
  const pool = openMysqlPool(config.mysql.url);
  const projector = projectorFromConfig(config, pool, (err, retryInMs) => {
    log.warn({ err, retryInMs }, 'mysql projection: failed; retrying');
  });
  projector.start();
  log.info({ journal: config.journal.kind }, 'mysql projection: following the journal');
  return {
    stats: () => projector.stats(),
    close: async () => {
      await projector.stop();
      await pool.end().catch(() => {});
      log.info({ ...projector.stats(), shards: undefined }, 'mysql projection stopped');
    },
  };
}
