import { performance } from 'node:perf_hooks';
import { messageOf, parseCommand } from './command.js';
import type { CommandOptions } from './command.js';

/**
 * `stockade crowd`: a bounded crowd of buyers at one sale of a running server, to watch a sale
 * sell out (the demo: `npm start`, then `npm run crowd` in another terminal). Each buyer tries
 * `--tries` purchases of one unit in a row, each with a key of its own (a greedy buyer: past the
 * per-user limit it hears limit_exceeded), `--concurrency` requests at a time; a line of
 * progress each second; at the end the figures, and the sale as the server then counts it. It
 * sends at most buyers × tries requests and stops after `--max-seconds` whatever is left, so it
 * can never become an open-ended load. Buyers are named in the body (`userId`): the server must
 * run with `--auth none`, as the demo does.
 */
export const CROWD_USAGE = `usage: stockade crowd [options]
  --url URL            the server (default http://127.0.0.1:8080)
  --sku SKU            the sale (default demo)
  --buyers N           distinct buyers (default 20000; at most 1000000)
  --tries N            purchases each buyer tries, one unit each (default 3; at most 10)
  --concurrency N      requests in flight at once (default 64; at most 1024)
  --max-seconds N      stop after this long, whatever is left (default 120)
`;

interface CrowdArgs {
  url: URL;
  sku: string;
  buyers: number;
  tries: number;
  concurrency: number;
  maxMs: number;
}

function intFlag(raw: string | undefined, name: string, dflt: number, min: number, max: number) {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`--${name} must be an integer from ${min} to ${max}, not '${raw}'`);
  }
  return n;
}

export interface CrowdReport {
  sent: number;
  sold: number;
  refused: Record<string, number>;
  failed: number;
  seconds: number;
  latencyMs: { p50: number; p99: number };
  /** The sale as the server counts it afterwards (null: it could not be read). */
  sale: { stock: number; available: number; reserved: number; sold: number } | null;
}

const fmt = (n: number) => n.toLocaleString('en-US');

/** Runs `stockade crowd argv…`, printing to `out`; resolves to the process exit code. */
export async function crowdCommand(
  argv: string[],
  out: NodeJS.WritableStream,
  options: CommandOptions = {},
): Promise<number> {
  const args = parseCommand(argv, {
    name: 'crowd',
    usage: CROWD_USAGE,
    out,
    err: options.err ?? process.stderr,
    shared: [],
    own: {
      url: { type: 'string' },
      sku: { type: 'string' },
      buyers: { type: 'string' },
      tries: { type: 'string' },
      concurrency: { type: 'string' },
      'max-seconds': { type: 'string' },
    },
    build: ({ values }): CrowdArgs => {
      const url = new URL(values.url ?? 'http://127.0.0.1:8080');
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new Error(`--url must be http(s), not ${url.protocol}`);
      }
      const sku = values.sku ?? 'demo';
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(sku)) throw new Error(`--sku '${sku}' is not a SKU id`);
      return {
        url,
        sku,
        buyers: intFlag(values.buyers, 'buyers', 20_000, 1, 1_000_000),
        tries: intFlag(values.tries, 'tries', 3, 1, 10),
        concurrency: intFlag(values.concurrency, 'concurrency', 64, 1, 1024),
        maxMs: intFlag(values['max-seconds'], 'max-seconds', 120, 1, 3600) * 1000,
      };
    },
  });
  if (typeof args === 'number') return args;
  try {
    const report = await crowd(args, out);
    return report.failed > 0 && report.sold === 0 ? 1 : 0;
  } catch (e) {
    (options.err ?? process.stderr).write(`stockade crowd: ${messageOf(e)}\n`);
    return 1;
  }
}

async function sale(base: URL, sku: string): Promise<CrowdReport['sale']> {
  try {
    const r = await fetch(new URL(`/v1/skus/${sku}`, base), { signal: AbortSignal.timeout(5_000) });
    if (r.status !== 200) return null;
    const s = (await r.json()) as {
      stock: number;
      available: number;
      reserved: number;
      sold: number;
    };
    return { stock: s.stock, available: s.available, reserved: s.reserved, sold: s.sold };
  } catch {
    return null;
  }
}

/** What the crowd heard, as it goes. */
class Tally {
  sent = 0;
  sold = 0;
  failed = 0;
  readonly refused: Record<string, number> = {};
  readonly latencies: number[] = [];
  private lastSent = 0;

  line(seconds: number): string {
    const rate = this.sent - this.lastSent;
    this.lastSent = this.sent;
    const why = Object.entries(this.refused)
      .map(([code, k]) => `${code} ${fmt(k)}`)
      .join(', ');
    return (
      `  ${seconds.toFixed(0).padStart(3)} s  sent ${fmt(this.sent).padStart(9)}  ` +
      `sold ${fmt(this.sold).padStart(7)}  ${fmt(rate)}/s${why ? `  refused: ${why}` : ''}\n`
    );
  }

  percentile(p: number): number {
    const l = this.latencies.sort((x, y) => x - y);
    const v = l.length === 0 ? 0 : l[Math.min(l.length - 1, Math.floor(l.length * p))];
    return Math.round(v * 10) / 10;
  }
}

/** One purchase; returns why the crowd must stop, or null. */
async function buy(target: URL, body: string, t: Tally): Promise<string | null> {
  const t0 = performance.now();
  t.sent++;
  try {
    const r = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    const reply = (await r.json()) as { error?: { code?: string } };
    t.latencies.push(performance.now() - t0);
    if (r.status === 201) {
      t.sold++;
      return null;
    }
    const code = reply.error?.code ?? String(r.status);
    t.refused[code] = (t.refused[code] ?? 0) + 1;
    return code === 'unauthorized' || code === 'forbidden'
      ? `the server wants a token (${code}): run it with --auth none, as npm start does`
      : null;
  } catch {
    t.failed++;
    return t.failed > 100 && t.sold === 0 ? `the server does not answer at ${target.origin}` : null;
  }
}

export async function crowd(a: CrowdArgs, out: NodeJS.WritableStream): Promise<CrowdReport> {
  const before = await sale(a.url, a.sku);
  if (before === null) {
    throw new Error(`no sale '${a.sku}' at ${a.url.origin} (is the server running? npm start)`);
  }
  out.write(
    `crowd: ${fmt(a.buyers)} buyers × ${a.tries} tries at '${a.sku}' on ${a.url.origin} ` +
      `(${fmt(before.available)} of ${fmt(before.stock)} units left), ${a.concurrency} at a time\n`,
  );
  const target = new URL(`/v1/skus/${a.sku}/reservations`, a.url);
  const started = performance.now();
  const deadline = started + a.maxMs;
  const run = Date.now().toString(36);
  const total = a.buyers * a.tries;
  const t = new Tally();
  let next = 0;
  let stop: string | null = null;
  const lane = async () => {
    while (stop === null && next < total && performance.now() < deadline) {
      const n = next++;
      const buyer = Math.floor(n / a.tries); // a buyer's tries come one after the other
      const body = JSON.stringify({
        userId: `crowd-${run}-${buyer}`,
        qty: 1,
        idempotencyKey: `crowd-${run}-${n}`,
      });
      stop ??= await buy(target, body, t);
    }
  };
  const progress = setInterval(
    () => out.write(t.line((performance.now() - started) / 1000)),
    1_000,
  );
  try {
    await Promise.all(Array.from({ length: a.concurrency }, lane));
  } finally {
    clearInterval(progress);
  }
  if (stop !== null) throw new Error(stop);
  const seconds = (performance.now() - started) / 1000;
  const after = await sale(a.url, a.sku);
  const report: CrowdReport = {
    ...{ sent: t.sent, sold: t.sold, refused: t.refused, failed: t.failed, seconds },
    latencyMs: { p50: t.percentile(0.5), p99: t.percentile(0.99) },
    sale: after,
  };
  out.write(summary(report, a.sku));
  if (t.sent < total)
    out.write(`crowd: stopped after --max-seconds with ${fmt(total - t.sent)} left\n`);
  return report;
}

function summary(r: CrowdReport, sku: string): string {
  const lines = [
    `crowd: ${fmt(r.sent)} purchases in ${r.seconds.toFixed(1)} s ` +
      `(${fmt(Math.round(r.sent / r.seconds))}/s), ${fmt(r.sold)} sold, ` +
      `refused ${JSON.stringify(r.refused)}` +
      `${r.failed > 0 ? `, ${fmt(r.failed)} without an answer` : ''}; ` +
      `latency p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms\n`,
  ];
  const s = r.sale;
  if (s) {
    lines.push(
      `sale '${sku}': ${fmt(s.available)} available, ${fmt(s.reserved)} held, ` +
        `${fmt(s.sold)} sold of ${fmt(s.stock)}${s.available === 0 ? ' — sold out' : ''}\n`,
    );
  }
  return lines.join('');
}
