/**
 * `npm run bench -- cluster`: the Kafka journal over HTTP with one, two and three members on one
 * topic, and what fencing costs, measured with wrk in one run against one broker, one case
 * after the other, all on 127.0.0.1:
 *
 *   kafka_unfenced_1   one member, `kafka.fencing` off (the baseline: no offset stamps)
 *   kafka_fenced_1     one member, as `stockade serve --journal kafka` runs (the default)
 *   cluster_2, _3      two and three members; wrk's connections spread over their ports, so
 *                      about (n-1)/n of the purchases reach a member that forwards them
 *
 * Every case sells one SKU per partition (wrk's Lua script cycles through them), so each member
 * owns some of the traffic. After each measured run: the 2xx answers must match the units the
 * engine reserved (at most `connections` more reserved: requests wrk left in flight when it
 * stopped), and no SKU may sell past its stock. Then, with three members, the failover: one is
 * killed (kill -9) while purchases continue on the others, and the report gives the time from
 * the kill to the first 201, sent after it, on a partition the dead member owned, and the replay
 * that preceded it on its new owner.
 *
 * On 2 cores more members cannot add throughput: they share the same two cores (with wrk and
 * the broker), and forwarding adds work. What the figures show is the cost of forwarding; on a
 * machine per member, each member's own partitions scale with its cores.
 *
 * Flags: --duration 10s, --warmup 3s, --connections 100, --wrk-threads 2, --shards 4,
 * --rounds N, --members 1,2,3 (cluster sizes; 1 also runs the unfenced baseline),
 * --no-failover, --json FILE. Needs `wrk` and the broker of STOCKADE_KAFKA_BROKERS.
 */
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { shardOf } from '../engine/index.js';
import { deleteTopics } from './kafka-journal.js';
import { WRK_FLAGS, load, okPerSec, send, startChild, stop, wrkConfig } from './http.js';
import type { Options } from './http.js';
import { benchStart, medianOfRounds, positiveInt, round, writeReport } from './report.js';
import type { BenchCase } from './report.js';

const STOCK = 50_000_000;

/** wrk's Lua script: purchases cycling through `skus`, a fresh key per request. */
function luaFor(skus: string[]): string {
  const list = skus.map((s) => `"${s}"`).join(', ');
  return `
local threads = {}
local skus = { ${list} }
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  prefix = args[1] .. "-t" .. id .. "-"
  counter = 0
end
request = function()
  counter = counter + 1
  local sku = skus[(counter % #skus) + 1]
  local body = '{"userId":"u' .. id .. '-' .. (counter % 50000) .. '","qty":1,"idempotencyKey":"' ..
    prefix .. counter .. '"}'
  return wrk.format("POST", "/v1/skus/" .. sku .. "/reservations",
    {["Content-Type"] = "application/json"}, body)
end
`;
}

/** One SKU id per shard. */
function skusFor(shards: number): string[] {
  return Array.from({ length: shards }, (_, s) => {
    for (let n = 0; ; n++) if (shardOf(`p${s}-${n}`, shards) === s) return `p${s}-${n}`;
  });
}

interface Member {
  child: ChildProcess;
  base: string;
  port: number;
}

interface ClusterJson {
  members: { nodeId: string }[];
  partitions: {
    owner: string | null;
    here: string;
    replay: { events: number; ms: number } | null;
  }[];
}

async function clusterOf(m: Member): Promise<ClusterJson | null> {
  try {
    const r = await fetch(`${m.base}/v1/cluster`, { signal: AbortSignal.timeout(5_000) });
    return r.status === 200 ? ((await r.json()) as ClusterJson) : null;
  } catch {
    return null;
  }
}

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startMembers(n: number, topic: string, f: Flags, env: Record<string, string>) {
  const members: Member[] = [];
  for (let i = 0; i < n; i++) {
    const args = ['serve', '--port', '0', '--auth', 'none', '--log-level', 'warn'];
    args.push('--journal', 'kafka', '--kafka-topic', topic, '--shards', String(f.shards));
    args.push('--rate-limit', '0', '--node-id', `m${i + 1}`);
    const { child, match } = await startChild(
      '../cli/stockade.js',
      args,
      /serving on (http:\/\/127\.0\.0\.1:(\d+))/,
      env,
    );
    members.push({ child, base: match[1], port: Number(match[2]) });
  }
  await until(`${n} members, every partition served`, 60_000, async () => {
    const views = await Promise.all(members.map(clusterOf));
    return views.every(
      (v) => v !== null && v.members.length === n && v.partitions.every((p) => p.here !== 'moving'),
    );
  });
  return members;
}

async function reservedTotal(m: Member, skus: string[]): Promise<number> {
  let total = 0;
  for (const sku of skus) {
    const snap = (await send(`${m.base}/v1/skus/${sku}`, 'GET', undefined)).json as {
      reserved: number;
      sold: number;
    };
    if (snap.reserved + snap.sold > STOCK) throw new Error(`${sku} sold past its stock`);
    total += snap.reserved;
  }
  return total;
}

/** A cluster's counter summed over its members' /metrics (e.g. forwarded batches). */
async function metricSum(members: Member[], name: string): Promise<number> {
  let sum = 0;
  for (const m of members) {
    const text = await (await fetch(`${m.base}/metrics`)).text();
    sum += Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  }
  return sum;
}

async function measure(
  name: string,
  members: Member[],
  skus: string[],
  o: Options,
): Promise<BenchCase> {
  for (const sku of skus) {
    const put = await send(`${members[0].base}/v1/skus/${sku}`, 'PUT', { stock: STOCK });
    if (put.status !== 201) throw new Error(`${name}: PUT ${sku} answered ${put.status}`);
  }
  const ports = members.map((m) => m.port);
  await load(ports, o.script, o.connections, o.wrkThreads, o.warmup);
  const before = await reservedTotal(members[0], skus);
  const forwardedBefore = await metricSum(members, 'stockade_cluster_forwarded_total');
  const load1 = loadavg()[0];
  const r = await load(ports, o.script, o.connections, o.wrkThreads, o.duration);
  const reserved = (await reservedTotal(members[0], skus)) - before;
  const forwarded =
    (await metricSum(members, 'stockade_cluster_forwarded_total')) - forwardedBefore;
  const answered = r.requests - r.non2xx;
  // wrk stops with up to one request per connection in flight: served, but not counted by it.
  const connections = ports.length * Math.ceil(o.connections / ports.length);
  const unexplained = reserved - answered;
  if (unexplained < 0 || unexplained > connections) {
    throw new Error(`${name}: ${answered} purchases answered 2xx, ${reserved} units reserved`);
  }
  return {
    name,
    members: members.length,
    throughput_per_s: Math.round(okPerSec(r)),
    latency_ms: { p50: round(r.p50Ms), p99: round(r.p99Ms) },
    oversold: 0, // reservedTotal checked every SKU against its stock
    requests: r.requests,
    non_2xx: r.non2xx,
    answered_2xx: answered,
    reserved_in_run: reserved,
    forwarded_batches: forwarded,
    requests_per_forwarded_batch: forwarded > 0 ? round(answered / forwarded, 1) : null,
    socket_errors: r.errors,
    load_avg_1m_before: round(load1, 2),
  };
}

/**
 * kill -9 of the last member while purchases go on through the others: the time until the
 * first 201, sent after the kill, on a partition it owned; and the replay on its new owner.
 */
async function failover(members: Member[], skus: string[]): Promise<Record<string, unknown>> {
  const victim = members[members.length - 1];
  const survivors = members.slice(0, -1);
  const before = (await clusterOf(members[0]))!;
  const victimNode = `m${members.length}`;
  const lost = before.partitions.flatMap((p, i) => (p.owner === victimNode ? [i] : []));
  if (lost.length === 0) throw new Error('failover: the victim owned no partition');
  let killedAt = 0;
  const firstOk = new Map<number, number>();
  let stopAt = Date.now() + 60_000;
  let n = 0;
  const driver = async (lane: number) => {
    while (Date.now() < stopAt && firstOk.size < lost.length) {
      const shard = lost[n++ % lost.length];
      const m = survivors[lane % survivors.length];
      const sent = Date.now();
      const r = await send(`${m.base}/v1/skus/${skus[shard]}/reservations`, 'POST', {
        userId: `f${lane}`,
        qty: 1,
        idempotencyKey: `failover-${lane}-${n}`,
      }).catch(() => null);
      if (r?.status === 201 && killedAt > 0 && sent > killedAt && !firstOk.has(shard)) {
        firstOk.set(shard, Date.now() - killedAt);
      }
      if (r?.status !== 201) await new Promise((res) => setTimeout(res, 20));
    }
  };
  const lanes = Array.from({ length: 8 }, (_, i) => driver(i));
  await new Promise((r) => setTimeout(r, 500));
  victim.child.kill('SIGKILL');
  killedAt = Date.now();
  stopAt = killedAt + 60_000;
  await Promise.all(lanes);
  const after = (await clusterOf(members[0]))!;
  const replays = await Promise.all(
    lost.map(async (p) => {
      const owner = survivors.find((_, i) => after.partitions[p].owner === `m${i + 1}`);
      const v = owner ? await clusterOf(owner) : null;
      return {
        partition: p,
        new_owner: after.partitions[p].owner,
        replay: v?.partitions[p].replay,
      };
    }),
  );
  return {
    partitions_lost: lost,
    first_201_after_kill_ms: Object.fromEntries(firstOk),
    failover_ms: firstOk.size === lost.length ? Math.max(...firstOk.values()) : null,
    replays,
  };
}

interface Flags {
  wrk: Omit<Options, 'script'>;
  shards: number;
  members: number[];
  failover: boolean;
  rounds: number;
  json: string | undefined;
}

function flagsOf(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...WRK_FLAGS,
      shards: { type: 'string', default: '4' },
      members: { type: 'string', default: '1,2,3' },
      'no-failover': { type: 'boolean', default: false },
      rounds: { type: 'string', default: '1' },
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
    shards: positiveInt('shards', values.shards),
    members: values.members.split(',').map((m) => positiveInt('members', m)),
    failover: !values['no-failover'],
    rounds: positiveInt('rounds', values.rounds),
    json: values.json,
  };
}

/** Case `name` on `n` fresh members (a topic of its own), measured; the members stopped. */
async function runCase(
  name: string,
  n: number,
  topic: string,
  f: Flags,
  o: Options,
  env: Record<string, string>,
  skus: string[],
  after?: (members: Member[]) => Promise<Record<string, unknown>>,
): Promise<BenchCase> {
  process.stdout.write(`${name}: ${n} member(s), warm-up ${o.warmup}, then ${o.duration} ...\n`);
  const members = await startMembers(n, topic, f, env);
  try {
    const c = await measure(name, members, skus, o);
    if (after) Object.assign(c, { failover: await after(members) });
    return c;
  } finally {
    for (const m of members) await stop(m.child);
  }
}

async function runRound(f: Flags, o: Options, prefix: string, r: number): Promise<BenchCase[]> {
  const skus = skusFor(f.shards);
  const cases: BenchCase[] = [];
  const topic = (name: string) => `${prefix}${r}-${name}`;
  if (f.members.includes(1)) {
    const off = { STOCKADE_KAFKA_FENCING: 'false' };
    cases.push(await runCase('kafka_unfenced_1', 1, topic('unfenced'), f, o, off, skus));
    cases.push(await runCase('kafka_fenced_1', 1, topic('fenced'), f, o, {}, skus));
  }
  for (const n of f.members.filter((m) => m > 1)) {
    const last = n === Math.max(...f.members) && f.failover;
    const fo = last ? (ms: Member[]) => failover(ms, skus) : undefined;
    cases.push(await runCase(`cluster_${n}`, n, topic(`c${n}`), f, o, {}, skus, fo));
  }
  const unfenced = cases.find((c) => c.name === 'kafka_unfenced_1');
  const fenced = cases.find((c) => c.name === 'kafka_fenced_1');
  for (const c of cases) {
    if (unfenced && c !== unfenced) {
      c.ratio_to_unfenced = round(c.throughput_per_s / unfenced.throughput_per_s);
    }
    if (fenced && c.name.startsWith('cluster_')) {
      c.ratio_to_one_member = round(c.throughput_per_s / fenced.throughput_per_s);
    }
  }
  if (unfenced && fenced) fenced.fencing_cost = round(1 - (fenced.ratio_to_unfenced as number));
  return cases;
}

export async function run(argv: string[]): Promise<void> {
  const head = benchStart('cluster');
  const f = flagsOf(argv);
  if (spawnSync('wrk', ['-v']).error)
    throw new Error('wrk is not installed (Debian: apt-get install -y wrk)');
  const brokers = process.env.STOCKADE_KAFKA_BROKERS;
  const settings = loadConfig({ env: brokers ? { STOCKADE_KAFKA_BROKERS: brokers } : {} }).kafka;
  const dir = mkdtempSync(join(tmpdir(), 'stockade-bench-cluster-'));
  const script = join(dir, 'reserve.lua');
  writeFileSync(script, luaFor(skusFor(f.shards)));
  const o: Options = { ...f.wrk, script };
  const prefix = `stockade-bench-cluster-${Date.now()}-`;
  const rounds: BenchCase[][] = [];
  try {
    for (let r = 0; r < f.rounds; r++) rounds.push(await runRound(f, o, prefix, r));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await deleteTopics(settings, prefix);
  }
  const cases = medianOfRounds(rounds);
  writeReport(
    {
      ...head,
      config: {
        ...wrkConfig(o),
        shards: f.shards,
        members: f.members,
        rounds: f.rounds,
        brokers: settings.brokers,
        skus: skusFor(f.shards),
      },
      cases,
    },
    f.json,
  );
  process.stdout.write(summary(cases));
}

/** The figures this bench is for, in words: fencing's cost, forwarding's, the failover. */
function summary(cases: BenchCase[]): string {
  const lines = ['', 'cluster figures (same run, one case at a time):'];
  for (const c of cases) {
    const parts = [`${c.name}: ${c.throughput_per_s}/s`];
    const figure = (key: string) => (typeof c[key] === 'number' ? c[key] : null);
    const ratio = figure('ratio_to_unfenced');
    if (ratio !== null) parts.push(`${ratio}× unfenced`);
    const cost = figure('fencing_cost');
    if (cost !== null) parts.push(`fencing costs ${round(100 * cost, 1)}%`);
    const one = figure('ratio_to_one_member');
    if (one !== null) parts.push(`${one}× one member`);
    const forwarded = figure('forwarded_batches');
    if (forwarded) {
      const each = figure('requests_per_forwarded_batch') ?? 0;
      parts.push(`${forwarded} forwarded batches (${each} purchases each)`);
    }
    const fo = c.failover as { failover_ms?: number | null; replays?: unknown } | undefined;
    if (fo)
      parts.push(
        `failover after kill -9: ${fo.failover_ms} ms; replays ${JSON.stringify(fo.replays)}`,
      );
    lines.push(`  ${parts.join(', ')}`);
  }
  return lines.join('\n') + '\n';
}
