/**
 * The read side: the MySQL projection (schema migrations, the pool, the projector and its
 * pure fold), the MongoDB audit log, and the product records with their Redis cache. Each is a
 * consumer of the journal or a store beside it; none is the record of stock.
 */
export { MIGRATIONS, migrate } from './mysql-migrations.js';
export type { Migration, ServerTraits } from './mysql-migrations.js';
export { openMysqlPool, withDatabase } from './mysql-pool.js';
export type { MysqlPoolOptions } from './mysql-pool.js';
export { ProjectionError } from './projection-error.js';
export type { ProjectionErrorCode } from './projection-error.js';
export { MysqlProjector } from './mysql-projector.js';
export type { MysqlProjectorOptions, ProjectorStats, ShardLag } from './mysql-projector.js';
export { foldSku, sameCounters, FoldError } from './sku-fold.js';
export type { SkuRow, ReservationRow, ReservationStatus } from './sku-fold.js';
export { insertSkuSql } from './mysql-rows.js';
export type { AuditEntry, AuditStats } from './audit-log.js';
export { ProductCache } from './product-cache.js';
export type { ProductCacheOptions, ProductCacheStats } from './product-cache.js';
export { ProductStore } from './product-store.js';
export type {
  GateProduct,
  ImageVerdict,
  ModerationState,
  Product,
  ProductImage,
  ProductInput,
  ProductRecords,
  UpsertResult,
  VerdictResult,
} from './product-store.js';
export { createRedis, redisReady } from './redis-client.js';
export {
  RedisTokenBucketLimiter,
  SHARED_LIMITER_MODULE,
  openSharedLimiter,
} from './redis-rate-limiter.js';
export type { RedisLimiterOptions, TokenTaker } from './redis-rate-limiter.js';
export type { RedisClientOptions } from './redis-client.js';
export { MongoAuditLog } from './mongo-audit-log.js';
export type {
  MongoAuditLogOptions,
  RejectionCount,
  SalesSecond,
  TtlMode,
} from './mongo-audit-log.js';
