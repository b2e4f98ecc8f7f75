import type { Test } from 'tap';
import { requireService, serviceEnv } from './service-helpers.js';
import { createConnection } from 'mysql2/promise';
import type { Pool } from 'mysql2/promise';
import { loadConfig } from '../../config/index.js';
import { migrate, openMysqlPool, withDatabase } from '../../persistence/stores/index.js';

/**
 * The configured `mysql.url` (`STOCKADE_MYSQL_URL`, e.g. from `. .services/env`; other
 * `STOCKADE_*` variables are left out so that services a test does not use cannot break it).
 */
export function mysqlTestUrl(): string {
  return loadConfig({ env: serviceEnv('STOCKADE_MYSQL_') }).mysql.url;
}

/** Why MySQL cannot be used (null if it can): one login and `SELECT 1`, bounded by 3 s. */
export async function mysqlProblem(url = mysqlTestUrl()): Promise<string | null> {
  try {
    const conn = await createConnection({ uri: url, connectTimeout: 3000 });
    try {
      await conn.query('SELECT 1');
    } finally {
      await conn.end();
    }
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/**
 * Fails the test when CI=true and MySQL is unreachable (CI starts it), else skips loudly.
 * Returns whether the MySQL tests can run.
 */
export async function requireMysql(t: Test): Promise<boolean> {
  const url = mysqlTestUrl();
  const problem = await mysqlProblem(url);
  const why = problem === null ? null : `MySQL at ${new URL(url).host} is not usable (${problem})`;
  return requireService(t, 'MySQL', why, 'run `bash scripts/services.sh up mariadb`');
}

let counter = 0;

export interface FreshDatabase {
  /** `mysql.url` with the database replaced by this one. */
  url: string;
  pool: Pool;
  database: string;
}

/**
 * A database of this test's own, `stockade_t_<pid>_<n>`, migrated to the current schema and
 * dropped (with its pool closed) at the test's teardown. Test files run in parallel: each
 * one works in its own databases, never in the shared `stockade` one.
 */
export async function freshDatabase(t: Test): Promise<FreshDatabase> {
  const base = mysqlTestUrl();
  const database = `stockade_t_${process.pid}_${++counter}`;
  const admin = await createConnection({ uri: base, connectTimeout: 3000 });
  try {
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin.query(
      `CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
    );
  } finally {
    await admin.end();
  }
  const url = withDatabase(base, database);
  const pool = openMysqlPool(url);
  t.teardown(async () => {
    await pool.end().catch(() => {});
    const conn = await createConnection({ uri: base, connectTimeout: 3000 });
    try {
      await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
    } finally {
      await conn.end();
    }
  });
  await migrate(pool);
  return { url, pool, database };
}
