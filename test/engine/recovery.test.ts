import t from 'tap';
import { EngineError, ManualClock } from '../../engine/index.js';
import { FileJournal } from '../../persistence/journal/index.js';
import type { Reserved, ShardUpInfo } from '../../engine/index.js';
import { testEngine, tempDir } from './helpers.js';

const fileJournal = (dir: string, durability: 'fsync' | 'os' = 'fsync') => ({
  journal: { kind: 'file' as const, dir, durability },
});

t.test('a restarted engine recovers every SKU exactly from its file journal', async (t) => {
  const dir = tempDir();
  const clock = new ManualClock(10_000);
  const a = await testEngine(fileJournal(dir), { clock });
  await a.defineSku({ sku: 'tee', stock: 10, perUserLimit: 2, holdTtlMs: 1_000 });
  await a.defineSku({ sku: 'cap', stock: 5 });
  const r1 = (await a.reserve({
    sku: 'tee',
    userId: 'u1',
    qty: 2,
    idempotencyKey: 'k1',
  })) as Reserved;
  const r2 = (await a.reserve({
    sku: 'tee',
    userId: 'u2',
    qty: 1,
    idempotencyKey: 'k2',
  })) as Reserved;
  const r3 = (await a.reserve({
    sku: 'cap',
    userId: 'u1',
    qty: 5,
    idempotencyKey: 'k3',
  })) as Reserved;
  await a.confirm(r1.reservationId);
  await a.cancel(r2.reservationId);
  await a.restock('tee', 4);
  await a.updateSku('cap', { price: 500 });
  await a.closeSale('cap');
  const before = [await a.getSku('tee'), await a.getSku('cap')];
  await a.close();

  const b = await testEngine(fileJournal(dir), { clock });
  t.teardown(() => b.close());
  t.same([await b.getSku('tee'), await b.getSku('cap')], before, 'same state after replay');
  t.equal(
    b.recovery!.shards.reduce((n, s) => n + s.events, 0),
    10,
    'ten events replayed',
  );
  // The idempotency map and per-user counts came back too.
  t.match(await b.reserve({ sku: 'tee', userId: 'u1', qty: 2, idempotencyKey: 'k1' }), {
    status: 'reserved',
    reservationId: r1.reservationId,
    duplicate: true,
  });
  t.match(await b.reserve({ sku: 'tee', userId: 'u1', qty: 1, idempotencyKey: 'k9' }), {
    status: 'limit_exceeded',
  });
  t.match(
    await b.confirm(r3.reservationId),
    { status: 'confirmed' },
    'a hold made before the restart can be confirmed',
  );
  t.match(await b.reserve({ sku: 'cap', userId: 'u9', qty: 1, idempotencyKey: 'k10' }), {
    status: 'closed',
  });
  // Holds keep their deadline across the restart; the first tick after it expires them.
  const r4 = (await b.reserve({
    sku: 'tee',
    userId: 'u3',
    qty: 1,
    idempotencyKey: 'k4',
  })) as Reserved;
  clock.advance(1_000);
  t.ok((await b.tick()) >= 1);
  t.match(await b.confirm(r4.reservationId), { status: 'hold_expired' });
});

t.test(
  'a crashed shard worker is restarted and recovered while the others keep serving',
  async (t) => {
    const dir = tempDir();
    const engine = await testEngine({
      ...fileJournal(dir, 'os'),
      journal: { kind: 'file', dir, durability: 'os', restartDelayMs: 10 },
    });
    t.teardown(() => engine.close());
    const skuOn = (shard: number) => {
      for (let i = 0; ; i++) if (engine.shardOf(`s${i}`) === shard) return `s${i}`;
    };
    const victim = skuOn(0);
    const bystander = skuOn(1);
    await engine.defineSku({ sku: victim, stock: 100 });
    await engine.defineSku({ sku: bystander, stock: 100 });
    const acked = await engine.reserveMany(
      Array.from({ length: 40 }, (_, i) => ({
        sku: victim,
        userId: `u${i}`,
        qty: 1,
        idempotencyKey: `k${i}`,
      })),
    );
    t.ok(acked.every((r) => r.status === 'reserved'));
    const up = new Promise<ShardUpInfo>((resolve) => engine.once('shard_up', resolve));
    const down = new Promise<{ restarting: boolean }>((resolve) =>
      engine.once('shard_down', resolve),
    );
    await engine.crashShardForTest(0);
    t.match(await down, { restarting: true });
    t.match(
      await engine.reserve({ sku: bystander, userId: 'b', qty: 1, idempotencyKey: 'b1' }),
      { status: 'reserved' },
      'the other shard serves during the restart',
    );
    const info = await up;
    t.equal(info.shard, 0);
    t.equal(info.recovery.events, 41, 'sku_defined + 40 reservations replayed');
    t.match(
      await engine.getSku(victim),
      { available: 60, reserved: 40 },
      'every acknowledged reservation is back',
    );
    const retry = await engine.reserve({ sku: victim, userId: 'u7', qty: 1, idempotencyKey: 'k7' });
    t.match(retry, {
      status: 'reserved',
      duplicate: true,
      reservationId: (acked[7] as Reserved).reservationId,
    });
    t.equal((await engine.stats()).shards[0].restarts, 1);
  },
);

t.test('a journal written with another shard count is refused at start', async (t) => {
  const dir = tempDir();
  const a = await testEngine({ engine: { shards: 2 }, ...fileJournal(dir) });
  await a.close();
  await t.rejects(testEngine({ engine: { shards: 3 }, ...fileJournal(dir) }), {
    code: 'journal_mismatch',
  });
});

t.test(
  'a journal frame that does not decode stops the start with journal_corrupt, not a retriable code',
  async (t) => {
    const dir = tempDir();
    const a = await testEngine({ engine: { shards: 1 }, ...fileJournal(dir) });
    await a.defineSku({ sku: 'tee', stock: 5 });
    await a.close();
    // A frame whose checksum is right but whose payload is no event commit Stockade writes.
    const j = new FileJournal({ dir, durability: 'fsync' });
    await j.read(0, 0, () => {});
    await j.append(0, Uint8Array.from([9, 1, 2, 3, 4, 5, 6, 7]));
    await j.close();
    const err = await testEngine({ engine: { shards: 1 }, ...fileJournal(dir) }).then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(err instanceof EngineError, 'an EngineError, whichever thread the shard ran on');
    t.match(err, {
      code: 'journal_corrupt',
      retriable: false,
      message: /shard 0: unknown event payload version 9/,
    });
  },
);

t.test('subscribers see events only once they are durable', async (t) => {
  const engine = await testEngine(fileJournal(tempDir()));
  t.teardown(() => engine.close());
  const sub = await engine.subscribe();
  await engine.defineSku({ sku: 'ev', stock: 3 });
  await engine.reserve({ sku: 'ev', userId: 'u', qty: 1, idempotencyKey: 'k' });
  const seen = [];
  for await (const ev of sub) {
    seen.push(ev.type);
    if (seen.length === 2) break;
  }
  t.same(seen, ['sku_defined', 'reserved']);
});

t.test('a subscriber keeps getting the events of a shard that was restarted', async (t) => {
  const engine = await testEngine({
    journal: { ...fileJournal(tempDir()).journal, restartDelayMs: 20 },
  });
  t.teardown(() => engine.close());
  const sub = await engine.subscribe();
  await engine.defineSku({ sku: 'again', stock: 3 });
  const up = new Promise<ShardUpInfo>((resolve) => engine.once('shard_up', resolve));
  await engine.crashShardForTest(engine.shardOf('again'));
  await up;
  t.match(await engine.reserve({ sku: 'again', userId: 'u', qty: 1, idempotencyKey: 'after' }), {
    status: 'reserved',
  });
  const seen: string[] = [];
  for await (const ev of sub) {
    seen.push(ev.type);
    if (ev.type === 'reserved') break;
  }
  t.same(seen, ['sku_defined', 'reserved'], 'the reservation made after the restart is seen');
});
