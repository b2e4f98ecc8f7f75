/**
 * gateway.threads = 2: a second uWS App in a worker thread, forwarding to the engine on the
 * main thread. Every route must behave the same whichever thread serves it. uWS.js 20.30 cannot
 * share a port between Apps on Linux, so the threads listen on consecutive ports here and the
 * test sends to both.
 */
import t from 'tap';
import { Agent, request as httpRequest } from 'node:http';
import { WsClient, request, startServer } from './helpers.js';
import type { Json } from './helpers.js';

function postOnce(
  port: number,
  path: string,
  body: object,
): Promise<{ status: number; body: Json }> {
  const agent = new Agent({ keepAlive: false });
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

t.test('two gateway threads on one port share one engine', async (t) => {
  const s = await startServer({ gateway: { threads: 2, threadPorts: 'consecutive' } });
  t.teardown(() => s.close());
  t.equal(s.gateway.threads, 2);
  const [p0, p1] = s.gateway.ports;
  t.not(p0, p1);
  const portOf = (i: number) => (i % 2 === 0 ? p0 : p1);
  await request(`${s.url}/v1/skus/t`, 'PUT', { stock: 40, perUserLimit: 1 });
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      postOnce(portOf(i), '/v1/skus/t/reservations', {
        userId: `u${i % 30}`,
        qty: 1,
        idempotencyKey: `k${i}`,
      }),
    ),
  );
  const ok = results.filter((r) => r.status === 201).length;
  const limited = results.filter((r) => r.body.error?.code === 'limit_exceeded').length;
  t.equal(ok, 30, 'one unit per user, whichever thread served them');
  t.equal(limited, 10, 'rejections with their codes cross the thread boundary');
  const ids = new Set(
    results.filter((r) => r.status === 201).map((r) => r.body.reservationId as string),
  );
  t.equal(ids.size, 30);
  const mainOk = s.gateway.service.metrics.counts[0];
  t.ok(mainOk > 0 && mainOk < 30, `both threads served purchases (main: ${mainOk} of 30)`);

  // Invalid input with a field, and other calls, through whichever thread.
  const bad = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      postOnce(portOf(i), '/v1/skus/t/reservations', { userId: 'z', qty: 0, idempotencyKey: 'q' }),
    ),
  );
  t.ok(bad.every((r) => r.status === 422 && r.body.error.field === 'qty'));
  const confirms = await Promise.all(
    [...ids].slice(0, 10).map((id, i) => postOnce(portOf(i), `/v1/reservations/${id}/confirm`, {})),
  );
  t.ok(
    confirms.every((r) => r.status === 200 && r.body.status === 'confirmed'),
    'confirm via both threads',
  );

  const wss = await Promise.all(Array.from({ length: 6 }, (_, i) => WsClient.open(portOf(i))));
  t.teardown(() => wss.forEach((w) => w.close()));
  await request(`${s.url}/v1/skus/t/restock`, 'POST', { qty: 10 });
  wss.forEach((w, i) =>
    w.send({ type: 'reserve', id: i, sku: 't', userId: `ws${i}`, qty: 1, idempotencyKey: `w${i}` }),
  );
  const replies = await Promise.all(wss.map((w) => w.next()));
  t.ok(
    replies.every((m, i) => m.type === 'reserved' && m.id === i),
    'WebSocket purchases via both threads',
  );
  wss.forEach((w) => w.send({ type: 'subscribe', sku: 't' }));
  const snaps = await Promise.all(wss.map((w) => w.nextWhere((m) => m.type === 'stock')));
  t.ok(
    snaps.every((m) => m.sku === 't' && m.reserved === 26),
    'stock snapshots via both threads',
  );

  // Worker metrics reach the main thread once a second: wait for the merged count.
  for (let i = 0; ; i++) {
    const m = await s.gateway.service.clusterMetrics();
    if (m.metrics.counts[0] === 30) break;
    if (i > 10_000) throw new Error('worker metrics never arrived');
    await new Promise((r) => setImmediate(r));
  }
  t.pass('metrics add up across threads');
});

t.test(
  'threadPorts shared: the kernel spreads connections over both threads on one port',
  async (t) => {
    const s = await startServer({ gateway: { threads: 2, threadPorts: 'shared' } });
    t.teardown(() => s.close());
    t.same(s.gateway.ports, [s.port, s.port]);
    await request(`${s.url}/v1/skus/sh`, 'PUT', { stock: 100 });
    // A fresh connection per request: 40 connections all landing on one thread is 2^-39 likely.
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        postOnce(s.port, '/v1/skus/sh/reservations', {
          userId: `u${i}`,
          qty: 1,
          idempotencyKey: `k${i}`,
        }),
      ),
    );
    t.ok(results.every((r) => r.status === 201));
    const mainOk = s.gateway.service.metrics.counts[0];
    t.ok(mainOk > 0 && mainOk < 40, `both threads served (main: ${mainOk} of 40)`);
  },
);

t.test('a second server cannot silently share a port that is in use', async (t) => {
  const a = await startServer({ gateway: { port: 0 } });
  t.teardown(() => a.close());
  await t.rejects(startServer({ gateway: { port: a.port } }), /cannot listen/);
  await t.rejects(startServer({ gateway: { port: a.port, threads: 2 } }), /cannot listen/);
});

t.test('every gateway thread refuses ids with a lone surrogate, as the engine does', async (t) => {
  const s = await startServer({ gateway: { threads: 2, threadPorts: 'consecutive' } });
  t.teardown(() => s.close());
  const [p0, p1] = s.gateway.ports;
  await request(`${s.url}/v1/skus/lone`, 'PUT', { stock: 100, perUserLimit: 1 });
  // UTF-8 turns every lone surrogate into U+FFFD: had a thread let them through, 40 keys (or
  // users) would have become one.
  const lone = (i: number) => `k${String.fromCharCode(0xd800 + i)}`;
  const sent = Array.from({ length: 80 }, (_, i) => {
    const body =
      i < 40
        ? { userId: `u${i}`, qty: 1, idempotencyKey: lone(i) }
        : { userId: lone(i - 40), qty: 1, idempotencyKey: `key${i}` };
    return postOnce(i % 2 === 0 ? p0 : p1, '/v1/skus/lone/reservations', body);
  });
  const results = await Promise.all(sent);
  t.same(
    results.map((r) => `${r.status} ${r.body.error?.field}`),
    results.map((_, i) => `422 ${i < 40 ? 'idempotencyKey' : 'userId'}`),
    'each one 422, on both threads',
  );
  const snap = await request(`${s.url}/v1/skus/lone`, 'GET');
  t.equal(snap.body.reserved, 0, 'nothing was reserved');
  const named = await request(`${s.url}/v1/skus/lone`, 'PUT', { name: 'A\ud800B' });
  t.equal(named.status, 422);
  t.equal(named.body.error.field, 'name', 'a SKU name must be well-formed too');
});
