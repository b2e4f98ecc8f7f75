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
export { TokenBucketLimiter, createRateLimiter, unlimited } from './rate-limiter.js';
export type { RateLimiter } from './rate-limiter.js';
export { RedisTokenBucketLimiter } from './redis-rate-limiter.js';
export type { RedisLimiterOptions } from './redis-rate-limiter.js';
export { JwtVerifier, createVerifier, signJwt } from './auth.js';
export type { Principal } from './auth.js';
export { createLogger } from './logger.js';
export { CatalogService, RemoteCatalog, noCatalog } from './catalog.js';
export type { CatalogLink, CatalogOptions, CatalogReply } from './catalog.js';
export { openCatalog } from '../cli/open-catalog.js';
export type { OpenCatalog } from '../cli/open-catalog.js';
export { LATENCY_BUCKETS_MS, ROUTES, OUTCOMES } from './metrics.js';
