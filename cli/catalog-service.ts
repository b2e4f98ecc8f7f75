/**
 * The main thread's catalog: products in MySQL behind the Redis cache, and image moderation,
 * serving the gateway's `CatalogLink` port (see gateway/catalog-link.ts). Without records or a
 * moderator it answers 503 with the reason.
 */
import { webcrypto } from 'node:crypto';
import { isErrorCode } from '../engine/index.js';
import type { Logger } from 'pino';
import {
  NO_MODERATION,
  NO_PRODUCTS,
  OK_EMPTY,
  catalogRefusal as refuse,
  noAudit,
} from '../gateway/index.js';
import type { AuditSink, CatalogLink, CatalogReply, ProductInput } from '../gateway/index.js';
import { isModerationError } from '../moderation/index.js';
import type { Moderator } from '../moderation/index.js';
import type {
  GateProduct,
  ModerationState,
  Product,
  ProductCache,
  ProductRecords,
} from '../persistence/stores/index.js';

const STORE_DOWN = refuse('store_unavailable', 'The product store did not answer; retry shortly.');

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
      if (err.code === 'moderation_inference_failed') this.log?.error({ err }, 'moderation failed');
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
