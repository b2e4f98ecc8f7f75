/**
 * The systems the benchmark suite compares, each started as its own process on 127.0.0.1 and
 * stopped by the suite, all answering the same HTTP routes (bench/baselines/sale-http.ts):
 *
 * - `bare_uws_ceiling`: uWS parsing the purchase and answering; sells nothing (the ceiling).
 * - `redis_lua`: Redis + one Lua script per purchase (bench/baselines/redis-lua.ts).
 * - `mysql_conditional_update`: one conditional UPDATE per purchase
 *   (bench/baselines/mysql-update.ts).
 * - `stockade_file`: `stockade serve` on the fsync'd file journal.
 * - `stockade_kafka`: `stockade serve` on the Kafka journal (a fresh topic).
 */
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { send, startChild, stop } from './http.js';

export const SYSTEMS = [
  'bare_uws_ceiling',
  'redis_lua',
  'mysql_conditional_update',
  'stockade_file',
  'stockade_kafka',
] as const;
export type SystemName = (typeof SYSTEMS)[number];

export interface SkuCounts {
  stock: number;
  available: number;
  sold: number;
  reserved: number;
}

export interface System {
  name: SystemName;
  port: number;
  base: string;
  /** It keeps stock: it can sell out, and oversell. The ceiling does not. */
  sells: boolean;
  /** It has holds (confirm, cancel, expiry) and a WebSocket endpoint: Stockade. */
  stockade: boolean;
  /** When the system's "reserved" answer is durable, in words, for the report. */
  durability: string;
  define(sku: string, sale: Sale): Promise<void>;
  /** The SKU's counts, read back from the system's own store (Redis, MySQL, the engine). */
  counts(sku: string): Promise<SkuCounts>;
  /** Answers to purchases since the start, by outcome (`ok`, `sold_out`, ...). */
  outcomes(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

export interface Sale {
  stock: number;
  perUserLimit?: number;
  holdTtlMs?: number;
}

export interface SystemContext {
  /** A scratch directory for journals. */
  dir: string;
  /** Kafka topics are named under it (deleted by the suite at the end). */
  topicPrefix: string;
  /** Numbers each start, so no two share a journal or a topic. */
  n: number;
}

/** Stockade's and the ceiling's durability; the baselines say theirs (`GET /v1/about`). */
const DURABILITY: Partial<Record<SystemName, string>> = {
  bare_uws_ceiling: 'nothing is kept',
  stockade_file: 'fsync’d to the file journal before the answer',
  stockade_kafka:
    'acknowledged by every in-sync replica of the Kafka topic (acks=all) before the answer',
};

/** `stockade_requests_total{route="reserve|ws_reserve",outcome=…}` summed by outcome. */
export function purchaseOutcomes(metrics: string): Record<string, number> {
  const out: Record<string, number> = {};
  const line =
    /^stockade_requests_total\{route="(?:reserve|ws_reserve)",outcome="([a-z_]+)"\} (\d+)/gm;
  for (let m = line.exec(metrics); m !== null; m = line.exec(metrics))
    out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
  return out;
}

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url} answered ${r.status}: ${await r.text()}`);
  return (await r.json()) as T;
}

const BASELINE_SCRIPTS: Partial<Record<SystemName, string>> = {
  bare_uws_ceiling: './baselines/bare-uws.js',
  redis_lua: './baselines/redis-lua.js',
  mysql_conditional_update: './baselines/mysql-update.js',
};

/** Starts the system's process; resolves once it listens, with its base URL. */
async function launch(
  name: SystemName,
  ctx: SystemContext,
): Promise<{ child: ChildProcess; base: string }> {
  const script = BASELINE_SCRIPTS[name];
  if (script) {
    const { child, match } = await startChild(script, ['--port', '0'], /listening (\d+)/);
    return { child, base: `http://127.0.0.1:${match[1]}` };
  }
  const journal = name === 'stockade_file' ? 'file' : 'kafka';
  const args = ['serve', '--port', '0', '--auth', 'none', '--log-level', 'warn'];
  args.push('--journal', journal);
  if (journal === 'file') args.push('--data-dir', join(ctx.dir, `journal-${ctx.n}`));
  else args.push('--kafka-topic', `${ctx.topicPrefix}${ctx.n}`);
  const { child, match } = await startChild(
    '../cli/stockade.js',
    args,
    /serving on (http:\/\/[\d.:]+)/,
  );
  return { child, base: match[1] };
}

export async function startSystem(name: SystemName, ctx: SystemContext): Promise<System> {
  const stockade = name.startsWith('stockade_');
  const { child, base } = await launch(name, ctx);
  const port = Number(new URL(base).port);
  let durability: string;
  try {
    durability =
      DURABILITY[name] ?? (await getJson<{ durability: string }>(`${base}/v1/about`)).durability;
  } catch (err) {
    await stop(child);
    throw err;
  }
  return {
    name,
    port,
    base,
    sells: name !== 'bare_uws_ceiling',
    stockade,
    durability,
    async define(sku, sale) {
      const body = stockade
        ? sale
        : { stock: sale.stock, perUserLimit: sale.perUserLimit ?? 1_000_000_000 };
      const r = await send(`${base}/v1/skus/${sku}`, 'PUT', body);
      if (r.status !== 201 && r.status !== 200)
        throw new Error(`${name}: PUT ${sku} answered ${r.status} ${JSON.stringify(r.json)}`);
    },
    async counts(sku) {
      const s = await getJson<Partial<SkuCounts> & { initialStock?: number; restocked?: number }>(
        `${base}/v1/skus/${sku}`,
      );
      return {
        stock: s.stock ?? (s.initialStock ?? 0) + (s.restocked ?? 0),
        available: s.available ?? 0,
        sold: s.sold ?? 0,
        reserved: s.reserved ?? 0,
      };
    },
    async outcomes() {
      if (name === 'bare_uws_ceiling') return {};
      if (!stockade)
        return (await getJson<{ reserve: Record<string, number> }>(`${base}/v1/outcomes`)).reserve;
      return purchaseOutcomes(await (await fetch(`${base}/metrics`)).text());
    },
    async stop() {
      const code = await stop(child);
      if (code !== 0)
        process.stderr.write(`${name} exited with ${code} (expected 0 after SIGTERM)\n`);
    },
  };
}

/** Runs `work(i)` for i in [0, count), `lanes` at a time. */
export async function inLanes(
  count: number,
  lanes: number,
  work: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

/** Defines `count` SKUs named `${prefix}${n}`, 32 at a time. */
export function defineMany(
  system: System,
  prefix: string,
  count: number,
  sale: Sale,
): Promise<void> {
  return inLanes(count, 32, (i) => system.define(`${prefix}${i}`, sale));
}
