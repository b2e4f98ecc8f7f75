/**
 * `npm run bench -- http`: purchases per second over HTTP, measured with wrk (100 connections,
 * no pipelining, a fresh idempotency key per request from a Lua `request()` counter), against
 *   (a) `stockade serve --demo --auth none` in its own process, and
 *   (b) a bare uWS server that parses the same JSON and answers a similar body (the ceiling),
 * in the same run, one after the other, both on 127.0.0.1 only. Each case first runs a short
 * warm-up that is not counted. Reports throughput (2xx answers per second: a refusal is not a
 * purchase), p50/p99 from wrk's `--latency`, the ratio to the ceiling, and `oversold`: after the
 * measured run each server sells a small sale out (1,000 units, 1,500 buyers on 50 connections),
 * and neither the 201s nor the engine's sold + reserved may pass its stock; the demo sale's own
 * counts are checked too. The ceiling sells nothing (`oversold` n/a).
 *
 * Flags: --duration 10s, --warmup 3s, --connections 100, --wrk-threads 2, --shards N,
 * --gateway-threads N (they share the port), --journal none|file|kafka or a list (one stockade
 * case per journal, e.g. none,file,kafka; kafka uses STOCKADE_KAFKA_BROKERS and a fresh topic),
 * --rounds N (every case once per round; each figure is the median over the rounds, ratios
 * taken within each round first), --with LIST (serve flags per extra case, `+`-joined, e.g.
 * `--with ,audit` runs every journal plain and with --audit; `--with ,shard-threads=workers`
 * compares serve's default shard placement with worker threads), --cases bare,stockade,
 * --json FILE. Needs `wrk` (Debian: apt-get install -y wrk).
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { servedShardThreads } from '../cli/shard-threads.js';
import { deleteTopics } from './kafka-journal.js';
import { wrkScript } from './load/requests.js';
import { benchStart, medianOfRounds, positiveInt, round, writeReport } from './report.js';
import type { BenchCase, BenchStart } from './report.js';

/**
 * The purchases every wrk-driven bench sends to the demo sale: every request a new buyer (the
 * demo sale allows 2 per buyer: a repeated buyer would soon be refused, and a refusal is not a
 * purchase), with a fresh idempotency key (unique per wrk run: see runWrk's argument).
 */
export const LUA = wrkScript({
  kind: 'reserve',
  sku: 'demo',
  skus: 1,
  users: 0,
  retryEvery: 0,
  run: 'h',
});

interface WrkResult {
  requests: number;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: string;
  /** Connect, read, write and timeout errors, summed: requests that may have been lost. */
  errorCount: number;
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!m) throw new Error(`cannot read wrk latency '${value}'`);
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

export function parseWrk(out: string): WrkResult {
  const pct = (p: string) =>
    toMs(new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? 'NaNus');
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const perSec = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  if (!Number.isFinite(perSec)) throw new Error(`cannot read wrk output:\n${out}`);
  return {
    requests,
    perSec,
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    errors: /Socket errors: .*/.exec(out)?.[0] ?? '',
    errorCount: (/Socket errors: (.*)/.exec(out)?.[1] ?? '')
      .split(',')
      .reduce((a, part) => a + Number(/\d+/.exec(part)?.[0] ?? 0), 0),
  };
}

function runWrk(
  url: string,
  script: string,
  connections: number,
  threads: number,
  duration: string,
): Promise<string> {
  const runId = `r${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const args = [
    '-t',
    String(threads),
    '-c',
    String(connections),
    '-d',
    duration,
    '--latency',
    // wrk leaves answers slower than its timeout (2 s by default) out of its latency histogram
    // and counts them as errors only: a slow system would look faster than it is.
    '--timeout',
    '30s',
    '-s',
    script,
    url,
    '--',
    runId,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`wrk exited ${code}:\n${out}`)),
    );
  });
}

/** wrk against several ports at once (one wrk each), summed; latency from the slowest. */
export async function load(
  ports: number[],
  script: string,
  connections: number,
  threads: number,
  duration: string,
) {
  const outs = await Promise.all(
    ports.map((p) =>
      runWrk(
        `http://127.0.0.1:${p}`,
        script,
        Math.ceil(connections / ports.length),
        Math.max(1, Math.floor(threads / ports.length)),
        duration,
      ),
    ),
  );
  const rs = outs.map(parseWrk);
  return {
    requests: rs.reduce((a, r) => a + r.requests, 0),
    perSec: rs.reduce((a, r) => a + r.perSec, 0),
    p50Ms: Math.max(...rs.map((r) => r.p50Ms)),
    p99Ms: Math.max(...rs.map((r) => r.p99Ms)),
    non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
    errorCount: rs.reduce((a, r) => a + r.errorCount, 0),
    errors: rs
      .map((r) => r.errors)
      .filter(Boolean)
      .join('; '),
    raw: outs.join('\n'),
  };
}

/** Starts a node script (the built .js, or the .ts source through tsx) and waits for `ready`. */
export function startChild(
  rel: string,
  args: string[],
  ready: RegExp,
  extraEnv: Record<string, string> = {},
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const typescript = import.meta.url.endsWith('.ts');
  const path = fileURLToPath(
    new URL(typescript ? rel.replace(/\.js$/, '.ts') : rel, import.meta.url),
  );
  const node = typescript ? ['--import=tsx', path] : [path];
  // The server's settings come from its flags alone, except where the services are
  // (STOCKADE_KAFKA_BROKERS and the *_URL variables of `. .services/env`) and what the caller
  // sets (variables win over a --config file, so a caller's own database goes here).
  const env = {
    ...Object.fromEntries(
      Object.entries(process.env).filter(
        ([k]) => !k.startsWith('STOCKADE_') || k === 'STOCKADE_KAFKA_BROKERS' || k.endsWith('_URL'),
      ),
    ),
    ...extraEnv,
  };
  const child = spawn(process.execPath, [...node, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let text = '';
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = ready.exec(text);
      if (m) resolve({ child, match: m });
    };
    child.stdout.on('data', (c: Buffer) => ((text += c.toString()), check()));
    child.stderr.on('data', (c: Buffer) => ((text += c.toString()), check()));
    child.on('exit', (code) =>
      reject(new Error(`${rel} exited ${code} before it was ready:\n${text}`)),
    );
  });
}

/** Stops a child we started, by its PID, and waits for it. */
export async function stop(child: ChildProcess): Promise<number | null> {
  // Already gone (a process killed by a signal has no exit code, only a signal code): its
  // 'exit' event has fired and would never fire again.
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

export async function send(
  url: string,
  method: string,
  body: unknown,
): Promise<{ status: number; json: unknown }> {
  const r = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: await r.json() };
}

/** Requests per second that were answered 2xx (wrk counts refusals as requests too). */
export function okPerSec(r: WrkResult): number {
  return r.requests > 0 ? (r.perSec * (r.requests - r.non2xx)) / r.requests : 0;
}

/**
 * A sale that does sell out, on the server just measured: `stock` units, half as many buyers
 * again, `lanes` connections at once. Returns units sold beyond stock, by the 201s counted or by
 * the engine's own sold + reserved, and how many were acknowledged.
 */
async function soldOutProbe(
  base: string,
  stock = 1_000,
  lanes = 50,
): Promise<{ oversold: number; acked: number }> {
  let put = await send(`${base}/v1/skus/sellout-probe`, 'PUT', { stock });
  // With --products the sale gate wants moderated images; the probe has none, on purpose.
  if (put.status === 409)
    put = await send(`${base}/v1/skus/sellout-probe`, 'PUT', { stock, moderationOverride: true });
  if (put.status !== 201)
    throw new Error(`sold-out probe: PUT answered ${put.status} ${JSON.stringify(put.json)}`);
  const attempts = Math.ceil(stock * 1.5);
  let next = 0;
  let acked = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < attempts) {
        const i = next++;
        const r = await send(`${base}/v1/skus/sellout-probe/reservations`, 'POST', {
          userId: `probe-${i}`,
          qty: 1,
          idempotencyKey: `probe-${i}`,
        });
        if (r.status === 201) acked++;
        else if (r.status !== 409)
          throw new Error(`sold-out probe: HTTP ${r.status} ${JSON.stringify(r.json)}`);
      }
    }),
  );
  const snap = (await send(`${base}/v1/skus/sellout-probe`, 'GET', undefined)).json as {
    sold: number;
    reserved: number;
  };
  return { oversold: Math.max(0, acked - stock, snap.sold + snap.reserved - stock), acked };
}

export interface Options {
  duration: string;
  warmup: string;
  connections: number;
  wrkThreads: number;
  script: string;
}

async function benchBare(o: Options): Promise<BenchCase & { raw: string }> {
  const { child, match } = await startChild(
    './baselines/bare-uws.js',
    ['--port', '0'],
    /listening (\d+)/,
  );
  try {
    const port = Number(match[1]);
    await load([port], o.script, o.connections, o.wrkThreads, o.warmup);
    const load1 = loadavg()[0];
    const r = await load([port], o.script, o.connections, o.wrkThreads, o.duration);
    return {
      name: 'bare_uws_ceiling',
      throughput_per_s: Math.round(okPerSec(r)),
      latency_ms: { p50: round(r.p50Ms), p99: round(r.p99Ms) },
      oversold: null, // it parses and answers; there is no stock to oversell
      requests: r.requests,
      non_2xx: r.non2xx,
      socket_errors: r.errors,
      load_avg_1m_before: round(load1, 2),
      raw: r.raw,
    };
  } finally {
    await stop(child);
  }
}

/**
 * Load beside the purchases (bench/moderation-load.ts): started with the server's URL once it
 * is up, before the warm-up; its `stop` runs after the measured run and returns figures that
 * join the case.
 */
export type SideLoad = (base: string) => { stop(): Promise<Record<string, unknown>> };

export async function benchStockade(
  o: Options,
  serveArgs: string[],
  name: string,
  side?: SideLoad,
  env: Record<string, string> = {},
): Promise<BenchCase & { raw: string }> {
  const args = [
    'serve',
    '--port',
    '0',
    '--demo',
    '--auth',
    'none',
    '--log-level',
    'warn',
    ...serveArgs,
  ];
  const { child, match } = await startChild(
    '../cli/stockade.js',
    args,
    /demo sale 'demo'[^\n]*\n[^\n]*(http:\/\/127\.0\.0\.1:(\d+))/,
    env,
  );
  try {
    const base = match[1];
    const mainPort = Number(match[2]);
    // Gateway threads share the port (SO_REUSEPORT): the kernel spreads wrk's connections.
    const ports = [mainPort];
    const sideLoad = side?.(base);
    await load(ports, o.script, o.connections, o.wrkThreads, o.warmup);
    // Put the warm-up's units back so the measured run sells rather than answers sold_out.
    const restock = await send(`${base}/v1/skus/demo/restock`, 'POST', { qty: 20_000_000 });
    if (restock.status !== 200)
      throw new Error(`restock answered ${restock.status} ${JSON.stringify(restock.json)}`);
    const before = (await (await fetch(`${base}/v1/skus/demo`)).json()) as { reserved: number };
    const load1 = loadavg()[0];
    const r = await load(ports, o.script, o.connections, o.wrkThreads, o.duration);
    const sideFigures = (await sideLoad?.stop()) ?? {};
    const snap = (await (await fetch(`${base}/v1/skus/demo`)).json()) as {
      reserved: number;
      sold: number;
      initialStock: number;
      restocked: number;
    };
    // available + reserved + sold = initialStock + restocked (a return lowers sold).
    const demoOver = Math.max(0, snap.sold + snap.reserved - (snap.initialStock + snap.restocked));
    const probe = await soldOutProbe(base);
    return {
      name,
      throughput_per_s: Math.round(okPerSec(r)),
      latency_ms: { p50: round(r.p50Ms), p99: round(r.p99Ms) },
      oversold: demoOver + probe.oversold,
      sold_out_probe_acked: probe.acked,
      requests: r.requests,
      non_2xx: r.non2xx,
      reserved_in_run: snap.reserved - before.reserved,
      socket_errors: r.errors,
      load_avg_1m_before: round(load1, 2),
      ...sideFigures,
      raw: r.raw,
    };
  } finally {
    const code = await stop(child);
    if (code !== 0)
      process.stderr.write(`stockade exited with ${code} (expected 0 after SIGTERM)\n`);
  }
}

/** Ratios to the same round's ceiling: throughput (higher is better) and p99 (lower is better). */
function addRatios(cases: BenchCase[]): void {
  const ceiling = cases.find((c) => c.name === 'bare_uws_ceiling');
  for (const c of cases) {
    if (!ceiling || c === ceiling) continue;
    c.ceiling_throughput_per_s = ceiling.throughput_per_s;
    c.ratio_to_ceiling = round(c.throughput_per_s / ceiling.throughput_per_s);
    c.p99_ratio_to_ceiling = round(c.latency_ms.p99 / ceiling.latency_ms.p99);
  }
}

/** The wrk flags of every bench that drives `stockade serve` with wrk (parseArgs options). */
export const WRK_FLAGS = {
  duration: { type: 'string', default: '10s' },
  warmup: { type: 'string', default: '3s' },
  connections: { type: 'string', default: '100' },
  'wrk-threads': { type: 'string', default: '2' },
} as const;

/** The load generator's settings, as every wrk-driven report prints them. */
export function wrkConfig(o: Options): Record<string, unknown> {
  return {
    tool: 'wrk',
    duration: o.duration,
    warmup: o.warmup,
    connections: o.connections,
    wrk_threads: o.wrkThreads,
    pipelining: 1,
  };
}

/** The flags, read and checked before wrk or a server starts. */
interface HttpFlags {
  /** wrk's settings; the Lua script's path is added once its directory exists. */
  wrk: Omit<Options, 'script'>;
  shards: string | undefined;
  gatewayThreads: string;
  /** The --journal, --with and --cases lists as given (the report echoes the first two). */
  journal: string;
  with: string;
  cases: string;
  rounds: number;
  json: string | undefined;
}

function flagsOf(argv: string[]): HttpFlags {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...WRK_FLAGS,
      shards: { type: 'string' },
      'gateway-threads': { type: 'string', default: '1' },
      journal: { type: 'string', default: 'none' },
      with: { type: 'string', default: '' },
      rounds: { type: 'string', default: '1' },
      cases: { type: 'string', default: 'bare,stockade' },
      json: { type: 'string' },
    },
  });
  return {
    wrk: {
      duration: values.duration,
      warmup: values.warmup,
      connections: Number(values.connections),
      wrkThreads: Number(values['wrk-threads']),
    },
    shards: values.shards,
    gatewayThreads: values['gateway-threads'],
    journal: values.journal,
    with: values.with,
    cases: values.cases,
    rounds: positiveInt('rounds', values.rounds),
    json: values.json,
  };
}

/** One case of a round: `bare`, or stockade on a journal with extra serve flags (`+`-joined). */
type CaseSpec = [which: string, journal: string, extra: string];

/**
 * Every case of one round, in order: the ceiling, then each journal once per --with entry.
 * `--journal none,file,kafka` measures each journal against the same ceiling in one run, and
 * `--with ,audit` each of them once more with `stockade serve --audit` (what a feature costs).
 */
function caseSpecs(f: HttpFlags): CaseSpec[] {
  const variants = f.with.split(',');
  return f.cases
    .split(',')
    .flatMap((which): CaseSpec[] =>
      which === 'bare'
        ? [['bare', '', '']]
        : f.journal.split(',').flatMap((j) => variants.map((v): CaseSpec => [which, j, v])),
    );
}

/** What every round shares: the flags, wrk's settings, the scratch directory, the cases. */
interface HttpRun {
  flags: HttpFlags;
  o: Options;
  dir: string;
  /** Each Kafka case gets a topic of its own under this prefix; all are deleted at the end. */
  topicPrefix: string;
  specs: CaseSpec[];
}

/** `stockade serve`'s flags for case `n` of the whole run (its number names its data). */
function serveArgsFor(h: HttpRun, journal: string, extra: string, n: number): string[] {
  const args = ['--journal', journal, '--threads', h.flags.gatewayThreads];
  for (const flag of extra.split('+').filter(Boolean)) args.push(`--${flag}`);
  if (journal === 'file') args.push('--data-dir', join(h.dir, `data-${n}`));
  // Kafka: the brokers from STOCKADE_KAFKA_BROKERS, a fresh topic for every run, all deleted
  // at the end.
  if (journal === 'kafka') args.push('--kafka-topic', `${h.topicPrefix}${n}`);
  if (h.flags.shards) args.push('--shards', h.flags.shards);
  return args;
}

/** Round `r`: every case once, then each one's ratios to this round's own ceiling. */
async function runRound(h: HttpRun, r: number): Promise<BenchCase[]> {
  const { o, specs } = h;
  const rounds = h.flags.rounds;
  const cases: BenchCase[] = [];
  for (const [n, [which, journal, extra]] of specs.entries()) {
    const label = `${journal}${extra ? `+${extra}` : ''}`;
    process.stdout.write(
      `${rounds > 1 ? `round ${r + 1}: ` : ''}${which}` +
        `${journal ? ` (journal ${label})` : ''}: warm-up ${o.warmup}, then ` +
        `${o.duration} with ${o.connections} connections ...\n`,
    );
    const args = serveArgsFor(h, journal, extra, r * specs.length + n);
    const c =
      which === 'bare' ? await benchBare(o) : await benchStockade(o, args, `stockade_${label}`);
    if (process.env.BENCH_VERBOSE) process.stdout.write(c.raw + '\n');
    delete (c as Partial<typeof c>).raw;
    cases.push(c);
  }
  addRatios(cases);
  return cases;
}

/** Prints and writes the report: the median case over the rounds, next to the settings. */
function writeHttpReport(head: BenchStart, f: HttpFlags, o: Options, cases: BenchCase[]): void {
  // Where serve put the shards unless a --with entry says (its `auto`: see shard-threads.ts).
  const threads = Number(f.gatewayThreads);
  const served = servedShardThreads(loadConfig({ env: {}, overrides: { gateway: { threads } } }));
  const defaultShardThreads = served.engine.shardThreads;
  writeReport(
    {
      ...head,
      config: {
        ...wrkConfig(o),
        journal: f.journal,
        with: f.with,
        rounds: f.rounds,
        gateway_threads: threads,
        shards: f.shards ?? 'default (CPU count)',
        shard_threads: `serve default: ${defaultShardThreads}`,
      },
      cases,
    },
    f.json,
  );
}

export async function run(argv: string[]): Promise<void> {
  const head = benchStart('http');
  const flags = flagsOf(argv);
  if (spawnSync('wrk', ['-v']).error)
    throw new Error('wrk is not installed (Debian: apt-get install -y wrk)');
  const dir = mkdtempSync(join(tmpdir(), 'stockade-bench-http-'));
  const script = join(dir, 'reserve.lua');
  const h: HttpRun = {
    flags,
    o: { ...flags.wrk, script },
    dir,
    topicPrefix: `stockade-bench-http-${Date.now()}-`,
    specs: caseSpecs(flags),
  };
  const results: BenchCase[][] = [];
  try {
    writeFileSync(script, LUA);
    // With --rounds N every case runs once per round, in the same order, so each round has its
    // own ceiling to compare with.
    for (let r = 0; r < flags.rounds; r++) results.push(await runRound(h, r));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (h.specs.some(([, journal]) => journal === 'kafka'))
      await deleteTopics(loadConfig().kafka, h.topicPrefix);
  }
  writeHttpReport(head, flags, h.o, medianOfRounds(results));
}
