import t from 'tap';
import type { Test } from 'tap';
import { MongoClient } from 'mongodb';
import type { ConfigInput } from '../../engine/index.js';
import { signJwt } from '../../gateway/index.js';
import { MongoAuditLog } from '../../persistence/stores/index.js';
import { MemoryAudit } from '../../gateway/index.js';
import type { AuditSink } from '../../gateway/index.js';
import { mongoUrl, requireMongo, uniqueName } from '../persistence/store-helpers.js';
import { SECRET, WsClient, request, startServer, until } from './helpers.js';

/** An engine and a gateway (JWT auth, a small rate limit) writing to `audit`. */
async function serve(t: Test, audit: AuditSink | undefined, overrides: ConfigInput = {}) {
  const gateway = {
    auth: 'jwt' as const,
    jwtSecret: SECRET,
    bodyBytesMax: 1024,
    rateLimitPerS: 0.001,
    rateLimitBurst: 4,
    ...overrides.gateway,
  };
  const s = await startServer({ ...overrides, gateway }, { audit });
  t.teardown(() => s.close());
  return s;
}

const exp = Math.floor(Date.now() / 1000) + 3600;
const bearer = (sub: string, role?: string) => ({
  authorization: `Bearer ${signJwt({ sub, exp, ...(role ? { role } : {}) }, { secret: SECRET })}`,
});
const ADMIN = bearer('root', 'admin');

t.test('one audit document per decision, HTTP and WebSocket, rejections included', async (t) => {
  if (!(await requireMongo(t))) return;
  const log = await MongoAuditLog.open({
    url: mongoUrl(),
    collection: uniqueName('audit_gateway'),
    bufferMax: 10_000,
    batchMax: 500,
    flushMs: 20,
    ttlDays: 1,
  });
  const reader = new MongoClient(mongoUrl());
  const docs = reader.db().collection(log.collection.collectionName);
  t.teardown(async () => {
    await log.close();
    await docs.drop().catch(() => {});
    await reader.close();
  });
  const s = await serve(t, log);
  const post = (path: string, body: unknown, headers: Record<string, string>) =>
    request(`${s.url}${path}`, 'POST', body, headers).then((r) => r.status);
  const reserve = (sku: string, user: string, key: string, qty: unknown = 1) =>
    post(`/v1/skus/${sku}/reservations`, { qty, idempotencyKey: key }, bearer(user));
  // Each expected document: [kind, route, outcome].
  const expected: [string, string, string][] = [];
  const expect = async (status: Promise<number>, want: number, doc: [string, string, string]) => {
    t.equal(await status, want, doc.join(' '));
    expected.push(doc);
  };

  const put = (sku: string, body: unknown, h: Record<string, string>) =>
    request(`${s.url}/v1/skus/${sku}`, 'PUT', body, h).then((r) => r.status);
  const defined: [string, string, string] = ['admin', 'put_sku', 'defined'];
  await expect(put('sale', { stock: 5, perUserLimit: 2 }, ADMIN), 201, defined);
  await expect(put('tiny', { stock: 1 }, ADMIN), 201, defined);
  await expect(put('tiny', { stock: 1 }, bearer('bob')), 403, ['admin', 'put_sku', 'forbidden']);

  const r1 = await request(
    `${s.url}/v1/skus/sale/reservations`,
    'POST',
    {
      qty: 1,
      idempotencyKey: 'a1',
    },
    bearer('alice'),
  );
  t.equal(r1.status, 201);
  expected.push(['reservation', 'reserve', 'reserved']);
  await expect(reserve('sale', 'alice', 'a2'), 201, ['reservation', 'reserve', 'reserved']);
  await expect(reserve('sale', 'alice', 'a3'), 409, ['reservation', 'reserve', 'limit_exceeded']);
  await expect(reserve('sale', 'alice', 'a1', 2), 409, [
    'reservation',
    'reserve',
    'idempotency_conflict',
  ]);
  await expect(reserve('nosuch', 'bob', 'b1'), 404, ['reservation', 'reserve', 'unknown_sku']);
  await expect(reserve('sale', 'bob', 'b2', 'x'), 422, ['reservation', 'reserve', 'invalid']);
  await expect(post('/v1/skus/sale/reservations', { qty: 1, idempotencyKey: 'n' }, {}), 401, [
    'reservation',
    'reserve',
    'unauthorized',
  ]);
  await expect(post('/v1/skus/sale/reservations', '{"qty":', bearer('bob')), 400, [
    'reservation',
    'reserve',
    'malformed_json',
  ]);
  await expect(
    post('/v1/skus/sale/reservations', 'qty=1', { ...bearer('bob'), 'content-type': 'text/plain' }),
    415,
    ['reservation', 'reserve', 'unsupported_media_type'],
  );
  await expect(
    post('/v1/skus/sale/reservations', { qty: 1, idempotencyKey: 'x'.repeat(2000) }, bearer('bob')),
    413,
    ['reservation', 'reserve', 'payload_too_large'],
  );
  // carol: two reserved, two over her limit, then her bucket of 4 is empty.
  for (const [i, want, outcome] of [
    [1, 201, 'reserved'],
    [2, 201, 'reserved'],
    [3, 409, 'limit_exceeded'],
    [4, 409, 'limit_exceeded'],
    [5, 429, 'rate_limited'],
  ] as const)
    await expect(reserve('sale', 'carol', `c${i}`), want, ['reservation', 'reserve', outcome]);
  await expect(reserve('tiny', 'erin', 'e1'), 201, ['reservation', 'reserve', 'reserved']);
  await expect(reserve('tiny', 'frank', 'f1'), 409, ['reservation', 'reserve', 'sold_out']);

  const id1 = r1.body.reservationId as string;
  await expect(post(`/v1/reservations/${id1}/confirm`, undefined, bearer('alice')), 200, [
    'transition',
    'confirm',
    'confirmed',
  ]);
  await expect(post(`/v1/reservations/${id1}/cancel`, undefined, bearer('alice')), 409, [
    'transition',
    'cancel',
    'invalid_transition',
  ]);
  await expect(post(`/v1/orders/${id1}/return`, undefined, bearer('alice')), 200, [
    'transition',
    'return',
    'returned',
  ]);
  await expect(post('/v1/skus/sale/restock', { qty: 3 }, ADMIN), 200, [
    'admin',
    'restock',
    'restocked',
  ]);
  await expect(post('/v1/skus/tiny/close', undefined, ADMIN), 200, [
    'admin',
    'close',
    'sale_closed',
  ]);
  await expect(reserve('tiny', 'gina', 'g1'), 403, ['reservation', 'reserve', 'closed']);
  // Reads are not audited.
  t.equal((await request(`${s.url}/v1/skus/sale`, 'GET')).status, 200);

  // WebSocket: dave with a token, and a socket without one.
  const token = signJwt({ sub: 'dave', exp }, { secret: SECRET });
  const ws = await WsClient.open(s.gateway.port, `/v1/ws?token=${token}`);
  t.teardown(() => ws.close());
  const wsExpect = async (msg: unknown, type: string, outcome: string) => {
    ws.send(msg);
    const m = await ws.next();
    t.equal(m.type === 'error' ? m.error.code : m.type, type, `ws ${outcome}`);
    expected.push(['reservation', 'ws_reserve', outcome]);
  };
  const wsReserve = (sku: string, key: string, qty: unknown = 1) => ({
    type: 'reserve',
    id: key,
    sku,
    qty,
    idempotencyKey: key,
  });
  await wsExpect(wsReserve('sale', 'd1'), 'reserved', 'reserved');
  await wsExpect(wsReserve('sale', 'd2', 0), 'invalid', 'invalid');
  await wsExpect('{"type":', 'malformed_json', 'malformed_json');
  await wsExpect(wsReserve('nosuch', 'd3'), 'unknown_sku', 'unknown_sku');
  await wsExpect(wsReserve('sale', 'd1', 2), 'idempotency_conflict', 'idempotency_conflict');
  ws.send({ type: 'subscribe', sku: 'sale' }); // not a purchase: no document
  await ws.nextWhere((m) => m.type === 'subscribed');
  const anon = await WsClient.open(s.gateway.port);
  t.teardown(() => anon.close());
  anon.send(wsReserve('sale', 'z1'));
  t.match(await anon.next(), { error: { code: 'unauthorized' } });
  expected.push(['reservation', 'ws_reserve', 'unauthorized']);
  // Garbage from an anonymous socket (a subscriber) is answered, not audited.
  anon.send('{"type":');
  t.match(await anon.next(), { error: { code: 'malformed_json' } });

  // The entries reach MongoDB on the flush timer; /metrics counts them.
  const metricsWritten = async () => {
    const text = (await request(`${s.url}/metrics`, 'GET')).body as string;
    return Number(/^stockade_audit_written_total (\d+)$/m.exec(text)?.[1] ?? -1);
  };
  const deadline = Date.now() + 10_000;
  while ((await metricsWritten()) < expected.length && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  t.equal(await metricsWritten(), expected.length, '/metrics: every entry written');
  t.match(
    (await request(`${s.url}/metrics`, 'GET')).body,
    /^stockade_audit_dropped_total 0$/m,
    '/metrics: none dropped',
  );
  await s.close();
  await log.close();

  const got = await docs.find({}, { sort: { _id: 1 } }).toArray();
  const key = (d: { kind: string; route: string; outcome: string }) =>
    `${d.kind} ${d.route} ${d.outcome}`;
  t.same(
    got.map((d) => key(d as never)).sort(),
    expected.map(([kind, route, outcome]) => key({ kind, route, outcome })).sort(),
    `exactly one document per decision (${expected.length})`,
  );

  const first = got.find((d) => d.idempotencyKey === 'a1' && d.outcome === 'reserved')!;
  t.match(first, {
    kind: 'reservation',
    outcome: 'reserved',
    sku: 'sale',
    userId: 'alice',
    route: 'reserve',
    transport: 'http',
    thread: 0,
    qty: 1,
    reservationId: id1,
    detail: null,
  });
  t.type(first.at, Date);
  t.ok(first.latencyUs >= 0 && first.latencyUs < 10_000_000, `latencyUs ${first.latencyUs}`);
  t.match(
    got.find((d) => d.route === 'confirm'),
    {
      kind: 'transition',
      sku: 'sale',
      userId: 'alice',
      reservationId: id1,
    },
  );
  t.match(
    got.find((d) => d.outcome === 'invalid' && d.transport === 'http'),
    {
      detail: 'qty',
      userId: 'bob',
    },
  );
  t.match(
    got.find((d) => d.transport === 'ws' && d.outcome === 'reserved'),
    {
      userId: 'dave',
      sku: 'sale',
      idempotencyKey: 'd1',
      qty: 1,
    },
  );
  t.match(
    got.find((d) => d.route === 'restock'),
    { kind: 'admin', sku: 'sale', qty: 3 },
  );
  t.match(
    got.find((d) => d.outcome === 'forbidden'),
    { kind: 'admin', userId: 'bob' },
  );

  // The dashboard's queries over this sale.
  const since = Date.now() - 60_000;
  const sales = await MongoAuditLog.open({
    url: mongoUrl(),
    collection: docs.collectionName,
    bufferMax: 10,
    batchMax: 10,
    flushMs: 1000,
    ttlDays: 1,
  });
  t.teardown(() => sales.close());
  const perSecond = await sales.salesPerSecond('sale', since);
  t.equal(
    perSecond.reduce((n, s) => n + s.reservations, 0),
    5,
    'alice 2, carol 2, dave 1 reserved on "sale"',
  );
  const reasons = new Map((await sales.rejectionsByReason(since)).map((r) => [r.reason, r.count]));
  t.equal(reasons.get('limit_exceeded'), 3);
  t.equal(reasons.get('unknown_sku'), 2);
  t.equal(reasons.get('rate_limited'), 1);
  t.equal(reasons.get('sold_out'), 1);
});

t.test('gateway worker threads forward their entries to the main thread', async (t) => {
  const audit = new MemoryAudit();
  const s = await serve(t, audit, {
    gateway: { threads: 2, threadPorts: 'consecutive', rateLimitPerS: 0 },
  });
  const [, workerPort] = s.gateway.ports;
  const worker = `http://127.0.0.1:${workerPort}`;
  t.equal(
    (await request(`${worker}/v1/skus/w`, 'PUT', { stock: 1 }, ADMIN)).status,
    201,
    'defined through the worker',
  );
  const buy = (user: string) =>
    request(
      `${worker}/v1/skus/w/reservations`,
      'POST',
      { qty: 1, idempotencyKey: user },
      {
        ...bearer(user),
      },
    );
  t.equal((await buy('u1')).status, 201);
  t.equal((await buy('u2')).status, 409);
  const token = signJwt({ sub: 'u3', exp }, { secret: SECRET });
  const ws = await WsClient.open(workerPort, `/v1/ws?token=${token}`);
  t.teardown(() => ws.close());
  ws.send({ type: 'reserve', id: 1, sku: 'w', qty: 1, idempotencyKey: 'k' });
  t.match(await ws.next(), { error: { code: 'sold_out' } });
  await until(() => audit.entries.length >= 4);
  await s.close();
  t.same(
    audit.entries.map((e) => [e.thread, e.kind, e.outcome, e.transport]),
    [
      [1, 'admin', 'defined', 'http'],
      [1, 'reservation', 'reserved', 'http'],
      [1, 'reservation', 'sold_out', 'http'],
      [1, 'reservation', 'sold_out', 'ws'],
    ],
  );
});

t.test('without an audit sink: no audit counters on /metrics', async (t) => {
  const s = await serve(t, undefined);
  t.equal((await request(`${s.url}/v1/skus/q`, 'PUT', { stock: 1 }, ADMIN)).status, 201);
  t.equal(s.gateway.service.auditStats(), null);
  t.notMatch((await request(`${s.url}/metrics`, 'GET')).body, /stockade_audit_/);
});

t.test(
  'a worker thread holds at most bufferMax entries not yet taken by the main thread',
  async (t) => {
    const { AuditForwarder } = await import('../../gateway/audit.js');
    const posted: { entries: number; dropped: number }[] = [];
    const taken = new Int32Array(new SharedArrayBuffer(4)); // what the main thread adds to
    const fwd = new AuditForwarder(
      (entries, dropped) => posted.push({ entries: entries.length, dropped }),
      3,
      taken,
    );
    const entry = (n: number) => ({
      kind: 'reservation' as const,
      outcome: 'reserved',
      at: n,
      sku: 's',
      userId: 'u',
      route: 'reserve',
      transport: 'http' as const,
      thread: 1,
      qty: 1,
      reservationId: null,
      idempotencyKey: `k${n}`,
      latencyUs: 1,
      detail: null,
    });
    fwd.record(entry(1));
    fwd.record(entry(2));
    fwd.flush();
    t.same(posted, [{ entries: 2, dropped: 0 }], 'one message per turn');
    // The main thread has not taken those two yet: one more fits, the next is dropped.
    fwd.record(entry(3));
    fwd.record(entry(4));
    fwd.flush();
    t.same(posted[1], { entries: 1, dropped: 1 }, 'past the bound, dropped and counted');
    t.equal(fwd.held, 3);
    Atomics.add(taken, 0, 2); // the main thread took the first message's two
    t.equal(fwd.held, 1, 'taken entries free their room');
    fwd.record(entry(5));
    fwd.record(entry(6));
    fwd.flush();
    t.same(posted[2], { entries: 2, dropped: 0 });
  },
);
