import { availableParallelism } from 'node:os';
import { withOverrides } from '../config/index.js';
import type { StockadeConfig } from '../config/index.js';

/**
 * What `engine.shardThreads: 'auto'` means for `serve`: the shards inline when one gateway
 * thread serves on at most 2 CPUs. There the gateway's thread does the HTTP work of every
 * purchase and the shards' decisions are a small part of it, so a hop to a shard worker and
 * back costs more than it frees (measured with the HTTP bench: faster inline with each journal).
 * Elsewhere workers, as designed, until measured otherwise.
 */
export function servedShardThreads(
  config: StockadeConfig,
  cpus = availableParallelism(),
): StockadeConfig {
  if (config.engine.shardThreads !== 'auto') return config;
  const inline = config.gateway.threads === 1 && cpus <= 2;
  return withOverrides(config, { engine: { shardThreads: inline ? 'inline' : 'workers' } });
}

/**
 * What serve runs with: shard threads as the machine suits, and on the Kafka journal, always a
 * member of the topic's cluster (a lone member owns every partition).
 */
export function servedConfig(config: StockadeConfig): StockadeConfig {
  const served = servedShardThreads(config);
  if (served.journal.kind !== 'kafka') return served;
  return withOverrides(served, { cluster: { enabled: true } });
}
