/**
 * The open-loop (fixed arrival rate) generator of `npm run bench -- rate`: requests are due on a
 * fixed schedule whatever the server does, and latency is measured from each request's
 * intended send time (bench/load/open-loop-worker.ts), so queueing delay is never hidden.
 *
 * Why not autocannon's `overallRate`: autocannon (8.0) gives each connection a per-second
 * quota and sends it as fast as it can at the start of each second, then waits for the next —
 * a burst every second, not a rate — and its coordinated-omission correction uses
 * `Math.ceil(1 / rate)` as the expected interval, i.e. 1 ms for any rate of 1/s or more
 * (the rate is per second, the latencies in ms). The closed-loop scenarios use autocannon.
 */
import { spawnWorker } from '../../actors/spawn-worker.js';
import { percentile, round } from '../report.js';
import type { LoadSpec } from './requests.js';
import type { OpenLoopJob, OpenLoopThreadResult } from './open-loop-worker.js';

export interface OpenLoopOptions {
  port: number;
  rate: number;
  durationMs: number;
  /**
   * Keep-alive connections in all (default 100). More is not better here: each socket costs the
   * generator (and the machine) per request, and a request that finds every connection busy
   * waits in the backlog with its clock already running, so a slow server is still measured.
   */
  connections?: number;
  /** Generator threads (default 1: on a small machine the second one competes with the server). */
  threads?: number;
  drainMs?: number;
  spec: LoadSpec;
}

export interface OpenLoopResult {
  rate: number;
  /** Answers per second over the step (2xx or not). */
  achieved_per_s: number;
  ok_per_s: number;
  /** Answers 2xx: purchases made, when the stream is of purchases. */
  ok: number;
  latency_ms: { p50: number; p90: number; p99: number; p999: number; max: number };
  /**
   * How late requests left the generator after their intended time (p50, p99): part of the
   * latency above. Against the no-op server it is the generator's (and the machine's) own
   * limit; where it grows with a system, that system's slowness kept connections busy.
   */
  send_late_ms: { p50: number; p99: number };
  due: number;
  answered: number;
  /** Due requests that found a full backlog, and requests still unanswered at the end. */
  dropped: number;
  timed_out: number;
  non_2xx: number;
  socket_errors: number;
  connections: number;
  threads: number;
}

export async function openLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const threads = o.threads ?? 1;
  const connections = o.connections ?? 100;
  const jobs: OpenLoopJob[] = Array.from({ length: threads }, (_, t) => ({
    port: o.port,
    rate: o.rate / threads,
    offset: t / threads,
    durationMs: o.durationMs,
    connections: Math.max(1, Math.ceil(connections / threads)),
    drainMs: o.drainMs ?? 2000,
    spec: o.spec,
    tag: `o${t}${Math.random().toString(36).slice(2, 7)}`,
  }));
  const workers = jobs.map((job) =>
    spawnWorker(import.meta.url, './open-loop-worker.js', { workerData: job }),
  );
  const results = await Promise.all(
    workers.map(
      (w) =>
        new Promise<OpenLoopThreadResult>((resolve, reject) => {
          w.once('message', (r: OpenLoopThreadResult) => resolve(r));
          w.once('error', reject);
          w.once('exit', (code) => reject(new Error(`open-loop worker exited ${code}`)));
        }),
    ),
  ).catch(async (err: unknown) => {
    await Promise.all(workers.map((w) => w.terminate()));
    throw err;
  });
  return mergeOpenLoop(o.rate, connections, threads, results);
}

/** One step's figures from its threads' results. */
export function mergeOpenLoop(
  rate: number,
  connections: number,
  threads: number,
  rs: readonly OpenLoopThreadResult[],
): OpenLoopResult {
  const all = concat(rs.map((r) => r.latencies));
  const late = concat(rs.map((r) => r.lateness));
  const statuses: Record<number, number> = {};
  for (const r of rs)
    for (const [s, n] of Object.entries(r.statuses))
      statuses[Number(s)] = (statuses[Number(s)] ?? 0) + n;
  const ok = Object.entries(statuses)
    .filter(([s]) => Number(s) >= 200 && Number(s) < 300)
    .reduce((a, [, n]) => a + n, 0);
  const elapsedS = Math.max(...rs.map((r) => r.elapsedMs)) / 1000;
  const pct = (p: number) => round(percentile(all, p));
  const answered = all.length;
  return {
    rate,
    achieved_per_s: Math.round(answered / elapsedS),
    ok_per_s: Math.round(ok / elapsedS),
    ok,
    latency_ms: {
      p50: pct(50),
      p90: pct(90),
      p99: pct(99),
      p999: pct(99.9),
      max: round(all.reduce((a, b) => Math.max(a, b), 0)),
    },
    send_late_ms: { p50: round(percentile(late, 50)), p99: round(percentile(late, 99)) },
    due: rs.reduce((a, r) => a + r.due, 0),
    answered,
    dropped: rs.reduce((a, r) => a + r.dropped, 0),
    timed_out: rs.reduce((a, r) => a + r.timedOut, 0),
    non_2xx: answered - ok,
    socket_errors: rs.reduce((a, r) => a + r.socketErrors, 0),
    connections,
    threads,
  };
}

function concat(parts: readonly Float64Array[]): Float64Array {
  const all = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/**
 * Whether a step held its rate: every due request answered (none dropped or timed out), no
 * socket error, and p99 from the intended send time within `p99BoundMs`.
 */
export function held(r: OpenLoopResult, p99BoundMs: number): boolean {
  return (
    r.dropped === 0 &&
    r.timed_out === 0 &&
    r.socket_errors === 0 &&
    r.answered >= r.due &&
    r.latency_ms.p99 <= p99BoundMs
  );
}
