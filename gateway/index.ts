/**
 * The gateway's public face: `startGateway` (HTTP + WebSocket on uWebSockets.js in front of an
 * engine), its error codes, the `RateLimiter` interface and the JWT helpers.
 *
 * ```ts
 * import { createEngine, loadConfig } from 'stockade';
 * import { startGateway } from 'stockade/gateway';
 * const config = loadConfig({ overrides: { gateway: { port: 8080, auth: 'none' } } });
 * const engine = await createEngine({ config });
 * const gateway = await startGateway({ engine, config });
 * ```
 */
export { startGateway } from './server.js';
export type { Gateway, GatewayOptions } from './server.js';
export { GATEWAY_ERRORS, GATEWAY_CODES, codeInfo } from './errors.js';
export type { GatewayCode, GatewayErrorCode } from './errors.js';
export {
  TokenBucketLimiter,
  createRateLimiter,
  loadSharedLimiter,
  unlimited,
} from './rate-limiter.js';
export type { RateLimiter, SharedLimiterOptions } from './rate-limiter.js';
export { JwtVerifier, createVerifier, signJwt } from './auth.js';
export type { Principal } from './auth.js';
export { createLogger } from './logger.js';
export type { Logger } from './logger.js';
export {
  NO_MODERATION,
  NO_PRODUCTS,
  OK_EMPTY,
  RemoteCatalog,
  catalogRefusal,
  noCatalog,
} from './catalog-link.js';
export type { CatalogLink, CatalogReply, ProductInput } from './catalog-link.js';
/** The ports the stores beside the gateway implement (see ports.ts). */
export { MemoryAudit, noAudit } from './ports.js';
export type {
  AuditEntry,
  AuditKind,
  AuditSink,
  AuditStats,
  GatewayAuditEntry,
  ProjectionGauges,
  ProjectionLag,
} from './ports.js';
export { LATENCY_BUCKETS_MS, ROUTES, OUTCOMES } from './metrics.js';
