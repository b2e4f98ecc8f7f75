import t from 'tap';
import { heapAfterGcMb, testEngine } from './helpers.js';

// Every control call (getSku, stats, define, ...) must leave nothing behind once answered: a
// dashboard or a WebSocket feed makes thousands a second for as long as the server runs.
for (const shardThreads of ['workers', 'inline'] as const) {
  t.test(`${shardThreads}: 100,000 control calls leave the heap where it was`, async (t) => {
    const engine = await testEngine({ engine: { shardThreads } });
    t.teardown(() => engine.close());
    await engine.defineSku({ sku: 'tee', stock: 10 });
    const round = () => Promise.all(Array.from({ length: 1000 }, () => engine.getSku('tee')));
    for (let i = 0; i < 30; i++) await round(); // warm up: code, pools and caches settle
    const before = heapAfterGcMb();
    for (let i = 0; i < 100; i++) await round();
    await engine.stats();
    const after = heapAfterGcMb();
    // Before the fix, ~450 bytes stayed per call: ~45 MB here.
    t.ok(
      after - before < 4,
      `heap ${before.toFixed(1)} MB → ${after.toFixed(1)} MB after 100,000 calls`,
    );
  });
}
