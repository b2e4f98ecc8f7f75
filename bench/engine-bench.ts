/**
 * `npm run bench -- engine`: in-process reservations per second through `createEngine`, for one
 * hot SKU with a per-user limit and for 10,000 SKUs spread evenly. Every request carries its own
 * idempotency key. In the same run, a plain single-threaded loop doing only the stock decrements
 * of the same requests (a Map of stock per SKU) gives the ceiling, and the same rules (stock,
 * per-user count, idempotency set) in one thread a second baseline.
 *
 * Flags: --requests N (default 2,000,000), --batch N (requests per reserveMany, default 16,384),
 * --inflight N (batches in flight, default 8), --shards N, --cases hot,spread,
 * --shard-threads workers|inline|workers,inline (default workers: see engine.shardThreads),
 * --journal none|file|kafka, or a list such as none,file,kafka (default none; file = the file
 * journal with fsync; kafka = the Kafka journal at STOCKADE_KAFKA_BROKERS, a new topic per run;
 * both measured with their replay speed and time-to-ready on restart), --rounds N (every case
 * once per round, in the same order; each figure is the median over the rounds, each round's
 * figures kept in the JSON), --json FILE.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEngine, loadConfig } from '../engine/index.js';
import type { Engine, ReserveRequest, ReserveResult, StockadeConfig } from '../engine/index.js';
import { withOverrides } from '../config/index.js';
import { deleteTopics } from './kafka-journal.js';
import {
  benchStart,
  medianOfRounds,
  percentile,
  positiveInt,
  round,
  writeReport,
} from './report.js';
import type { BenchCase } from './report.js';

interface Workload {
  name: string;
  skus: { sku: string; stock: number; perUserLimit: number }[];
  requests: ReserveRequest[];
}

function hotWorkload(n: number): Workload {
  // Users appear about 2.2 times each with a limit of 2, so some attempts hit the limit.
  const users = Math.max(1, Math.floor(n / 2.2));
  const requests = new Array<ReserveRequest>(n);
  for (let i = 0; i < n; i++) {
    requests[i] = {
      sku: 'hot',
      userId: `user-${(i * 7919) % users}`,
      qty: 1,
      idempotencyKey: `hot-${i}`,
    };
  }
  return {
    name: 'hot_sku_per_user_limit',
    skus: [{ sku: 'hot', stock: n, perUserLimit: 2 }],
    requests,
  };
}

function spreadWorkload(n: number, skuCount = 10_000): Workload {
  const skus = Array.from({ length: skuCount }, (_, s) => ({
    sku: `sku-${s}`,
    stock: Math.ceil(n / skuCount),
    perUserLimit: 2,
  }));
  const requests = new Array<ReserveRequest>(n);
  for (let i = 0; i < n; i++) {
    const s = i % skuCount;
    requests[i] = {
      sku: skus[s].sku,
      userId: `user-${(i * 7919) % 1_000_003}`,
      qty: 1,
      idempotencyKey: `k-${i}`,
    };
  }
  return { name: 'spread_10k_skus', skus, requests };
}

/**
 * The ceiling: a plain single-threaded loop doing the same stock decrements on the same
 * requests (a Map of stock per SKU), with none of the rules. Nothing can be faster than this.
 */
function ceiling(w: Workload): { perSec: number; reserved: number } {
  const stock = new Map<string, number>();
  for (const s of w.skus) stock.set(s.sku, s.stock);
  let reserved = 0;
  const t0 = performance.now();
  for (const r of w.requests) {
    const left = stock.get(r.sku)!;
    if (left < r.qty) continue;
    stock.set(r.sku, left - r.qty);
    reserved++;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { perSec: w.requests.length / seconds, reserved };
}

/**
 * A second baseline: the same rules (per-user limit, idempotency keys) in one thread with the
 * usual JS Map and Set, as an in-process implementation without Stockade would do it.
 */
function sameRulesBaseline(w: Workload): { perSec: number; reserved: number } {
  const stock = new Map<string, number>();
  const limit = new Map<string, number>();
  for (const s of w.skus) {
    stock.set(s.sku, s.stock);
    limit.set(s.sku, s.perUserLimit);
  }
  const perUser = new Map<string, number>();
  const keys = new Set<string>();
  let reserved = 0;
  const t0 = performance.now();
  for (const r of w.requests) {
    const idem = `${r.sku}\u0000${r.idempotencyKey}`;
    if (keys.has(idem)) continue;
    const left = stock.get(r.sku)!;
    if (left < r.qty) continue;
    const userKey = `${r.sku}\u0000${r.userId}`;
    const held = perUser.get(userKey) ?? 0;
    const lim = limit.get(r.sku)!;
    if (lim > 0 && held + r.qty > lim) continue;
    stock.set(r.sku, left - r.qty);
    perUser.set(userKey, held + r.qty);
    keys.add(idem);
    reserved++;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { perSec: w.requests.length / seconds, reserved };
}

async function drive(
  engine: Engine,
  w: Workload,
  batch: number,
  inflight: number,
): Promise<{ perSec: number; latencies: number[]; results: ReserveResult[] }> {
  const results = new Array<ReserveResult>(w.requests.length);
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (next < w.requests.length) {
      const start = next;
      next = Math.min(w.requests.length, next + batch);
      const sent = performance.now();
      const out = await engine.reserveMany(w.requests.slice(start, next));
      latencies.push(performance.now() - sent);
      for (let i = 0; i < out.length; i++) results[start + i] = out[i];
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  const seconds = (performance.now() - t0) / 1000;
  return { perSec: w.requests.length / seconds, latencies, results };
}

interface Figures {
  throughput_per_s: number;
  latency_ms: { p50: number; p99: number };
  oversold: number;
  [extra: string]: unknown;
}

async function measure(
  config: StockadeConfig,
  w: Workload,
  batch: number,
  inflight: number,
): Promise<Figures> {
  const engine = await createEngine({ config });
  let closed = false;
  try {
    for (const s of w.skus) await engine.defineSku({ ...s, holdTtlMs: 3_600_000 });
    const { perSec, latencies, results } = await drive(engine, w, batch, inflight);
    const reserved = results.filter((r) => r.status === 'reserved').length;
    const over = await oversold(engine, w, results);
    const stats = await engine.stats();
    const appends = stats.shards.reduce((a, s) => a + s.appends, 0);
    const out: Figures = {
      throughput_per_s: Math.round(perSec),
      latency_ms: { p50: round(percentile(latencies, 50)), p99: round(percentile(latencies, 99)) },
      latency_unit: `one reserveMany call of ${batch} requests`,
      oversold: over,
      reserved,
      group_commits: appends,
    };
    if (config.journal.kind !== 'none') {
      await engine.close();
      closed = true;
      // Recovery: a new engine replays the whole journal before it takes commands.
      const again = await createEngine({ config });
      const rec = again.recovery!;
      const events = rec.shards.reduce((a, s) => a + s.events, 0);
      const slowest = Math.max(...rec.shards.map((s) => s.ms));
      out.replay_events = events;
      out.replay_events_per_s = Math.round((events / slowest) * 1000);
      out.time_to_ready_ms = round(rec.readyMs, 1);
      const snap = await again.getSku(w.skus[0].sku);
      if (!snap || snap.reserved + snap.sold > snap.initialStock) out.oversold += 1;
      await again.close();
    }
    return out;
  } finally {
    if (!closed) await engine.close();
  }
}

async function oversold(engine: Engine, w: Workload, results: ReserveResult[]): Promise<number> {
  const unitsBySku = new Map<string, number>();
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    if (r.status === 'reserved' && !r.duplicate)
      unitsBySku.set(r.sku, (unitsBySku.get(r.sku) ?? 0) + r.qty);
  }
  let over = 0;
  for (const s of w.skus) {
    const snap = await engine.getSku(s.sku);
    const units = unitsBySku.get(s.sku) ?? 0;
    over += Math.max(0, units - s.stock);
    if (!snap || snap.reserved + snap.sold > s.stock || snap.reserved !== units) over += 1_000_000;
  }
  return over;
}

/** How one case runs: the workload's short name, the journal, where the shards run, the load. */
interface CaseSetup {
  which: string;
  kind: string;
  shardThreads: 'workers' | 'inline';
  batch: number;
  inflight: number;
}

/**
 * One case: the workload on a fresh engine set up as `c`, next to the same run's baselines
 * (the plain decrement loop and the same rules in one thread).
 */
async function measureCase(
  base: StockadeConfig,
  w: Workload,
  c: CaseSetup,
  ceil: { perSec: number },
  rules: { perSec: number },
): Promise<BenchCase> {
  const { which, kind, shardThreads } = c;
  const dir = kind === 'file' ? mkdtempSync(join(tmpdir(), 'stockade-bench-')) : '';
  // Kafka: the brokers from the configuration (STOCKADE_KAFKA_BROKERS), a topic per run, deleted
  // after it.
  const topic = `stockade-bench-${which}-${Date.now()}`;
  const config = withOverrides(base, {
    engine: { shardThreads },
    journal:
      kind === 'file'
        ? { kind: 'file', dir, durability: 'fsync' }
        : { kind: kind as 'kafka' | 'none' },
    ...(kind === 'kafka' ? { kafka: { topic } } : {}),
  });
  try {
    const f = await measure(config, w, c.batch, c.inflight);
    return {
      name: `${w.name}/journal=${kind}${shardThreads === 'inline' ? '/inline' : ''}`,
      ...f,
      ceiling_throughput_per_s: Math.round(ceil.perSec),
      ratio_to_ceiling: round(f.throughput_per_s / ceil.perSec),
      same_rules_single_thread_per_s: Math.round(rules.perSec),
      ratio_to_same_rules: round(f.throughput_per_s / rules.perSec),
      journal: kind === 'file' ? 'file (fsync)' : kind === 'kafka' ? 'kafka (acks=-1)' : 'none',
      shard_threads: shardThreads,
      requests: w.requests.length,
      shards: config.engine.shards,
    };
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (kind === 'kafka') await deleteTopics(config.kafka, topic);
  }
}

/** The flags, read and checked before any engine starts, so a typo costs no warm-up. */
interface EngineFlags {
  requests: number;
  batch: number;
  inflight: number;
  shards: number | undefined;
  /** Workload short names, `hot` or `spread`, in the order they run. */
  cases: string[];
  journalKinds: ('none' | 'file' | 'kafka')[];
  shardThreads: ('workers' | 'inline')[];
  rounds: number;
  /** The --journal and --shard-threads lists as given: the report's config echoes them. */
  journalFlag: string;
  shardThreadsFlag: string;
  json: string | undefined;
}

function flagsOf(argv: string[]): EngineFlags {
  const { values } = parseArgs({
    args: argv,
    options: {
      requests: { type: 'string', default: '2000000' },
      batch: { type: 'string', default: '16384' },
      inflight: { type: 'string', default: '8' },
      shards: { type: 'string' },
      cases: { type: 'string', default: 'hot,spread' },
      journal: { type: 'string', default: 'none' },
      'shard-threads': { type: 'string', default: 'workers' },
      rounds: { type: 'string', default: '1' },
      json: { type: 'string' },
    },
  });
  const rounds = positiveInt('rounds', values.rounds);
  const journalKinds = values.journal.split(',');
  for (const kind of journalKinds) {
    if (kind !== 'none' && kind !== 'file' && kind !== 'kafka') {
      throw new Error(`--journal ${kind}: expected none, file or kafka`);
    }
  }
  const shardThreads = values['shard-threads'].split(',');
  for (const where of shardThreads) {
    if (where !== 'workers' && where !== 'inline') {
      throw new Error(`--shard-threads ${where}: expected workers, inline or both`);
    }
  }
  return {
    requests: Number(values.requests),
    batch: Number(values.batch),
    inflight: Number(values.inflight),
    shards: values.shards ? Number(values.shards) : undefined,
    cases: values.cases.split(','),
    journalKinds: journalKinds as EngineFlags['journalKinds'],
    shardThreads: shardThreads as EngineFlags['shardThreads'],
    rounds,
    journalFlag: values.journal,
    shardThreadsFlag: values['shard-threads'],
    json: values.json,
  };
}

/**
 * One round: every workload once, each measured with every journal and shard placement after
 * its two baselines, which run here so that each round compares with its own.
 */
async function runRound(base: StockadeConfig, f: EngineFlags, r: number): Promise<BenchCase[]> {
  const cases: BenchCase[] = [];
  for (const which of f.cases) {
    const w = which === 'hot' ? hotWorkload(f.requests) : spreadWorkload(f.requests);
    const label = f.rounds > 1 ? `round ${r + 1}/${f.rounds}: ` : '';
    const requests = f.requests.toLocaleString('en-US');
    process.stdout.write(`${label}${w.name}: ${requests} requests, ${w.skus.length} SKUs ...\n`);
    const ceil = ceiling(w);
    const rules = sameRulesBaseline(w);
    for (const kind of f.journalKinds) {
      for (const where of f.shardThreads) {
        const setup = { which, kind, shardThreads: where, batch: f.batch, inflight: f.inflight };
        cases.push(await measureCase(base, w, setup, ceil, rules));
      }
    }
  }
  return cases;
}

export async function run(argv: string[]): Promise<void> {
  const head = benchStart('engine');
  const f = flagsOf(argv);
  const base = loadConfig({
    overrides: {
      engine: { ...(f.shards !== undefined ? { shards: f.shards } : {}), batchSizeMax: f.batch },
    },
  });
  const perRound: BenchCase[][] = [];
  for (let r = 0; r < f.rounds; r++) perRound.push(await runRound(base, f, r));
  writeReport(
    {
      ...head,
      config: {
        requests: f.requests,
        batch: f.batch,
        inflight: f.inflight,
        shards: base.engine.shards,
        journal: f.journalFlag,
        shard_threads: f.shardThreadsFlag,
        rounds: f.rounds,
      },
      cases: medianOfRounds(perRound),
    },
    f.json,
  );
}
