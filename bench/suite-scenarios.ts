/**
 * The scenarios of the benchmark suite (`npm run bench -- flash|steady|lifecycle|ws|read|rate`),
 * each run against one system at a time (bench/systems.ts) and returning that system's case.
 * bench/suite.ts runs them for every system, in one invocation, and writes the reports.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { load, okPerSec } from './http.js';
import { percentile, round } from './report.js';
import type { BenchCase } from './report.js';
import { closedLoop } from './load/autocannon-load.js';
import { held, openLoop } from './load/open-loop.js';
import type { OpenLoopResult } from './load/open-loop.js';
import { wrkScript } from './load/requests.js';
import type { LoadSpec } from './load/requests.js';
import { wsLoad } from './load/ws-load.js';
import { inLanes } from './systems.js';
import type { System, SystemName } from './systems.js';

/** One system's figures in one scenario: the report convention plus what the suite adds. */
export interface SuiteCase extends BenchCase {
  name: SystemName | 'generator_noop';
  /** Units the system says it sold (sold + held), read back from its store; null: sells nothing. */
  sold: number | null;
  /** The load generator, and what it alone reaches against a no-op server (same run). */
  tool: string;
  generator_ceiling_per_s: number | null;
  connections?: number;
  rate?: number;
}

/** What every scenario is told: settings, the generators' ceilings, and where to say progress. */
export interface SuiteSettings {
  durationS: number;
  warmupS: number;
  /** SKUs of the steady, read, rate and ws scenarios. */
  skus: number;
  flashStock: number;
  flashBuyers: number;
  flashConnections: number;
  steadyConnections: number[];
  /** `steady` runs each connection count this often and reports the median round. */
  rounds: number;
  readConnections: number;
  wsConnections: number;
  lifecycleConnections: number;
  holdTtlMs: number;
  rates: number[];
  rateStepS: number;
  p99BoundMs: number;
  /** wrk for the raw-throughput cases where installed (and not turned off). */
  wrk: boolean;
  ceilings: GeneratorCeilings;
  progress: (line: string) => void;
}

export interface GeneratorCeilings {
  /** Purchases per second each generator reaches against the no-op server (same run). */
  autocannon_per_s: number;
  /** autocannon on two worker threads (measured where it drives the raw-throughput cases). */
  autocannon_workers_per_s: number | null;
  wrk_per_s: number | null;
  ws_per_s: number | null;
  /** The highest ladder rate the no-op server holds at p99 ≤ the bound, open loop. */
  open_loop_per_s: number | null;
}

/** The steady SKUs: `steady-0` … `steady-<skus-1>`. */
export const STEADY_PREFIX = 'steady-';

const run = () => `r${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

export function steadySpec(skus: number): LoadSpec {
  return { kind: 'reserve', sku: STEADY_PREFIX, skus, users: 0, retryEvery: 0, run: run() };
}

export function wrkInstalled(): boolean {
  return !spawnSync('wrk', ['-v']).error;
}

const scratch = mkdtempSync(join(tmpdir(), 'stockade-bench-suite-'));
process.once('exit', () => rmSync(scratch, { recursive: true, force: true }));
let scripts = 0;

/** wrk on `spec` for `durationS`; its Lua script is written once per call. */
async function wrkLoad(
  port: number,
  spec: LoadSpec,
  connections: number,
  durationS: number,
  threads = Math.min(2, connections),
) {
  const script = join(scratch, `load-${scripts++}.lua`);
  writeFileSync(script, wrkScript(spec));
  return load([port], script, connections, threads, `${durationS}s`);
}

/** Units sold (sold + held) over the steady SKUs, read back from the system. */
export async function steadySold(system: System, skus: number): Promise<number> {
  let total = 0;
  await inLanes(skus, 32, async (i) => {
    const c = await system.counts(`${STEADY_PREFIX}${i}`);
    if (c.sold + c.reserved > c.stock || c.available < 0)
      throw new Error(`${system.name}: ${JSON.stringify(c)} is oversold`);
    total += c.sold + c.reserved;
  });
  return total;
}

/**
 * Units sold on the steady SKUs since `before`, read back from the system, checked against the
 * `acked` 2xx answers: every 2xx is a unit sold, and a request whose answer never came (in flight
 * when the load stopped, timed out, or on a connection that failed: at most `unanswered`) may
 * have sold one more. Fewer is a lost purchase, more an invented one; either throws, as does
 * any SKU over its stock.
 */
async function readBack(
  system: System,
  s: SuiteSettings,
  before: number,
  acked: number,
  unanswered: number,
): Promise<number> {
  const sold = (await steadySold(system, s.skus)) - before;
  if (sold < acked || sold > acked + unanswered)
    throw new Error(
      `${system.name}: ${sold} units sold for ${acked} purchases acknowledged ` +
        `(and at most ${unanswered} unanswered)`,
    );
  return sold;
}

/** Counts by outcome, what changed between two snapshots. */
function outcomeDelta(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(after))
    if (v - (before[k] ?? 0) > 0) d[k] = v - (before[k] ?? 0);
  return d;
}

/** A closed-loop run's figures, the same whichever generator ran it. */
interface Closed {
  tool: 'wrk' | 'autocannon (2 workers)';
  ok: number;
  ok_per_s: number;
  latency_ms: { p50: number; p99: number };
  requests: number;
  non_2xx: number;
  /** Requests that may have been sent and never answered: in flight at the end, or lost. */
  unanswered: number;
}

/**
 * Closed-loop load on `spec` for `seconds`: wrk where installed (raw throughput; `threads`
 * threads), else autocannon on two worker threads.
 */
async function closedLoad(
  system: System,
  s: SuiteSettings,
  spec: LoadSpec,
  connections: number,
  seconds: number,
  threads = Math.min(2, connections),
): Promise<Closed> {
  if (s.wrk) {
    const r = await wrkLoad(system.port, spec, connections, seconds, threads);
    return {
      tool: 'wrk',
      ok: r.requests - r.non2xx,
      ok_per_s: Math.round(okPerSec(r)),
      latency_ms: { p50: round(r.p50Ms), p99: round(r.p99Ms) },
      requests: r.requests,
      non_2xx: r.non2xx,
      unanswered: connections + r.errorCount,
    };
  }
  const r = await closedLoop({
    port: system.port,
    connections,
    durationS: seconds,
    spec,
    workers: 2,
  });
  return {
    tool: 'autocannon (2 workers)',
    ok: r.ok,
    ok_per_s: r.ok_per_s,
    latency_ms: { p50: r.latency_ms.p50, p99: r.latency_ms.p99 },
    requests: r.requests,
    non_2xx: r.non_2xx,
    unanswered: connections + r.errors + r.timeouts,
  };
}

const ceilingOf = (s: SuiteSettings, tool: Closed['tool']) =>
  tool === 'wrk' ? s.ceilings.wrk_per_s : s.ceilings.autocannon_workers_per_s;

/**
 * `steady`: purchases spread over the steady SKUs (ample stock), closed loop at `connections`,
 * warm-up then `durationS`. Afterwards every SKU is read back: the units sold must lie between
 * the 2xx answers and those plus the requests never answered (none lost, none invented), none
 * oversold.
 */
export async function steady(
  system: System,
  s: SuiteSettings,
  connections: number,
): Promise<SuiteCase> {
  const spec = steadySpec(s.skus);
  const before = system.sells ? await steadySold(system, s.skus) : 0;
  const warm = await closedLoad(system, s, spec, connections, s.warmupS);
  s.progress(`  warm-up ${s.warmupS} s: ${warm.ok_per_s.toLocaleString('en-US')}/s`);
  const r = await closedLoad(system, s, spec, connections, s.durationS);
  const acked = warm.ok + r.ok;
  const unanswered = warm.unanswered + r.unanswered;
  return {
    name: system.name,
    throughput_per_s: r.ok_per_s,
    latency_ms: r.latency_ms,
    // readBack throws on any SKU over its stock, and on a purchase lost or invented.
    oversold: system.sells ? 0 : null,
    sold: system.sells ? await readBack(system, s, before, acked, unanswered) : null,
    acknowledged: acked,
    requests: r.requests,
    non_2xx: r.non_2xx,
    tool: r.tool,
    generator_ceiling_per_s: ceilingOf(s, r.tool),
    connections,
  };
}

/**
 * `flash`: one SKU with `flashStock` units and a limit of one per buyer; a crowd of
 * `flashBuyers` distinct buyers, one purchase each, and every eleventh a buyer clicking twice
 * (a second key): rejections are `sold_out` and `limit_exceeded`. autocannon on one thread sees
 * every answer, so the figures split at the sell-out: the answer that sold the last unit. Every
 * unit must be sold, and not one more: by the 201s and by the system's own counts.
 */
export async function flash(system: System, s: SuiteSettings): Promise<SuiteCase> {
  const sku = `flash-${run()}`;
  await system.define(sku, { stock: s.flashStock, perUserLimit: 1 });
  const outcomesBefore = await system.outcomes();
  const spec: LoadSpec = { kind: 'reserve', sku, skus: 1, users: 0, retryEvery: 11, run: run() };
  const amount = Math.round(s.flashBuyers * 1.1);
  const answers = {
    latencies: new Float64Array(amount + 16),
    times: new Float64Array(amount + 16),
    n: 0,
  };
  let created = 0;
  let soldOutAt = Infinity;
  const start = performance.now();
  const r = await closedLoop({
    port: system.port,
    connections: s.flashConnections,
    amount,
    spec,
    onAnswer: (status, latencyMs, at) => {
      if (answers.n < answers.latencies.length) {
        answers.latencies[answers.n] = latencyMs;
        answers.times[answers.n++] = at;
      }
      if (status === 201 && ++created === s.flashStock) soldOutAt = at;
    },
    onTick: (n) =>
      s.progress(
        `  ${((performance.now() - start) / 1000).toFixed(1)} s: ${n.toLocaleString('en-US')} answers/s, ` +
          `${created.toLocaleString('en-US')} of ${s.flashStock.toLocaleString('en-US')} sold`,
      ),
  });
  const end = performance.now();
  const c = await system.counts(sku);
  const taken = c.sold + c.reserved;
  const rejections = outcomeDelta(outcomesBefore, await system.outcomes());
  delete rejections.ok;
  const all = answers.latencies.subarray(0, answers.n);
  return {
    name: system.name,
    throughput_per_s: Math.round(answers.n / ((end - start) / 1000)),
    latency_ms: { p50: round(percentile(all, 50)), p99: round(percentile(all, 99)) },
    oversold: Math.max(0, taken - s.flashStock, created - s.flashStock),
    sold: taken,
    stock: s.flashStock,
    // Every unit sold, none twice; a 201 may only be missing for an answer that never came.
    exact:
      taken === s.flashStock && created <= taken && created + r.errors + r.timeouts >= s.flashStock,
    time_to_sell_out_ms: Number.isFinite(soldOutAt) ? Math.round(soldOutAt - start) : null,
    ...splitAt(answers, start, soldOutAt, end),
    buyers: s.flashBuyers,
    requests: r.requests,
    created_201: created,
    rejections,
    errors: r.errors,
    timeouts: r.timeouts,
    tool: 'autocannon',
    generator_ceiling_per_s: s.ceilings.autocannon_per_s,
    connections: s.flashConnections,
  };
}

/** Answers per second and latency before `at` (selling) and after it (sold out). */
function splitAt(
  a: { latencies: Float64Array; times: Float64Array; n: number },
  start: number,
  at: number,
  end: number,
) {
  const before: number[] = [];
  const after: number[] = [];
  for (let i = 0; i < a.n; i++) (a.times[i] <= at ? before : after).push(a.latencies[i]);
  const figures = (xs: number[], seconds: number) => ({
    answers_per_s: seconds > 0 ? Math.round(xs.length / seconds) : null,
    latency_ms: { p50: round(percentile(xs, 50)), p99: round(percentile(xs, 99)) },
  });
  return {
    selling: figures(before, (Math.min(at, end) - start) / 1000),
    after_sold_out: figures(after, Number.isFinite(at) ? (end - at) / 1000 : 0),
  };
}

/**
 * `read`: `GET /v1/skus/{sku}` on the steady SKUs while purchases run on as many connections
 * again, each from a generator of its own (one thread each). The case's figures are the
 * reads'; the purchases are read back.
 */
export async function read(system: System, s: SuiteSettings): Promise<SuiteCase> {
  const c = s.readConnections;
  const before = system.sells ? await steadySold(system, s.skus) : 0;
  const [r, p] = await Promise.all([
    closedLoad(system, s, { ...steadySpec(s.skus), kind: 'read' }, c, s.durationS, 1),
    closedLoad(system, s, steadySpec(s.skus), c, s.durationS, 1),
  ]);
  return {
    name: system.name,
    throughput_per_s: r.ok_per_s,
    latency_ms: r.latency_ms,
    oversold: system.sells ? 0 : null, // readBack throws on any SKU over its stock
    sold: system.sells ? await readBack(system, s, before, p.ok, p.unanswered) : null,
    purchases_per_s: p.ok_per_s,
    purchase_latency_ms: p.latency_ms,
    read_non_2xx: r.non_2xx,
    tool: r.tool,
    generator_ceiling_per_s: ceilingOf(s, r.tool),
    connections: 2 * c,
  };
}

/**
 * `rate`: open loop at each rate of the ladder for `rateStepS`, latency from each request's
 * intended send time; the system's figure is the highest rate it held (every request answered,
 * p99 ≤ the bound). Climbing stops after two failed steps in a row (or one far over the bound).
 */
export async function rate(
  system: System | { name: 'generator_noop'; port: number },
  s: SuiteSettings,
): Promise<SuiteCase & { ladder: OpenLoopResult[] }> {
  const sells = 'sells' in system && system.sells ? system : null;
  const before = sells ? await steadySold(sells, s.skus) : 0;
  const ladder: OpenLoopResult[] = [];
  let best: OpenLoopResult | null = null;
  let failed = 0;
  // A warm-up at the first rate, not counted: the first step measures the system, not its JIT.
  const warm = await openLoop({
    port: system.port,
    rate: s.rates[0],
    durationMs: 2000,
    spec: steadySpec(s.skus),
  });
  for (const r of s.rates) {
    const step = await openLoop({
      port: system.port,
      rate: r,
      durationMs: s.rateStepS * 1000,
      spec: steadySpec(s.skus),
    });
    ladder.push(step);
    const ok = held(step, s.p99BoundMs) && step.non_2xx === 0;
    s.progress(
      `  ${r.toLocaleString('en-US')}/s: p50 ${step.latency_ms.p50} ms, p99 ${step.latency_ms.p99} ms` +
        ` (sent late p99 ${step.send_late_ms.p99} ms)${ok ? '' : ' — not held'}`,
    );
    if (ok) {
      best = step;
      failed = 0;
    } else if (++failed >= 2 || step.latency_ms.p99 > 20 * s.p99BoundMs || step.dropped > 0) break;
  }
  // Every step's purchases, read back: none lost, none invented, none over a SKU's stock.
  const steps = [warm, ...ladder];
  const sold = sells
    ? await readBack(
        sells,
        s,
        before,
        steps.reduce((a, x) => a + x.ok, 0),
        steps.reduce((a, x) => a + x.timed_out, 0),
      )
    : null;
  return {
    name: system.name,
    throughput_per_s: best?.rate ?? 0,
    latency_ms: { p50: best?.latency_ms.p50 ?? 0, p99: best?.latency_ms.p99 ?? 0 },
    oversold: sells ? 0 : null,
    sold,
    rate: best?.rate ?? 0,
    p99_bound_ms: s.p99BoundMs,
    tool: 'open-loop',
    generator_ceiling_per_s: s.ceilings.open_loop_per_s,
    ladder,
  };
}

/**
 * `ws`: the steady purchases through WebSocket clients (Stockade's `reserve` message), closed
 * loop on `wsConnections` sockets for `durationS`.
 */
export async function ws(system: System, s: SuiteSettings): Promise<SuiteCase> {
  const before = await steadySold(system, s.skus);
  const r = await wsLoad({
    port: system.port,
    connections: s.wsConnections,
    durationS: s.durationS,
    spec: steadySpec(s.skus),
  });
  return {
    name: system.name,
    throughput_per_s: r.ok_per_s,
    latency_ms: { p50: r.latency_ms.p50, p99: r.latency_ms.p99 },
    oversold: 0, // readBack throws on any SKU over its stock
    sold: await readBack(system, s, before, r.ok, r.unanswered),
    outcomes: r.outcomes,
    errors: r.errors,
    tool: 'ws',
    generator_ceiling_per_s: s.ceilings.ws_per_s,
    connections: s.wsConnections,
  };
}

type LifecycleTally = Record<
  'reserved' | 'confirmed' | 'cancelled' | 'left' | 'hold_expired' | 'other',
  number
>;
type LifecycleContext = { id?: string; n: number };

/**
 * The two requests each connection repeats: reserve (a new buyer and key), then, for the
 * reservation it got, confirm (n % 3 = 0), cancel (1) or nothing (2: a read; the hold expires).
 */
function lifecycleRequests(sku: string, tally: LifecycleTally): autocannon.Request[] {
  const tag = run();
  let n = 0;
  const actOf = (ctx: LifecycleContext) =>
    ctx.id === undefined ? 'none' : ['confirm', 'cancel', 'none'][ctx.n % 3];
  return [
    {
      setupRequest: (req: autocannon.Request, ctx: LifecycleContext) => {
        ctx.n = n++;
        return {
          ...req,
          method: 'POST',
          path: `/v1/skus/${sku}/reservations`,
          headers: { 'content-type': 'application/json' },
          body: `{"userId":"u${tag}-${ctx.n}","qty":1,"idempotencyKey":"${tag}-${ctx.n}"}`,
        };
      },
      onResponse: (status: number, body: string, ctx: LifecycleContext) => {
        ctx.id =
          status === 201
            ? (JSON.parse(body) as { reservationId: string }).reservationId
            : undefined;
        tally[status === 201 ? 'reserved' : 'other']++;
      },
    },
    {
      setupRequest: (req: autocannon.Request, ctx: LifecycleContext) => {
        const act = actOf(ctx);
        if (act === 'none')
          return { ...req, method: 'GET', path: `/v1/skus/${sku}`, body: undefined };
        return {
          ...req,
          method: 'POST',
          path: `/v1/reservations/${ctx.id}/${act}`,
          body: undefined,
        };
      },
      onResponse: (status: number, body: string, ctx: LifecycleContext) => {
        const act = actOf(ctx);
        if (act === 'none') tally.left += ctx.id === undefined ? 0 : 1;
        else if (status === 200) tally[act === 'confirm' ? 'confirmed' : 'cancelled']++;
        else tally[body.includes('hold_expired') ? 'hold_expired' : 'other']++;
      },
    },
  ] as autocannon.Request[];
}

/**
 * `lifecycle`: each connection reserves, then confirms (a third of the time), cancels (a
 * third), or leaves the hold to expire (`holdTtlMs`); after the run and the holds' expiry, the
 * SKU must have sold what was confirmed (and at most the confirms in flight at the end more),
 * hold nothing, and have every other unit back on sale.
 */
export async function lifecycle(system: System, s: SuiteSettings): Promise<SuiteCase> {
  const sku = `life-${run()}`;
  const stock = 100_000_000;
  await system.define(sku, { stock, perUserLimit: 1_000_000_000, holdTtlMs: s.holdTtlMs });
  const tally: LifecycleTally = {
    reserved: 0,
    confirmed: 0,
    cancelled: 0,
    left: 0,
    hold_expired: 0,
    other: 0,
  };
  const latencies: number[] = [];
  const instance = autocannon({
    url: `http://127.0.0.1:${system.port}`,
    connections: s.lifecycleConnections,
    duration: s.durationS,
    requests: lifecycleRequests(sku, tally),
  }) as unknown as autocannon.Instance;
  instance.on('response', (_c: unknown, _s: number, _b: number, ms: number) => latencies.push(ms));
  const r = await (instance as unknown as Promise<autocannon.Result>);
  // Every hold left (and any reserve still in flight at the end) expires within its TTL; the
  // expiry wheel's tick and the journal append add a little.
  await new Promise((res) => setTimeout(res, s.holdTtlMs + 2_000));
  const c = await system.counts(sku);
  const stockBack = c.reserved === 0 && c.available + c.sold === stock;
  if (!stockBack || c.sold < tally.confirmed || c.sold > tally.confirmed + s.lifecycleConnections)
    throw new Error(
      `${system.name}: lifecycle left ${JSON.stringify(c)} after ${JSON.stringify(tally)}`,
    );
  return {
    name: system.name,
    throughput_per_s: Math.round((r['2xx'] + r.non2xx) / r.duration),
    latency_ms: { p50: round(percentile(latencies, 50)), p99: round(percentile(latencies, 99)) },
    oversold: Math.max(0, c.sold + c.reserved - stock),
    sold: c.sold,
    confirmed: tally.confirmed,
    cancelled: tally.cancelled,
    left_to_expire: tally.left,
    hold_expired: tally.hold_expired,
    reserved_after: c.reserved,
    available_after: c.available,
    stock_came_back: stockBack,
    hold_ttl_ms: s.holdTtlMs,
    tool: 'autocannon',
    generator_ceiling_per_s: s.ceilings.autocannon_per_s,
    connections: s.lifecycleConnections,
  };
}
