/**
 * Stockade's public face: `createEngine`, its types, and the error catalogue.
 *
 * ```ts
 * import { createEngine } from 'stockade';
 * ```
 */
export { createEngine, Engine } from './engine.js';
export type {
  EngineOptions,
  EngineStats,
  ShardDownInfo,
  ShardUpInfo,
  GetSkusOptions,
  ReservationCommandOptions,
} from './engine.js';
export type { ShardStats } from './shard-messages.js';
export type { RecoveryStats } from './shard-host.js';
export { EngineError, ERROR_CATALOGUE, StockadeError, isErrorCode } from './errors.js';
export type { ErrorCode, CodeInfo } from './errors.js';
export { isRejection, parseReservationId, reservationId } from './results.js';
export type * from './results.js';
export { EventSubscription } from './event-subscription.js';
export type { ClusterView, ClusterFigures } from './cluster.js';
export { shardOf } from './router.js';
export {
  ManualClock,
  TRANSITIONS,
  RESERVATION_STATES,
  spawnWorker,
  settledWithin,
} from '../actors/index.js';
/** The engine's own rules for identifiers and limits, for callers that check input first. */
export {
  SKU_ID_PATTERN,
  SKU_ID_LENGTH_MAX,
  USER_ID_BYTES_MAX,
  IDEMPOTENCY_KEY_BYTES_MAX,
  STOCK_MAX,
  HOLD_TTL_MS_MAX,
  NAME_LENGTH_MAX,
  TIME_MAX,
  isValidSkuId,
  isValidToken,
  isValidName,
  isValidQty,
} from '../actors/index.js';
export type {
  SkuDefinition,
  SkuUpdate,
  SkuSnapshot,
  SkuSettings,
  SkuEvent,
  SkuEventType,
  ReservationState,
  InvalidField,
} from '../actors/index.js';
export { loadConfig, ConfigError, MissingPackageError, configFields } from '../config/index.js';
export type { StockadeConfig, ConfigInput } from '../config/index.js';
