import t from 'tap';
import { signJwt } from '../../gateway/index.js';
import { SECRET, WsClient, request, startServer, until } from './helpers.js';

t.test('purchases over a WebSocket, answered on the same socket by correlation id', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await request(`${s.url}/v1/skus/w`, 'PUT', { stock: 2, perUserLimit: 1 });
  const ws = await WsClient.open(s.port);
  t.teardown(() => ws.close());
  ws.send({ type: 'reserve', id: 'c1', sku: 'w', userId: 'u1', qty: 1, idempotencyKey: 'k1' });
  ws.send({ type: 'reserve', id: 2, sku: 'w', userId: 'u1', qty: 1, idempotencyKey: 'k2' });
  const a = await ws.next();
  const b = await ws.next();
  t.match(a, {
    type: 'reserved',
    id: 'c1',
    reservationId: 'w:1',
    sku: 'w',
    qty: 1,
    duplicate: false,
  });
  t.match(b, { type: 'error', id: 2, error: { code: 'limit_exceeded', retriable: false } });

  ws.send('{not json');
  t.match(await ws.next(), { type: 'error', id: null, error: { code: 'malformed_json' } });
  ws.send({ type: 'reserve', id: 'q', sku: 'w', userId: 'u2', qty: 'one', idempotencyKey: 'k' });
  t.match(await ws.next(), { type: 'error', id: 'q', error: { code: 'invalid', field: 'qty' } });
  ws.send({ type: 'reserve', id: 'n', sku: 'nope', userId: 'u2', qty: 1, idempotencyKey: 'k' });
  t.match(await ws.next(), { type: 'error', id: 'n', error: { code: 'unknown_sku' } });
  ws.send({ type: 'dance', id: 'd' });
  t.match(await ws.next(), { type: 'error', id: 'd', error: { code: 'invalid', field: 'type' } });
  ws.send({ type: 'reserve', id: 'z', sku: 'w', userId: 'u2', qty: 1, idempotencyKey: 'k' });
  t.match(await ws.next(), { type: 'reserved', id: 'z' });
  ws.send({ type: 'reserve', id: 'y', sku: 'w', userId: 'u3', qty: 1, idempotencyKey: 'k3' });
  t.match(await ws.next(), { type: 'error', id: 'y', error: { code: 'sold_out' } });
});

t.test(
  'stock subscriptions: a first snapshot, then coalesced updates as stock moves',
  async (t) => {
    const s = await startServer({ gateway: { wsStockUpdatesPerS: 20 } });
    t.teardown(() => s.close());
    await request(`${s.url}/v1/skus/live`, 'PUT', { stock: 100, name: 'Live one' });
    const ws = await WsClient.open(s.port);
    t.teardown(() => ws.close());
    ws.send({ type: 'subscribe', id: 's', sku: 'live' });
    t.match(await ws.next(), { type: 'subscribed', id: 's', sku: 'live' });
    t.match(await ws.next(), {
      type: 'stock',
      sku: 'live',
      name: 'Live one',
      available: 100,
      stock: 100,
    });
    for (let i = 0; i < 30; i++) {
      await request(`${s.url}/v1/skus/live/reservations`, 'POST', {
        userId: `u${i}`,
        qty: 1,
        idempotencyKey: `k${i}`,
      });
    }
    const last = await ws.nextWhere((m) => m.type === 'stock' && m.available === 70);
    t.match(last, { reserved: 30, sold: 0 }, 'updates reach the final state');

    ws.send({ type: 'subscribe', sku: 'bad sku!' });
    t.match(await ws.next(), { type: 'error', error: { code: 'invalid', field: 'sku' } });

    // Subscribing again is answered again but counted once: one unsubscribe ends it.
    const gauge = async () => {
      const text = String((await request(`${s.url}/metrics`, 'GET')).body);
      return Number(/^stockade_ws_stock_subscriptions (\d+)$/m.exec(text)?.[1]);
    };
    t.equal(await gauge(), 1);
    for (let i = 0; i < 3; i++) ws.send({ type: 'subscribe', id: `again${i}`, sku: 'live' });
    for (let i = 0; i < 3; i++)
      t.match(await ws.nextWhere((m) => m.type === 'subscribed'), { id: `again${i}`, sku: 'live' });
    t.equal(await gauge(), 1, 'still one subscription');
    ws.send({ type: 'unsubscribe', sku: 'live' });
    ws.send({ type: 'subscribe', id: 'probe', sku: 'bad sku!' }); // answered after the unsubscribe
    t.match(await ws.nextWhere((m) => m.type === 'error'), { id: 'probe' });
    t.equal(await gauge(), 0, 'one unsubscribe ends it');

    const all = await WsClient.open(s.port);
    t.teardown(() => all.close());
    all.send({ type: 'subscribe', sku: '*' });
    all.send({ type: 'subscribe_stats' });
    t.match(await all.next(), { type: 'subscribed', sku: '*' });
    t.match(await all.nextWhere((m) => m.type === 'stock'), { sku: 'live', available: 70 });
    const stats = await all.nextWhere((m) => m.type === 'stats');
    t.type(stats.purchasesPerS, 'number');
    t.type(stats.latencyMs.p99, 'number');
    t.type(stats.rejections, 'object');
  },
);

t.test(
  'WebSocket auth: a bad token is refused at the upgrade; no token means read-only',
  async (t) => {
    const s = await startServer({ gateway: { auth: 'jwt', jwtSecret: SECRET } });
    t.teardown(() => s.close());
    const exp = Math.floor(Date.now() / 1000) + 600;
    const admin = `Bearer ${signJwt({ sub: 'ops', role: 'admin', exp }, { secret: SECRET })}`;
    await request(`${s.url}/v1/skus/a`, 'PUT', { stock: 5 }, { authorization: admin });
    await t.rejects(WsClient.open(s.port, '/v1/ws?token=garbage'), /401/);
    await t.rejects(
      WsClient.open(s.port, '/v1/ws', {
        authorization: `Bearer ${signJwt({ sub: 'x', exp: 1 }, { secret: SECRET })}`,
      }),
      /401/,
    );
    const anon = await WsClient.open(s.port);
    t.teardown(() => anon.close());
    anon.send({ type: 'reserve', id: 1, sku: 'a', userId: 'someone', qty: 1, idempotencyKey: 'k' });
    t.match(await anon.next(), { type: 'error', id: 1, error: { code: 'unauthorized' } });
    const token = signJwt({ sub: 'carol', exp }, { secret: SECRET });
    const carol = await WsClient.open(s.port, `/v1/ws?token=${token}`);
    t.teardown(() => carol.close());
    carol.send({ type: 'reserve', id: 1, sku: 'a', qty: 1, idempotencyKey: 'k' });
    t.match(await carol.next(), { type: 'reserved', id: 1, reservationId: 'a:1' });
  },
);

t.test('a WebSocket cannot buy once its token has expired', async (t) => {
  const s = await startServer({ gateway: { auth: 'jwt', jwtSecret: SECRET, jwtLeewayS: 0 } });
  t.teardown(() => s.close());
  const admin = `Bearer ${signJwt({ sub: 'ops', role: 'admin', exp: Math.floor(Date.now() / 1000) + 600 }, { secret: SECRET })}`;
  await request(`${s.url}/v1/skus/a`, 'PUT', { stock: 5 }, { authorization: admin });
  const exp = Math.floor(Date.now() / 1000) + 2;
  const dave = await WsClient.open(
    s.port,
    `/v1/ws?token=${signJwt({ sub: 'dave', exp }, { secret: SECRET })}`,
  );
  t.teardown(() => dave.close());
  dave.send({ type: 'reserve', id: 1, sku: 'a', qty: 1, idempotencyKey: 'k1' });
  t.match(await dave.next(), { type: 'reserved', id: 1 }, 'bought while the token was valid');
  await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 100));
  dave.send({ type: 'reserve', id: 2, sku: 'a', qty: 1, idempotencyKey: 'k2' });
  t.match(
    await dave.next(),
    { type: 'error', id: 2, error: { code: 'unauthorized' } },
    'not after it expired',
  );
  t.match(
    (await request(`${s.url}/v1/skus/a`, 'GET')).body,
    { available: 4, reserved: 1 },
    'nothing more was reserved',
  );
});

t.test(
  'a slow consumer is dropped past the backpressure bound; the server carries on',
  async (t) => {
    const s = await startServer({ gateway: { wsBackpressureBytesMax: 1024 } });
    t.teardown(() => s.close());
    const slow = await WsClient.open(s.port);
    slow.socket.pause(); // read nothing: replies pile up in the kernel, then in uWS
    const id = 'x'.repeat(120);
    const n = 60_000;
    const chunk: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      // Unknown message types get an error reply of ~250 bytes without touching the engine.
      chunk.push(maskedText(JSON.stringify({ type: 'nope', id })));
    }
    slow.socket.write(Buffer.concat(chunk));
    await until(() => s.gateway.service.metrics.wsConnections === 0);
    t.pass('the server closed the slow socket');
    slow.close();
    const ok = await request(`${s.url}/healthz`, 'GET');
    t.equal(ok.status, 200);
  },
);

t.test('clients that disconnect mid-request do not hurt the server', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await request(`${s.url}/v1/skus/d`, 'PUT', { stock: 1000 });
  for (let i = 0; i < 20; i++) {
    const ws = await WsClient.open(s.port);
    ws.send({ type: 'reserve', id: i, sku: 'd', userId: `u${i}`, qty: 1, idempotencyKey: `k${i}` });
    ws.send({ type: 'subscribe', sku: 'd' });
    ws.close();
  }
  await until(
    () => s.gateway.service.metrics.wsConnections === 0 && s.gateway.service.metrics.inflight === 0,
  );
  const ws = await WsClient.open(s.port);
  t.teardown(() => ws.close());
  ws.send({ type: 'reserve', id: 'after', sku: 'd', userId: 'z', qty: 1, idempotencyKey: 'z' });
  t.match(await ws.next(), { type: 'reserved', id: 'after' });
});

function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  const head =
    payload.length < 126
      ? Buffer.from([0x81, 0x80 | payload.length])
      : Buffer.from([0x81, 0x80 | 126, 0, 0]);
  if (payload.length >= 126) head.writeUInt16BE(payload.length, 2);
  // A zero mask leaves the payload as is (valid: clients must mask, any key will do).
  return Buffer.concat([head, Buffer.alloc(4), payload]);
}
