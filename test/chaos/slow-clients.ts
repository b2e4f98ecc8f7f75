/**
 * The battery's slow and hostile clients:
 *
 *   slowClients   honest buyers' latency measured alone, then again while thousands of
 *                 connections attack the gateway's patience (attacker.ts, a process of its own):
 *                 slowloris requests whose headers or body trickle in a byte a second, HTTP
 *                 clients that ask for /metrics and never read the answer, and WebSockets that
 *                 send subscribes and never read theirs. Every attacker the server closes is
 *                 replaced at once, so the attack holds for the whole window. What holds them
 *                 are the gateway's own limits (docs/http-api.md, "Limits"): uWS closes an HTTP
 *                 connection without a complete request for 10 s (a trickle is not a request),
 *                 `gateway.bodyTimeoutMs` ends a body that takes too long, and
 *                 `gateway.wsBackpressureBytesMax` closes a WebSocket that does not read. The
 *                 checks: no honest purchase failed, every kind of attacker was closed by the
 *                 server and none held a connection past its limit, the server's memory and
 *                 open descriptors bounded and back to where they started once the attack
 *                 ends; and, run alone (`latencyBound`), honest buyers' p99 within 2× its
 *                 unloaded value (plus 2 ms, a timer tick on a busy 2-core machine).
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { prng } from '../simulation/simulation.js';
import { History, check } from './history.js';
import { Server, defineSkus, fileJournal, sleep, startBuyers, tally } from './scenarios.js';
import type { Report } from './scenarios.js';
import type { AttackOptions, AttackReport } from './attacker.js';

export interface SlowClientsOptions extends Omit<AttackOptions, 'port' | 'maxMs'> {
  seed: number;
  /** How long each phase (alone, then under attack) measures the honest buyers. */
  phaseMs: number;
  lanes: number;
  /**
   * Whether honest p99 under attack must stay within 2× its unloaded value (+ 2 ms). Only
   * where nothing else runs (`npm run chaos`): in `npm test` other test files share the CPUs,
   * and a timing bound there would measure them (performance targets live in benchmarks).
   */
  latencyBound: boolean;
  progress?: (line: string) => void;
}

/** uWS closes an HTTP connection with no complete request for this long (not configurable). */
const UWS_HTTP_IDLE_MS = 10_000;
const BODY_TIMEOUT_MS = 10_000; // gateway.bodyTimeoutMs's default, which serve runs with here
/** How late the attacker may see a close it could not see at once (its drip is once a second). */
const SEEN_LATE_MS = 5_000;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Starts attacker.ts; resolves once its attackers are connected. */
async function startAttack(o: AttackOptions): Promise<{ stop(): Promise<AttackReport> }> {
  const script = fileURLToPath(new URL('./attacker.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import=tsx', script, JSON.stringify(o)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.startsWith('ready\n')) resolve();
    });
    void exited.then(() => reject(new Error(`the attacker exited before it was ready: ${out}`)));
  });
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      return JSON.parse(out.slice('ready\n'.length)) as AttackReport;
    },
  };
}

export async function slowClients(o: SlowClientsOptions): Promise<Report> {
  const rand = prng(o.seed);
  const journal = fileJournal();
  const server = new Server(journal.args);
  const h = new History();
  const skus = ['s-0', 's-1', 's-2'];
  const stock = 1_000_000;
  let attack: Awaited<ReturnType<typeof startAttack>> | null = null;
  let buyers: { stop(): Promise<void> } | null = null;
  try {
    await server.start();
    await defineSkus(server, skus, stock);
    const pid = server.proc!.pid;
    let phase: 'warm' | 'alone' | 'attacked' = 'warm';
    const latency: Record<'alone' | 'attacked', number[]> = { alone: [], attacked: [] };
    buyers = startBuyers({
      ...{ h, server, rand, skus, lanes: o.lanes, prefix: 'h' },
      seen: (_p, _outcome, sent, answered) => {
        if (phase !== 'warm') latency[phase].push(answered - sent);
      },
    });
    await sleep(1_000);
    phase = 'alone';
    const before = { rssMb: await rssMb(pid), fds: openFds(pid) };
    await sleep(o.phaseMs);
    phase = 'warm';
    const failedBefore = h.count('unknown') + h.count('refused');
    attack = await startAttack({
      port: server.port,
      slowloris: o.slowloris,
      neverReading: o.neverReading,
      wsNeverReading: o.wsNeverReading,
      wsMessagesPerS: o.wsMessagesPerS,
      maxMs: o.phaseMs + 60_000,
    });
    o.progress?.(
      `slowClients: ${o.slowloris} slowloris, ${o.neverReading} HTTP and ` +
        `${o.wsNeverReading} WebSockets never reading`,
    );
    phase = 'attacked';
    const peak = { rssMb: 0, fds: 0 };
    const attackEnds = Date.now() + o.phaseMs;
    while (Date.now() < attackEnds) {
      peak.rssMb = Math.max(peak.rssMb, await rssMb(pid));
      peak.fds = Math.max(peak.fds, openFds(pid));
      await sleep(250);
    }
    phase = 'warm';
    const seen = await attack.stop();
    attack = null;
    await buyers.stop();
    const failedDuring = h.count('unknown') + h.count('refused') - failedBefore;
    // The server lets go of every attacker's descriptor once they are gone.
    const settleBy = Date.now() + 15_000;
    while (openFds(pid) > before.fds + 8 && Date.now() < settleBy) await sleep(100);
    const after = { rssMb: await rssMb(pid), fds: openFds(pid) };
    const code = await server.stop();
    const verdict = check(
      h,
      await journal.events(),
      await journal.replay(skus),
      new Map(skus.map((s) => [s, stock])),
    );
    const alone = latency.alone.sort((a, b) => a - b);
    const attacked = latency.attacked.sort((a, b) => a - b);
    const p99 = { alone: percentile(alone, 0.99), attacked: percentile(attacked, 0.99) };
    const attackers = o.slowloris + o.neverReading + o.wsNeverReading;
    const limits: Record<string, number> = {
      'slowloris headers': UWS_HTTP_IDLE_MS,
      'slowloris body': BODY_TIMEOUT_MS,
    };
    const heldTooLong = Object.entries(limits)
      .filter(([kind, limit]) => (seen.longestMs[kind] ?? 0) > limit + SEEN_LATE_MS)
      .map(([kind, limit]) => `${kind}: held ${seen.longestMs[kind]} ms (limit ${limit} ms)`);
    const closedByServer = (kind: string, wanted: number) =>
      (seen.closedByServer[kind] ?? 0) >= wanted ? [] : [`the server closed no ${kind} client`];
    const violations = [
      ...verdict.violations,
      ...(!o.latencyBound || p99.attacked <= 2 * p99.alone + 2
        ? []
        : [`honest p99 ${p99.attacked} ms under attack, ${p99.alone} ms alone`]),
      ...(failedDuring === 0 ? [] : [`${failedDuring} honest purchases failed under attack`]),
      ...heldTooLong,
      ...closedByServer('slowloris headers', Math.min(1, o.slowloris)),
      ...closedByServer('slowloris body', Math.min(1, o.slowloris)),
      ...closedByServer('ws never reading', Math.min(1, o.wsNeverReading)),
      ...(peak.fds <= before.fds + attackers + 64
        ? []
        : [`${peak.fds} descriptors open for ${attackers} attackers`]),
      ...(after.fds <= before.fds + 8 ? [] : [`${after.fds - before.fds} descriptors left open`]),
      ...(peak.rssMb - before.rssMb < 256 ? [] : [`RSS grew ${peak.rssMb - before.rssMb} MB`]),
      ...(code === 0 ? [] : [`serve exited ${code} on SIGTERM`]),
    ];
    return {
      scenario:
        `slow and never-reading clients (${o.slowloris} slowloris, ${o.neverReading} HTTP and ` +
        `${o.wsNeverReading} WebSockets never reading) beside honest buyers`,
      seed: o.seed,
      ...tally(h),
      resolvedByRetry: 0,
      ...verdict,
      violations,
      extra: {
        honestLatencyMs: {
          alone: { p50: percentile(alone, 0.5), p99: p99.alone, n: alone.length },
          attacked: { p50: percentile(attacked, 0.5), p99: p99.attacked, n: attacked.length },
        },
        attackersClosedByServer: seen.closedByServer,
        longestAttackerConnectionMs: seen.longestMs,
        serverRssMb: { before: before.rssMb, peak: peak.rssMb, after: after.rssMb },
        serverDescriptors: { before: before.fds, peak: peak.fds, after: after.fds },
      },
    };
  } finally {
    await attack?.stop().catch(() => {});
    await buyers?.stop();
    await server.end();
  }
}
