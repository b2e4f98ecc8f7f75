// The benchmark suite's baselines sell correctly, on the real Redis and MariaDB: a crowd on a
// small stock sells it exactly (never one more), a repeated key answers the first purchase
// again, the per-user limit holds, and bad requests change nothing. A baseline that oversold
// would make every comparison with it meaningless.
import t from 'tap';
import type { Test } from 'tap';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { send, startChild, stop } from '../../bench/http.js';
import { mysqlTestUrl, requireMysql } from '../persistence/mysql-helpers.js';
import { redisUrl, requireRedis } from '../persistence/store-helpers.js';

type Answer = {
  status: number;
  json: { reservationId?: string; duplicate?: boolean; error?: { code: string } };
};

/** Starts a baseline; `stop` ends it (and says its exit code); the teardown ends it if not. */
async function start(t: Test, script: string) {
  const { child, match } = await startChild(script, ['--port', '0'], /listening (\d+)/, {
    STOCKADE_REDIS_URL: redisUrl(),
    STOCKADE_MYSQL_URL: mysqlTestUrl(),
  });
  t.teardown(() => stop(child));
  return { base: `http://127.0.0.1:${match[1]}`, pid: child.pid!, stop: () => stop(child) };
}

/** The status code a raw HTTP request gets (the server may close right after answering). */
function rawStatus(base: string, request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(base).port), '127.0.0.1', () => socket.write(request));
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) {
        socket.destroy();
        resolve(Number(m[1]));
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed without an answer: ${text}`)));
  });
}

async function sellsCorrectly(t: Test, base: string): Promise<void> {
  const put = await send(`${base}/v1/skus/crowd`, 'PUT', { stock: 50, perUserLimit: 2 });
  t.equal(put.status, 201);
  // 200 purchases at once: 80 buyers (limit 2 each), 150 keys (50 of them sent twice).
  const answers = (await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      send(`${base}/v1/skus/crowd/reservations`, 'POST', {
        userId: `u${i % 80}`,
        qty: 1,
        idempotencyKey: `k${i % 150}`,
      }),
    ),
  )) as Answer[];
  const firsts = answers.filter((a) => a.status === 201 && !a.json.duplicate);
  t.equal(firsts.length, 50, 'exactly the stock is sold');
  t.equal(new Set(firsts.map((a) => a.json.reservationId)).size, 50, 'each sale its own id');
  for (const a of answers.filter((x) => x.status !== 201))
    t.ok(
      a.status === 409 && ['sold_out', 'limit_exceeded'].includes(a.json.error!.code),
      JSON.stringify(a),
    );
  // A repeated key answers the first purchase again (if the first was refused: decided anew).
  const ids = new Set(firsts.map((a) => a.json.reservationId));
  for (const d of answers.filter((a) => a.status === 201 && a.json.duplicate))
    t.ok(ids.has(d.json.reservationId), 'a duplicate names a sale that happened');
  const counts = (await send(`${base}/v1/skus/crowd`, 'GET', undefined)).json;
  t.same(counts, { sku: 'crowd', stock: 50, available: 0, sold: 50 }, 'read back from the store');
  const outcomes = (await send(`${base}/v1/outcomes`, 'GET', undefined)).json as {
    reserve: Record<string, number>;
  };
  t.equal(
    Object.values(outcomes.reserve).reduce((a, b) => a + b, 0),
    200,
    'every answer tallied',
  );
  t.equal(outcomes.reserve.ok, 50);

  await send(`${base}/v1/skus/limited`, 'PUT', { stock: 10, perUserLimit: 2 });
  const buy = (key: string, qty = 1) =>
    send(`${base}/v1/skus/limited/reservations`, 'POST', {
      userId: 'x',
      qty,
      idempotencyKey: key,
    }) as Promise<Answer>;
  t.equal((await buy('l1')).status, 201);
  t.equal((await buy('l2')).status, 201);
  const third = await buy('l3');
  t.same(
    [third.status, third.json.error?.code],
    [409, 'limit_exceeded'],
    'the third unit is over the limit',
  );
  t.same((await buy('l4', 3)).json.error?.code, 'limit_exceeded', 'so is one purchase of three');
  const again = await buy('l1');
  t.same([again.status, again.json.duplicate], [201, true], 'a retried key is the same purchase');
  t.same((await send(`${base}/v1/skus/limited`, 'GET', undefined)).json, {
    sku: 'limited',
    stock: 10,
    available: 8,
    sold: 2,
  });

  const unknown = (await send(`${base}/v1/skus/none/reservations`, 'POST', {
    userId: 'x',
    qty: 1,
    idempotencyKey: 'n1',
  })) as Answer;
  t.same([unknown.status, unknown.json.error?.code], [404, 'unknown_sku']);
  const bad = (await send(`${base}/v1/skus/limited/reservations`, 'POST', {
    userId: 'x',
    qty: 0,
    idempotencyKey: 'b1',
  })) as Answer;
  t.same([bad.status, bad.json.error?.code], [422, 'invalid']);
  const bigBody = JSON.stringify({ userId: 'x'.repeat(20_000), qty: 1, idempotencyKey: 'big' });
  const big = await rawStatus(
    base,
    `POST /v1/skus/limited/reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${bigBody.length}\r\n\r\n${bigBody}`,
  );
  t.equal(big, 413, 'a body over 16 KiB is refused');
  const after = (await send(`${base}/v1/skus/limited`, 'GET', undefined)).json as { sold: number };
  t.equal(after.sold, 2, 'nothing refused was sold');
}

t.test('Redis + Lua sells exactly its stock, and removes its keys when it stops', async (t) => {
  if (!(await requireRedis(t))) return;
  let pid = 0;
  await t.test('sells', async (t) => {
    const s = await start(t, './baselines/redis-lua.js');
    pid = s.pid;
    await sellsCorrectly(t, s.base);
    t.equal(await s.stop(), 0, 'stops cleanly on SIGTERM');
  });
  t.ok(pid > 0, 'it ran');
  const redis = new Redis(redisUrl());
  t.teardown(() => redis.quit());
  t.same(await redis.keys(`bench:${pid}-*`), [], 'no key of it is left');
});

t.test(
  'MySQL conditional UPDATE sells exactly its stock, and drops its tables when it stops',
  async (t) => {
    if (!(await requireMysql(t))) return;
    let pid = 0;
    await t.test('sells', async (t) => {
      const s = await start(t, './baselines/mysql-update.js');
      pid = s.pid;
      await sellsCorrectly(t, s.base);
    });
    t.ok(pid > 0, 'it ran');
    const { createConnection } = await import('mysql2/promise');
    const conn = await createConnection(mysqlTestUrl());
    t.teardown(() => conn.end());
    const [rows] = await conn.query(`SHOW TABLES LIKE 'sb${pid}\\_%'`);
    t.same(rows, [], 'no table of it is left');
  },
);
