/**
 * The reliability battery's scenarios. Each drives real `stockade serve` processes over HTTP,
 * records a History (history.ts) and ends with its checker; each returns a report row with the
 * figures (docs/reliability.md is made of them by `npm run chaos`). `npm test` runs them small
 * (chaos.test.ts); `npm run chaos` runs them long (run.ts).
 *
 *   killNine    kill -9 of `stockade serve` (file journal, fsync) at random moments mid-sale,
 *               every purchase sent 1–5 times at once (a duplicate storm, across the crashes
 *               too), some keys reused with another body; restart-to-ready timed.
 *   fullDisk    the file journal on a small filesystem that fills up mid-sale: buyers get the
 *               retriable journal_unavailable, nothing half-written is replayed, and purchases
 *               resume once room is made, without a restart.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEngine, loadConfig } from '../../engine/index.js';
import { prng } from '../simulation/simulation.js';
import { startCli } from '../persistence/cli-process.js';
import type { CliProcess } from '../persistence/cli-process.js';
import { tempDir } from '../engine/helpers.js';
import { services } from '../persistence/service-helpers.js';
import type { ServiceName } from '../persistence/service-helpers.js';
import { History, check, fileJournalEvents, outcomeOf } from './history.js';
import type { Outcome, SkuState, Verdict } from './history.js';
import type { SkuEvent } from '../../actors/index.js';

export interface Report extends Verdict {
  scenario: string;
  seed: number;
  attempts: number;
  ok: number;
  refused: number;
  unknown: number;
  /** Unknown answers later settled by a retry with the same key. */
  resolvedByRetry: number;
  refusals: Record<string, number>;
  extra: Record<string, unknown>;
}

/** One `stockade serve` on a data directory, restartable. */
export class Server {
  proc: CliProcess | null = null;
  port = 0;
  readonly readyMs: number[] = [];

  constructor(
    /** Where the journal is: `--data-dir DIR`, or `--journal kafka ...`. */
    private readonly journal: string[],
    private readonly env: Record<string, string> = {},
    private readonly shards = 2,
  ) {}

  async start(): Promise<void> {
    const started = Date.now();
    const proc = startCli(
      [
        'serve',
        ...this.journal,
        '--port',
        '0',
        '--auth',
        'none',
        '--rate-limit',
        '0',
        '--shards',
        String(this.shards),
      ],
      { STOCKADE_LOG_LEVEL: 'warn', ...this.env },
    );
    this.proc = proc;
    const port = Number((await proc.waitFor(/serving on http:\/\/[\d.]+:(\d+)/, 60_000))[1]);
    for (;;) {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
      if (r?.status === 200) break;
      await sleep(10);
    }
    this.port = port;
    this.readyMs.push(Date.now() - started);
  }

  kill9(): Promise<unknown> {
    const proc = this.proc!;
    proc.child.kill('SIGKILL');
    this.port = 0;
    return proc.exit;
  }

  async stop(): Promise<number | null> {
    const proc = this.proc;
    if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return null;
    proc.child.kill('SIGTERM');
    return (await proc.exit).code;
  }

  /** Teardown: whatever still runs is killed. */
  async end(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGKILL');
      await proc.exit;
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function http(
  port: number,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number | null; json: Record<string, unknown> | null; failure?: string }> {
  if (port === 0) return { status: null, json: null, failure: 'down' };
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    let json: Record<string, unknown> | null = null;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = null;
    }
    return { status: r.status, json };
  } catch (e) {
    return { status: null, json: null, failure: (e as Error).name };
  }
}

function codeOf(json: Record<string, unknown> | null): string {
  const e = json?.error as { code?: unknown } | undefined;
  return typeof e?.code === 'string' ? e.code : 'no_code';
}

/** A purchase through `port`, recorded. */
export async function buy(
  h: History,
  port: number,
  p: { key: string; sku: string; userId: string; qty: number },
  conflicting = false,
): Promise<'ok' | 'refused' | 'unknown'> {
  const r = await http(port, 'POST', `/v1/skus/${p.sku}/reservations`, {
    userId: p.userId,
    qty: p.qty,
    idempotencyKey: p.key,
  });
  const outcome = outcomeOf(r.status);
  const detail = outcome === 'ok' ? String(r.json?.reservationId) : (r.failure ?? codeOf(r.json));
  const op = { ...p, outcome, detail, at: Date.now() };
  if (conflicting) h.conflicting.push(op);
  else h.add(op);
  return outcome;
}

/** Retries every key that got only unknown answers until each has a definite one. */
export async function settleUnknowns(
  h: History,
  server: Server,
  deadlineMs: number,
): Promise<number> {
  const keys = h.unresolved();
  const deadline = Date.now() + deadlineMs;
  for (const key of keys) {
    const body = h.bodies.get(key)!;
    while ((await buy(h, server.port, { key, ...body })) === 'unknown') {
      if (Date.now() > deadline) throw new Error(`key ${key} still unknown after retries`);
      await sleep(50);
    }
  }
  // A reused key whose send found no server (a kill in between) is sent again: only a definite
  // answer says whether the conflict was refused.
  const conflicts = h.conflicting.splice(0);
  for (const op of conflicts) {
    if (op.outcome !== 'unknown') {
      h.conflicting.push(op);
      continue;
    }
    const again = { key: op.key, sku: op.sku, userId: op.userId, qty: op.qty };
    while ((await buy(h, server.port, again, true)) === 'unknown') {
      h.conflicting.pop();
      if (Date.now() > deadline) throw new Error(`reused key ${op.key} still unknown`);
      await sleep(50);
    }
  }
  return keys.length;
}

/** A fresh engine's replay of the directory: each SKU's state. */
async function replay(dir: string, skus: string[]): Promise<Map<string, SkuState | null>> {
  const engine = await createEngine({
    config: loadConfig({
      env: {},
      overrides: { engine: { shards: 2 }, journal: { kind: 'file', dir } },
    }),
  });
  try {
    const snaps = await engine.getSkus(skus);
    return new Map(skus.map((sku, i) => [sku, snaps[i]]));
  } finally {
    await engine.close();
  }
}

export function tally(
  h: History,
): Pick<Report, 'attempts' | 'ok' | 'refused' | 'unknown' | 'refusals'> {
  const refusals: Record<string, number> = {};
  for (const o of h.ops) {
    if (o.outcome === 'refused') refusals[o.detail] = (refusals[o.detail] ?? 0) + 1;
  }
  return {
    attempts: h.ops.length,
    ok: h.count('ok'),
    refused: h.count('refused'),
    unknown: h.count('unknown'),
    refusals,
  };
}

export interface Purchase {
  key: string;
  sku: string;
  userId: string;
  qty: number;
}

/**
 * Buyers on `lanes` lanes, each one purchase at a time with a fresh key (`prefix`, lane, count),
 * a random SKU of `skus` and qty 1, until `stop()`. `seen` hears every answer with the times it
 * was sent and answered; a lane waits `backoffMs` after an answer that was not a 201.
 */
export function startBuyers(o: {
  h: History;
  server: Server;
  rand: () => number;
  skus: string[];
  lanes: number;
  prefix: string;
  backoffMs?: number;
  seen?: (p: Purchase, outcome: Outcome, sent: number, answered: number) => void;
}): { stop(): Promise<void> } {
  let running = true;
  let n = 0;
  const lane = async (id: number) => {
    while (running) {
      const p = {
        key: `${o.prefix}${id}-${n++}`,
        sku: o.skus[Math.floor(o.rand() * o.skus.length)],
        userId: `u${id}-${n}`,
        qty: 1,
      };
      const sent = Date.now();
      const outcome = await buy(o.h, o.server.port, p);
      o.seen?.(p, outcome, sent, Date.now());
      if (outcome !== 'ok') await sleep(o.backoffMs ?? 20);
    }
  };
  const lanes = Array.from({ length: o.lanes }, (_, i) => lane(i));
  return {
    stop: async () => {
      running = false;
      await Promise.all(lanes);
    },
  };
}

/**
 * The PID of a service `scripts/services.sh` started (only those may be paused), in the
 * checkout's .services/ or in the SERVICES_DIR of a private set (`dir`).
 */
export function servicePid(name: string, dir?: string): number {
  const at = dir ?? process.env.SERVICES_DIR;
  const file = at
    ? join(at, `${name}.pid`)
    : fileURLToPath(new URL(`../../.services/${name}.pid`, import.meta.url));
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error(`no PID in ${file}`);
  return pid;
}

/**
 * A fault on a service scripts/services.sh started (the checkout's, or a private set's `at`):
 * `pause` is SIGSTOP, cured by SIGCONT; `kill` is kill -9, cured by the script's restart, as an
 * operator would. `cure` is a no-op unless the fault is on, so a `finally` may always call it;
 * a pause is lifted synchronously, before its first await.
 */
export function serviceFault(
  name: ServiceName,
  kind: 'pause' | 'kill',
  at?: { dir: string; env: Record<string, string> },
): { inject(): void; cure(): Promise<void> } {
  const pid = servicePid(name, at?.dir);
  let on = false;
  return {
    inject() {
      process.kill(pid, kind === 'pause' ? 'SIGSTOP' : 'SIGKILL');
      on = true;
    },
    async cure() {
      if (!on) return;
      on = false;
      if (kind === 'pause') process.kill(pid, 'SIGCONT');
      else await services('up', name, at?.env);
    },
  };
}

export async function defineSkus(
  server: Server,
  skus: string[],
  stock: number,
  holdTtlMs = 3_600_000,
): Promise<void> {
  for (const sku of skus) {
    const r = await http(server.port, 'PUT', `/v1/skus/${sku}`, { stock, holdTtlMs });
    if (r.status !== 201) throw new Error(`PUT ${sku}: ${r.status} ${JSON.stringify(r.json)}`);
  }
}

/** Where a scenario's server journals, and how the checker reads it back afterwards. */
export interface JournalUnderTest {
  name: string;
  args: string[];
  env?: Record<string, string>;
  events(): Promise<SkuEvent[]>;
  replay(skus: string[]): Promise<Map<string, SkuState | null>>;
}

/** The fsync'd file journal in a fresh directory. */
export function fileJournal(): JournalUnderTest {
  const dir = tempDir('stockade-chaos-');
  return {
    name: 'file journal, fsync',
    args: ['--data-dir', dir],
    events: () => fileJournalEvents(dir),
    replay: (skus) => replay(dir, skus),
  };
}

export interface KillNineOptions {
  seed: number;
  /** Default: the file journal. */
  journal?: JournalUnderTest;
  kills: number;
  lanes: number;
  skus: number;
  stock: number;
  /** Each process lives a random time in [minLifeMs, maxLifeMs) before its kill -9. */
  minLifeMs: number;
  maxLifeMs: number;
  /**
   * Each hold's time (default an hour: none expires). Short, the holds expire across the kills
   * (nobody confirms): each must give its units back exactly once, and all must have expired
   * once the run waits this long after the last purchase.
   */
  holdTtlMs?: number;
  progress?: (line: string) => void;
}

export async function killNine(o: KillNineOptions): Promise<Report> {
  const rand = prng(o.seed);
  const journal = o.journal ?? fileJournal();
  const server = new Server(journal.args, journal.env);
  const h = new History();
  const skus = Array.from({ length: o.skus }, (_, i) => `chaos-${i}`);
  try {
    await server.start();
    await defineSkus(server, skus, o.stock, o.holdTtlMs);
    let running = true;
    let n = 0;
    let killedAt = 0;
    const recoveries: number[] = [];
    const lane = async (id: number) => {
      while (running) {
        const p = {
          key: `k${id}-${n++}`,
          sku: skus[Math.floor(rand() * skus.length)],
          userId: `u${id}-${n % 997}`,
          qty: 1 + Math.floor(rand() * 2),
        };
        // The same purchase 1–5 times at once: every copy must get the same answer.
        const copies = 1 + Math.floor(rand() * 5);
        const port = server.port;
        const sent = Date.now();
        const outcomes = await Promise.all(Array.from({ length: copies }, () => buy(h, port, p)));
        if (killedAt > 0 && sent > killedAt && outcomes.includes('ok')) {
          recoveries.push(Date.now() - killedAt); // the first 201 sent after the last kill
          killedAt = 0;
        }
        if (outcomes.includes('ok') && rand() < 0.05) {
          await buy(h, server.port, { ...p, qty: p.qty + 1 }, true); // same key, other body
        }
        if (outcomes.every((x) => x === 'unknown')) await sleep(20);
      }
    };
    const lanes = Array.from({ length: o.lanes }, (_, i) => lane(i));
    for (let k = 0; k < o.kills; k++) {
      await sleep(o.minLifeMs + rand() * (o.maxLifeMs - o.minLifeMs));
      await server.kill9();
      killedAt = Date.now();
      await server.start();
      if ((k + 1) % 10 === 0 || k + 1 === o.kills) {
        o.progress?.(`kill9: ${k + 1}/${o.kills} kills, ${h.count('ok')} acknowledged`);
      }
    }
    await sleep(200);
    running = false;
    await Promise.all(lanes);
    const resolved = await settleUnknowns(h, server, 60_000);
    const expiring = o.holdTtlMs !== undefined;
    // Past every hold's time (and a sweep's): the running server expires what is left.
    if (expiring) await sleep(o.holdTtlMs! + 2_000);
    const code = await server.stop();
    if (code !== 0) throw new Error(`the last serve exited ${code}`);
    const events = await journal.events();
    const verdict = check(
      h,
      events,
      await journal.replay(skus),
      new Map(skus.map((s) => [s, o.stock])),
      expiring,
    );
    const ready = [...server.readyMs].sort((a, b) => a - b);
    recoveries.sort((a, b) => a - b);
    return {
      scenario:
        `kill -9 of stockade serve (${journal.name}), duplicate storms` +
        (o.holdTtlMs !== undefined
          ? `, holds of ${o.holdTtlMs / 1000} s expiring across the kills`
          : ''),
      seed: o.seed,
      ...tally(h),
      resolvedByRetry: resolved,
      ...verdict,
      extra: {
        kills: o.kills,
        restartToReadyMs: {
          p50: ready[Math.floor(ready.length / 2)],
          max: ready[ready.length - 1],
        },
        // From the kill to the first 201 of a purchase sent after it (a restart's replay, and on
        // Kafka the session timeout that frees the dead member's partitions).
        killToFirstConfirmationMs: {
          p50: recoveries[Math.floor(recoveries.length / 2)] ?? null,
          max: recoveries[recoveries.length - 1] ?? null,
        },
        conflictingBodies: h.conflicting.length,
        holdsExpired: events.filter((e) => e.type === 'expired').length,
      },
    };
  } finally {
    await server.end();
  }
}

export interface FullDiskOptions {
  seed: number;
  lanes: number;
  progress?: (line: string) => void;
}

/**
 * A 16 MiB tmpfs holds the journal; a filler file takes all but 384 KiB of it, so the journal
 * runs out of room mid-sale. While it is full, buyers must get journal_unavailable (retriable,
 * nothing confirmed); then the filler is removed and purchases must resume, same process.
 */
export async function fullDisk(o: FullDiskOptions): Promise<Report> {
  const rand = prng(o.seed);
  const mount = tempDir('stockade-chaos-fs-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mount]);
  const dir = join(mount, 'journal');
  // Small preallocation, so that the room left is what the frames fill, not zeros laid ahead.
  const server = new Server(['--data-dir', dir], {
    STOCKADE_JOURNAL_PREALLOC_BYTES: String(64 << 10),
  });
  const h = new History();
  const skus = ['disk-0', 'disk-1'];
  const stock = 1_000_000;
  try {
    await server.start();
    await defineSkus(server, skus, stock);
    const free = () => {
      const s = statfsSync(mount);
      return s.bavail * s.bsize;
    };
    writeFileSync(join(mount, 'filler'), Buffer.alloc(Math.max(0, free() - (384 << 10)), 1));
    let fullAt = 0;
    const buyers = startBuyers({
      ...{ h, server, rand, skus, lanes: o.lanes, prefix: 'd', backoffMs: 10 },
      seen: (_p, outcome) => {
        if (outcome === 'unknown' && fullAt === 0) fullAt = Date.now();
      },
    });
    const deadline = Date.now() + 60_000;
    while (fullAt === 0) {
      if (Date.now() > deadline) throw new Error('the filesystem never filled up');
      await sleep(20);
    }
    o.progress?.(`fullDisk: full after ${h.count('ok')} purchases`);
    await sleep(1_000); // a second of a full disk under load
    const okWhileFull = h.count('ok');
    const codesWhileFull = new Set(
      h.ops.filter((x) => x.outcome === 'unknown' && x.at > fullAt).map((x) => x.detail),
    );
    rmSync(join(mount, 'filler'));
    const freedAt = Date.now();
    const resumeDeadline = Date.now() + 30_000;
    while (h.count('ok') < okWhileFull + 100) {
      if (Date.now() > resumeDeadline) throw new Error('purchases did not resume');
      await sleep(10);
    }
    const resumedMs = Date.now() - freedAt;
    await buyers.stop();
    const resolved = await settleUnknowns(h, server, 60_000);
    const code = await server.stop();
    if (code !== 0) throw new Error(`serve exited ${code}`);
    const verdict = check(
      h,
      await fileJournalEvents(dir),
      await replay(dir, skus),
      new Map(skus.map((s) => [s, stock])),
    );
    return {
      scenario: 'disk full mid-sale (file journal on a 16 MiB tmpfs), then room made',
      seed: o.seed,
      ...tally(h),
      resolvedByRetry: resolved,
      ...verdict,
      extra: { codesWhileFull: [...codesWhileFull], resumedAfterRoomMs: resumedMs },
    };
  } finally {
    await server.end();
    execFileSync('umount', ['-l', mount]);
  }
}

export interface HostileOptions {
  seed: number;
  cases: number;
  progress?: (line: string) => void;
}

const ROUTES = [
  ['POST', '/v1/skus/{s}/reservations'],
  ['POST', '/v1/reservations/{s}/confirm'],
  ['POST', '/v1/reservations/{s}/cancel'],
  ['POST', '/v1/orders/{s}/return'],
  ['GET', '/v1/skus/{s}'],
  ['PUT', '/v1/skus/{s}'],
  ['POST', '/v1/skus/{s}/restock'],
  ['PUT', '/v1/products/{s}'],
  ['GET', '/v1/products/{s}'],
  ['GET', '/v1/cluster'],
  ['GET', '/readyz'],
] as const;

/**
 * Generated requests (fast-check) against every route: odd methods, path segments and query
 * strings, content types, and bodies from valid-looking to hostile (deep nesting, `__proto__`
 * and `constructor` keys, wrong types, huge and non-finite numbers, negative and fractional
 * quantities, odd Unicode, oversized). Every answer must be a 2xx or a 4xx with an error code,
 * never a 5xx; the server must live through all of it with its memory bounded. Plus raw
 * requests fetch cannot send: conflicting Content-Length / Transfer-Encoding, a malformed
 * Content-Length, headers past uWS's buffer.
 */
export async function hostile(o: HostileOptions): Promise<Report & { fiveXx: string[] }> {
  const fc = (await import('fast-check')).default;
  const dir = tempDir('stockade-chaos-hostile-');
  const server = new Server(['--data-dir', dir]);
  const fiveXx: string[] = [];
  const statuses: Record<string, number> = {};
  /** Requests whose connection was closed without an answer: a sample, to say why. */
  const closed: string[] = [];
  try {
    await server.start();
    await defineSkus(server, ['h-0'], 1_000_000);
    const rssBefore = await rssOf(server.proc!.pid);
    const number = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.constantFrom(1, 0, -1, 0.5, 1e308, -1e308, 2 ** 53, Number.MAX_SAFE_INTEGER + 2),
    );
    const leaf = fc.oneof(
      number,
      fc.string(),
      fc.string({ unit: 'grapheme' }),
      fc.boolean(),
      fc.constant(null),
      fc.constantFrom('\ud800', 'a\u0000b', '\uffff', 'x'.repeat(300)),
    );
    const body = fc.oneof(
      fc
        .record(
          {
            qty: fc.oneof(number, leaf),
            idempotencyKey: leaf,
            userId: leaf,
            stock: fc.oneof(number, leaf),
            perUserLimit: fc.oneof(number, leaf),
            name: leaf,
            __proto__: fc.dictionary(fc.string(), leaf),
            constructor: leaf,
          },
          { requiredKeys: [] },
        )
        .map((r) => JSON.stringify(r)),
      fc.json({ depthSize: 'large' }),
      fc.string(),
      fc.constantFrom(
        '',
        '{',
        '{"qty":1,',
        '[]',
        'null',
        '"str"',
        '{"__proto__":{"admin":true},"qty":1,"idempotencyKey":"k"}',
        '{"constructor":{"prototype":{"x":1}}}',
        '['.repeat(5000) + ']'.repeat(5000),
        '{"a":'.repeat(3000) + '1' + '}'.repeat(3000),
        JSON.stringify({ qty: 1, idempotencyKey: 'k'.repeat(70_000) }),
      ),
    );
    const request = fc.record({
      route: fc.constantFrom(...ROUTES),
      method: fc.oneof(
        fc.constant(null),
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'BREW'),
      ),
      segment: fc.oneof(
        fc.constantFrom('h-0', 'h-0:1', 'nope', '%ZZ', '..', '%00', 'a%2Fb', '%F0%9F%98%80'),
        fc.webSegment(),
        fc.string({ maxLength: 300 }).map(encodeURIComponent),
      ),
      query: fc.oneof(
        fc.constant(''),
        fc.webQueryParameters().map((q) => `?${q}`),
      ),
      type: fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'text/plain',
        'application/x-www-form-urlencoded',
        '',
      ),
      body,
      auth: fc.constantFrom(null, 'Bearer x', 'Bearer a.b.c', 'Basic Zm9vOmJhcg=='),
    });
    let done = 0;
    await fc
      .assert(
        fc.asyncProperty(request, async (r) => {
          const method = r.method ?? r.route[0];
          const path = r.route[1].replace('{s}', r.segment) + r.query;
          const headers: Record<string, string> = {};
          if (r.type) headers['content-type'] = r.type;
          if (r.auth) headers.authorization = r.auth;
          let status = 0;
          try {
            const res = await fetch(`http://127.0.0.1:${server.port}${path}`, {
              method,
              headers,
              body: method === 'GET' ? undefined : r.body,
              signal: AbortSignal.timeout(10_000),
            });
            status = res.status;
            await res.arrayBuffer();
          } catch (e) {
            // A connection uWS closes on purpose (an oversized body) is not a failure; a server
            // that is gone is, and shows below.
            status = -1;
            if (closed.length < 5) {
              const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
              closed.push(`${method} ${path.slice(0, 60)} ${r.body.length} bytes: ${cause}`);
            }
          }
          statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
          if (status >= 500) fiveXx.push(`${method} ${path} (${r.type}) ${r.body.slice(0, 200)}`);
          if (++done % 10_000 === 0) o.progress?.(`hostile: ${done}/${o.cases}`);
          return status < 500;
        }),
        { seed: o.seed, numRuns: o.cases, endOnFailure: true },
      )
      .catch((e: Error) => fiveXx.push(e.message.split('\n').slice(0, 6).join(' ')));
    const raw = [
      'POST /v1/skus/h-0/reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /v1/skus/h-0/reservations HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n',
      'POST /v1/skus/h-0/reservations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n' +
        'Content-Length: 7\r\n\r\n{}',
      `GET /v1/skus/h-0 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(400_000)}\r\n\r\n`,
      'BREW /v1/skus/h-0 HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v1/skus/h-0 HTTP/1.0\r\n\r\n',
      '\r\n\r\n\r\n',
      'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
    ];
    for (const text of raw) {
      const head = await rawExchange(server.port, text);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      statuses[`raw ${status || 'closed'}`] = (statuses[`raw ${status || 'closed'}`] ?? 0) + 1;
      if (status >= 500) fiveXx.push(`raw: ${text.slice(0, 80)} → ${status}`);
    }
    const snap = await http(server.port, 'GET', '/v1/skus/h-0');
    const faults = [
      ...fiveXx.map((x) => `5xx or failure: ${x}`),
      ...(snap.status === 200 ? [] : ['the SKU could not be read afterwards']),
    ];
    const { rssAfterMb, ...figures } = await hostileEnd(server, rssBefore, faults);
    return {
      ...figures,
      scenario: 'hostile HTTP input (fast-check): every route, raw framing attacks',
      seed: o.seed,
      attempts: done + raw.length,
      refusals: statuses,
      fiveXx,
      extra: { rssMb: { before: rssBefore, after: rssAfterMb }, closedWithoutAnswer: closed },
    };
  } finally {
    await server.end();
  }
}

/**
 * The end of a hostile scenario: the server must still answer, stop cleanly on SIGTERM, and not
 * have grown by 256 MB. Its figures (no purchases to count) and every violation, `faults` first.
 */
async function hostileEnd(
  server: Server,
  rssBefore: number,
  faults: string[],
): Promise<
  Omit<Report, 'scenario' | 'seed' | 'attempts' | 'refusals' | 'extra'> & { rssAfterMb: number }
> {
  const alive = await http(server.port, 'GET', '/healthz');
  const rssAfter = await rssOf(server.proc!.pid);
  const code = await server.stop();
  return {
    ok: 0,
    refused: 0,
    unknown: 0,
    resolvedByRetry: 0,
    violations: [
      ...faults,
      ...(alive.status === 200 ? [] : ['the server did not survive']),
      ...(code === 0 ? [] : [`serve exited ${code} on SIGTERM`]),
      ...(rssAfter - rssBefore < 256 ? [] : [`RSS grew ${rssAfter - rssBefore} MB`]),
    ],
    acknowledged: 0,
    inJournal: 0,
    lost: 0,
    duplicated: 0,
    oversold: 0,
    rssAfterMb: rssAfter,
  };
}

/** A process's resident memory in MB (Linux /proc). */
async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

/** Writes `text` raw and returns what comes back before the server answers or closes. */
async function rawExchange(port: number, text: string): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    let got = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, 3_000);
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes('\r\n\r\n')) done();
    });
    socket.on('close', done);
    socket.on('error', done);
  });
}

/**
 * Generated WebSocket messages (fast-check), one at a time on one socket: valid-looking and
 * hostile purchases, subscribes and unsubscribes, unknown types, wrong types, `__proto__`
 * keys, deep nesting, odd Unicode, non-JSON and oversized text. Every answer must be a normal
 * one or an error whose code is a client's fault (its catalogue status below 500); a socket
 * the server closes (an oversized message) is opened again; the server must live through it.
 */
export async function hostileWs(o: HostileOptions): Promise<Report> {
  const fc = (await import('fast-check')).default;
  const { WsClient } = await import('../gateway/helpers.js');
  const { ERROR_CATALOGUE, isErrorCode } = await import('../../engine/index.js');
  const server = new Server(['--data-dir', tempDir('stockade-chaos-ws-')]);
  const answers: Record<string, number> = {};
  const serverFaults: string[] = [];
  let reopened = 0;
  try {
    await server.start();
    await defineSkus(server, ['w-0'], 1_000_000);
    const rssBefore = await rssOf(server.proc!.pid);
    const leaf = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.string(),
      fc.string({ unit: 'grapheme' }),
      fc.boolean(),
      fc.constant(null),
      fc.constantFrom('w-0', '*', 'nope', '\ud800', 'x'.repeat(300), -1, 0.5, 1e308),
    );
    const message = fc.oneof(
      fc
        .record(
          {
            type: fc.oneof(
              fc.constantFrom('reserve', 'subscribe', 'unsubscribe', 'subscribe_stats', 'nope'),
              leaf,
            ),
            id: fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), leaf),
            sku: leaf,
            qty: leaf,
            idempotencyKey: leaf,
            userId: leaf,
            __proto__: fc.dictionary(fc.string(), leaf),
          },
          { requiredKeys: [] },
        )
        .map((r) => JSON.stringify(r)),
      fc.json({ depthSize: 'large' }),
      fc.string(),
      fc.constantFrom(
        '',
        '{',
        'null',
        '[]',
        '{"type":"reserve"}',
        '['.repeat(5000) + ']'.repeat(5000),
        // Past gateway.bodyBytesMax (the test client frames at most 64 KiB).
        JSON.stringify({ type: 'reserve', sku: 'w-0', qty: 1, idempotencyKey: 'k'.repeat(60_000) }),
      ),
    );
    let ws = await WsClient.open(server.port, '/v1/ws');
    let done = 0;
    await fc
      .assert(
        fc.asyncProperty(message, async (text) => {
          if (ws.isClosed) {
            ws = await WsClient.open(server.port, '/v1/ws');
            reopened++;
          }
          ws.send(text);
          const reply = (await ws.nextWithin(1_000)) as {
            type?: string;
            error?: { code?: string };
          } | null;
          const code = reply?.error?.code;
          const key =
            reply === null ? (ws.isClosed ? 'closed' : 'no answer') : (code ?? reply.type);
          answers[String(key)] = (answers[String(key)] ?? 0) + 1;
          const fault =
            code !== undefined && (!isErrorCode(code) || ERROR_CATALOGUE[code].http >= 500);
          if (fault) serverFaults.push(`${text.slice(0, 120)} → ${code}`);
          if (++done % 1_000 === 0) o.progress?.(`hostileWs: ${done}/${o.cases}`);
          return !fault;
        }),
        { seed: o.seed, numRuns: o.cases, endOnFailure: true },
      )
      .catch((e: Error) => serverFaults.push(e.message.split('\n').slice(0, 6).join(' ')));
    ws.close();
    const faults = serverFaults.map((x) => `server fault: ${x}`);
    const { rssAfterMb, ...figures } = await hostileEnd(server, rssBefore, faults);
    return {
      ...figures,
      scenario: 'hostile WebSocket messages (fast-check)',
      seed: o.seed,
      attempts: done,
      refusals: answers,
      extra: { rssMb: { before: rssBefore, after: rssAfterMb }, socketsReopened: reopened },
    };
  } finally {
    await server.end();
  }
}
