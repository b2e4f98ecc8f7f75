/**
 * `npm run bench -- recovery`: time to ready after a crash. A child process runs the engine on
 * the fsync'd file journal and sells to 10,000 SKUs until the journal holds `--events` events,
 * keeps selling, and is SIGKILLed mid-sale; then a new engine opens the same journal and the
 * bench measures how long `createEngine` takes to be ready (every shard replays its file in
 * parallel) and how many events it replayed.
 *
 *   child: createEngine ─ reserveMany ... ─ "written N" ─ reserveMany ... ◀── SIGKILL
 *   bench: createEngine(same dir) ── ready ── time_to_ready_ms, replay_events_per_s
 *
 * The ceiling in the same run: reading the same journal files through FileJournal with a visitor
 * that only counts frames (the I/O and checksums, no decoding or state), so the ratio shows what
 * rebuilding the actors costs over reading the bytes.
 *
 * Flags: --events N (default 1,000,000), --shards N (default 2), --rounds N (the whole
 * experiment this many times, each on a fresh journal; figures are medians, default 2),
 * --json FILE.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createEngine, loadConfig } from '../engine/index.js';
import type { Engine, ReserveRequest, StockadeConfig } from '../engine/index.js';
import { FileJournal } from '../persistence/journal/index.js';
import { benchStart, median, percentile, positiveInt, round, writeReport } from './report.js';
import type { BenchCase } from './report.js';

const SKUS = 10_000;
const BATCH = 16_384;

function configFor(dir: string, shards: number): StockadeConfig {
  return loadConfig({
    env: {},
    overrides: { engine: { shards }, journal: { kind: 'file', dir, durability: 'fsync' } },
  });
}

/** The child: sells until the journal holds `events` events, says so, and sells on. */
async function child(dir: string, shards: number, events: number): Promise<void> {
  const engine = await createEngine({ config: configFor(dir, shards) });
  const skus = Array.from({ length: SKUS }, (_, s) => `sku-${s}`);
  // Stock for every request the child can make before it is killed; a restarted child finds
  // its SKUs already defined in the journal it replayed.
  const defined = await Promise.all(
    skus.map((sku) => engine.defineSku({ sku, stock: 1_000_000, perUserLimit: 0 })),
  );
  let written = engine.recovery?.shards.reduce((n, s) => n + s.events, 0) ?? 0;
  written += defined.filter((d) => d.status === 'defined').length;
  let i = 0;
  let told = false;
  for (;;) {
    const reqs: ReserveRequest[] = new Array<ReserveRequest>(BATCH);
    for (let k = 0; k < BATCH; k++, i++) {
      const key = `k${process.pid}-${i}`;
      reqs[k] = { sku: skus[i % SKUS], userId: `u${i}`, qty: 1, idempotencyKey: key };
    }
    const out = await engine.reserveMany(reqs);
    written += out.length;
    if (!told && written >= events) {
      told = true;
      process.stdout.write(`written ${written}\n`);
    }
  }
}

function crashChild(dir: string, shards: number, events: number): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const args = [self.replace(/recovery\.(ts|js)$/, 'index.$1'), 'recovery', '--child', dir];
  const node = self.endsWith('.ts') ? ['--import=tsx', ...args] : args;
  const flags = ['--shards', String(shards), '--events', String(events)];
  const c = spawn(process.execPath, [...node, ...flags], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let text = '';
    c.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = /written (\d+)/.exec(text);
      if (m && c.pid !== undefined) {
        // Let it write on for a moment, so the kill lands mid-sale, not at a quiet point.
        setTimeout(() => c.kill('SIGKILL'), 200);
      }
    });
    c.on('exit', (code, signal) =>
      signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited ${code} before the kill`)),
    );
  });
}

/** SKUs whose recovered units do not add up, or went below zero (must be none). */
async function countOversold(engine: Engine): Promise<number> {
  const snaps = await Promise.all(
    Array.from({ length: SKUS }, (_, s) => engine.getSku(`sku-${s}`)),
  );
  return snaps.filter(
    (x) =>
      x === null || x.available < 0 || x.available + x.reserved + x.sold !== x.stock + x.restocked,
  ).length;
}

async function countFrames(dir: string, shards: number): Promise<{ ms: number; bytes: number }> {
  const journal = new FileJournal({ dir, durability: 'os' });
  const started = performance.now();
  let bytes = 0;
  await Promise.all(
    Array.from({ length: shards }, (_, s) => journal.read(s, 0, (p) => (bytes += p.length))),
  );
  const ms = performance.now() - started;
  await journal.close();
  return { ms, bytes };
}

/** The flags; `child` is set only in the process that `crashChild` starts and kills. */
interface RecoveryFlags {
  events: number;
  shards: number;
  rounds: number;
  child: string | undefined;
  json: string | undefined;
}

function flagsOf(argv: string[]): RecoveryFlags {
  const { values } = parseArgs({
    args: argv,
    options: {
      events: { type: 'string', default: '1000000' },
      shards: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '2' },
      child: { type: 'string' },
      json: { type: 'string' },
    },
  });
  return {
    events: Number(values.events),
    shards: Number(values.shards),
    rounds: positiveInt('rounds', values.rounds),
    child: values.child,
    json: values.json,
  };
}

/** One round's figures, before the medians. */
interface RoundFigures {
  readyMs: number;
  perSec: number;
  readPerSec: number;
  replayed: number;
  oversold: number;
}

/**
 * Round `r`, on a journal of its own: sell until it holds `events` events, kill -9, restart,
 * then read the same journal for the ceiling.
 */
async function crashAndRecover(f: RecoveryFlags, r: number): Promise<RoundFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-bench-recovery-'));
  try {
    const goal = f.events.toLocaleString('en-US');
    process.stdout.write(
      `round ${r}: selling until the journal holds ${goal} events, then kill -9\n`,
    );
    await crashChild(dir, f.shards, f.events);
    const started = performance.now();
    const engine = await createEngine({ config: configFor(dir, f.shards) });
    const readyMs = performance.now() - started;
    const shardStats = engine.recovery!.shards;
    const replayed = shardStats.reduce((n, s) => n + s.events, 0);
    const slowest = Math.max(...shardStats.map((s) => s.ms));
    const oversold = await countOversold(engine);
    await engine.close();
    // The baseline reads the journal this round replayed.
    const readMs = (await countFrames(dir, f.shards)).ms;
    process.stdout.write(
      `  ready in ${Math.round(readyMs)} ms, ${replayed.toLocaleString('en-US')} events replayed\n`,
    );
    return {
      readyMs,
      perSec: replayed / (slowest / 1000),
      readPerSec: replayed / (readMs / 1000),
      replayed,
      oversold,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The one case: medians over the rounds, the worst round's `oversold`, every round kept. */
function summarize(shards: number, perRound: RoundFigures[]): BenchCase {
  const mid = (pick: (x: RoundFigures) => number) => median(perRound.map(pick));
  const ready = perRound.map((x) => x.readyMs);
  return {
    name: `kill9_then_ready_${shards}_shards`,
    throughput_per_s: Math.round(mid((x) => x.perSec)),
    latency_ms: { p50: round(percentile(ready, 50)), p99: round(percentile(ready, 99)) },
    oversold: Math.max(...perRound.map((x) => x.oversold)),
    replay_events_per_s: Math.round(mid((x) => x.perSec)),
    time_to_ready_ms: round(mid((x) => x.readyMs)),
    replayed_events: Math.round(mid((x) => x.replayed)),
    ceiling_throughput_per_s: Math.round(mid((x) => x.readPerSec)),
    ratio_to_ceiling: round(median(perRound.map((x) => x.perSec / x.readPerSec))),
    latency_unit:
      'time to ready after a kill -9, per round (each round its own journal of --events events)',
    rounds: perRound.map((x) => ({
      time_to_ready_ms: round(x.readyMs),
      replay_events_per_s: Math.round(x.perSec),
      replayed_events: x.replayed,
      ratio_to_ceiling: round(x.perSec / x.readPerSec),
    })),
  };
}

export async function run(argv: string[]): Promise<void> {
  const head = benchStart('recovery');
  const f = flagsOf(argv);
  if (f.child) return child(f.child, f.shards, f.events);
  // Every round is the same experiment on a journal of its own: `events` events, kill -9,
  // restart. Figures are medians over the rounds; each round's are kept.
  const perRound: RoundFigures[] = [];
  for (let r = 1; r <= f.rounds; r++) perRound.push(await crashAndRecover(f, r));
  const { events, rounds, shards } = f;
  writeReport(
    {
      ...head,
      config: { events_per_round: events, rounds, shards, skus: SKUS, journal: 'file (fsync)' },
      cases: [summarize(shards, perRound)],
    },
    f.json,
  );
}
