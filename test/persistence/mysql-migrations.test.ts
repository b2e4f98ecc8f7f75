// Versioned schema migrations on the real MariaDB/MySQL server.
import t from 'tap';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { MIGRATIONS, migrate } from '../../persistence/stores/index.js';
import { freshDatabase, requireMysql } from './mysql-helpers.js';

const ok = await requireMysql(t);

async function tables(pool: Pool): Promise<string[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE()',
  );
  return rows.map((r) => String(r.t)).sort();
}

if (ok) {
  t.test('every migration is applied once, in order, and recorded', async (t) => {
    const { pool } = await freshDatabase(t); // freshDatabase has run migrate once already
    const [rows] = await pool.query<RowDataPacket[]>(
      'SELECT version, name FROM schema_migrations ORDER BY version',
    );
    t.same(
      rows.map((r) => Number(r.version)),
      MIGRATIONS.map((m) => m.version),
    );
    t.same(
      rows.map((r) => String(r.name)),
      MIGRATIONS.map((m) => m.name),
    );
    const have = await tables(pool);
    for (const name of ['skus', 'reservations', 'projection_offsets', 'schema_migrations']) {
      t.ok(have.includes(name), `table ${name} exists`);
    }
    t.same(await migrate(pool), { applied: [] }, 'a second run applies nothing');
  });

  t.test('two concurrent migrate calls apply each migration once between them', async (t) => {
    const { pool } = await freshDatabase(t);
    await pool.query('DROP TABLE skus, reservations, projection_offsets, schema_migrations');
    const [a, b] = await Promise.all([migrate(pool), migrate(pool)]);
    const all = [...a.applied, ...b.applied].sort((x, y) => x - y);
    t.same(
      all,
      MIGRATIONS.map((m) => m.version),
      'each version applied exactly once',
    );
    t.ok(a.applied.length === 0 || b.applied.length === 0, 'one caller did all the work');
  });

  t.test('a migration added later is applied alone, after the others', async (t) => {
    const { pool } = await freshDatabase(t);
    const last = MIGRATIONS[MIGRATIONS.length - 1].version;
    const extra = {
      version: last + 1,
      name: 'test extra',
      up: ['CREATE TABLE IF NOT EXISTS extra_t (id INT PRIMARY KEY)'],
    };
    t.same(await migrate(pool, [...MIGRATIONS, extra]), { applied: [last + 1] });
    t.ok((await tables(pool)).includes('extra_t'));
    await t.rejects(migrate(pool, [extra, ...MIGRATIONS]), /increasing version order/);
  });

  t.test('idempotency keys are compared byte for byte, not case-insensitively', async (t) => {
    const { pool } = await freshDatabase(t);
    const row = (id: string, key: string) => [id, 'mug', 'u', 1, 'held', key, '2030-01-01', 1];
    const sql =
      'INSERT INTO reservations (id, sku, user_id, qty, status, idempotency_key, updated_at, ' +
      'last_seq) VALUES ?';
    await pool.query(sql, [[row('mug:1', 'Key'), row('mug:2', 'key')]]);
    await t.rejects(pool.query(sql, [[row('mug:3', 'key')]]), { code: 'ER_DUP_ENTRY' });
  });

  t.test('keys that differ only by trailing spaces stay apart (a NO PAD collation)', async (t) => {
    const { pool } = await freshDatabase(t);
    const row = (id: string, sku: string, user: string, key: string) => [
      id,
      sku,
      user,
      1,
      'held',
      key,
      '2030-01-01',
      1,
    ];
    const sql =
      'INSERT INTO reservations (id, sku, user_id, qty, status, idempotency_key, updated_at, ' +
      'last_seq) VALUES ?';
    // utf8mb4_bin pads with spaces: these were one key to the unique index.
    await pool.query(sql, [
      [row('mug:1', 'mug', 'u', 'order-1'), row('mug:2', 'mug', 'u', 'order-1 ')],
    ]);
    await pool.query(sql, [[row('mug :1', 'mug ', 'u ', 'order-1')]]);
    const [rows] = await pool.query<RowDataPacket[]>(
      "SELECT id FROM reservations WHERE user_id = 'u' ORDER BY id",
    );
    t.same(
      rows.map((r) => String(r.id)),
      ['mug:1', 'mug:2'],
      "'u ' is not 'u'",
    );
    await pool.query(
      'INSERT INTO skus (id, name, stock, available, reserved, sold, returned, restocked, ' +
        "per_user_limit, hold_ttl_ms, version, updated_at) VALUES ('mug', 'm', 1, 1, 0, 0, 0, 0, 0, 1, 1, NOW()), " +
        "('mug ', 'm', 1, 1, 0, 0, 0, 0, 0, 1, 1, NOW())",
    );
    const [skus] = await pool.query<RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM skus WHERE id = 'mug'",
    );
    t.equal(Number(skus[0].n), 1, "SKU 'mug ' is its own row");
  });
}
