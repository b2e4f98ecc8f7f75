import t from 'tap';
import type { Test } from 'tap';
import { MessageChannel, threadId } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { mkdirSync, renameSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as Comlink from 'comlink';
import { BatchWriter, comlinkEndpoint, systemClock } from '../../actors/index.js';
import type { ShardControl } from '../../engine/shard-messages.js';
import { FileJournal } from '../../persistence/journal/index.js';
import { shardFileName } from '../../persistence/journal/file-journal.js';
import type { Journal, JournalPosition } from '../../persistence/journal/index.js';
import type { ShardDownInfo, ShardUpInfo } from '../../engine/index.js';
import { ShardHost } from '../../engine/shard-host.js';
import { InlineShard } from '../../engine/inline-shard.js';
import type { ShardWorkerData } from '../../engine/shard-messages.js';
import { eventually, tempDir, testConfig, testEngine, testPreset } from './helpers.js';

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
  t.match(await engine.reserve({ sku: 'i', userId: 'u', qty: 2, idempotencyKey: 'k' }), {
    status: 'reserved',
  });
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
  t.ok(
    ids.every((id) => id !== threadId) && ids[0] !== ids[1],
    'workers: a thread of its own per shard',
  );
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

function controlOf(port: MessagePort): Comlink.Remote<ShardControl> {
  return Comlink.wrap<ShardControl>(comlinkEndpoint(port));
}

/** Resolves once this turn's microtasks and its setImmediate callbacks have run. */
function turnEnds(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
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
const badBatch = {
  kind: 'batch',
  id: 1,
  buffer: new ArrayBuffer(8),
  bytes: 0,
  count: 4,
  results: new ArrayBuffer(8),
} as const;

t.test(
  'a shard that throws on a batch is ended as a crashed worker would be: error, then exit',
  async (t) => {
    const { data, port1 } = inlineShardData();
    t.teardown(() => port1.close());
    const shard = new InlineShard(data);
    const ended = ending(shard);
    await controlOf(port1).ready(); // recovered: the batch is applied at once, inside postMessage
    shard.postMessage({ ...badBatch });
    t.match(await ended, [/^error: .*results buffer too small/, 'exit 1']);
    let replies = 0;
    shard.on('message', () => replies++);
    shard.postMessage({
      kind: 'batch',
      id: 2,
      buffer: new ArrayBuffer(8),
      bytes: 0,
      count: 0,
      results: new ArrayBuffer(8),
    });
    // A live shard decides a batch inside postMessage and replies on a microtask: by the end of
    // this turn's microtasks a reply would have come.
    await turnEnds();
    t.equal(replies, 0, 'an ended shard takes no more batches');
  },
);

t.test(
  'a throw outside a batch call (a batch held until recovery) ends the shard, not the process',
  async (t) => {
    const { data, port1 } = inlineShardData();
    t.teardown(() => port1.close());
    const shard = new InlineShard(data);
    const ended = ending(shard);
    shard.postMessage({ ...badBatch }); // before recovery: held, applied from a promise callback
    t.match(await ended, [/^error: .*results buffer too small/, 'exit 1']);
  },
);

t.test('a bug in a journal callback goes to the fault hook, not out of the callback', async (t) => {
  const dir = tempDir();
  const journal = new FileJournal({ dir, durability: 'os' });
  t.teardown(() => journal.close());
  const fault = new Promise<unknown>((resolve) => {
    const host = new ShardHost(
      0,
      { qtyMax: 10, holdTtlMsDefault: 60_000, timerTickMs: 100 },
      journal,
      systemClock,
      {
        onEvents: () => {
          throw new Error('subscriber bug');
        },
        onFault: resolve,
      },
    );
    void host.recover().then(() => {
      host.setForwarding(true);
      void host.define({ sku: 'f', stock: 1 });
    });
  });
  t.match(await fault, { message: 'subscriber bug' });
});

/** A journal whose appends settle when the test says; it starts empty. */
class HeldJournal implements Journal {
  readonly kind = 'memory' as const;
  appended: Uint8Array[] = [];
  private settleNext: (() => void)[] = [];
  append(_shard: number, payload: Uint8Array): Promise<JournalPosition> {
    this.appended.push(payload);
    return new Promise((resolve) => this.settleNext.push(() => resolve(this.appended.length)));
  }
  settleOne(): void {
    this.settleNext.shift()?.();
  }
  read(): Promise<JournalPosition> {
    return Promise.resolve(0);
  }
  durablePosition(): JournalPosition {
    return 0;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

t.test(
  'an abandoned host appends nothing more and releases nothing; abandon waits for the append in flight',
  async (t) => {
    const journal = new HeldJournal();
    const host = new ShardHost(
      0,
      { qtyMax: 10, holdTtlMsDefault: 60_000, timerTickMs: 100 },
      journal,
      systemClock,
    );
    await host.recover();
    void host.define({ sku: 'a', stock: 10 }); // append 1 in flight
    t.equal(journal.appended.length, 1);
    const batch = (key: string) => {
      const w = new BatchWriter();
      w.reserve('a', 1, 'u', key);
      const { buffer, bytes, count } = w.take(new ArrayBuffer(1024));
      return { bytes: new Uint8Array(buffer, 0, bytes), count };
    };
    const released: string[] = [];
    const b = batch('k1');
    host.applyBatch(b.bytes, b.count, new Float64Array(3), () => released.push('k1'));
    t.equal(journal.appended.length, 1, 'its events wait for the next group commit');
    let abandoned = false;
    const gone = host.abandon().then(() => (abandoned = true));
    await new Promise((r) => setImmediate(r));
    t.notOk(abandoned, 'abandon waits for the append in flight');
    journal.settleOne();
    await gone;
    await new Promise((r) => setImmediate(r));
    t.equal(journal.appended.length, 1, 'no further append after abandon');
    t.same(released, [], 'nothing released: the requests are answered by whoever abandoned it');
  },
);

const unreadable = {
  'its file cannot be read': (dir: string) => {
    const file = join(dir, shardFileName(0));
    renameSync(file, `${file}.away`);
    mkdirSync(file); // a directory where the file was
    return () => {
      rmdirSync(file);
      renameSync(`${file}.away`, file);
    };
  },
  'its journal cannot even be opened': (dir: string) => {
    renameSync(dir, `${dir}.away`);
    writeFileSync(dir, 'not a directory');
    return () => {
      rmSync(dir);
      renameSync(`${dir}.away`, dir);
    };
  },
};

for (const [what, breakJournal] of Object.entries(unreadable)) {
  t.test(`an inline shard restarting while ${what} retries; the process lives on`, async (t) => {
    const dir = tempDir();
    const engine = await testEngine({ journal: { kind: 'file', dir, restartDelayMs: 20 } });
    t.teardown(() => engine.close());
    let sku = '';
    for (let i = 0; engine.shardOf((sku = `s${i}`)) !== 0; i++);
    await engine.defineSku({ sku, stock: 10 });
    const acked = await engine.reserveMany(
      Array.from({ length: 4 }, (_, i) => ({
        sku,
        userId: `u${i}`,
        qty: 1,
        idempotencyKey: `k${i}`,
      })),
    );
    t.ok(acked.every((r) => r.status === 'reserved'));
    const downs: boolean[] = [];
    engine.on('shard_down', (info: ShardDownInfo) => downs.push(info.restarting));
    const up = new Promise<ShardUpInfo>((resolve) => engine.once('shard_up', resolve));
    await engine.crashShardForTest(0);
    const repair = breakJournal(dir); // before the first restart attempt
    await eventually(
      async () => (await engine.stats()).shards[0].restarts >= 2,
      10_000,
      'a second restart attempt',
    );
    t.match(await engine.reserve({ sku, userId: 'v', qty: 1, idempotencyKey: 'v1' }), {
      status: 'shard_unavailable',
      retriable: true,
    });
    t.same(downs, [true], 'reported down once, restarting');
    repair();
    const info = await up;
    t.ok(info.restarts >= 3, `restarted after ${info.restarts} attempts`);
    t.equal(info.recovery.events, 5, 'sku_defined + 4 reservations replayed');
    t.match(await engine.getSku(sku), { available: 6, reserved: 4 });
  });
}

/** An inline shard replacing one that holds the journal until `letGo` is called. */
function replacementShard(t: Test): { shard: InlineShard; port1: MessagePort; letGo: () => void } {
  const { data, port1 } = inlineShardData();
  t.teardown(() => port1.close());
  let letGo!: () => void;
  const previous = new Promise<void>((resolve) => (letGo = resolve));
  return { shard: new InlineShard(data, previous), port1, letGo };
}

t.test(
  'a replacement reads the journal only once the shard it replaces has let go of it',
  async (t) => {
    const { shard, port1, letGo } = replacementShard(t);
    let recovered = false;
    const ready = controlOf(port1)
      .ready()
      .then(() => (recovered = true));
    // Ungated, this shard (no journal) recovers at once and answers ready() over its channel: a
    // round trip on the same channel, answered after it, shows it has not.
    await controlOf(port1).stats();
    await turnEnds();
    t.notOk(recovered, 'no recovery while the previous shard holds the journal');
    letGo();
    await ready;
    t.ok(recovered);
    let settled = false;
    void shard.settled.then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    t.notOk(settled, 'a live shard has not let go');
    t.equal(await shard.terminate(), 1);
    t.ok(await shard.settled.then(() => true));
  },
);

t.test(
  'a replacement ended before it recovered never reads the journal, and settles after its predecessor',
  async (t) => {
    const { shard, letGo } = replacementShard(t);
    const terminated = shard.terminate();
    let settled = false;
    void shard.settled.then(() => (settled = true));
    // Ungated, `settled` follows the shard's own stop (no journal: a few microtasks and the end's
    // setImmediate); the 'exit' comes on that same setImmediate.
    await new Promise((r) => shard.once('exit', r));
    await turnEnds();
    t.notOk(settled, 'not before the shard it replaced has let go');
    letGo();
    t.equal(await terminated, 1);
    t.ok(settled);
  },
);

t.test(
  'close() while a restart is scheduled: the restart never starts and nothing is left running',
  async (t) => {
    const dir = tempDir();
    const engine = await testEngine({ journal: { kind: 'file', dir, restartDelayMs: 50 } });
    await engine.defineSku({ sku: 'c', stock: 3 });
    const down = new Promise<ShardDownInfo>((resolve) => engine.once('shard_down', resolve));
    let ups = 0;
    engine.on('shard_up', () => ups++);
    await engine.crashShardForTest(engine.shardOf('c'));
    t.match(await down, { restarting: true });
    await engine.close();
    // Timers of equal delay fire in the order they were set: by the time this one fires, the
    // restart's (set earlier, 50 ms) has, and a restart would have counted itself at once.
    await new Promise((r) => setTimeout(r, 50));
    t.same(
      (await engine.stats()).shards.map((s) => s.restarts),
      [0, 0],
      'the restart never started',
    );
    t.equal(ups, 0, 'no shard came back after close');
  },
);

t.test('stats() while a shard dies reports it down instead of failing or hanging', async (t) => {
  const engine = await testEngine();
  t.teardown(() => engine.close());
  const pending = engine.stats(); // its control call is on its way to shard 0...
  void engine.crashShardForTest(0); // ...which ends before it answers
  const stats = await pending;
  t.equal(stats.shards[0].up, false);
  t.equal(stats.shards[1].up, true);
});
