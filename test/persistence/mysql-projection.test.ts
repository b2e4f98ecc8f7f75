// The MySQL projector against the real MariaDB, fed by a sale driven through the engine on the
// file journal. Each test works in a database of its own (freshDatabase).
import t from 'tap';
import type { Test } from 'tap';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { eventually, tempDir } from '../engine/helpers.js';
import { freshDatabase, requireMysql } from './mysql-helpers.js';
import { insertSkuSql } from '../../persistence/stores/mysql-rows.js';
import { differences, projector, startSale, tableState, trade } from './projection-helpers.js';
import type { Sale } from './projection-helpers.js';

const ok = await requireMysql(t);

async function sale(t: Test, rounds: number, skus = ['mug', 'tee', 'cap', 'pin']) {
  const s = await startSale(tempDir('stockade-proj-'), skus);
  t.teardown(() => s.engine.close());
  for (let round = 0; round < rounds; round++) await trade(s, round);
  return s;
}

async function matches(t: Test, pool: Pool, s: Sale, what: string) {
  t.same(await differences(pool, s), [], what);
}

if (ok) {
  t.test('a SKU row another writer inserted first is a CAS miss, not a success', async (t) => {
    // The projector inserts a SKU it did not find with `ON DUPLICATE KEY UPDATE id = id` and
    // counts 0 affected rows as losing the race; its pool must not report found rows.
    const { pool } = await freshDatabase(t);
    const row = {
      id: 'mug',
      name: 'Mug',
      price: 9.5,
      stock: 10,
      available: 10,
      reserved: 0,
      sold: 0,
      returned: 0,
      restocked: 0,
      closed: false,
      startsAt: null,
      endsAt: null,
      perUserLimit: 2,
      holdTtlMs: 60_000,
      version: 1,
      updatedAt: Date.now(),
    };
    const sql = insertSkuSql(row, (v) => pool.escape(v));
    const [first] = await pool.query<ResultSetHeader>(sql);
    t.equal(first.affectedRows, 1, 'the first insert writes the row');
    const [again] = await pool.query<ResultSetHeader>(sql);
    t.equal(again.affectedRows, 0, 'the second finds it there and reports no row written');
  });

  t.test('after a sale, MySQL matches the engine exactly', async (t) => {
    const s = await sale(t, 3);
    const { pool } = await freshDatabase(t);
    const p = projector(pool, s.dir);
    t.teardown(() => p.stop());
    await p.catchUp();
    await matches(t, pool, s, 'SKU counters and every reservation status');
    const st = p.stats();
    t.ok(st.batches > 2, `several transactions (${st.batches})`);
    t.equal(st.eventsSkipped, 0);
    t.equal(st.casMisses, 0);
    t.equal(st.lag, 0, 'caught up: no lag');
    t.equal(st.shards.length, 2, 'both shards followed');
    const statuses = new Set(s.statuses.values());
    t.same([...statuses].sort(), ['cancelled', 'confirmed', 'expired', 'returned'].sort());
  });

  t.test('keys and users that differ only by trailing spaces are separate rows', async (t) => {
    const s = await startSale(tempDir('stockade-proj-'), ['mug']);
    t.teardown(() => s.engine.close());
    const results = await s.engine.reserveMany([
      { sku: 'mug', userId: 'u', qty: 1, idempotencyKey: 'order-1' },
      { sku: 'mug', userId: 'u', qty: 1, idempotencyKey: 'order-1 ' },
      { sku: 'mug', userId: 'u ', qty: 1, idempotencyKey: 'order-1  ' },
    ]);
    for (const r of results) {
      if (r.status !== 'reserved' || r.duplicate)
        throw new Error(`not a new reservation: ${r.status}`);
      s.statuses.set(r.reservationId, 'held');
    }
    const { pool } = await freshDatabase(t);
    const p = projector(pool, s.dir);
    t.teardown(() => p.stop());
    await p.catchUp();
    // Under utf8mb4_bin (PAD SPACE) the upsert overwrote one reservation with the next.
    await matches(t, pool, s, 'three reservations, three rows');
    const [rows] = await pool.query<RowDataPacket[]>(
      "SELECT CONCAT('[', user_id, '|', idempotency_key, ']') AS k FROM reservations ORDER BY id",
    );
    t.same(
      rows.map((r) => String(r.k)),
      ['[u|order-1]', '[u|order-1 ]', '[u |order-1  ]'],
    );
  });

  t.test('lagMs after a quiet spell is how long the new events may have waited', async (t) => {
    // The sale's clock is in 2023: the newest applied event is years old, which is not lag.
    const s = await sale(t, 1);
    const { pool } = await freshDatabase(t);
    const p = projector(pool, s.dir, { flushMs: 60_000 });
    t.teardown(() => p.stop());
    p.start();
    await eventually(
      () => p.stats().eventsApplied > 0 && p.stats().lag === 0,
      10_000,
      'the catch-up',
    );
    t.equal(p.stats().lagMs, 0, 'caught up');
    await trade(s, 1); // new events while the projector waits out its flushMs
    const st = p.stats();
    t.ok(st.lag > 0, `behind (${st.lag} bytes)`);
    t.ok(st.lagMs !== null && st.lagMs < 60_000, `lagMs bounded by the last pass (${st.lagMs})`);
  });

  t.test('a journal shorter than the applied position is refused as replaced', async (t) => {
    const s = await sale(t, 2);
    const { pool } = await freshDatabase(t);
    const first = projector(pool, s.dir);
    await first.catchUp();
    await first.stop();
    // Another, shorter journal in the place of the first: its positions mean nothing here.
    const other = await sale(t, 0, ['mug']);
    const second = projector(pool, other.dir);
    t.teardown(() => second.stop());
    await t.rejects(second.catchUp(), { code: 'projection_corrupt', message: /was replaced/ });
  });

  t.test('replaying the whole journal twice changes nothing', async (t) => {
    const s = await sale(t, 2);
    const { pool } = await freshDatabase(t);
    const first = projector(pool, s.dir);
    await first.catchUp();
    await first.stop();
    const before = await tableState(pool);
    const applied = first.stats().eventsApplied;
    for (let k = 0; k < 2; k++) {
      await pool.query('UPDATE projection_offsets SET position = 0');
      const again = projector(pool, s.dir);
      await again.catchUp();
      await again.stop();
      t.same(await tableState(pool), before, `replay ${k + 1}: tables unchanged`);
      t.equal(again.stats().eventsApplied, 0, 'nothing applied');
      t.equal(again.stats().eventsSkipped, applied, 'every event recognised as applied');
    }
    await matches(t, pool, s, 'still the engine state');
  });

  t.test('a failure inside a batch loses and duplicates nothing', async (t) => {
    const s = await sale(t, 3);
    const { pool } = await freshDatabase(t);
    let batches = 0;
    const failing = projector(pool, s.dir, {
      beforeCommit: () => {
        if (++batches === 3) throw new Error('injected failure between statements and COMMIT');
      },
    });
    await t.rejects(failing.catchUp(), /injected failure/);
    await failing.stop();
    const [[offsets]] = await pool.query<RowDataPacket[]>(
      'SELECT COUNT(*) AS n, SUM(position) AS total FROM projection_offsets',
    );
    t.ok(Number(offsets.n) >= 1, 'the batches before the failure were committed');
    const resumed = projector(pool, s.dir);
    await resumed.catchUp();
    await resumed.stop();
    await matches(t, pool, s, 'the restarted projector completed the projection exactly');
    t.equal(resumed.stats().eventsSkipped, 0, 'it resumed at the stored positions');
  });

  t.test('an outside write between batches is caught by the CAS guard', async (t) => {
    const s = await sale(t, 1);
    const { pool } = await freshDatabase(t);
    const p = projector(pool, s.dir);
    t.teardown(() => p.stop());
    await p.catchUp();
    // Another writer bumps the version and changes a counter, then the sale goes on.
    await pool.query(
      "UPDATE skus SET version = version + 1, available = available - 1 WHERE id = 'mug'",
    );
    await trade(s, 1);
    await p.catchUp();
    const st = p.stats();
    t.ok(st.casMisses >= 1, `the miss was detected (${st.casMisses})`);
    t.ok(st.conflicts >= 1, 'and counted as a conflict: the row disagreed with the journal');
    await matches(t, pool, s, 'the journal won: MySQL converged to the engine state');
  });

  t.test('two projectors on one database converge on the same rows', async (t) => {
    const s = await sale(t, 2);
    const { pool } = await freshDatabase(t);
    const a = projector(pool, s.dir);
    const b = projector(pool, s.dir, { batchEventsMax: 17 });
    await Promise.all([a.catchUp(), b.catchUp()]);
    await Promise.all([a.stop(), b.stop()]);
    await matches(t, pool, s, 'the projection is exact');
  });
}
