/**
 * 200 concurrent clients — 100 over HTTP (one connection each), 100 over WebSocket — buy one SKU
 * with stock 1,000 until each hears sold_out, on the fsync'd file journal, with the shards on
 * worker threads and inline. Exactly 1,000
 * purchases succeed, the engine's event stream holds exactly 1,000 reservations, and so does the
 * journal on disk, read back after the server stopped.
 */
import t from 'tap';
import { request as httpRequest, Agent } from 'node:http';
import { threadId } from 'node:worker_threads';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SkuEvent } from '../../engine/index.js';
import { decodeEvents } from '../../actors/index.js';
import { FileJournal } from '../../persistence/journal/index.js';
import { WsClient, request, startServer } from './helpers.js';
import type { Json } from './helpers.js';

const STOCK = 1000;
const CLIENTS = 100;

function post(agent: Agent, port: number, body: object): Promise<{ status: number; body: Json }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/skus/hot/reservations',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function httpBuyer(port: number, n: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let bought = 0;
  try {
    for (let i = 0; ; i++) {
      const r = await post(agent, port, { userId: `h${n}`, qty: 1, idempotencyKey: `h${n}-${i}` });
      if (r.status === 201) bought++;
      else if (r.body.error.code === 'sold_out') return bought;
      else throw new Error(`unexpected ${r.status} ${JSON.stringify(r.body)}`);
    }
  } finally {
    agent.destroy();
  }
}

async function wsBuyer(port: number, n: number): Promise<number> {
  const ws = await WsClient.open(port);
  let bought = 0;
  try {
    for (let i = 0; ; i++) {
      ws.send({
        type: 'reserve',
        id: i,
        sku: 'hot',
        userId: `w${n}`,
        qty: 1,
        idempotencyKey: `w${n}-${i}`,
      });
      const m = await ws.next();
      if (m.type === 'reserved') bought++;
      else if (m.error.code === 'sold_out') return bought;
      else throw new Error(`unexpected ${JSON.stringify(m)}`);
    }
  } finally {
    ws.close();
  }
}

for (const shardThreads of ['workers', 'inline'] as const) {
  const name = `200 concurrent buyers over HTTP and WebSocket, shards on ${shardThreads}: exactly the stock is sold`;
  t.test(name, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'stockade-race-'));
    const s = await startServer({
      engine: { shards: 2, shardThreads },
      journal: { kind: 'file', dir, durability: 'fsync' },
    });
    let closed = false;
    t.teardown(() => (closed ? undefined : s.close()));
    const threads = (await s.engine.stats()).shards.map((sh) => sh.threadId);
    t.same(
      threads.map((id) => id === threadId),
      shardThreads === 'inline' ? [true, true] : [false, false],
      `the shards run ${shardThreads === 'inline' ? 'on this thread' : 'on worker threads'}`,
    );
    t.equal((await request(`${s.url}/v1/skus/hot`, 'PUT', { stock: STOCK })).status, 201);
    const sub = await s.engine.subscribe();
    const events: SkuEvent[] = [];
    const collecting = (async () => {
      for await (const e of sub) events.push(e);
    })();

    const buyers: Promise<number>[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      buyers.push(httpBuyer(s.port, i));
      buyers.push(wsBuyer(s.port, i));
    }
    const counts = await Promise.all(buyers);
    const total = counts.reduce((a, b) => a + b, 0);
    t.equal(total, STOCK, 'exactly 1,000 purchases succeeded');
    t.ok(
      counts.filter((c, i) => i % 2 === 0).some((c) => c > 0),
      'HTTP clients bought',
    );
    t.ok(
      counts.filter((c, i) => i % 2 === 1).some((c) => c > 0),
      'WebSocket clients bought',
    );

    await s.engine.drain();
    sub.end();
    await collecting;
    const reserved = events.filter((e) => e.type === 'reserved' && e.sku === 'hot');
    t.equal(reserved.length, STOCK, 'the event stream holds exactly 1,000 reservations');
    t.equal(
      new Set(reserved.map((e) => (e as { reservation: number }).reservation)).size,
      STOCK,
      'all distinct',
    );
    const snap = (await request(`${s.url}/v1/skus/hot`, 'GET')).body;
    t.match(snap, { available: 0, reserved: STOCK, sold: 0 });

    await s.close();
    closed = true;
    const journal = new FileJournal({ dir, durability: 'os' });
    const onDisk: SkuEvent[] = [];
    for (let shard = 0; shard < 2; shard++) {
      await journal.read(shard, 0, (payload) => onDisk.push(...decodeEvents(payload)));
    }
    await journal.close();
    const journaled = onDisk.filter((e) => e.type === 'reserved' && e.sku === 'hot');
    t.equal(journaled.length, STOCK, 'the journal holds exactly 1,000 reservations');
    t.equal(
      new Set(journaled.map((e) => (e as { idempotencyKey: string }).idempotencyKey)).size,
      STOCK,
    );
  });
}
