import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { ProjectionError } from './projection-error.js';

/**
 * The MySQL/MariaDB schema as an ordered list of migrations. `migrate` applies, in order and
 * one at a time, every migration whose version is not yet in `schema_migrations`. A migration
 * is never edited once released: a change to the schema is a new migration at the end.
 *
 * MySQL commits DDL implicitly, so a migration cannot be rolled back as a whole: each one is a
 * step that either completes and is recorded, or stops `migrate` with the error (its statements
 * use IF NOT EXISTS so that re-running a half-applied one finishes it).
 *
 * Identifiers that the engine compares byte for byte (SKU ids, reservation ids, user ids,
 * idempotency keys) use a binary collation: under the server's default case-insensitive one
 * the keys `A` and `a`, which the engine keeps apart, would collide in the UNIQUE index. And it
 * must be a NO PAD one (migration 3): `utf8mb4_bin` is PAD SPACE, so `order-1` and `order-1 `
 * were one key to the index, and the projector's upsert overwrote one reservation with the other.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  /** The statements, or a function of the server that makes them (see `ServerTraits`). */
  readonly up: readonly string[] | ((server: ServerTraits) => readonly string[]);
}

/** What a migration may need to know about the server it runs on. */
export interface ServerTraits {
  /**
   * A binary collation that does not ignore trailing spaces (NO PAD): MariaDB's
   * `utf8mb4_nopad_bin`, MySQL 8's `utf8mb4_0900_bin`.
   */
  readonly binaryNoPad: string;
  /** Names of the foreign keys in the database now (a re-run finishes a half-applied step). */
  readonly foreignKeys: ReadonlySet<string>;
}

const BIN = 'CHARACTER SET utf8mb4 COLLATE utf8mb4_bin';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'skus, reservations and projection offsets',
    up: [
      `CREATE TABLE IF NOT EXISTS skus (
        id VARCHAR(64) ${BIN} NOT NULL PRIMARY KEY,
        name VARCHAR(200) NOT NULL,
        price DOUBLE NULL,
        stock BIGINT NOT NULL COMMENT 'initial stock + restocked',
        available BIGINT NOT NULL,
        reserved BIGINT NOT NULL,
        sold BIGINT NOT NULL,
        returned BIGINT NOT NULL,
        restocked BIGINT NOT NULL,
        closed TINYINT NOT NULL DEFAULT 0,
        starts_at DATETIME(3) NULL,
        ends_at DATETIME(3) NULL,
        per_user_limit BIGINT NOT NULL,
        hold_ttl_ms BIGINT NOT NULL,
        version BIGINT NOT NULL COMMENT 'seq of the last event applied to this row',
        updated_at DATETIME(3) NOT NULL
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
      `CREATE TABLE IF NOT EXISTS reservations (
        id VARCHAR(100) ${BIN} NOT NULL PRIMARY KEY COMMENT '<sku>:<n>, the engine''s id',
        sku VARCHAR(64) ${BIN} NOT NULL,
        user_id VARCHAR(255) ${BIN} NULL,
        qty BIGINT NOT NULL,
        status ENUM('held','confirmed','cancelled','expired','returned') NOT NULL,
        idempotency_key VARCHAR(255) ${BIN} NULL,
        expires_at DATETIME(3) NULL,
        created_at DATETIME(3) NULL,
        updated_at DATETIME(3) NOT NULL,
        last_seq BIGINT NOT NULL COMMENT 'seq of the SKU event that last changed this row',
        UNIQUE KEY reservations_sku_key (sku, idempotency_key),
        KEY reservations_sku_status (sku, status)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
      `CREATE TABLE IF NOT EXISTS projection_offsets (
        projector VARCHAR(64) ${BIN} NOT NULL,
        shard INT NOT NULL,
        position BIGINT NOT NULL COMMENT 'journal position after the last applied payload',
        updated_at DATETIME(3) NOT NULL,
        PRIMARY KEY (projector, shard)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    ],
  },
  {
    version: 2,
    name: 'products and their moderated images',
    // The product record behind `GET/PUT /v1/products/{id}` (see persistence/product-store.ts).
    // `moderation_state` is the aggregate of the product's rows in `product_images`, recomputed
    // in the transaction that records a verdict; the sale gate reads it.
    up: [
      `CREATE TABLE IF NOT EXISTS products (
        id VARCHAR(64) ${BIN} NOT NULL PRIMARY KEY,
        sku VARCHAR(64) ${BIN} NULL COMMENT 'the SKU that sells this product',
        name VARCHAR(255) NOT NULL,
        description TEXT NULL,
        price DOUBLE NULL,
        image_urls JSON NOT NULL,
        moderation_state ENUM('pending','allowed','review','blocked') NOT NULL DEFAULT 'pending',
        moderation_override TINYINT NOT NULL DEFAULT 0,
        version BIGINT NOT NULL,
        created_at DATETIME(3) NOT NULL,
        updated_at DATETIME(3) NOT NULL,
        KEY products_sku (sku)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
      `CREATE TABLE IF NOT EXISTS product_images (
        product_id VARCHAR(64) ${BIN} NOT NULL,
        image_sha256 CHAR(64) CHARACTER SET ascii NOT NULL,
        verdict ENUM('allow','review','block') NOT NULL,
        scores JSON NOT NULL,
        model VARCHAR(255) NOT NULL,
        moderated_at DATETIME(3) NOT NULL,
        PRIMARY KEY (product_id, image_sha256),
        CONSTRAINT product_images_product FOREIGN KEY (product_id) REFERENCES products (id)
          ON DELETE CASCADE
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    ],
  },
  {
    version: 3,
    name: 'identifiers compared with a NO PAD binary collation',
    // A column a foreign key joins cannot change collation: product_images' key to products is
    // dropped, both sides changed, and the key made again.
    up: ({ binaryNoPad, foreignKeys }) => {
      const id = (type: string, extra = 'NOT NULL') =>
        `${type} CHARACTER SET utf8mb4 COLLATE ${binaryNoPad} ${extra}`;
      return [
        `ALTER TABLE skus MODIFY id ${id('VARCHAR(64)')}`,
        `ALTER TABLE reservations
          MODIFY id ${id('VARCHAR(100)', "NOT NULL COMMENT '<sku>:<n>, the engine''s id'")},
          MODIFY sku ${id('VARCHAR(64)')},
          MODIFY user_id ${id('VARCHAR(255)', 'NULL')},
          MODIFY idempotency_key ${id('VARCHAR(255)', 'NULL')}`,
        `ALTER TABLE projection_offsets MODIFY projector ${id('VARCHAR(64)')}`,
        ...(foreignKeys.has(PRODUCT_IMAGES_FK)
          ? [`ALTER TABLE product_images DROP FOREIGN KEY ${PRODUCT_IMAGES_FK}`]
          : []),
        `ALTER TABLE products
          MODIFY id ${id('VARCHAR(64)')},
          MODIFY sku ${id('VARCHAR(64)', "NULL COMMENT 'the SKU that sells this product'")}`,
        `ALTER TABLE product_images
          MODIFY product_id ${id('VARCHAR(64)')},
          ADD CONSTRAINT ${PRODUCT_IMAGES_FK} FOREIGN KEY (product_id) REFERENCES products (id)
            ON DELETE CASCADE`,
      ];
    },
  },
];

const PRODUCT_IMAGES_FK = 'product_images_product';

/** Binary NO PAD collations, the one to use first. */
const NO_PAD_BINARY = ['utf8mb4_nopad_bin', 'utf8mb4_0900_bin'];

async function serverTraits(conn: PoolConnection): Promise<ServerTraits> {
  const [rows] = await conn.query<RowDataPacket[]>(
    'SELECT COLLATION_NAME AS c FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN (?)',
    [NO_PAD_BINARY],
  );
  const have = new Set(rows.map((r) => String(r.c)));
  const binaryNoPad = NO_PAD_BINARY.find((c) => have.has(c));
  if (binaryNoPad === undefined) {
    throw new ProjectionError(
      'migration_unsupported',
      `the server has no NO PAD binary collation (${NO_PAD_BINARY.join(' or ')}): ` +
        'Stockade needs MariaDB 10.2 or later, or MySQL 8.0 or later',
    );
  }
  const [keys] = await conn.query<RowDataPacket[]>(
    'SELECT CONSTRAINT_NAME AS k FROM information_schema.REFERENTIAL_CONSTRAINTS ' +
      'WHERE CONSTRAINT_SCHEMA = DATABASE()',
  );
  return { binaryNoPad, foreignKeys: new Set(keys.map((r) => String(r.k))) };
}

const LOCK_NAME = 'stockade_migrate';
const LOCK_WAIT_S = 30;

/**
 * Applies every migration not yet recorded, in version order; resolves to the versions it
 * applied (none when the schema is current). Concurrent callers (two processes starting at
 * once) are serialized by a server-wide named lock held on one connection, so no migration is
 * applied twice; the second caller then finds nothing left to do.
 */
export async function migrate(
  pool: Pool,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<{ applied: number[] }> {
  checkOrder(migrations);
  const conn = await pool.getConnection();
  try {
    await lock(conn);
    try {
      return { applied: await applyPending(conn, migrations) };
    } finally {
      // A failure to release (a broken connection) must not hide the migration's own error;
      // the server drops the lock with the connection.
      await conn.query('SELECT RELEASE_LOCK(?)', [LOCK_NAME]).catch(() => {});
    }
  } finally {
    conn.release();
  }
}

async function lock(conn: PoolConnection): Promise<void> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, ?) AS got', [
    LOCK_NAME,
    LOCK_WAIT_S,
  ]);
  if (rows[0]?.got !== 1) {
    throw new ProjectionError(
      'migration_locked',
      `another migration held the lock ${LOCK_NAME} for more than ${LOCK_WAIT_S} s`,
    );
  }
}

async function applyPending(
  conn: PoolConnection,
  migrations: readonly Migration[],
): Promise<number[]> {
  await conn.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INT NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
  ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
  const [rows] = await conn.query<RowDataPacket[]>('SELECT version FROM schema_migrations');
  const done = new Set(rows.map((r) => Number(r.version)));
  const applied: number[] = [];
  const pending = migrations.filter((m) => !done.has(m.version));
  for (const m of pending) {
    const up = typeof m.up === 'function' ? m.up(await serverTraits(conn)) : m.up;
    for (const sql of up) await conn.query(sql);
    await conn.query('INSERT INTO schema_migrations (version, name) VALUES (?, ?)', [
      m.version,
      m.name,
    ]);
    applied.push(m.version);
  }
  return applied;
}

/** A list out of order or with a repeated version is a programming error: refuse it. */
function checkOrder(migrations: readonly Migration[]): void {
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i].version <= migrations[i - 1].version) {
      throw new RangeError(
        `MIGRATIONS must be in increasing version order: ${migrations[i].version} follows ` +
          `${migrations[i - 1].version}`,
      );
    }
  }
}
