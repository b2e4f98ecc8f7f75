/**
 * Fencing on the Kafka journal (registered by kafka-journal.test.ts): a write decided on a
 * state that is no longer the partition's end is never part of any reader's history.
 *
 *   The interleavings that broke it before:
 *   - two writers (two nodes on one topic, or a paused one that woke up) each read end E and
 *     each append a batch decided on [0, E): both landed, E and E+1, and a replay saw a unit
 *     sold twice (or tripped the actor's assertions);
 *   - a writer's send times out, it rebuilds from [0, E) and appends again; the timed-out
 *     request, held by the network, reaches the broker afterwards and lands at E+1.
 *   Each message now carries the offset it was decided for; only the batch that lands there
 *   counts. The tests make both interleavings happen for real.
 */
import t from 'tap';
import type { Test } from 'tap';
import { createEngine, loadConfig } from '../../engine/index.js';
import type { Engine, ReserveResult } from '../../engine/index.js';
import type { KafkaSettings } from '../../config/index.js';
import { KafkaJournal, kafkaJournalSource, loadKafkajs } from '../../persistence/journal/index.js';
import { decodeEvents } from '../../actors/index.js';
import type { SkuEvent } from '../../actors/index.js';
import { eventually, tempDir } from '../engine/helpers.js';
import { kafkaTestSettings } from './kafka-helpers.js';
import { KafkaProxy } from './kafka-proxy.js';
import { freshDatabase, requireMysql } from './mysql-helpers.js';
import { projector } from './projection-helpers.js';
import { saleCommits } from './journal-helpers.js';

function engineConfig(s: KafkaSettings, shardThreads: 'workers' | 'inline' = 'workers') {
  return loadConfig({
    env: {},
    overrides: {
      engine: { shards: 2, shardThreads },
      journal: { kind: 'kafka', restartDelayMs: 50 },
      kafka: { brokers: [...s.brokers], topic: s.topic, appendTimeoutMs: s.appendTimeoutMs },
    },
  });
}

/** Every event of a partition, as a fresh reader sees it. */
async function replay(s: KafkaSettings, shard: number, shards: number): Promise<SkuEvent[]> {
  const j = new KafkaJournal(s, shards);
  try {
    const events: SkuEvent[] = [];
    await j.read(shard, 0, (p) => events.push(...decodeEvents(p)));
    return events;
  } finally {
    await j.close();
  }
}

/** The partition's high-water mark (every message that landed, void ones included). */
async function highWater(s: KafkaSettings, shard: number): Promise<number> {
  const { Kafka, logLevel } = loadKafkajs();
  const admin = new Kafka({ brokers: [...s.brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(s.topic);
    return Number(offsets.find((o) => o.partition === shard)?.high ?? 0);
  } finally {
    await admin.disconnect();
  }
}

/** Retries `reserve` while the shard answers retriably (rebuilding); its last answer. */
async function reserveWhenServed(e: Engine, key: string, user: string): Promise<ReserveResult> {
  for (let i = 0; ; i++) {
    const r = await e.reserve({ sku: 'last', userId: user, qty: 1, idempotencyKey: key });
    if (r.status === 'reserved' || !r.retriable || i > 400) return r;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export function kafkaFencingTests(): void {
  t.test('two writers stamp the same end: one lands, the other is fenced and void', async (t) => {
    const s = kafkaTestSettings('fence-two');
    const a = new KafkaJournal(s, 1);
    const b = new KafkaJournal(s, 1);
    t.teardown(() => Promise.all([a.close(), b.close()]));
    const sale = saleCommits(['mug'], 10);
    t.equal(await a.read(0, 0, () => {}), 0);
    const first = sale.commit(3);
    t.equal(await a.append(0, first.payload), 1);
    // Both writers now know the partition ends at 1, and each decides a commit on that state.
    t.equal(await b.read(0, 0, () => {}), 1);
    const fromA = sale.commit(2);
    const fromB = saleCommits(['mug'], 10).commit(3).payload; // another history, from seq 1
    t.equal(await a.append(0, fromA.payload), 2, 'the first to reach the end lands');
    await t.rejects(b.append(0, fromB), { code: 'journal_fenced', retriable: true });
    t.equal(await highWater(s, 0), 3, "the loser's batch is in the partition");
    const events = await replay(s, 0, 1);
    t.same(
      events,
      [...first.events, ...fromA.events],
      "a fresh reader sees one history: the loser's batch is void",
    );
    // The fenced writer reads again, and then appends where the partition really ends.
    t.equal(await b.read(0, 0, () => {}), 3);
    t.equal(await b.append(0, sale.commit(1).payload), 4);
  });

  t.test(
    'two engines on one topic, each sure it owns every shard: no unit sold twice',
    async (t) => {
      const s = kafkaTestSettings('fence-engines');
      const a = await createEngine({ config: engineConfig(s) });
      t.teardown(() => a.close());
      t.match(await a.defineSku({ sku: 'hot', stock: 300 }), { status: 'defined' });
      const b = await createEngine({ config: engineConfig(s) });
      t.teardown(() => b.close());
      t.match(await b.getSku('hot'), { available: 300 }, 'the second replayed the definition');
      // 900 buyers, alternating between the engines, in bursts that interleave their appends.
      const acked = new Map<string, string>();
      for (let round = 0; round < 30; round++) {
        const burst = Array.from({ length: 30 }, (_, i) => {
          const n = round * 30 + i;
          const key = `k${n}`;
          const e = n % 2 === 0 ? a : b;
          return e
            .reserve({ sku: 'hot', userId: `u${n}`, qty: 1, idempotencyKey: key })
            .then((r) => {
              if (r.status === 'reserved') acked.set(key, r.reservationId);
            });
        });
        await Promise.all(burst);
      }
      t.ok(acked.size > 0 && acked.size <= 300, `${acked.size} reservations acknowledged`);
      const shard = a.shardOf('hot');
      const events = await replay(s, shard, 2);
      const reserved = events.filter((e) => e.type === 'reserved');
      const keys = reserved.map((e) => (e.type === 'reserved' ? e.idempotencyKey : ''));
      t.ok(
        reserved.length <= 300,
        `the journal holds ${reserved.length} reservations for 300 units`,
      );
      t.equal(new Set(keys).size, keys.length, 'no idempotency key reserved twice');
      const missing = [...acked.keys()].filter((k) => !keys.includes(k));
      t.same(missing, [], 'every acknowledged reservation is in the journal');
      const seqs = events.map((e) => e.seq);
      t.same(
        seqs,
        seqs.map((_, i) => i + 1),
        'one unbroken history',
      );
      const c = await createEngine({ config: engineConfig(s) });
      t.teardown(() => c.close());
      t.match(
        await c.getSku('hot'),
        { reserved: reserved.length, available: 300 - reserved.length },
        'a third engine replays the journal and agrees',
      );
    },
  );

  for (const variant of ['the shard keeps running', 'the shard worker crashes'] as const) {
    t.test(`a late write lands after the unit was sold again, void (${variant})`, async (t) => {
      await lateWrite(t, variant === 'the shard worker crashes');
    });
  }
}

/**
 * The network holds a Produce request past the append's timeout; the shard answers 503,
 * rebuilds from the partition and sells the last unit to someone else; then the held request
 * reaches the broker. Before fencing, the partition then held two reservations of one unit and
 * every later replay failed.
 */
async function lateWrite(t: Test, crash: boolean): Promise<void> {
  const direct = kafkaTestSettings(crash ? 'late-crash' : 'late', { appendTimeoutMs: 1000 });
  const proxy = await KafkaProxy.start(direct.brokers[0]);
  t.teardown(() => proxy.close());
  const s = { ...direct, brokers: [proxy.address] };
  const engine = await createEngine({ config: engineConfig(s) });
  t.teardown(() => engine.close());
  t.match(await engine.defineSku({ sku: 'last', stock: 1 }), { status: 'defined' });
  const shard = engine.shardOf('last');
  const end = await highWater(direct, shard);

  proxy.holdProduce = true;
  const first = engine.reserve({ sku: 'last', userId: 'u1', qty: 1, idempotencyKey: 'first' });
  if (crash) {
    await eventually(() => proxy.heldProduces > 0, 10_000, 'the Produce request held');
    await engine.crashShardForTest(shard);
  }
  t.match(await first, { retriable: true }, 'the held purchase is answered 503, not confirmed');
  t.equal(proxy.heldProduces, 1, 'its Produce request is held by the network');
  const second = await reserveWhenServed(engine, 'second', 'u2');
  t.match(second, { status: 'reserved' }, 'the shard rebuilt and sold the unit again');

  proxy.release();
  // The late request lands after the second sale (a bound, not a wait without end).
  await eventually(
    async () => (await highWater(direct, shard)) >= end + 2,
    10_000,
    'the late request to land after the second sale',
  );

  const events = await replay(direct, shard, 2);
  const reserved = events.filter((e) => e.type === 'reserved');
  t.same(
    reserved.map((e) => (e.type === 'reserved' ? e.idempotencyKey : '')),
    ['second'],
    'a fresh replay holds the second sale only',
  );
  const fresh = await createEngine({ config: engineConfig(direct) });
  t.teardown(() => fresh.close());
  t.match(await fresh.getSku('last'), { reserved: 1, available: 0 }, 'and replays cleanly');
  t.match(
    await fresh.reserve({ sku: 'last', userId: 'u1', qty: 1, idempotencyKey: 'first' }),
    { status: 'sold_out' },
    'the first buyer, retrying with the same key, learns it is sold out',
  );
  if (!(await requireMysql(t))) return;
  const { pool } = await freshDatabase(t);
  const p = projector(pool, tempDir(), { source: () => kafkaJournalSource(direct) });
  t.teardown(() => p.stop());
  await p.catchUp();
  const [rows] = await pool.query('SELECT reserved, available FROM skus WHERE id = ?', ['last']);
  t.same(rows, [{ reserved: 1, available: 0 }], 'MySQL agrees with the replay');
}
