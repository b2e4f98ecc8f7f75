/**
 * What every route of one uWS App shares: settings, the engine link, auth, the rate limiter,
 * metrics, and the admission count. One per gateway thread.
 */
import type { Logger } from 'pino';
import type { StockadeConfig } from '../config/index.js';
import { noAudit } from './ports.js';
import type { AuditSink } from './ports.js';
import type { JwtVerifier, Principal } from './auth.js';
import { noCatalog } from './catalog-link.js';
import type { CatalogLink } from './catalog-link.js';
import type { EngineLink } from './engine-link.js';
import type { Metrics } from './metrics.js';
import type { RateLimiter } from './rate-limiter.js';

/** What one gateway thread's routes are given (see `GatewayApp`). */
export interface ContextOptions {
  config: StockadeConfig;
  link: EngineLink;
  metrics: Metrics;
  log: Logger;
  /** Which gateway thread this is (0 = the main thread). */
  thread: number;
  /** Receives one entry per purchase decision, transition and admin call (audit.ts). */
  audit?: AuditSink;
}

export class GatewayContext {
  readonly config: StockadeConfig;
  readonly link: EngineLink;
  readonly verifier: JwtVerifier | null;
  /** The local buckets, until a shared limiter replaces them (`GatewayApp.listen`). */
  limiter: RateLimiter;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly thread: number;
  readonly audit: AuditSink;
  readonly qtyMax: number;
  readonly bodyBytesMax: number;
  readonly inflightMax: number;
  readonly authNone: boolean;
  /** Checked once here: per-request debug lines cost nothing when debug is off. */
  readonly logRequests: boolean;
  /** `audit !== noAudit`, checked once: an unaudited gateway builds no audit entries. */
  readonly auditing: boolean;
  /** Image uploads admitted and not yet answered (see `admitUpload`). */
  uploads = 0;
  readonly uploadsMax: number;
  /** Set when the server starts draining: new requests get `not_ready`, /readyz says 503. */
  draining = false;
  /**
   * Products and moderation (catalog.ts): the main thread's `CatalogService`, or a
   * `RemoteCatalog` on a gateway worker. Set by whoever starts the App; without one the
   * routes answer 404 `feature_disabled`.
   */
  catalog: CatalogLink = noCatalog();
  private drained: (() => void) | null = null;

  constructor(options: ContextOptions, verifier: JwtVerifier | null, limiter: RateLimiter) {
    const { config, log } = options;
    const audit = options.audit ?? noAudit;
    this.config = config;
    this.link = options.link;
    this.verifier = verifier;
    this.limiter = limiter;
    this.metrics = options.metrics;
    this.log = log;
    this.thread = options.thread;
    this.audit = audit;
    this.qtyMax = config.engine.qtyMax;
    this.bodyBytesMax = config.gateway.bodyBytesMax;
    this.inflightMax = config.gateway.inflightMax;
    this.uploadsMax = config.moderation.queueMax;
    this.authNone = config.gateway.auth === 'none';
    this.logRequests = log.isLevelEnabled('debug');
    this.auditing = audit !== noAudit;
  }

  get ready(): boolean {
    return this.link.ready && !this.draining;
  }

  /** Admits one more request if the in-flight bound allows. */
  admit(): boolean {
    if (this.metrics.inflight >= this.inflightMax) return false;
    this.metrics.inflight++;
    return true;
  }

  /**
   * Admits one more image upload (on top of `admit`): each may hold up to
   * `moderation.maxBytes` while it arrives and waits for the model, so this thread takes at most
   * `moderation.queueMax` of them at once, the moderation queue's own bound.
   */
  admitUpload(): boolean {
    if (this.uploads >= this.uploadsMax) return false;
    this.uploads++;
    return true;
  }

  /** Ends an admitted request (`upload`: it was an admitted upload too). */
  release(upload = false): void {
    if (upload) this.uploads--;
    this.metrics.inflight--;
    if (this.drained !== null && this.metrics.inflight === 0) {
      const done = this.drained;
      this.drained = null;
      done();
    }
  }

  /** Resolves when every admitted request has been answered (or aborted). */
  whenIdle(): Promise<void> {
    if (this.metrics.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => (this.drained = resolve));
  }

  /**
   * The principal of an `Authorization` header: undefined when auth is off, null when the
   * header is missing or the token is not acceptable.
   */
  authenticate(header: string): Principal | null | undefined {
    if (this.verifier === null) return undefined;
    return this.verifier.verifyHeader(header);
  }
}
