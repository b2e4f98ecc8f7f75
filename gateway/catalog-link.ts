/**
 * Products and image moderation as the routes see them: the `CatalogLink` port. Its real
 * implementation (`CatalogService`, in cli/) lives on the main thread next to the engine,
 * because it owns the MySQL pool, the Redis cache and the moderation pool (one of each per
 * process). A gateway worker thread reaches it through `RemoteCatalog` (the same calls,
 * forwarded over the worker's port; see gateway-host.ts), so every thread answers these routes
 * the same way.
 *
 *   route ─▶ ctx.catalog ─┬─ main thread: CatalogService ─▶ ProductCache ─▶ ProductStore (MySQL)
 *                         │                               └▶ Moderator (piscina pool)
 *                         └─ worker k: RemoteCatalog ──{catalog call}──▶ main: CatalogService
 *
 * Every call resolves to a `CatalogReply` (a success body, already JSON, or an error code from
 * the one catalogue); faults of MySQL or Redis become `store_unavailable`, never a rejection.
 */
import type { GatewayCode } from './errors.js';

/** A product's writable fields, as `PUT /v1/products/{id}` takes them (validated). */
export interface ProductInput {
  name: string;
  description: string | null;
  price: number | null;
  imageUrls: string[];
  sku: string | null;
}

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

/** A reply that refuses with `code` (and the message and field that say why). */
export function catalogRefusal(
  code: GatewayCode,
  message: string | null = null,
  field: string | null = null,
): CatalogReply {
  return { ok: false, code, field, message };
}

/** What a gateway without products answers (`stockade serve --products` turns them on). */
export const NO_PRODUCTS = catalogRefusal(
  'feature_disabled',
  'This server runs without products: start it with `stockade serve --products`.',
);
export const NO_MODERATION = catalogRefusal(
  'feature_disabled',
  'This server runs without image moderation: start it with `stockade serve --moderation`.',
);
export const OK_EMPTY: CatalogReply = Object.freeze({ ok: true, created: false, body: '{}' });

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
export function noCatalog(): CatalogLink {
  return {
    gatesSales: false,
    getProduct: () => Promise.resolve(NO_PRODUCTS),
    putProduct: () => Promise.resolve(NO_PRODUCTS),
    moderateImage: () => Promise.resolve(NO_MODERATION),
    addProductImage: () => Promise.resolve(NO_PRODUCTS),
    // A sale that names no product needs no products; one that names a product does.
    gateSale: (_sku, productId) => Promise.resolve(productId === null ? OK_EMPTY : NO_PRODUCTS),
  };
}
