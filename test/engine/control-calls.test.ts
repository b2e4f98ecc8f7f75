import t from 'tap';
import { heapAfterGcMb, testEngine } from './helpers.js';

// Every control call (getSku, stats, define, ...) must leave nothing behind once answered: a
// dashboard or a WebSocket feed makes thousands a second for as long as the server runs.
//
// Two measured windows of 100,000 calls each, and the second must not grow the heap: a leak
// grows every window by the same amount (~45 MB here before the fix, ~450 bytes a call), while
// what settles only once (code optimized late, pools and caches that reach their size) shows in
// the first window only, by how much depending on the machine's load.
for (const shardThreads of ['workers', 'inline'] as const) {
  t.test(`${shardThreads}: 100,000 control calls leave the heap where it was`, async (t) => {
    const engine = await testEngine({ engine: { shardThreads } });
    t.teardown(() => engine.close());
    await engine.defineSku({ sku: 'tee', stock: 10 });
    const round = () => Promise.all(Array.from({ length: 1000 }, () => engine.getSku('tee')));
    const window = async () => {
      for (let i = 0; i < 100; i++) await round();
      await engine.stats();
      return heapAfterGcMb();
    };
    for (let i = 0; i < 30; i++) await round(); // warm up: code, pools and caches settle
    const start = heapAfterGcMb();
    const first = await window();
    const second = await window();
    t.ok(
      second - first < 4,
      `heap ${start.toFixed(1)} MB → ${first.toFixed(1)} MB → ${second.toFixed(1)} MB ` +
        'after two windows of 100,000 calls',
    );
  });
}
