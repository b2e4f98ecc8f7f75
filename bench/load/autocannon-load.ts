/**
 * Closed-loop load through autocannon's programmatic API: `connections` keep-alive connections,
 * each sending its next request when the last is answered, for a duration or a number of
 * requests. The requests come from a `LoadSpec` (bench/load/requests.ts) written as a CommonJS
 * `setupRequest` module, which is what autocannon's worker threads need (they `require` a file);
 * the same module serves one thread.
 *
 * With one thread (the default) every answer is seen here, with its time and latency, so a
 * scenario can split its figures at a moment (the flash sale's sell-out). With `workers` > 1
 * autocannon aggregates in its own threads and only the totals come back, latencies in whole
 * milliseconds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { percentile, round } from '../report.js';
import { setupRequestModule } from './requests.js';
import type { LoadSpec } from './requests.js';

export interface ClosedLoopOptions {
  port: number;
  connections: number;
  /** Seconds to run; or `amount`: stop after that many requests. */
  durationS?: number;
  amount?: number;
  spec: LoadSpec;
  workers?: number;
  /** Every answer (one thread only): its status, latency and when it came (performance.now()). */
  onAnswer?: (status: number, latencyMs: number, at: number) => void;
  /** Once a second (one thread only): answers in the last second. */
  onTick?: (answersInSecond: number) => void;
  /** Seconds without an answer before a request counts as timed out (default 10). */
  timeoutS?: number;
}

export interface ClosedLoopResult {
  tool: 'autocannon';
  requests: number;
  ok: number;
  non_2xx: number;
  ok_per_s: number;
  answers_per_s: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  errors: number;
  timeouts: number;
  duration_s: number;
  statuses: Record<string, number>;
}

const dir = mkdtempSync(join(tmpdir(), 'stockade-bench-requests-'));
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));

/** The spec's setupRequest module on disk (one file per distinct spec). */
function moduleFor(spec: LoadSpec): string {
  const source = setupRequestModule(spec);
  const path = join(dir, `${createHash('sha1').update(source).digest('hex').slice(0, 12)}.cjs`);
  writeFileSync(path, source);
  return path;
}

type SetupModule = { default: (req: autocannon.Request) => autocannon.Request };

export async function closedLoop(o: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const workers = o.workers ?? 1;
  const setupRequest = moduleFor(o.spec);
  const started = performance.now();
  const instance = autocannon({
    url: `http://127.0.0.1:${o.port}`,
    connections: o.connections,
    ...(o.amount !== undefined ? { amount: o.amount } : { duration: o.durationS ?? 10 }),
    timeout: o.timeoutS ?? 10,
    ...(workers > 1
      ? { workers, requests: [{ setupRequest }] }
      : // One thread: the module is loaded here and handed over as a function.
        { requests: [{ setupRequest: ((await import(setupRequest)) as SetupModule).default }] }),
  }) as unknown as autocannon.Instance;
  // One thread: every answer's latency is kept here at full precision (autocannon's own
  // histogram keeps whole milliseconds, which reads 0 ms for most answers of a fast server).
  const latencies: number[] = [];
  if (workers <= 1) {
    const onAnswer = o.onAnswer;
    instance.on('response', (_client: unknown, status: number, _b: number, latencyMs: number) => {
      latencies.push(latencyMs);
      onAnswer?.(status, latencyMs, performance.now());
    });
    if (o.onTick) {
      const onTick = o.onTick;
      // The typings declare the tick listener without its argument: { counter, bytes }.
      (instance as NodeJS.EventEmitter).on('tick', (t: { counter: number }) => onTick(t.counter));
    }
  }
  const r = await (instance as unknown as Promise<autocannon.Result>);
  const durationS = (performance.now() - started) / 1000;
  const ok = r['2xx'];
  const answered = r['1xx'] + r['2xx'] + r['3xx'] + r['4xx'] + r['5xx'];
  const statuses: Record<string, number> = {};
  for (const [code, v] of Object.entries(r.statusCodeStats ?? {}))
    statuses[code] = (v as { count: number }).count;
  return {
    tool: 'autocannon',
    requests: r.requests.total,
    ok,
    non_2xx: r.non2xx,
    ok_per_s: Math.round(ok / r.duration),
    answers_per_s: Math.round(answered / r.duration),
    latency_ms:
      workers <= 1
        ? {
            p50: round(percentile(latencies, 50)),
            p90: round(percentile(latencies, 90)),
            p99: round(percentile(latencies, 99)),
            max: round(percentile(latencies, 100)),
          }
        : { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
    errors: r.errors,
    timeouts: r.timeouts,
    duration_s: Math.round(durationS * 100) / 100,
    statuses,
  };
}
