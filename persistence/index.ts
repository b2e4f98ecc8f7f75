/** Durable storage behind the engine: the journal interface and its implementations. */
export { JournalError } from './journal.js';
export type { Journal, JournalPosition, JournalErrorCode } from './journal.js';
export { FileJournal, frameHeader, validFrameAt, FRAME_HEADER_BYTES } from './file-journal.js';
export { FrameCheck, prepareJournalDir, lockJournalDir } from './journal-dir.js';
export type { JournalDirLock } from './journal-dir.js';
export type { FileJournalOptions, Durability } from './file-journal.js';
export { crc32c } from './crc32c.js';
export { openJournal } from './open-journal.js';
export { KafkaJournal } from './kafka-journal.js';
export type { KafkaJournalOptions, JournalPayload } from './kafka-journal.js';
export { tail, TAIL_USAGE } from './tail.js';
export type { TailOptions } from './tail.js';
export { fileJournalSource, kafkaJournalSource } from './journal-source.js';
export type { JournalSource, PayloadBatches } from './journal-source.js';
export * from './mysql/index.js';
export { noAudit, MemoryAudit } from './audit-log.js';
export type {
  AuditEntry,
  AuditKind,
  AuditSink,
  AuditStats,
  GatewayAuditEntry,
} from './audit-log.js';
export { ProductCache } from './product-cache.js';
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
export type { ProductCacheOptions, ProductCacheStats } from './product-cache.js';
export { createRedis, redisReady } from './redis-client.js';
export type { RedisClientOptions } from './redis-client.js';
export { MongoAuditLog } from './mongo-audit-log.js';
export type {
  MongoAuditLogOptions,
  RejectionCount,
  SalesSecond,
  TtlMode,
} from './mongo-audit-log.js';
