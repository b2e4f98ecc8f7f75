/**
 * Products and image moderation as the routes see them: `CatalogLink`. The one real
 * implementation, `CatalogService`, lives on the main thread next to the engine, because it
 * owns the MySQL pool, the Redis cache and the moderation pool (one of each per process). A
 * gateway worker thread reaches it through `RemoteCatalog` (the same calls, forwarded over the
 * worker's port; see gateway-host.ts), so every thread answers these routes the same way.
 *
 *   route ─▶ ctx.catalog ─┬─ main thread: CatalogService ─▶ ProductCache ─▶ ProductStore (MySQL)
 *                         │                               └▶ Moderator (piscina pool)
 *                         └─ worker k: RemoteCatalog ──{catalog call}──▶ main: CatalogService
 *
 * Every call resolves to a `CatalogReply` (a success body, already JSON, or an error code from
 * the one catalogue); faults of MySQL or Redis become `store_unavailable`, never a rejection.
 */
import { webcrypto } from 'node:crypto';
import type { Logger } from 'pino';
import { isErrorCode } from '../engine/index.js';
// The module, not the barrel (which loads sharp and piscina): see open-catalog.ts.
import { isModerationError } from '../moderation/errors.js';
import type { Moderator } from '../moderation/index.js';
import { noAudit } from '../persistence/stores/index.js';
import type { AuditSink, GateProduct, ModerationState, Product, ProductCache, ProductInput, ProductRecords } from '../persistence/stores/index.js';
import type { GatewayCode } from './errors.js';

export type CatalogReply =
  | { ok: true; created: boolean; body: string }
  | { ok: false; code: GatewayCode; field: string | null; message: string | null };

/** Calls that cross threads (structured clone): plain arguments only. */
export interface CatalogCalls {
  getProduct(id: string): Promise<CatalogReply>;
  /** `version`: apply only to the product at this version (0: only create). */
  putProduct(
    id: string,
    input: ProductInput,
    version: number | null,
    actor: string | null,
  ): Promise<CatalogReply>;
  addProductImage(
    id: string,
    image: Uint8Array,
    contentType: string,
    actor: string | null,
  ): Promise<CatalogReply>;
  /**
   * May the sale of `sku` be defined or changed? With `override`, an admin lets it pass and
   * the override is recorded on the products and in the audit log.
   */
  gateSale(
    sku: string,
    productId: string | null,
    override: boolean,
    actor: string | null,
  ): Promise<CatalogReply>;
}

export interface CatalogLink extends CatalogCalls {
  /**
   * Whether a sale that names no product must still pass `gateSale` (products with moderation
   * required); when false, the route skips the call (and, on a worker, the thread hop).
   */
  readonly gatesSales: boolean;
  /** `signal` aborts the classification when the client leaves (main thread only). */
  moderateImage(
    image: Uint8Array,
    contentType: string,
    actor: string | null,
    signal?: AbortSignal,
  ): Promise<CatalogReply>;
}

/** Methods a gateway worker may call on the main thread's catalog, by name. */
export const CATALOG_METHODS = [
  'getProduct',
  'putProduct',
  'moderateImage',
  'addProductImage',
  'gateSale',
] as const satisfies readonly (keyof CatalogLink)[];
export type CatalogMethod = (typeof CATALOG_METHODS)[number];

const OK_EMPTY: CatalogReply = Object.freeze({ ok: true, created: false, body: '{}' });

function refuse(code: GatewayCode, message: string | null = null, field: string | null = null) {
  return { ok: false, code, field, message } as const;
}

const NO_PRODUCTS = refuse(
  'store_unavailable',
  'This server runs without products: start it with `stockade serve --products`.',
);
const STORE_DOWN = refuse('store_unavailable', 'The product store did not answer; retry shortly.');
const NO_MODERATION = refuse('moderation_unavailable');

export interface CatalogOptions {
  /** The product record and its cache; null when products are off. */
  records: ProductRecords | null;
  cache: ProductCache<Product> | null;
  moderator: Moderator | null;
  /** Sales of products whose images have not all been allowed need an admin override. */
  requireModeration: boolean;
  log: Logger | null;
  /**
   * Where verdicts, overrides and product writes are recorded: give it the gateway's audit
   * sink, so they land in the same log as the purchases (default: none).
   */
  audit?: AuditSink;
}

/** The main thread's catalog. Without records or moderator, it answers 503 with the reason. */
export class CatalogService implements CatalogLink {
  private readonly records: ProductRecords | null;
  private readonly cache: ProductCache<Product> | null;
  private readonly moderator: Moderator | null;
  private readonly requireModeration: boolean;
  private readonly log: Logger | null;
  private readonly audit: AuditSink;
  readonly gatesSales: boolean;

  constructor(options: CatalogOptions) {
    this.records = options.records;
    this.cache = options.cache;
    this.moderator = options.moderator;
    this.requireModeration = options.requireModeration;
    this.audit = options.audit ?? noAudit;
    this.gatesSales = options.records !== null && options.requireModeration;
    this.log = options.log;
  }

  private storeFault(err: unknown, what: string): CatalogReply {
    this.log?.error({ err }, `product store: ${what} failed`);
    return STORE_DOWN;
  }

  async getProduct(id: string): Promise<CatalogReply> {
    const records = this.records;
    if (records === null) return NO_PRODUCTS;
    try {
      let body: string | null;
      if (this.cache !== null) body = await this.cache.getText(id);
      else {
        const p = await records.get(id);
        body = p === null ? null : JSON.stringify(p);
      }
      if (body === null) return refuse('unknown_product', null, 'id');
      return { ok: true, created: false, body };
    } catch (err) {
      return this.storeFault(err, 'read');
    }
  }

  async putProduct(
    id: string,
    input: ProductInput,
    version: number | null,
    actor: string | null,
  ): Promise<CatalogReply> {
    const records = this.records;
    if (records === null) return NO_PRODUCTS;
    try {
      const r = await records.upsert(id, input, version ?? undefined);
      if (r.status === 'unknown_product') return refuse('unknown_product', null, 'id');
      if (r.status === 'version_conflict') {
        const message = `The product is at version ${r.version}, not ${version}; read it again.`;
        return refuse('version_conflict', message, 'version');
      }
      // The record first, then the cache: a read between the two may still see the old copy.
      await this.cache?.invalidate(id);
      this.audit.record({
        kind: 'admin',
        outcome: r.status,
        at: Date.now(),
        sku: input.sku,
        userId: actor,
        route: 'put_product',
        productId: id,
        version: r.product.version,
      });
      const body = JSON.stringify({ status: r.status, product: r.product });
      return { ok: true, created: r.status === 'created', body };
    } catch (err) {
      return this.storeFault(err, 'write');
    }
  }

  async moderateImage(
    image: Uint8Array,
    contentType: string,
    actor: string | null,
    signal?: AbortSignal,
  ): Promise<CatalogReply> {
    const moderator = this.moderator;
    if (moderator === null) return NO_MODERATION;
    try {
      const [r, sha256] = await Promise.all([
        moderator.classify(image, { contentType, signal }),
        sha256Of(image),
      ]);
      this.recordVerdict(r, sha256, actor, null, null, null);
      const { verdict, scores, model, ms } = r;
      const body = JSON.stringify({ verdict, scores, model, ms });
      return { ok: true, created: false, body };
    } catch (err) {
      return this.moderationFault(err);
    }
  }

  async addProductImage(
    id: string,
    image: Uint8Array,
    contentType: string,
    actor: string | null,
  ): Promise<CatalogReply> {
    const records = this.records;
    if (records === null) return NO_PRODUCTS;
    const moderator = this.moderator;
    if (moderator === null) return NO_MODERATION;
    let product: Product | null;
    try {
      // Fresh from the record, not the cache: no model time for a product that is gone.
      product = await records.get(id);
    } catch (err) {
      return this.storeFault(err, 'read');
    }
    if (product === null) return refuse('unknown_product', null, 'id');
    let verdict;
    let sha256: string;
    try {
      // No abort signal: a verdict reached after the client left is still worth recording.
      [verdict, sha256] = await Promise.all([
        moderator.classify(image, { contentType }),
        sha256Of(image),
      ]);
    } catch (err) {
      return this.moderationFault(err);
    }
    try {
      const image = {
        sha256,
        verdict: verdict.verdict,
        scores: verdict.scores,
        model: verdict.model,
        moderatedAt: Date.now(),
      };
      const r = await records.recordImageVerdict(id, image);
      if (r.status === 'unknown_product') return refuse('unknown_product', null, 'id');
      await this.cache?.invalidate(id);
      this.recordVerdict(verdict, sha256, actor, id, product.sku, r.state);
      const body = JSON.stringify({
        productId: id,
        sha256,
        verdict: verdict.verdict,
        scores: verdict.scores,
        model: verdict.model,
        ms: verdict.ms,
        moderationState: r.state,
        version: r.version,
      });
      return { ok: true, created: false, body };
    } catch (err) {
      return this.storeFault(err, 'recording a verdict');
    }
  }

  async gateSale(
    sku: string,
    productId: string | null,
    override: boolean,
    actor: string | null,
  ): Promise<CatalogReply> {
    const records = this.records;
    if (records === null) return productId === null ? OK_EMPTY : NO_PRODUCTS;
    // Without moderation required, only a named product is looked up: it must exist either way.
    if (!this.requireModeration && productId === null) return OK_EMPTY;
    let products: GateProduct[];
    try {
      products = await records.gateProducts(sku, productId);
    } catch (err) {
      return this.storeFault(err, 'the sale gate');
    }
    if (productId !== null && !products.some((p) => p.id === productId))
      return refuse('unknown_product', `No product '${productId}'.`, 'productId');
    if (!this.requireModeration) return OK_EMPTY;
    const held = products.filter((p) => p.moderationState !== 'allowed' && !p.moderationOverride);
    if (held.length === 0) return OK_EMPTY;
    if (!override) return refuse('moderation_required', gateMessage(sku, held));
    // The override is recorded before the caller defines the sale: it is the admin's decision
    // about these products, and stays recorded even if the definition then fails.
    try {
      await records.setOverride(held.map((p) => p.id));
      for (const p of held) await this.cache?.invalidate(p.id);
    } catch (err) {
      return this.storeFault(err, 'recording an override');
    }
    for (const p of held) {
      this.audit.record({
        kind: 'moderation',
        outcome: 'override',
        at: Date.now(),
        sku,
        userId: actor,
        productId: p.id,
        moderationState: p.moderationState,
        images: p.notAllowed,
      });
    }
    return OK_EMPTY;
  }

  private recordVerdict(
    r: { verdict: string; scores: Record<string, number>; model: string; ms: number },
    sha256: string,
    actor: string | null,
    productId: string | null,
    sku: string | null,
    state: ModerationState | null,
  ): void {
    this.audit.record({
      kind: 'moderation',
      outcome: r.verdict,
      at: Date.now(),
      sku,
      userId: actor,
      productId,
      imageSha256: sha256,
      scores: r.scores,
      model: r.model,
      ms: r.ms,
      moderationState: state,
    });
  }

  private moderationFault(err: unknown): CatalogReply {
    if (isModerationError(err) && isErrorCode(err.code)) {
      if (err.code === 'moderation_inference_failed')
        this.log?.error({ err }, 'moderation failed');
      return refuse(err.code, err.message);
    }
    // moderation_aborted: the client left, nobody reads this answer.
    if (isModerationError(err)) return refuse('internal', err.message);
    this.log?.error({ err }, 'moderation failed');
    return refuse('internal');
  }
}

/** Off this thread: WebCrypto digests on libuv's pool, so a 10 MB upload does not block. */
async function sha256Of(image: Uint8Array): Promise<string> {
  const digest = await webcrypto.subtle.digest('SHA-256', image);
  return Buffer.from(digest).toString('hex');
}

/** "product p1 is blocked (images 3f2a…: block, 9c1e…: review)". */
function gateMessage(sku: string, held: GateProduct[]): string {
  const parts = held.map((p) => {
    const images = p.notAllowed.map((i) => `${i.sha256.slice(0, 12)}…: ${i.verdict}`);
    const why = images.length > 0 ? `images ${images.join(', ')}` : 'no image moderated yet';
    return `product '${p.id}' is ${p.moderationState} (${why})`;
  });
  return (
    `The sale of '${sku}' needs every image of its product allowed: ${parts.join('; ')}. ` +
    'Upload allowed images, or send "moderationOverride": true.'
  );
}

/** A gateway worker's catalog: each call runs on the main thread's `CatalogService`. */
export class RemoteCatalog implements CatalogLink {
  constructor(
    private readonly call: (method: CatalogMethod, args: unknown[]) => Promise<unknown>,
    /** The main thread's catalog's `gatesSales`. */
    readonly gatesSales: boolean,
  ) {}

  private run(method: CatalogMethod, args: unknown[]): Promise<CatalogReply> {
    return this.call(method, args) as Promise<CatalogReply>;
  }

  getProduct(id: string) {
    return this.run('getProduct', [id]);
  }
  putProduct(id: string, input: ProductInput, version: number | null, actor: string | null) {
    return this.run('putProduct', [id, input, version, actor]);
  }
  // The signal stays here: an AbortSignal cannot cross threads. The main thread's pool bounds
  // the work anyway (moderation.queueMax, moderation.taskTimeoutMs).
  moderateImage(image: Uint8Array, contentType: string, actor: string | null) {
    return this.run('moderateImage', [image, contentType, actor]);
  }
  addProductImage(id: string, image: Uint8Array, contentType: string, actor: string | null) {
    return this.run('addProductImage', [id, image, contentType, actor]);
  }
  gateSale(sku: string, productId: string | null, override: boolean, actor: string | null) {
    return this.run('gateSale', [sku, productId, override, actor]);
  }
}

/** The catalog of a gateway without products or moderation (the default). */
export function noCatalog(): CatalogService {
  return new CatalogService({
    records: null,
    cache: null,
    moderator: null,
    requireModeration: false,
    log: null,
  });
}
