// Integration tests of the Kafka journal against the real broker (`bash scripts/services.sh up
// kafka`). Every Kafka test is run from this one file, because the last one stops and restarts
// the broker: tap runs test files in parallel, but the subtests of one file one at a time.
import t from 'tap';
import type { Test } from 'tap';
import { performance } from 'node:perf_hooks';
import { KafkaJournal, JournalError, crc32c } from '../../persistence/journal/index.js';
import { decodeEvents } from '../../actors/index.js';
import type { SkuEvent } from '../../actors/index.js';
import type { KafkaSettings } from '../../config/index.js';
// Imported after persistence/, so kafkajs loads with the journal's fix (kafkajs-loader.ts).
import kafkajs from 'kafkajs';
import type { Message } from 'kafkajs';
import { kafkaServices as services, kafkaTestSettings, requireKafka } from './kafka-helpers.js';
import { perSku, readBack, saleCommits } from './journal-helpers.js';
import type { Commit } from './journal-helpers.js';
import { interopTests } from './kafka-interop.js';
import { kafkaRecoveryTests } from './kafka-recovery.js';
import { kafkaEngineTests } from './kafka-engine.js';
import { kafkaTailTests } from './kafka-tail.js';
import { kafkaFencingTests } from './kafka-fencing.js';
import { kafkaReplicationTests } from './kafka-replication.js';
import { kafkaClusterTests } from './kafka-cluster.js';
import { brokerPause, kafkaJournal } from '../chaos/kafka-scenarios.js';
import { killNine } from '../chaos/scenarios.js';

// The Kafka tests run one after the other in this one file (the broker faults must not hit
// another Kafka test): more than tap's default of 120 s per file.
t.setTimeout(360_000);

const probe = kafkaTestSettings('probe');
if (await requireKafka(t, probe)) {
  t.teardown(() => deleteTopicsOfThisRun(probe));
  roundTripTests();
  integrityTests();
  concurrencyTests();
  interopTests();
  kafkaTailTests();
  kafkaRecoveryTests();
  kafkaEngineTests();
  kafkaFencingTests();
  kafkaReplicationTests();
  kafkaClusterTests();
  chaosTests();
  outageTest();
}

/** The reliability battery's Kafka scenarios, small (test/chaos/; `npm run chaos`: long). */
function chaosTests() {
  t.test(
    'chaos: kill -9 of serve on the Kafka journal, every purchase sent 1–5 times',
    async (t) => {
      const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 100_000);
      const journal = kafkaJournal(kafkaTestSettings('chaos-kill9'));
      const r = await killNine({
        seed,
        journal,
        kills: 2,
        lanes: 4,
        skus: 2,
        stock: 300,
        minLifeMs: 500,
        maxLifeMs: 1_500,
        holdTtlMs: 2_000, // nobody confirms: the holds expire across the kills and failovers
      });
      t.comment(`seed ${seed}: ${JSON.stringify({ ...r, violations: undefined })}`);
      t.same(r.violations, [], 'no violation of the history (each hold ended once)');
      t.equal(r.lost + r.duplicated + r.oversold, 0, 'nothing lost, duplicated or oversold');
      t.ok(r.acknowledged > 20, `${r.acknowledged} purchases confirmed across the kills`);
      t.ok((r.extra.holdsExpired as number) > 0, `${r.extra.holdsExpired as number} holds expired`);
    },
  );
  for (const fault of ['pause', 'kill'] as const) {
    const what =
      fault === 'pause'
        ? 'the broker stopped for 5 s mid-sale (SIGSTOP), then resumed'
        : 'the broker killed mid-sale (kill -9), restarted 5 s later';
    t.test(`chaos: ${what}`, async (t) => {
      const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 100_000);
      const settings = kafkaTestSettings(`chaos-${fault}`);
      const r = await brokerPause({ seed, settings, fault, pauseMs: 5_000, lanes: 6 });
      t.comment(`seed ${seed}: ${JSON.stringify({ ...r, violations: undefined })}`);
      t.same(r.violations, [], 'no violation: nothing confirmed while away, no hang, no loss');
      t.equal(r.lost, 0);
      t.ok(r.extra.okBeforePause, 'purchases were confirmed before the fault');
      t.ok(r.unknown > 0, 'and refused (retriable) while the broker was away');
      const codes = r.extra.codesWhilePaused as string[];
      t.ok(
        codes.every((c) => ['journal_unavailable', 'shard_unavailable', 'not_ready'].includes(c)),
        `only retriable refusals while away: ${codes.join(', ')}`,
      );
    });
  }
}

/** A journal on a fresh topic, closed when the test ends. */
function journalFor(t: Test, name: string, shards: number, more: Partial<KafkaSettings> = {}) {
  const s = kafkaTestSettings(name, more);
  const j = new KafkaJournal(s, shards);
  t.teardown(() => j.close());
  return { j, s };
}

/** Per SKU, the same events in the same order (the order of SKUs does not matter). */
function sameEvents(t: Test, got: SkuEvent[], want: SkuEvent[], what: string) {
  const g = perSku(got);
  const w = perSku(want);
  t.same([...g.keys()].sort(), [...w.keys()].sort(), `${what}: the same SKUs`);
  for (const [sku, events] of w) t.same(g.get(sku), events, `${what}: ${sku}'s events, in order`);
}

function roundTripTests() {
  t.test('appends resolve after the ack; reads give every event back, per partition', async (t) => {
    const { j } = journalFor(t, 'roundtrip', 3);
    const appended: SkuEvent[][] = [[], [], []];
    const skus = (s: number) => ['tee-s', 'tee-m', 'tee-l', 'cap', `only-${s}`];
    const sales = [0, 1, 2].map((s) => saleCommits(skus(s), s + 1));
    const last = [0, 0, 0];
    for (let round = 0; round < 4; round++) {
      for (let shard = 0; shard < 3; shard++) {
        const c = sales[shard].commit(40 + round * 25);
        const pos = await j.append(shard, c.payload);
        t.ok(pos > last[shard], `shard ${shard}: positions grow (${pos})`);
        t.equal(j.durablePosition(shard), pos);
        last[shard] = pos;
        appended[shard].push(...c.events);
      }
    }
    for (let shard = 0; shard < 3; shard++) {
      const back = await readBack(j, shard);
      t.equal(back.end, last[shard], `shard ${shard}: read ends where the last append did`);
      const increasing = back.positions.every((p, i) => i === 0 || p > back.positions[i - 1]);
      t.ok(increasing, 'positions increase');
      t.equal(back.positions.at(-1), back.end);
      sameEvents(t, back.events, appended[shard], `shard ${shard}`);
    }
  });

  t.test('many small group commits; a read from a position gets what follows', async (t) => {
    const { j } = journalFor(t, 'many', 1);
    const sale = saleCommits(['a', 'b', 'c', 'd'], 7);
    const commits: Commit[] = [];
    const positions: number[] = [];
    for (let i = 0; i < 150; i++) {
      commits.push(sale.commit(1 + (i % 9)));
      positions.push(await j.append(0, commits[i].payload));
    }
    const eventsOf = (cs: Commit[]) => cs.flatMap((c) => c.events);
    sameEvents(t, (await readBack(j, 0)).events, eventsOf(commits), 'all');
    const rest = await readBack(j, 0, positions[99]);
    sameEvents(t, rest.events, eventsOf(commits.slice(100)), 'from commit 100');
    t.equal(rest.end, positions[149]);
    t.equal((await readBack(j, 0, rest.end)).payloads.length, 0, 'nothing after the end');
    const past = j.read(0, rest.end + 5, () => {});
    await t.rejects(past, { code: 'journal_mismatch' }, 'a position past the end');
  });

  t.test('one message per SKU, keyed by the SKU, its value a payload of that SKU', async (t) => {
    const { j, s } = journalFor(t, 'keys', 2);
    const sale = saleCommits(['red', 'green', 'blue', 'black'], 3);
    const first = sale.commit(60);
    const second = sale.commit(60);
    const end1 = await j.append(1, first.payload);
    const end2 = await j.append(1, second.payload);
    t.equal(end1, perSku(first.events).size, 'one offset per SKU of the first commit');
    t.equal(end2 - end1, perSku(second.events).size, 'and of the second');
    const messages = await consumeAll(s, end2);
    t.ok(
      messages.every((m) => m.partition === 1),
      'everything went to partition = shard',
    );
    for (const m of messages) {
      const events = decodeEvents(m.value);
      const allTheKey = events.length > 0 && events.every((e) => e.sku === m.key);
      t.ok(allTheKey, `offset ${m.offset}: every event is for its key ${m.key}`);
      t.ok(m.crc, 'a crc32c header');
    }
    const firstKeys = messages.slice(0, end1).map((m) => m.key);
    t.same(firstKeys.sort(), [...perSku(first.events).keys()].sort(), 'the first commit’s SKUs');
  });

  t.test('an acknowledged append is durable: a new journal instance reads it', async (t) => {
    const s = kafkaTestSettings('durable');
    const sale = saleCommits(['x', 'y'], 11);
    const commits = [sale.commit(30), sale.commit(30), sale.close()];
    const writer = new KafkaJournal(s, 2);
    let end = 0;
    for (const c of commits) end = await writer.append(0, c.payload);
    await writer.close();
    const closed = writer.append(0, commits[0].payload);
    await t.rejects(closed, { code: 'journal_unavailable' }, 'a closed journal');
    const reader = new KafkaJournal(s, 2);
    t.teardown(() => reader.close());
    t.equal(reader.durablePosition(0), 0, 'nothing known before a read');
    const back = await readBack(reader, 0);
    t.equal(back.end, end);
    t.equal(reader.durablePosition(0), end, 'known durable after the read');
    sameEvents(
      t,
      back.events,
      commits.flatMap((c) => c.events),
      'after reopening',
    );
    t.equal((await readBack(reader, 1)).payloads.length, 0, 'the other shard is empty');
  });
}

function integrityTests() {
  t.test('a topic with another partition count is journal_mismatch', async (t) => {
    const { j, s } = journalFor(t, 'mismatch', 2);
    const sale = saleCommits(['m'], 5);
    await j.append(0, sale.commit(3).payload);
    for (const shards of [3, 1]) {
      const other = new KafkaJournal(s, shards);
      const err = await other.append(0, sale.commit(3).payload).catch((e: unknown) => e);
      const message = /has 2 partitions but engine.shards is/;
      t.match(err, { code: 'journal_mismatch', message }, `${shards} shards`);
      await t.rejects(
        other.read(0, 0, () => {}),
        { code: 'journal_mismatch' },
      );
      await other.close();
    }
    t.equal((await readBack(j, 0)).payloads.length, 1, 'only the first append is there');
  });

  t.test('a record that is not a sound payload fails the read: journal_corrupt', async (t) => {
    const { s } = journalFor(t, 'corrupt', 1);
    const sale = saleCommits(['good'], 9);
    const good = sale.commit(10);
    const bad = Buffer.from(sale.commit(10).payload);
    const crc = (v: Uint8Array) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(crc32c(v));
      return b;
    };
    const garbage = Buffer.from('not a payload');
    const flipped = Buffer.from(bad);
    flipped[flipped.length - 1] ^= 1;
    const cases: [string, Message][] = [
      ['garbage', { key: 'good', value: garbage, headers: { crc32c: crc(garbage) } }],
      ['no checksum', { key: 'good', value: bad }],
      ['wrong key', { key: 'other', value: bad, headers: { crc32c: crc(bad) } }],
      ['flipped bit', { key: 'good', value: flipped, headers: { crc32c: crc(bad) } }],
    ];
    for (const [what, message] of cases) {
      const topic = `${s.topic}-${what.replace(/ /g, '-')}`;
      const writer = new KafkaJournal({ ...s, topic }, 1);
      await writer.append(0, good.payload);
      await produceRaw({ ...s, topic }, message);
      const err = await writer.read(0, 0, () => {}).catch((e: unknown) => e);
      const says = /offset 1: not a Stockade event payload/;
      t.match(err, { code: 'journal_corrupt', message: says }, what);
      t.ok(err instanceof JournalError);
      await writer.close();
    }
  });

  t.test('a commit larger than messageBytesMax goes out as several sends, in order', async (t) => {
    const { j } = journalFor(t, 'split', 1, { messageBytesMax: 16_384 });
    const sale = saleCommits(['hot', 'warm', 'cold'], 21);
    sale.commit(3);
    const big = sale.commit(2_000); // ~120 kB: ~8 messages
    const end = await j.append(0, big.payload);
    const back = await readBack(j, 0);
    t.ok(back.payloads.length >= 8, `${back.payloads.length} messages`);
    t.ok(
      back.payloads.every((p) => p.length <= 16_384),
      'each within the limit',
    );
    t.equal(back.end, end);
    sameEvents(t, back.events.slice(-big.events.length), big.events, 'the big commit');
  });
}

function concurrencyTests() {
  t.test('one journal per shard worker: they create the topic at once', async (t) => {
    // The engine's topology: every shard worker thread opens its own journal on the topic.
    const s = kafkaTestSettings('workers');
    const workers = [0, 1, 2, 3].map(() => new KafkaJournal(s, 4));
    t.teardown(() => Promise.all(workers.map((w) => w.close())));
    const commits = [0, 1, 2, 3].map((i) => saleCommits([`w${i}`], 60 + i).commit(25));
    const ends = await Promise.all(workers.map((w, i) => w.read(i, 0, () => {})));
    t.same(ends, [0, 0, 0, 0], 'recovery of a topic that did not exist: empty');
    await Promise.all(workers.map((w, i) => w.append(i, commits[i].payload)));
    for (let i = 0; i < 4; i++) {
      sameEvents(t, (await readBack(workers[i], i)).events, commits[i].events, `shard ${i}`);
    }
  });

  t.test('one append per shard at a time; shards append at once, on any producer', async (t) => {
    for (const producers of ['per-shard', 'shared'] as const) {
      const s = kafkaTestSettings(`concurrent-${producers}`);
      const j = new KafkaJournal(s, 4, { producers });
      const sales = [0, 1, 2, 3].map((i) => saleCommits([`s${i}-a`, `s${i}-b`], 30 + i));
      const want: SkuEvent[][] = [[], [], [], []];
      const lane = async (shard: number) => {
        for (let k = 0; k < 10; k++) {
          const c = sales[shard].commit(20);
          want[shard].push(...c.events);
          const inFlight = j.append(shard, c.payload);
          if (k === 0) {
            const second = j.append(shard, c.payload);
            await t.rejects(second, /second append in flight/, `${producers}: shard ${shard}`);
          }
          await inFlight;
        }
      };
      await Promise.all([0, 1, 2, 3].map(lane));
      for (let shard = 0; shard < 4; shard++) {
        const back = await readBack(j, shard);
        sameEvents(t, back.events, want[shard], `${producers} shard ${shard}`);
      }
      await j.close();
    }
  });
}

// ---- plain kafkajs, to look at the topic from outside ------------------------------------

function kafkaClient(s: KafkaSettings) {
  const { Kafka, logLevel } = kafkajs;
  const brokers = [...s.brokers];
  return new Kafka({ brokers, clientId: 'stockade-test', logLevel: logLevel.NOTHING });
}

async function produceRaw(s: KafkaSettings, message: Message): Promise<void> {
  const createPartitioner = kafkajs.Partitioners.DefaultPartitioner;
  const producer = kafkaClient(s).producer({ createPartitioner });
  await producer.connect();
  await producer.send({ topic: s.topic, messages: [{ ...message, partition: 0 }] });
  await producer.disconnect();
}

interface Consumed {
  partition: number;
  offset: number;
  key: string;
  value: Buffer;
  crc: boolean;
}

/** Every message of the topic, read with a plain kafkajs consumer (resolves at `count`). */
async function consumeAll(s: KafkaSettings, count: number): Promise<Consumed[]> {
  const consumer = kafkaClient(s).consumer({ groupId: `${s.topic}-check` });
  await consumer.connect();
  await consumer.subscribe({ topic: s.topic, fromBeginning: true });
  const out: Consumed[] = [];
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  await consumer.run({
    autoCommit: false,
    eachMessage: ({ partition, message }) => {
      const key = message.key?.toString('utf8') ?? '';
      const value = message.value ?? Buffer.alloc(0);
      const crc = Buffer.isBuffer(message.headers?.crc32c);
      out.push({ partition, offset: Number(message.offset), key, value, crc });
      if (out.length >= count) done();
      return Promise.resolve();
    },
  });
  await all;
  await consumer.disconnect();
  return out.sort((a, b) => a.offset - b.offset);
}

/** The topics this process created (their names carry its pid), deleted at the end. */
async function deleteTopicsOfThisRun(s: KafkaSettings): Promise<void> {
  const admin = kafkaClient(s).admin();
  await admin.connect();
  const mine = (await admin.listTopics()).filter((name) => name.includes(`-${process.pid}-`));
  await admin.deleteTopics({ topics: mine }).catch(() => {});
  await admin.disconnect();
}

// ---- the broker goes away ----------------------------------------------------------------

function outageTest() {
  t.test('broker stopped and restarted: appends fail fast, then work again', async (t) => {
    const appendTimeoutMs = 2_500;
    const s = kafkaTestSettings('outage', { appendTimeoutMs });
    const j = new KafkaJournal(s, 2);
    const idle = new KafkaJournal(s, 2); // connected before the outage, unused during it
    let stopped = false;
    t.teardown(async () => {
      if (stopped) await services('up'); // leave the broker as we found it, even on failure
      await j.close();
      await idle.close();
    });
    const sale = saleCommits(['p', 'q', 'r'], 13);
    const before = sale.commit(40);
    await j.append(0, before.payload);
    await idle.read(0, 0, () => {});

    await services('down');
    stopped = true;
    const failed = sale.commit(40);
    let started = performance.now();
    const err = await j.append(0, failed.payload).then(
      () => null,
      (e: unknown) => e,
    );
    const appendMs = performance.now() - started;
    t.match(err, { code: 'journal_unavailable', retriable: true }, 'the append rejects');
    t.ok(appendMs < appendTimeoutMs + 1_000, `within the timeout (${Math.round(appendMs)} ms)`);
    started = performance.now();
    await t.rejects(
      j.read(0, 0, () => {}),
      { code: 'journal_unavailable' },
      'so does a read',
    );
    t.ok(performance.now() - started < appendTimeoutMs + 1_000, 'also within the timeout');

    await services('up');
    stopped = false;
    const after = sale.commit(40);
    const end = await j.append(0, after.payload);
    t.ok(end > 0, 'the same journal appends again once the broker is back');
    const back = await readBack(j, 0);
    // A rejected append means "unknown": the failed commit is there whole, or not at all.
    const first = failed.events[0];
    const landed = back.events.some((e) => e.sku === first.sku && e.seq === first.seq);
    const want = [...before.events, ...(landed ? failed.events : []), ...after.events];
    const what = `nothing acknowledged lost (the rejected append ${landed ? '' : 'not '}there)`;
    sameEvents(t, back.events, want, what);
    const seen = await readBack(idle, 0);
    sameEvents(t, seen.events, want, 'a journal idle during the outage reads it all too');
  });
}
