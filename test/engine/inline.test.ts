import t from 'tap';
import { MessageChannel, threadId } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { systemClock } from '../../actors/index.js';
import { FileJournal } from '../../persistence/index.js';
import { ShardHost } from '../../engine/shard-host.js';
import { InlineShard } from '../../engine/inline-shard.js';
import type { ShardWorkerData } from '../../engine/shard-messages.js';
import { tempDir, testConfig, testEngine, testPreset } from './helpers.js';

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

function inlineShardData(): { data: ShardWorkerData; port1: MessagePort } {
  const { port1, port2 } = new MessageChannel();
  const data: ShardWorkerData = {
    shard: 0,
    options: { qtyMax: 10, holdTtlMsDefault: 60_000, timerTickMs: 100 },
    clock: { kind: 'system' },
    control: port2,
    config: testConfig(),
  };
  return { data, port1 };
}

/** Watches an inline shard end: what it emitted, in order, once it has exited. */
function ending(shard: InlineShard): Promise<string[]> {
  const seen: string[] = [];
  return new Promise((resolve) => {
    shard.on('error', (err: Error) => seen.push(`error: ${err.message}`));
    shard.on('exit', (code: number) => resolve([...seen, `exit ${code}`]));
  });
}

// A results buffer too small for the batch: the shard refuses it by throwing.
const badBatch = { kind: 'batch', id: 1, buffer: new ArrayBuffer(8), bytes: 0, count: 4, results: new ArrayBuffer(8) } as const;

t.test('a shard that throws on a batch is ended as a crashed worker would be: error, then exit', async (t) => {
  const { data, port1 } = inlineShardData();
  t.teardown(() => port1.close());
  const shard = new InlineShard(data);
  const ended = ending(shard);
  await new Promise((r) => setTimeout(r, 20)); // recovered: the batch is applied at once
  shard.postMessage({ ...badBatch });
  t.match(await ended, [/^error: .*results buffer too small/, 'exit 1']);
  let replies = 0;
  shard.on('message', () => replies++);
  shard.postMessage({ kind: 'batch', id: 2, buffer: new ArrayBuffer(8), bytes: 0, count: 0, results: new ArrayBuffer(8) });
  await new Promise((r) => setTimeout(r, 20));
  t.equal(replies, 0, 'an ended shard takes no more batches');
});

t.test('a throw outside a batch call (a batch held until recovery) ends the shard, not the process', async (t) => {
  const { data, port1 } = inlineShardData();
  t.teardown(() => port1.close());
  const shard = new InlineShard(data);
  const ended = ending(shard);
  shard.postMessage({ ...badBatch }); // before recovery: held, applied from a promise callback
  t.match(await ended, [/^error: .*results buffer too small/, 'exit 1']);
});

t.test('a bug in a journal callback goes to the fault hook, not out of the callback', async (t) => {
  const dir = tempDir();
  const journal = new FileJournal({ dir, durability: 'os' });
  t.teardown(() => journal.close());
  const fault = new Promise<unknown>((resolve) => {
    const host = new ShardHost(0, { qtyMax: 10, holdTtlMsDefault: 60_000, timerTickMs: 100 }, journal, systemClock, {
      onEvents: () => {
        throw new Error('subscriber bug');
      },
      onFault: resolve,
    });
    void host.recover().then(() => {
      host.setForwarding(true);
      void host.define({ sku: 'f', stock: 1 });
    });
  });
  t.match(await fault, { message: 'subscriber bug' });
});
