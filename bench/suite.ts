/**
 * The benchmark suite: `npm run bench -- <flash|steady|lifecycle|ws|read|rate|all> [flags]`.
 * Stockade (file and Kafka journals) next to the designs a user would otherwise build — Redis +
 * Lua, MySQL conditional UPDATE — and a bare uWS server (the ceiling), in one invocation, under
 * the same load, one system at a time; every system is started and stopped by the suite, and
 * everything it sold is read back and checked. See docs/benchmarks.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { deleteTopics } from './kafka-journal.js';
import { load, startChild, stop } from './http.js';
import { benchStart, positiveInt } from './report.js';
import { closedLoop } from './load/autocannon-load.js';
import { wsLoad } from './load/ws-load.js';
import { wrkScript } from './load/requests.js';
import {
  STEADY_PREFIX,
  flash,
  lifecycle,
  rate,
  read,
  steady,
  steadySpec,
  wrkInstalled,
  ws,
} from './suite-scenarios.js';
import type { GeneratorCeilings, SuiteCase, SuiteSettings } from './suite-scenarios.js';
import { SYSTEMS, defineMany, startSystem } from './systems.js';
import type { System, SystemName } from './systems.js';
import { ratios, suiteMarkdown, writeCharts } from './suite-report.js';
import type { ScenarioResult, SuiteReport } from './suite-report.js';

export const SCENARIOS = ['steady', 'read', 'ws', 'rate', 'lifecycle', 'flash'] as const;
type ScenarioName = (typeof SCENARIOS)[number];

const TITLES: Record<ScenarioName, string> = {
  flash: 'flash: a crowd on one SKU with limited stock',
  steady: 'steady: purchases over many SKUs, closed loop',
  read: 'read: GET /v1/skus/{sku} under purchase load',
  ws: 'ws: purchases over WebSockets',
  rate: 'rate: open loop, the highest rate held at p99 ≤ the bound',
  lifecycle: 'lifecycle: reserve, then confirm, cancel or let expire',
};

const DEFAULT_RATES = [
  2_000, 4_000, 6_000, 8_000, 10_000, 12_500, 15_000, 20_000, 25_000, 30_000, 40_000, 60_000,
];

function flags(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      systems: { type: 'string', default: SYSTEMS.join(',') },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      skus: { type: 'string', default: '10000' },
      'flash-stock': { type: 'string', default: '10000' },
      'flash-buyers': { type: 'string', default: '200000' },
      'flash-connections': { type: 'string', default: '200' },
      connections: { type: 'string', default: '100,1000' },
      rates: { type: 'string', default: DEFAULT_RATES.join(',') },
      'rate-step': { type: 'string', default: '4' },
      'p99-ms': { type: 'string', default: '10' },
      'hold-ttl-ms': { type: 'string', default: '1500' },
      rounds: { type: 'string', default: '1' },
      'no-wrk': { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const systems = values.systems.split(',').map((s) => {
    if (!(SYSTEMS as readonly string[]).includes(s))
      throw new Error(`--systems: unknown system '${s}' (known: ${SYSTEMS.join(', ')})`);
    return s as SystemName;
  });
  const list = (flag: string, raw: string) => raw.split(',').map((x) => positiveInt(flag, x));
  // --quick: every scenario in seconds, on small numbers (what the test suite runs).
  const q = values.quick;
  return {
    systems,
    json: values.json,
    out: resolve(
      values.out ??
        join('bench', 'results', `suite-${new Date().toISOString().replace(/[:.]/g, '-')}`),
    ),
    settings: {
      durationS: q ? 2 : positiveInt('duration', values.duration),
      warmupS: q ? 1 : positiveInt('warmup', values.warmup),
      skus: q ? 100 : positiveInt('skus', values.skus),
      flashStock: q ? 300 : positiveInt('flash-stock', values['flash-stock']),
      flashBuyers: q ? 2_000 : positiveInt('flash-buyers', values['flash-buyers']),
      flashConnections: q ? 50 : positiveInt('flash-connections', values['flash-connections']),
      steadyConnections: q ? [20, 100] : list('connections', values.connections),
      rounds: q ? 1 : positiveInt('rounds', values.rounds),
      readConnections: q ? 10 : 50,
      wsConnections: q ? 20 : 100,
      lifecycleConnections: q ? 10 : 100,
      holdTtlMs: positiveInt('hold-ttl-ms', values['hold-ttl-ms']),
      rates: q ? [500, 1_000] : list('rates', values.rates),
      rateStepS: q ? 1 : positiveInt('rate-step', values['rate-step']),
      p99BoundMs: positiveInt('p99-ms', values['p99-ms']),
      wrk: !values['no-wrk'] && wrkInstalled(),
    },
  };
}

/** `[mm:ss] line` on stdout: the live progress of a long run. */
function progressPrinter(): (line: string) => void {
  const t0 = Date.now();
  return (line) => {
    const s = Math.floor((Date.now() - t0) / 1000);
    process.stdout.write(
      `[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${line}\n`,
    );
  };
}

/**
 * The generators' own ceilings, against the no-op server: autocannon (one thread, 100
 * connections), wrk (two threads) where used, the ws client against a WebSocket echo, and the
 * open-loop ladder (what it holds at p99 ≤ the bound). Measured first, in the same run.
 */
async function generatorCeilings(
  s: SuiteSettings,
  wanted: readonly ScenarioName[],
): Promise<{ ceilings: GeneratorCeilings; noopRate: (SuiteCase & { ladder: unknown[] }) | null }> {
  const { child, match } = await startChild(
    './baselines/bare-uws.js',
    ['--port', '0', '--noop'],
    /listening (\d+)/,
  );
  try {
    const port = Number(match[1]);
    const spec = steadySpec(s.skus);
    const seconds = Math.min(5, s.durationS);
    s.progress(`generator ceilings against a no-op server (${seconds} s each) ...`);
    const ac = await closedLoop({ port, connections: 100, durationS: seconds, spec });
    const ceilings: GeneratorCeilings = {
      autocannon_per_s: ac.ok_per_s,
      // Where autocannon drives the raw-throughput cases it runs on two threads: their ceiling.
      autocannon_workers_per_s: s.wrk
        ? null
        : (await closedLoop({ port, connections: 100, durationS: seconds, spec, workers: 2 }))
            .ok_per_s,
      wrk_per_s: null,
      ws_per_s: null,
      open_loop_per_s: null,
    };
    if (s.wrk && (wanted.includes('steady') || wanted.includes('read'))) {
      const dir = mkdtempSync(join(tmpdir(), 'stockade-bench-noop-'));
      try {
        // The script the scenarios run: building each request is part of wrk's ceiling.
        const script = join(dir, 'noop.lua');
        writeFileSync(script, wrkScript(spec));
        ceilings.wrk_per_s = Math.round((await load([port], script, 100, 2, `${seconds}s`)).perSec);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    if (wanted.includes('ws'))
      ceilings.ws_per_s = (
        await wsLoad({ port, connections: s.wsConnections, durationS: seconds, spec })
      ).ok_per_s;
    s.progress(
      `  autocannon ${ceilings.autocannon_per_s.toLocaleString('en-US')}/s` +
        (ceilings.wrk_per_s !== null
          ? `, wrk ${ceilings.wrk_per_s.toLocaleString('en-US')}/s`
          : '') +
        (ceilings.ws_per_s !== null ? `, ws ${ceilings.ws_per_s.toLocaleString('en-US')}/s` : ''),
    );
    let noopRate = null;
    if (wanted.includes('rate')) {
      s.progress('open-loop ladder against the no-op server:');
      noopRate = await rate({ name: 'generator_noop', port }, { ...s, ceilings });
      ceilings.open_loop_per_s = noopRate.rate ?? null;
      noopRate.generator_ceiling_per_s = ceilings.open_loop_per_s;
    }
    return { ceilings, noopRate };
  } finally {
    await stop(child);
  }
}

/**
 * The round with the median throughput, whole (its latencies are the ones measured with that
 * throughput, not medians taken apart), with every round's figures under `rounds`: one stall of
 * a shared machine moves one round, not the result.
 */
export function medianRound(rounds: SuiteCase[]): SuiteCase {
  if (rounds.length === 1) return rounds[0];
  const sorted = [...rounds].sort((a, b) => a.throughput_per_s - b.throughput_per_s);
  return {
    ...sorted[Math.floor((sorted.length - 1) / 2)],
    // Every round's read-back was checked; the worst is what the case reports.
    oversold: rounds.some((c) => c.oversold === null)
      ? null
      : Math.max(...rounds.map((c) => c.oversold ?? 0)),
    rounds: rounds.map((c) => ({ throughput_per_s: c.throughput_per_s, latency_ms: c.latency_ms })),
  };
}

/** The scenarios that give one case per system (`steady` gives one per connection count). */
const ONE_CASE: Record<
  Exclude<ScenarioName, 'steady'>,
  (y: System, s: SuiteSettings) => Promise<SuiteCase>
> = {
  read,
  ws,
  rate,
  lifecycle,
  flash,
};

/** Runs `wanted` on one system; each result goes into its scenario. */
async function runSystem(
  system: System,
  s: SuiteSettings,
  wanted: readonly ScenarioName[],
  record: (
    key: string,
    scenario: ScenarioName,
    c: SuiteCase,
    extra?: Record<string, unknown>,
  ) => void,
): Promise<void> {
  const p = s.progress;
  if (wanted.some((w) => w !== 'flash' && w !== 'lifecycle') && system.sells) {
    p(`${system.name}: defining ${s.skus.toLocaleString('en-US')} SKUs ...`);
    // Holds of a day: none expires between a run and its read-back, however long the suite runs.
    await defineMany(system, STEADY_PREFIX, s.skus, { stock: 100_000_000, holdTtlMs: 86_400_000 });
  }
  for (const w of SCENARIOS) {
    if (!wanted.includes(w)) continue;
    if ((w === 'ws' || w === 'lifecycle') && !system.stockade) continue;
    if (w === 'flash' && !system.sells) continue;
    if (w === 'steady') {
      for (const c of s.steadyConnections) {
        const rounds: SuiteCase[] = [];
        for (let r = 1; r <= s.rounds; r++) {
          const of = s.rounds > 1 ? ` (round ${r} of ${s.rounds})` : '';
          p(`steady · ${system.name} · ${c} connections · ${s.durationS} s${of} ...`);
          rounds.push(await steady(system, s, c));
        }
        record(`steady_c${c}`, w, medianRound(rounds), { connections: c });
      }
      continue;
    }
    p(`${w} · ${system.name} ...`);
    record(w, w, await ONE_CASE[w](system, s));
  }
}

export async function runSuite(which: string, argv: string[]): Promise<void> {
  const head = benchStart(`suite:${which}`);
  const f = flags(argv);
  const wanted: readonly ScenarioName[] = which === 'all' ? SCENARIOS : [which as ScenarioName];
  const progress = progressPrinter();
  const s0 = { ...f.settings, progress, ceilings: null as unknown as GeneratorCeilings };
  const { ceilings, noopRate } = await generatorCeilings(s0, wanted);
  const s: SuiteSettings = { ...s0, ceilings };
  const results = new Map<string, ScenarioResult>();
  const record = (
    key: string,
    scenario: ScenarioName,
    c: SuiteCase,
    extra: Record<string, unknown> = {},
  ) => {
    let r = results.get(key);
    if (!r) results.set(key, (r = { key, scenario, title: TITLES[scenario], ...extra, cases: [] }));
    r.cases.push(c);
    progress(
      `  → ${c.name}: ${c.throughput_per_s.toLocaleString('en-US')}/s, p50 ${c.latency_ms.p50} ms, ` +
        `p99 ${c.latency_ms.p99} ms${c.sold !== null ? `, sold ${c.sold.toLocaleString('en-US')}` : ''}` +
        `${c.oversold ? `, OVERSOLD ${c.oversold}` : ''}`,
    );
  };
  if (noopRate) record('rate', 'rate', noopRate);
  const durability: Record<string, string> = {};
  const dir = mkdtempSync(join(tmpdir(), 'stockade-bench-suite-'));
  const topicPrefix = `stockade-bench-suite-${Date.now()}-`;
  try {
    for (const [n, name] of f.systems.entries()) {
      progress(`starting ${name} ...`);
      const system = await startSystem(name, { dir, topicPrefix, n });
      durability[name] = system.durability;
      try {
        await runSystem(system, s, wanted, record);
      } finally {
        await system.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (f.systems.includes('stockade_kafka')) await deleteTopics(loadConfig().kafka, topicPrefix);
  }
  const report: SuiteReport = {
    ...head,
    config: configOf(f.systems, s),
    generators: ceilings,
    durability,
    scenarios: [...results.values()],
    finished_at: new Date().toISOString(),
  };
  writeSuiteReports(report, f.out, f.json);
}

/** The settings as the report prints them. */
function configOf(systems: SystemName[], s: SuiteSettings): Record<string, unknown> {
  return {
    systems,
    duration_s: s.durationS,
    warmup_s: s.warmupS,
    skus: s.skus,
    flash: {
      stock: s.flashStock,
      buyers: s.flashBuyers,
      connections: s.flashConnections,
      per_user_limit: 1,
    },
    steady_connections: s.steadyConnections,
    steady_rounds: s.rounds,
    read_connections: s.readConnections,
    ws_connections: s.wsConnections,
    lifecycle: { connections: s.lifecycleConnections, hold_ttl_ms: s.holdTtlMs },
    rates: s.rates,
    rate_step_s: s.rateStepS,
    p99_bound_ms: s.p99BoundMs,
    raw_throughput_tool: s.wrk ? 'wrk' : 'autocannon (2 workers)',
  };
}

/**
 * Adds each case's ratios, writes report.md, the JSON and the charts into `out`, prints the
 * markdown, and fails the run if any system sold more (or, in `flash`, less) than its stock.
 */
function writeSuiteReports(report: SuiteReport, out: string, json: string | undefined): void {
  for (const r of report.scenarios)
    for (const c of r.cases) {
      if (c.name === 'generator_noop') continue;
      const x = ratios(r, c);
      if (x.to_ceiling !== null) c.ratio_to_ceiling = x.to_ceiling;
      if (x.to_redis_lua !== null) c.ratio_to_redis_lua = x.to_redis_lua;
      if (x.to_mysql !== null) c.ratio_to_mysql = x.to_mysql;
    }
  mkdirSync(out, { recursive: true });
  const charts = writeCharts(report, out);
  const md = suiteMarkdown(report, charts);
  writeFileSync(join(out, 'report.md'), md);
  const jsonPath = json ?? join(out, 'report.json');
  writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n');
  process.stdout.write(
    `\n${md}\nwrote ${join(out, 'report.md')}, ${jsonPath} and ${charts.length} charts\n`,
  );
  const wrong = report.scenarios.flatMap((r) =>
    r.cases
      .filter((c) => (c.oversold ?? 0) > 0 || c.exact === false)
      .map((c) => `${r.key}/${c.name}`),
  );
  if (wrong.length > 0) throw new Error(`sold more or less than the stock: ${wrong.join(', ')}`);
}
