/**
 * The product record in MySQL/MariaDB (tables `products` and `product_images`, migration 2):
 * what a product is, its moderated images, and the moderation state that gates its sale.
 *
 *   PUT product ──▶ upsert (one transaction: write, read back)
 *   image verdict ─▶ recordImageVerdict (one transaction: lock the product row, upsert the
 *                    image's verdict, recompute moderation_state from all its images, clear
 *                    any override, bump version)
 *
 * A product's `moderation_state` is a pure function of its images' verdicts
 * (`moderationStateOf`), recomputed under the product's row lock, so two verdicts recorded at
 * once for one product cannot leave a state that matches neither.
 */
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { inTransaction } from './mysql-pool.js';
import { parseDatetime, utcDatetime } from './mysql-rows.js';

export type ModerationState = 'pending' | 'allowed' | 'review' | 'blocked';
export type ImageVerdict = 'allow' | 'review' | 'block';

export interface ProductImage {
  /** SHA-256 of the uploaded bytes, hex: the same image uploaded twice is one row. */
  sha256: string;
  verdict: ImageVerdict;
  scores: Record<string, number>;
  model: string;
  /** ms since the epoch. */
  moderatedAt: number;
}

export interface Product {
  id: string;
  /** The SKU that sells this product, or null. */
  sku: string | null;
  name: string;
  description: string | null;
  price: number | null;
  imageUrls: string[];
  moderationState: ModerationState;
  /** An admin let the sale be defined although the images have not all been allowed. */
  moderationOverride: boolean;
  /** Starts at 1, +1 on every write (update, verdict, override). */
  version: number;
  createdAt: number;
  updatedAt: number;
  images: ProductImage[];
}

/** The fields a `PUT` sets; absent optional fields are cleared (PUT replaces). */
export interface ProductInput {
  name: string;
  description: string | null;
  price: number | null;
  imageUrls: string[];
  sku: string | null;
}

export type UpsertResult =
  | { status: 'created' | 'updated'; product: Product }
  | { status: 'version_conflict'; version: number }
  | { status: 'unknown_product' };

export type VerdictResult =
  { status: 'recorded'; state: ModerationState; version: number } | { status: 'unknown_product' };

/** What the sale gate needs of each product a SKU sells. */
export interface GateProduct {
  id: string;
  sku: string | null;
  moderationState: ModerationState;
  moderationOverride: boolean;
  /** Images whose verdict is not `allow`. */
  notAllowed: { sha256: string; verdict: ImageVerdict }[];
}

/** The record behind the product routes; `ProductStore` is the MySQL one. */
export interface ProductRecords {
  get(id: string): Promise<Product | null>;
  upsert(id: string, input: ProductInput, expectedVersion?: number): Promise<UpsertResult>;
  recordImageVerdict(productId: string, image: ProductImage): Promise<VerdictResult>;
  /** The products whose `sku` is this SKU (with `id`, that product too). */
  gateProducts(sku: string, id: string | null): Promise<GateProduct[]>;
  /** Marks the products as overridden by an admin (+1 version each). */
  setOverride(ids: readonly string[]): Promise<void>;
}

/**
 * allowed only when there is at least one image and every image is allowed; blocked if any is
 * blocked; review if any waits for review; pending otherwise (no image yet).
 */
function moderationStateOf(verdicts: Iterable<ImageVerdict>): ModerationState {
  let images = 0;
  let review = false;
  for (const v of verdicts) {
    images++;
    if (v === 'block') return 'blocked';
    if (v === 'review') review = true;
  }
  if (review) return 'review';
  return images > 0 ? 'allowed' : 'pending';
}

/** A NOT NULL DATETIME(3) column as epoch ms. */
function msOf(v: unknown): number {
  return parseDatetime(v) ?? NaN;
}

/** JSON columns are LONGTEXT on MariaDB (a string) and JSON on MySQL (parsed by mysql2). */
function jsonOf<T>(v: unknown): T {
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}

const PRODUCT_COLUMNS =
  'id, sku, name, description, price, image_urls, moderation_state, moderation_override, ' +
  'version, created_at, updated_at';

function productOf(row: RowDataPacket, images: ProductImage[]): Product {
  return {
    id: String(row.id),
    sku: row.sku === null ? null : String(row.sku),
    name: String(row.name),
    description: row.description === null ? null : String(row.description),
    price: row.price === null ? null : Number(row.price),
    imageUrls: jsonOf<string[]>(row.image_urls),
    moderationState: row.moderation_state as ModerationState,
    moderationOverride: Number(row.moderation_override) === 1,
    version: Number(row.version),
    createdAt: msOf(row.created_at),
    updatedAt: msOf(row.updated_at),
    images,
  };
}

function imageOf(row: RowDataPacket): ProductImage {
  return {
    sha256: String(row.image_sha256),
    verdict: row.verdict as ImageVerdict,
    scores: jsonOf<Record<string, number>>(row.scores),
    model: String(row.model),
    moderatedAt: msOf(row.moderated_at),
  };
}

type Queryable = Pool | PoolConnection;

export class ProductStore implements ProductRecords {
  /** Statements sent, for tests that check a cached read did not reach MySQL. */
  queries = 0;

  constructor(
    private readonly pool: Pool,
    private readonly now: () => number = Date.now,
  ) {}

  private async rows(db: Queryable, sql: string, args: unknown[]): Promise<RowDataPacket[]> {
    this.queries++;
    const [rows] = await db.query<RowDataPacket[]>(sql, args);
    return rows;
  }

  private async exec(db: Queryable, sql: string, args: unknown[]): Promise<ResultSetHeader> {
    this.queries++;
    const [r] = await db.query<ResultSetHeader>(sql, args);
    return r;
  }

  get(id: string): Promise<Product | null> {
    return this.read(this.pool, id, false);
  }

  private async read(db: Queryable, id: string, lock: boolean): Promise<Product | null> {
    const rows = await this.rows(
      db,
      `SELECT ${PRODUCT_COLUMNS} FROM products WHERE id = ?${lock ? ' FOR UPDATE' : ''}`,
      [id],
    );
    if (rows.length === 0) return null;
    const images = await this.rows(
      db,
      'SELECT image_sha256, verdict, scores, model, moderated_at FROM product_images ' +
        'WHERE product_id = ? ORDER BY moderated_at, image_sha256',
      [id],
    );
    return productOf(rows[0], images.map(imageOf));
  }

  /**
   * Creates or replaces the product's fields. With `expectedVersion`, only the product at that
   * version is updated (0: only a product that does not exist yet is created).
   */
  async upsert(id: string, input: ProductInput, expectedVersion?: number): Promise<UpsertResult> {
    return inTransaction(this.pool, async (conn) => {
      const now = utcDatetime(this.now());
      const values = [
        input.sku,
        input.name,
        input.description,
        input.price,
        JSON.stringify(input.imageUrls),
      ];
      let created: boolean;
      if (expectedVersion === undefined) {
        // One statement whichever it is, so two first PUTs at once cannot both try to insert.
        const r = await this.exec(
          conn,
          'INSERT INTO products (id, sku, name, description, price, image_urls, version, ' +
            'created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?) ON DUPLICATE KEY UPDATE ' +
            'sku = VALUES(sku), name = VALUES(name), description = VALUES(description), ' +
            'price = VALUES(price), image_urls = VALUES(image_urls), version = version + 1, ' +
            'updated_at = VALUES(updated_at)',
          [id, ...values, now, now],
        );
        created = r.affectedRows === 1;
      } else if (expectedVersion === 0) {
        const r = await this.exec(
          conn,
          'INSERT IGNORE INTO products (id, sku, name, description, price, image_urls, ' +
            'version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)',
          [id, ...values, now, now],
        );
        if (r.affectedRows === 0) return this.conflict(conn, id);
        created = true;
      } else {
        const r = await this.exec(
          conn,
          'UPDATE products SET sku = ?, name = ?, description = ?, price = ?, image_urls = ?, ' +
            'version = version + 1, updated_at = ? WHERE id = ? AND version = ?',
          [...values, now, id, expectedVersion],
        );
        if (r.affectedRows === 0) return this.conflict(conn, id);
        created = false;
      }
      const product = await this.read(conn, id, false);
      if (product === null) throw new Error(`product ${id} vanished inside its transaction`);
      return { status: created ? 'created' : 'updated', product };
    });
  }

  private async conflict(conn: PoolConnection, id: string): Promise<UpsertResult> {
    const rows = await this.rows(conn, 'SELECT version FROM products WHERE id = ?', [id]);
    if (rows.length === 0) return { status: 'unknown_product' };
    return { status: 'version_conflict', version: Number(rows[0].version) };
  }

  async recordImageVerdict(productId: string, image: ProductImage): Promise<VerdictResult> {
    return inTransaction(this.pool, async (conn) => {
      // The row lock serializes verdicts for one product: each recomputes from all images.
      const locked = await this.rows(conn, 'SELECT version FROM products WHERE id = ? FOR UPDATE', [
        productId,
      ]);
      if (locked.length === 0) return { status: 'unknown_product' };
      await this.exec(
        conn,
        'INSERT INTO product_images (product_id, image_sha256, verdict, scores, model, ' +
          'moderated_at) VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE ' +
          'verdict = VALUES(verdict), scores = VALUES(scores), model = VALUES(model), ' +
          'moderated_at = VALUES(moderated_at)',
        [
          productId,
          image.sha256,
          image.verdict,
          JSON.stringify(image.scores),
          image.model,
          utcDatetime(image.moderatedAt),
        ],
      );
      const verdicts = await this.rows(
        conn,
        'SELECT verdict FROM product_images WHERE product_id = ?',
        [productId],
      );
      const state = moderationStateOf(verdicts.map((r) => r.verdict as ImageVerdict));
      // A new verdict ends an earlier override: it was given for the images as they were.
      await this.exec(
        conn,
        'UPDATE products SET moderation_state = ?, moderation_override = 0, ' +
          'version = version + 1, updated_at = ? WHERE id = ?',
        [state, utcDatetime(this.now()), productId],
      );
      // The row is locked: its version is the one read above, plus this update.
      return { status: 'recorded', state, version: Number(locked[0].version) + 1 };
    });
  }

  async gateProducts(sku: string, id: string | null): Promise<GateProduct[]> {
    const rows = await this.rows(
      this.pool,
      'SELECT p.id, p.sku, p.moderation_state, p.moderation_override, i.image_sha256, ' +
        'i.verdict FROM products p LEFT JOIN product_images i ON i.product_id = p.id AND ' +
        "i.verdict <> 'allow' WHERE p.sku = ? OR p.id = ? ORDER BY p.id, i.image_sha256",
      [sku, id],
    );
    const byId = new Map<string, GateProduct>();
    for (const r of rows) {
      let p = byId.get(String(r.id));
      if (p === undefined) {
        p = {
          id: String(r.id),
          sku: r.sku === null ? null : String(r.sku),
          moderationState: r.moderation_state as ModerationState,
          moderationOverride: Number(r.moderation_override) === 1,
          notAllowed: [],
        };
        byId.set(p.id, p);
      }
      if (r.image_sha256 !== null)
        p.notAllowed.push({ sha256: String(r.image_sha256), verdict: r.verdict as ImageVerdict });
    }
    return [...byId.values()];
  }

  async setOverride(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.exec(
      this.pool,
      'UPDATE products SET moderation_override = 1, version = version + 1, updated_at = ? ' +
        'WHERE id IN (?)',
      [utcDatetime(this.now()), ids],
    );
  }
}
