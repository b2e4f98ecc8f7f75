// A graceful stop while WebSocket clients are buying: every purchase the engine decided must
// have reached its client (or been refused with not_ready before it was decided).
import t from 'tap';
import { createEngine } from '../../engine/index.js';
import { tempDir } from '../engine/helpers.js';
import { startCli } from '../persistence/cli-process.js';
import { WsClient, request, startServer, testConfig } from './helpers.js';
import type { Json } from './helpers.js';

t.test('SIGTERM while 50 sockets buy answers every purchase it decided', async (t) => {
  const dir = tempDir();
  const serve = startCli([
    'serve',
    '--port',
    '0',
    '--auth',
    'none',
    '--data-dir',
    dir,
    '--shards',
    '1',
    '--rate-limit',
    '0',
  ]);
  t.teardown(() => {
    if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
  });
  const port = Number((await serve.waitFor(/serving on http:\/\/[\d.]+:(\d+)/, 30_000))[1]);
  t.equal(
    (await request(`http://127.0.0.1:${port}/v1/skus/bolt`, 'PUT', { stock: 1_000_000 })).status,
    201,
  );
  const clients = await Promise.all(Array.from({ length: 50 }, () => WsClient.open(port)));
  const sent = new Set<string>();
  const answered = new Map<string, string>();
  let stopping = false;
  // Each client keeps 16 purchases in flight until its socket closes.
  const runs = clients.map(async (c, ci) => {
    let n = 0;
    const sendOne = () => {
      const key = `c${ci}-${n++}`;
      sent.add(key);
      c.send({
        type: 'reserve',
        id: key,
        sku: 'bolt',
        userId: `u${ci}`,
        qty: 1,
        idempotencyKey: key,
      });
    };
    for (let i = 0; i < 16; i++) sendOne();
    for (;;) {
      let m: Json;
      try {
        m = await c.next();
      } catch {
        return; // closed
      }
      answered.set(String(m.id), m.type === 'reserved' ? 'reserved' : String(m.error?.code));
      if (!stopping) sendOne();
    }
  });
  await new Promise((r) => setTimeout(r, 1000));
  serve.child.kill('SIGTERM');
  await Promise.all(clients.map((c) => c.closed));
  stopping = true;
  await Promise.all(runs);
  t.equal((await serve.exit).code, 0, 'a graceful stop');
  // Which purchases did the engine decide? A retry with the same key answers `duplicate`.
  const again = await createEngine({
    config: testConfig({ journal: { kind: 'file', dir, durability: 'fsync' } }),
  });
  t.teardown(() => again.close());
  const keys = [...sent];
  const retried = await again.reserveMany(
    keys.map((key) => ({
      sku: 'bolt',
      userId: `u${key.slice(1, key.indexOf('-'))}`,
      qty: 1,
      idempotencyKey: key,
    })),
  );
  const decided = keys.filter((_, i) => {
    const r = retried[i];
    return r.status === 'reserved' && r.duplicate;
  });
  const unanswered = decided.filter((k) => answered.get(k) !== 'reserved');
  t.ok(decided.length > 500, `${decided.length} purchases decided before the stop`);
  t.same(
    unanswered.slice(0, 10),
    [],
    `every decided purchase was answered (${unanswered.length} were not)`,
  );
  const refused = [...answered.values()].filter((v) => v === 'not_ready').length;
  t.comment(`${sent.size} sent, ${decided.length} decided, ${refused} refused not_ready`);
});

t.test(
  'replies still queued for a slow reader are delivered before its socket is closed',
  async (t) => {
    const s = await startServer({ gateway: { wsBackpressureBytesMax: 64 << 20 } });
    t.teardown(() => s.close());
    await s.engine.defineSku({ sku: 'slow', stock: 1_000_000 });
    const c = await WsClient.open(s.port);
    c.socket.pause(); // a client that is slow to read: its replies pile up in the server
    const n = 30_000;
    const pad = 'x'.repeat(100);
    for (let i = 0; i < n; i++) {
      c.send({
        type: 'reserve',
        id: `${pad}${i}`,
        sku: 'slow',
        userId: 'u',
        qty: 1,
        idempotencyKey: `k${i}`,
      });
    }
    for (;;) {
      const snap = await s.engine.getSku('slow');
      if (snap!.reserved === n) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const closing = s.gateway.close();
    setTimeout(() => c.socket.resume(), 200);
    let replies = 0;
    for (;;) {
      try {
        const m = await c.next();
        if (m.type === 'reserved') replies++;
      } catch {
        break;
      }
    }
    await closing;
    t.equal(replies, n, 'every reservation the engine made was answered');
  },
);
