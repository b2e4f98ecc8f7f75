import t from 'tap';
import { MessageChannel, threadId } from 'node:worker_threads';
import { InlineShard } from '../../engine/inline-shard.js';
import type { ShardWorkerData } from '../../engine/shard-messages.js';
import { testConfig, testEngine, testPreset } from './helpers.js';

// `engine.shardThreads: 'inline'` runs the shards on the engine's thread. Everything the
// engine promises must hold there too: this file runs the engine and recovery suites again
// with the shards inline, then the cases only an inline shard has.
testPreset.shardThreads = 'inline';

await import('./engine.test.js');
await import('./recovery.test.js');

t.test('an inline engine runs no shard worker threads', async (t) => {
  const engine = await testEngine();
  t.teardown(() => engine.close());
  await engine.defineSku({ sku: 'i', stock: 5 });
  t.match(await engine.reserve({ sku: 'i', userId: 'u', qty: 2, idempotencyKey: 'k' }), { status: 'reserved' });
  const stats = await engine.stats();
  t.same(
    stats.shards.map((s) => [s.up, s.threadId]),
    [
      [true, threadId],
      [true, threadId],
    ],
  );
  const workers = await testEngine({ engine: { shardThreads: 'workers' } });
  t.teardown(() => workers.close());
  const ids = (await workers.stats()).shards.map((s) => s.threadId);
  t.ok(ids.every((id) => id !== threadId) && ids[0] !== ids[1], 'workers: a thread of its own per shard');
});

t.test('a shard that throws is ended as a crashed worker would be: error, then exit', async (t) => {
  const { port1, port2 } = new MessageChannel();
  const data: ShardWorkerData = {
    shard: 0,
    options: { qtyMax: 10, holdTtlMsDefault: 60_000, timerTickMs: 100 },
    clock: { kind: 'system' },
    control: port2,
    config: testConfig(),
  };
  const shard = new InlineShard(data);
  const seen: string[] = [];
  const ended = new Promise<number>((resolve) => {
    shard.on('error', (err: Error) => seen.push(`error: ${err.message}`));
    shard.on('exit', (code: number) => resolve(code));
  });
  // A results buffer too small for the batch: the shard refuses it by throwing.
  await new Promise((r) => setTimeout(r, 20));
  shard.postMessage({ kind: 'batch', id: 1, buffer: new ArrayBuffer(8), bytes: 0, count: 4, results: new ArrayBuffer(8) });
  t.equal(await ended, 1);
  t.match(seen, [/results buffer too small/]);
  let replies = 0;
  shard.on('message', () => replies++);
  shard.postMessage({ kind: 'batch', id: 2, buffer: new ArrayBuffer(8), bytes: 0, count: 0, results: new ArrayBuffer(8) });
  await new Promise((r) => setTimeout(r, 20));
  t.equal(replies, 0, 'an ended shard takes no more batches');
  port1.close();
});
