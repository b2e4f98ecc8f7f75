import t from 'tap';
import { heapAfterGcMb, testEngine } from './helpers.js';

// Every control call (getSku, stats, define, ...) must leave nothing behind once answered: a
// dashboard or a WebSocket feed makes thousands a second for as long as the server runs.
//
// Three measured windows of 100,000 calls each after a warm-up: a leak grows every window by the
// same amount (~45 MB here before the fix, ~450 bytes a call), while what settles only once
// (code optimized late, pools and caches that reach their size) shows in the first window only.
// The heap after a forced GC still moves by ±5 MB from one window to the next with no leak at all
// (when the collector runs, what it has promoted), so one window's growth decides nothing: the
// test fails when the heap grew by the bound in each of the last two windows.
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
    const third = await window();
    const grew = (a: number, b: number) => b - a >= 4;
    t.notOk(
      grew(first, second) && grew(second, third),
      `heap ${[start, first, second, third].map((m) => m.toFixed(1)).join(' → ')} MB ` +
        'after three windows of 100,000 calls',
    );
  });
}
