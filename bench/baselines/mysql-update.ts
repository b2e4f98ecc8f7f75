/**
 * The design that keeps the stock in the database: one conditional `UPDATE … SET available =
 * available - qty WHERE sku = ? AND available >= qty` per purchase, in a transaction that also
 * claims the idempotency key (a unique key on the purchases table) and counts the buyer against
 * the per-user limit (`INSERT … ON DUPLICATE KEY UPDATE` that only adds within the limit). The
 * whole decision is one stored procedure, so a purchase costs one round trip; the hot row is
 * locked last, for as short a time as the commit allows. It is durable as InnoDB is configured
 * (`innodb_flush_log_at_trx_commit`, reported by the suite).
 *
 * `node dist/bench/baselines/mysql-update.js [--port N] [--connections 16]`, MySQL/MariaDB from
 * STOCKADE_MYSQL_URL. Its tables and procedure are named for the process (`sb<pid>_…`) and
 * dropped when it stops.
 */
import { createPool } from 'mysql2/promise';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { runBaseline } from './sale-http.js';
import type { Outcome, SaleStore, SkuCounts } from './sale-http.js';

/** The statements that create the tables and the procedure, for table prefix `p`. */
export function schemaSql(p: string): string[] {
  return [
    `CREATE TABLE ${p}_skus (sku VARCHAR(64) PRIMARY KEY, stock BIGINT NOT NULL,
       available BIGINT NOT NULL, sold BIGINT NOT NULL, per_user_limit INT NOT NULL)`,
    `CREATE TABLE ${p}_buyers (sku VARCHAR(64) NOT NULL, user_id VARCHAR(128) NOT NULL,
       qty INT NOT NULL, PRIMARY KEY (sku, user_id))`,
    `CREATE TABLE ${p}_purchases (id BIGINT AUTO_INCREMENT PRIMARY KEY,
       idem_key VARCHAR(128) NOT NULL UNIQUE, sku VARCHAR(64) NOT NULL,
       user_id VARCHAR(128) NOT NULL, qty INT NOT NULL)`,
    `CREATE PROCEDURE ${p}_reserve(IN p_sku VARCHAR(64), IN p_user VARCHAR(128), IN p_qty INT,
       IN p_key VARCHAR(128))
     proc: BEGIN
       DECLARE v_limit INT DEFAULT NULL;
       DECLARE v_id BIGINT;
       -- Any other error (a lock wait timeout rolls back only its statement) must not leave the
       -- pooled connection inside a transaction holding locks: roll back, then raise it again.
       DECLARE EXIT HANDLER FOR SQLEXCEPTION
       BEGIN
         ROLLBACK;
         RESIGNAL;
       END;
       DECLARE EXIT HANDLER FOR 1062
       BEGIN
         ROLLBACK;
         SELECT 'duplicate' AS outcome, (SELECT id FROM ${p}_purchases WHERE idem_key = p_key) AS id;
       END;
       SELECT per_user_limit INTO v_limit FROM ${p}_skus WHERE sku = p_sku;
       IF v_limit IS NULL THEN SELECT 'unknown_sku' AS outcome, NULL AS id; LEAVE proc; END IF;
       IF p_qty > v_limit THEN SELECT 'limit_exceeded' AS outcome, NULL AS id; LEAVE proc; END IF;
       -- Read committed: the unique-key checks and the buyer upsert take no gap locks, which
       -- would otherwise deadlock concurrent first purchases.
       SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
       START TRANSACTION;
       INSERT INTO ${p}_purchases (idem_key, sku, user_id, qty) VALUES (p_key, p_sku, p_user, p_qty);
       SET v_id = LAST_INSERT_ID();
       INSERT INTO ${p}_buyers (sku, user_id, qty) VALUES (p_sku, p_user, p_qty)
         ON DUPLICATE KEY UPDATE qty = IF(qty + VALUES(qty) <= v_limit, qty + VALUES(qty), qty);
       IF ROW_COUNT() = 0 THEN
         ROLLBACK; SELECT 'limit_exceeded' AS outcome, NULL AS id; LEAVE proc;
       END IF;
       UPDATE ${p}_skus SET available = available - p_qty, sold = sold + p_qty
         WHERE sku = p_sku AND available >= p_qty;
       IF ROW_COUNT() = 0 THEN
         ROLLBACK; SELECT 'sold_out' AS outcome, NULL AS id; LEAVE proc;
       END IF;
       COMMIT;
       SELECT 'reserved' AS outcome, v_id AS id;
     END`,
  ];
}

/** Deadlock and lock wait timeout: the transaction was rolled back whole; it is tried again. */
const RETRIED = new Set([1213, 1205]);
const TRIES = 5;

export async function openMysqlUpdate(url: string, connections: number): Promise<SaleStore> {
  const pool: Pool = createPool({
    uri: url,
    connectionLimit: connections,
    // Requests past the connections wait here, bounded: past it the pool refuses (503).
    queueLimit: 20_000,
    multipleStatements: false,
    // ROW_COUNT() must count rows changed, not rows found (see the limit check above).
    flags: ['-FOUND_ROWS'],
  });
  const p = `sb${process.pid}_${Date.now().toString(36)}`;
  for (const sql of schemaSql(p)) await pool.query(sql);
  return {
    async define(sku, stock, perUserLimit) {
      await pool.query(`DELETE FROM ${p}_buyers WHERE sku = ?`, [sku]);
      await pool.query(
        `INSERT INTO ${p}_skus (sku, stock, available, sold, per_user_limit) VALUES (?, ?, ?, 0, ?)
         ON DUPLICATE KEY UPDATE stock = VALUES(stock), available = VALUES(available), sold = 0,
           per_user_limit = VALUES(per_user_limit)`,
        [sku, stock, stock, perUserLimit],
      );
    },
    async reserve(sku, userId, qty, key): Promise<Outcome> {
      for (let attempt = 1; ; attempt++) {
        try {
          const [sets] = await pool.query<RowDataPacket[][]>(`CALL ${p}_reserve(?, ?, ?, ?)`, [
            sku,
            userId,
            qty,
            key,
          ]);
          const row = sets[0][0] as { outcome: string; id: number | null };
          if (row.outcome === 'reserved' || row.outcome === 'duplicate')
            return {
              code: 'reserved',
              reservationId: `${sku}:${row.id}`,
              duplicate: row.outcome === 'duplicate',
            };
          return { code: row.outcome as 'sold_out' | 'limit_exceeded' | 'unknown_sku' };
        } catch (err) {
          const errno = (err as { errno?: number }).errno;
          if (errno === undefined || !RETRIED.has(errno) || attempt >= TRIES) throw err;
        }
      }
    },
    async durability() {
      const [rows] = await pool.query<RowDataPacket[]>(
        'SELECT @@innodb_flush_log_at_trx_commit AS flush',
      );
      const flush = Number((rows[0] as { flush: number }).flush);
      return flush === 1
        ? 'committed and fsync’d by InnoDB before the answer (innodb_flush_log_at_trx_commit=1)'
        : `committed before the answer, fsync’d by InnoDB about once a second after it (innodb_flush_log_at_trx_commit=${flush})`;
    },
    async counts(sku): Promise<SkuCounts | null> {
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT stock, available, sold FROM ${p}_skus WHERE sku = ?`,
        [sku],
      );
      if (rows.length === 0) return null;
      const r = rows[0] as { stock: number; available: number; sold: number };
      return { stock: Number(r.stock), available: Number(r.available), sold: Number(r.sold) };
    },
    async close() {
      await pool.query(`DROP PROCEDURE IF EXISTS ${p}_reserve`);
      await pool.query(`DROP TABLE IF EXISTS ${p}_skus, ${p}_buyers, ${p}_purchases`);
      await pool.end();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const flag = process.argv.indexOf('--connections');
  const connections = flag > 0 ? Number(process.argv[flag + 1]) : 16;
  const url = process.env.STOCKADE_MYSQL_URL;
  void runBaseline('mysql-update', () => {
    if (!url) throw new Error('STOCKADE_MYSQL_URL is not set (run: . .services/env)');
    return openMysqlUpdate(url, connections);
  });
}
