// Stock subscriptions: only SKUs that exist, bounded per socket and per gateway thread, each seq
// delivered once, and a feed whose cost does not grow with the sockets that ask.
import t from 'tap';
import type { Engine } from '../../engine/index.js';
import { WsClient, request, startServer } from './helpers.js';
import type { Json } from './helpers.js';

/** Every message a socket gets within `ms` (after what it already had). */
async function collect(ws: WsClient, ms: number): Promise<Json[]> {
  const got: Json[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return got;
    const m = await ws.nextWithin(left);
    if (m === null) return got;
    got.push(m);
  }
}

/** The first `n` answers to requests (subscribed or error) a socket gets, stock updates aside. */
async function answers(ws: WsClient, n: number, ms: number): Promise<Json[]> {
  const got: Json[] = [];
  const deadline = Date.now() + ms;
  while (got.length < n) {
    const m = await ws.nextWithin(Math.max(1, deadline - Date.now()));
    if (m === null) throw new Error(`${got.length} of ${n} answers within ${ms} ms`);
    if (m.type === 'subscribed' || m.type === 'error') got.push(m);
  }
  return got;
}

async function metricsText(url: string): Promise<string> {
  return String((await request(`${url}/metrics`, 'GET')).body);
}

t.test('only SKUs that exist can be followed, within the bounds', async (t) => {
  const s = await startServer({ gateway: { skusTrackedMax: 3 } });
  t.teardown(() => s.close());
  for (const sku of ['a', 'b', 'c', 'd'])
    await request(`${s.url}/v1/skus/${sku}`, 'PUT', { stock: 5 });
  const ws = await WsClient.open(s.port);
  t.teardown(() => ws.close());
  ws.send({ type: 'subscribe', id: 1, sku: 'made-up' });
  t.match(await ws.next(), { type: 'error', id: 1, error: { code: 'unknown_sku' } });
  const gauge = async () =>
    Number(/^stockade_ws_stock_subscriptions (\d+)$/m.exec(await metricsText(s.url))?.[1]);
  t.equal(await gauge(), 0, 'a refused subscription is not followed');
  for (const sku of ['a', 'b', 'c']) {
    ws.send({ type: 'subscribe', id: sku, sku });
    t.match(await ws.nextWhere((m) => m.id === sku), { type: 'subscribed' });
  }
  ws.send({ type: 'subscribe', id: 'd', sku: 'd' });
  t.match(
    await ws.nextWhere((m) => m.id === 'd'),
    { type: 'error', error: { code: 'overloaded' } },
    'this thread follows 3 SKUs at most',
  );
  const other = await WsClient.open(s.port);
  t.teardown(() => other.close());
  other.send({ type: 'subscribe', id: 'a2', sku: 'a' });
  t.match(
    await other.next(),
    { type: 'subscribed', id: 'a2' },
    'a SKU already followed costs nothing more',
  );
  t.equal(await gauge(), 4);
});

t.test('a socket follows at most 64 SKUs', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  for (let i = 0; i < 65; i++) await s.engine.defineSku({ sku: `s${i}`, stock: 1 });
  const ws = await WsClient.open(s.port);
  t.teardown(() => ws.close());
  for (let i = 0; i < 65; i++) ws.send({ type: 'subscribe', id: i, sku: `s${i}` });
  const replies = (await collect(ws, 1000)).filter((m) => m.type !== 'stock');
  t.equal(replies.filter((m) => m.type === 'subscribed').length, 64);
  t.match(
    replies.find((m) => m.id === 64),
    { type: 'error', error: { code: 'invalid', field: 'sku', message: /at most 64/ } },
  );
});

t.test('each change reaches a subscriber once, whatever it follows', async (t) => {
  const s = await startServer({ gateway: { wsStockUpdatesPerS: 20 } });
  t.teardown(() => s.close());
  await request(`${s.url}/v1/skus/demo`, 'PUT', { stock: 100 });
  const ws = await WsClient.open(s.port);
  t.teardown(() => ws.close());
  ws.send({ type: 'subscribe', id: 1, sku: 'demo' });
  // The first snapshot, then nothing: the next poll must not send the same seq again.
  const first = await collect(ws, 400);
  t.same(
    first.map((m) => `${m.type}:${m.seq ?? ''}`),
    ['subscribed:', 'stock:1'],
  );
  ws.send({ type: 'subscribe', id: 2, sku: '*' });
  t.same(
    (await collect(ws, 300)).map((m) => String(m.type)),
    ['subscribed'],
    '* adds nothing already sent',
  );
  for (let i = 0; i < 5; i++) {
    await request(`${s.url}/v1/skus/demo/reservations`, 'POST', {
      userId: `u${i}`,
      qty: 1,
      idempotencyKey: `k${i}`,
    });
    await new Promise((r) => setTimeout(r, 120));
  }
  const updates = (await collect(ws, 300)).filter((m) => m.type === 'stock');
  const seqs = updates.map((m) => m.seq as number);
  t.same(
    seqs,
    [...new Set(seqs)].sort((a, b) => a - b),
    `each seq once, in order (${seqs.join(',')})`,
  );
  t.equal(seqs.at(-1), 6, 'up to the last change');
  ws.send({ type: 'unsubscribe', sku: '*' });
  await request(`${s.url}/v1/skus/demo/reservations`, 'POST', {
    userId: 'z',
    qty: 1,
    idempotencyKey: 'z',
  });
  t.match(
    await ws.nextWhere((m) => m.type === 'stock'),
    { seq: 7 },
    "still following demo after leaving '*'",
  );
});

t.test(
  'WebSocket messages that are not purchases are counted, malformed ones included',
  async (t) => {
    const s = await startServer();
    t.teardown(() => s.close());
    const ws = await WsClient.open(s.port);
    t.teardown(() => ws.close());
    ws.send('{nope');
    ws.send({ type: 'dance', id: 1 });
    ws.send({ type: 'subscribe', id: 2, sku: 'ghost' });
    for (let i = 0; i < 3; i++) await ws.next();
    const text = await metricsText(s.url);
    for (const outcome of ['malformed_json', 'invalid', 'unknown_sku']) {
      t.match(
        text,
        new RegExp(`stockade_requests_total\\{route="ws_message",outcome="${outcome}"\\} 1`),
        outcome,
      );
    }
  },
);

/** Records the engine's getSkus calls (the feed's polls among them) from now on. */
function recordGetSkus(engine: Engine): { calls: string[][]; stop: () => void } {
  const calls: string[][] = [];
  const original = engine.getSkus.bind(engine);
  engine.getSkus = (skus, options) => {
    calls.push([...skus]);
    return original(skus, options);
  };
  // The own property goes; the prototype's method shows through again.
  return { calls, stop: () => Reflect.deleteProperty(engine, 'getSkus') };
}

t.test(
  '50 anonymous sockets asking for made-up SKUs leave the feed polling what it polled before',
  async (t) => {
    const s = await startServer({ gateway: { wsStockUpdatesPerS: 20 } });
    t.teardown(() => s.close());
    for (let i = 0; i < 200; i++) await s.engine.defineSku({ sku: `real${i}`, stock: 10 });
    const dashboard = await WsClient.open(s.port);
    t.teardown(() => dashboard.close());
    dashboard.send({ type: 'subscribe', id: 'one', sku: 'real0' });
    await dashboard.nextWhere((m) => m.id === 'one');
    const pollsIn = async (ms: number) => {
      const rec = recordGetSkus(s.engine);
      await new Promise((r) => setTimeout(r, ms));
      rec.stop();
      return rec.calls;
    };
    const before = await pollsIn(1000);
    const sockets = await Promise.all(Array.from({ length: 50 }, () => WsClient.open(s.port)));
    t.teardown(() => sockets.forEach((w) => w.close()));
    for (const [k, w] of sockets.entries()) {
      for (let i = 0; i < 64; i++)
        w.send({ type: 'subscribe', id: i, sku: i < 4 ? `real${(k + i) % 200}` : `fake${k}-${i}` });
    }
    // Every subscribe is answered (subscribed or an error): wait for all 64 answers per socket.
    const replies = (await Promise.all(sockets.map((w) => answers(w, 64, 20_000)))).flat();
    t.equal(
      replies.filter((m) => m.error?.code === 'unknown_sku').length,
      50 * 60,
      'every made-up SKU refused',
    );
    const gauge = Number(
      /^stockade_ws_stock_subscriptions (\d+)$/m.exec(await metricsText(s.url))?.[1],
    );
    t.equal(gauge, 201, 'only real SKUs are followed');
    const after = await pollsIn(1000);
    t.ok(before.length >= 5, `the feed polls while subscribed (${before.length} calls in 1 s)`);
    t.ok(
      after.length <= before.length + 3,
      `one poll per tick, however many sockets: ${before.length} calls/s with 1 socket, ${after.length} with 51`,
    );
    const asked = new Set(after.flat());
    t.notOk(
      [...asked].some((sku) => sku.startsWith('fake')),
      'no made-up SKU is ever polled',
    );
    const followed = new Set(Array.from({ length: 53 }, (_, i) => `real${i}`));
    t.same(asked, followed, 'the polls ask for the 53 real SKUs followed, no more');
  },
);

t.test('a subscribe and the unsubscribe right behind it are answered in order', async (t) => {
  const s = await startServer({ gateway: { wsStockUpdatesPerS: 20 } });
  t.teardown(() => s.close());
  await s.engine.defineSku({ sku: 'x', stock: 5 });
  const ws = await WsClient.open(s.port);
  t.teardown(() => ws.close());
  // A busy shard: the subscribe waits on it, the unsubscribe right behind must not overtake it.
  const getSkus = s.engine.getSkus.bind(s.engine);
  s.engine.getSkus = async (skus, options) => {
    await new Promise((r) => setTimeout(r, 100));
    return getSkus(skus, options);
  };
  ws.send({ type: 'subscribe', id: 1, sku: 'x' });
  ws.send({ type: 'unsubscribe', id: 2, sku: 'x' });
  const got = await collect(ws, 500);
  t.same(
    got.filter((m) => m.type !== 'stock').map((m) => `${m.type}:${m.id}`),
    ['subscribed:1'],
    'the subscribe is answered (an unsubscribe has no answer)',
  );
  const gauge = Number(
    /^stockade_ws_stock_subscriptions (\d+)$/m.exec(await metricsText(s.url))?.[1],
  );
  t.equal(gauge, 0, 'nothing followed after the unsubscribe');
  await s.engine.reserve({ sku: 'x', userId: 'u', qty: 1, idempotencyKey: 'k' });
  t.same(
    (await collect(ws, 400)).filter((m) => m.type === 'stock'),
    [],
    'no update after the unsubscribe',
  );
});

t.test("a follower of '*' gets each seq of a SKU once while others come and go", async (t) => {
  const s = await startServer({ gateway: { wsStockUpdatesPerS: 1 } });
  t.teardown(() => s.close());
  await request(`${s.url}/v1/skus/x`, 'PUT', { stock: 5 });
  const all = await WsClient.open(s.port);
  t.teardown(() => all.close());
  all.send({ type: 'subscribe', id: 'all', sku: '*' });
  await all.nextWhere((m) => m.id === 'all');
  // A SKU defined now is tracked but not yet polled; another socket subscribes to it first.
  await request(`${s.url}/v1/skus/y`, 'PUT', { stock: 5 });
  const one = await WsClient.open(s.port);
  t.teardown(() => one.close());
  one.send({ type: 'subscribe', id: 'y', sku: 'y' });
  one.send({ type: 'subscribe', id: 'x', sku: 'x' });
  one.send({ type: 'unsubscribe', id: 'x-', sku: 'x' });
  const seen = (await collect(all, 1600)).filter((m) => m.type === 'stock');
  t.same(
    seen.map((m) => `${m.sku}:${m.seq}`).sort(),
    ['x:1', 'y:1'],
    "'*' gets y's first snapshot, and x's once",
  );
  const mine = (await collect(one, 200)).filter((m) => m.type === 'stock');
  t.same(
    mine.map((m) => `${m.sku}:${m.seq}`).sort(),
    ['x:1', 'y:1'],
    'the other socket got both first snapshots, once each',
  );
});
