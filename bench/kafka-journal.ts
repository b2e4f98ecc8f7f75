/**
 * `npm run bench -- kafka-journal`: `KafkaJournal.append` throughput (events/s) with group
 * commits of 1k and 10k events, one append in flight per shard, and replay speed; in the same
 * run the ceiling: `FileJournal` with `durability: 'fsync'` on the same payloads
 * (`ratio_to_ceiling` = kafka / file).
 *
 *   hot_*      every event of a commit is for one SKU   → one message per append
 *   spread_*   events spread over 1,000 SKUs            → up to 1,000 messages per append
 *   4_shards_* four shards appending at once, each with its own producer or all on one
 *   replay_*   reading a partition back (events/s, each event walked with `visitEvents` as
 *              recovery does): KafkaJournal.read (`_fetch`) and, for comparison, a plain
 *              kafkajs consumer group (`_consumer`); best of 3 alternating runs each
 *
 * Flags: --events N (events per case, default 400,000), --cases a,b (case name prefixes),
 * --json FILE. The broker comes from the configuration (`STOCKADE_KAFKA_BROKERS`); each run
 * writes to fresh topics and deletes them at the end.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BinaryEventLog, SkuActor, settingsOf, visitEvents } from '../actors/index.js';
import type { EventVisitor } from '../actors/index.js';
import { loadConfig } from '../config/index.js';
import type { KafkaSettings } from '../config/index.js';
import { FileJournal, KafkaJournal } from '../persistence/journal/index.js';
import type { Journal } from '../persistence/journal/index.js';
import { kafkajsPatched, loadKafkajs } from '../persistence/journal/kafkajs-loader.js';
import { benchStart, percentile, round, writeReport } from './report.js';
import type { BenchCase } from './report.js';

/** Group commits of `perCommit` `reserved` events over `skus` SKUs, built before timing. */
function commits(total: number, perCommit: number, skus: number, seed: number): Uint8Array[] {
  const log = new BinaryEventLog();
  const actors = Array.from({ length: skus }, (_, i) => {
    const def = { sku: `sku-${seed}-${i}`, stock: 2 ** 31, name: `SKU ${i}` };
    return SkuActor.define(settingsOf(def, 600_000), i, 0, log);
  });
  const out: Uint8Array[] = [];
  let n = 0;
  for (let c = 0; c < Math.ceil(total / perCommit); c++) {
    for (let e = 0; e < perCommit; e++, n++) {
      const user = `user-${(n * 7919) % 1_000_003}`;
      actors[n % skus].reserveStrings(user, `order-${seed}-${n}`, 1, 1_000 + n, log);
    }
    out.push(log.take()!); // the first one also holds the sku_defined events
  }
  return out;
}

const eventsIn = (p: Uint8Array) => p[1] + (p[2] << 8) + (p[3] << 16) + p[4] * 2 ** 24;

interface Timing {
  perSec: number;
  latencies: number[];
  events: number;
}

/** Appends `lanes[i]` to shard i, all lanes at once, one append in flight per shard. */
async function appendAll(journal: Journal, lanes: Uint8Array[][]): Promise<Timing> {
  const latencies: number[] = [];
  let events = 0;
  const t0 = performance.now();
  await Promise.all(
    lanes.map(async (payloads, shard) => {
      for (const p of payloads) {
        const sent = performance.now();
        await journal.append(shard, p);
        latencies.push(performance.now() - sent);
        events += eventsIn(p);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { perSec: events / seconds, latencies, events };
}

const noop = () => {};
const WALK: EventVisitor = {
  defined: noop,
  updated: noop,
  reserved: noop,
  transition: noop,
  restocked: noop,
  closed: noop,
};

interface Replay {
  perSec: number;
  events: number;
  ms: number;
}

/** Reads shard 0 back through a `Journal`, walking every event as recovery does. */
async function replay(open: () => Journal): Promise<Replay> {
  const journal = open(); // a fresh instance, as a recovering node has: connecting is timed
  let events = 0;
  const t0 = performance.now();
  try {
    await journal.read(0, 0, (p) => {
      events += visitEvents(p, WALK);
    });
  } finally {
    if (journal.kind === 'kafka') await journal.close();
  }
  const ms = performance.now() - t0;
  return { perSec: (events / ms) * 1000, events, ms };
}

/** The same partition through a plain kafkajs consumer group (group join timed too). */
async function replayWithConsumer(settings: KafkaSettings, end: number): Promise<Replay> {
  const { Kafka, logLevel } = loadKafkajs();
  const kafka = new Kafka({ brokers: [...settings.brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({
    groupId: `${settings.topic}-bench-${performance.now()}`,
    maxBytesPerPartition: settings.fetchBytesMax,
  });
  let events = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const t0 = performance.now();
  await consumer.connect();
  await consumer.subscribe({ topic: settings.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: ({ batch }) => {
      for (const m of batch.messages) {
        if (m.value) events += visitEvents(m.value, WALK);
        if (Number(m.offset) + 1 >= end) done();
      }
      return Promise.resolve();
    },
  });
  await finished;
  const ms = performance.now() - t0;
  await consumer.disconnect();
  return { perSec: (events / ms) * 1000, events, ms };
}

interface Plan {
  name: string;
  perCommit: number;
  skus: number;
  shards: number;
  producers: 'per-shard' | 'shared';
  replay?: boolean;
}

const plan = (
  name: string,
  perCommit: number,
  skus: number,
  shards = 1,
  producers: Plan['producers'] = 'per-shard',
  replay = false,
): Plan => ({ name, perCommit, skus, shards, producers, replay });

const PLANS: Plan[] = [
  plan('hot_1k', 1_000, 1),
  plan('hot_10k', 10_000, 1, 1, 'per-shard', true),
  plan('spread_1k', 1_000, 1_000),
  plan('spread_10k', 10_000, 1_000, 1, 'per-shard', true),
  plan('4_shards_per_shard_producer', 1_000, 100, 4, 'per-shard'),
  plan('4_shards_shared_producer', 1_000, 100, 4, 'shared'),
];

function appendFigures(plan: Plan, k: Timing, f: Timing, appends: number): BenchCase {
  return {
    name: plan.name,
    throughput_per_s: Math.round(k.perSec),
    latency_ms: {
      p50: round(percentile(k.latencies, 50)),
      p99: round(percentile(k.latencies, 99)),
    },
    oversold: null, // appends of prepared commits: nothing is sold
    ceiling_throughput_per_s: Math.round(f.perSec),
    ratio_to_ceiling: round(k.perSec / f.perSec),
    unit: 'events appended per second; latency of one append (one group commit)',
    events: k.events,
    appends,
    events_per_append: plan.perCommit,
    skus: plan.skus,
    shards: plan.shards,
    producers: plan.producers,
    ceiling_latency_ms: {
      p50: round(percentile(f.latencies, 50)),
      p99: round(percentile(f.latencies, 99)),
    },
  };
}

async function runPlan(plan: Plan, total: number, base: KafkaSettings, out: BenchCase[]) {
  const lanes = Array.from({ length: plan.shards }, (_, s) =>
    commits(total / plan.shards, plan.perCommit, plan.skus, s),
  );
  const settings = { ...base, topic: `${base.topic}-${plan.name}` };
  const kafka = new KafkaJournal(settings, plan.shards, { producers: plan.producers });
  const dir = mkdtempSync(join(tmpdir(), 'stockade-bench-'));
  const file = new FileJournal({ dir, durability: 'fsync' });
  try {
    // Warm-up outside the timing, for both: topic creation, producer connections and
    // InitProducerId for Kafka; the files' creation and first growth for the file journal.
    const warm = commits(plan.perCommit, plan.perCommit, plan.skus, 99);
    await Promise.all(lanes.map((_, s) => kafka.append(s, warm[0])));
    await Promise.all(lanes.map((_, s) => file.append(s, warm[0])));
    const k = await appendAll(kafka, lanes);
    const f = await appendAll(file, lanes);
    out.push(
      appendFigures(
        plan,
        k,
        f,
        lanes.reduce((a, l) => a + l.length, 0),
      ),
    );
    if (plan.replay) await replayCases(plan.name, settings, kafka.durablePosition(0), dir, out);
  } finally {
    await kafka.close();
    await file.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function replayCases(
  name: string,
  settings: KafkaSettings,
  end: number,
  dir: string,
  out: BenchCase[],
): Promise<void> {
  const best = (a: Replay | null, b: Replay) => (a && a.perSec >= b.perSec ? a : b);
  let fetch: Replay | null = null;
  let consumer: Replay | null = null;
  let file: Replay | null = null;
  // Alternating, best of 3: the first runs of either also warm up the JIT for the other.
  for (let i = 0; i < 3; i++) {
    fetch = best(fetch, await replay(() => new KafkaJournal(settings, 1)));
    consumer = best(consumer, await replayWithConsumer(settings, end));
    file = best(file, await replay(() => new FileJournal({ dir, durability: 'fsync' })));
  }
  const figures = (how: string, r: Replay, note: string): BenchCase => ({
    name: `replay_${name}_${how}`,
    throughput_per_s: Math.round(r.perSec),
    latency_ms: { p50: 0, p99: 0 },
    oversold: null, // a replay sells nothing
    ceiling_throughput_per_s: Math.round(file!.perSec),
    ratio_to_ceiling: round(r.perSec / file!.perSec),
    unit: 'events replayed per second (best of 3); the ceiling replays the FileJournal',
    events: r.events,
    ms: round(r.ms, 1),
    note,
  });
  out.push(
    figures('fetch', fetch!, 'KafkaJournal.read: ListOffsets, Fetch to the end, values checked'),
    figures('consumer', consumer!, 'kafkajs consumer group, eachBatch, no checks, join included'),
  );
}

/** Deletes the topics whose names start with `prefix` (a bench's own); never throws. */
export async function deleteTopics(settings: KafkaSettings, prefix: string): Promise<void> {
  const { Kafka, logLevel } = loadKafkajs();
  const admin = new Kafka({ brokers: [...settings.brokers], logLevel: logLevel.NOTHING }).admin();
  try {
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics });
  } catch {
    // A leftover topic is not worth failing a finished bench over.
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export async function run(argv: string[]): Promise<void> {
  const head = benchStart('kafka-journal');
  const { values } = parseArgs({
    args: argv,
    options: {
      events: { type: 'string', default: '400000' },
      cases: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const total = Number(values.events);
  const wanted = values.cases?.split(',') ?? [];
  const config = loadConfig();
  const settings = { ...config.kafka, topic: `stockade-bench-${Date.now()}` };
  const cases: BenchCase[] = [];
  try {
    for (const plan of PLANS) {
      if (wanted.length > 0 && !wanted.some((w) => plan.name.startsWith(w))) continue;
      await runPlan(plan, total, settings, cases);
    }
  } finally {
    await deleteTopics(settings, settings.topic);
  }
  writeReport(
    {
      ...head,
      config: {
        brokers: settings.brokers,
        events_per_case: total,
        message_bytes_max: settings.messageBytesMax,
        fetch_bytes_max: settings.fetchBytesMax,
        kafkajs_linear_grouping: kafkajsPatched(),
        ceiling: "FileJournal, durability 'fsync', same payloads, same run",
      },
      cases,
    },
    values.json,
  );
}
