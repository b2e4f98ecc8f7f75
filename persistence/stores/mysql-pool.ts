import type * as Mysql2 from 'mysql2/promise';
import { loadPackage } from '../../config/index.js';
import type { Pool, PoolConnection } from 'mysql2/promise';

// Loaded on first use, like the other drivers: every shard and gateway worker imports
// persistence/, and none of them talks to MySQL.

export interface MysqlPoolOptions {
  /** Connections kept open at most (default 4: the projector uses one at a time). */
  connectionLimit?: number;
  /** Longest a TCP connection may take to open (default 3000 ms). */
  connectTimeoutMs?: number;
  /**
   * Several statements per query (default true: the projector's batches and the migrations
   * need it). A pool that serves requests turns it off, so that no query it sends can ever
   * carry a second statement.
   */
  multipleStatements?: boolean;
}

/**
 * A mysql2 pool for the projection, from a `mysql://user:password@host:port/database` URL.
 *
 * - DATETIME(3) columns hold UTC: the projector writes them as UTC strings and reads them back
 *   as strings (`dateStrings`), so neither the server's nor the process's zone matters.
 * - `multipleStatements`: the projector sends a batch's per-SKU CAS updates in one round trip
 *   and reads one result per statement. Every value is escaped by `format`, never pasted in.
 */
export function openMysqlPool(url: string, options: MysqlPoolOptions = {}): Pool {
  const { createPool } = loadPackage<typeof Mysql2>(
    'mysql2',
    'MySQL (projection, products)',
    '/promise',
  );
  return createPool({
    uri: url,
    connectionLimit: options.connectionLimit ?? 4,
    connectTimeout: options.connectTimeoutMs ?? 3000,
    timezone: 'Z',
    multipleStatements: options.multipleStatements ?? true,
    supportBigNumbers: true,
    bigNumberStrings: false,
    dateStrings: true,
    waitForConnections: true,
    queueLimit: 64,
    // affectedRows must count rows changed, not rows found: the projector's insert of a new SKU
    // row (`ON DUPLICATE KEY UPDATE id = id`) detects that another writer got there first by
    // 0 affected rows, and mysql2's default CLIENT_FOUND_ROWS would report 1.
    flags: ['-FOUND_ROWS'],
  });
}

/**
 * Runs `work` in a transaction on one connection of `pool` and commits it. When anything fails
 * the connection is destroyed, not rolled back and handed to the next caller: it may hold a
 * half-open transaction, and closing it ends that transaction on the server.
 */
export async function inTransaction<T>(
  pool: Pool,
  work: (conn: PoolConnection) => Promise<T>,
): Promise<T> {
  const conn = await pool.getConnection();
  let ok = false;
  try {
    await conn.beginTransaction();
    const result = await work(conn);
    await conn.commit();
    ok = true;
    return result;
  } finally {
    if (ok) conn.release();
    else conn.destroy();
  }
}

/** The URL with its database (path) replaced: tests and tools that create databases. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}
