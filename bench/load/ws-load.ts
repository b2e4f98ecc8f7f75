/**
 * Closed-loop purchases over WebSockets (`GET /v1/ws`, docs/http-api.md): `connections` sockets,
 * each sending its next `reserve` message when the last is answered, for `durationS` seconds.
 * The same stream of purchases as the HTTP scenarios (bench/load/requests.ts). autocannon speaks
 * HTTP only; this uses the `ws` client in this thread, so its ceiling is reported beside it.
 */
import WebSocket from 'ws';
import { percentile, round } from '../report.js';
import { reserveBody, skuOf } from './requests.js';
import type { LoadSpec } from './requests.js';

export interface WsLoadResult {
  tool: 'ws';
  requests: number;
  ok: number;
  ok_per_s: number;
  answers_per_s: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  /** Answers by `type` (reserved) or error code. */
  outcomes: Record<string, number>;
  errors: number;
  /** Messages sent and never answered (in flight when the run ended). */
  unanswered: number;
  duration_s: number;
}

/** `reserved`, an error's code, or `unreadable` for a reply that is not JSON. */
function outcomeOf(text: string): string {
  try {
    const m = JSON.parse(text) as { type: string; error?: { code: string } };
    return m.type === 'error' ? (m.error?.code ?? 'error') : m.type;
  } catch {
    return 'unreadable';
  }
}

function open(port: number): Promise<WebSocket> {
  return new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

export async function wsLoad(o: {
  port: number;
  connections: number;
  durationS: number;
  spec: LoadSpec;
}): Promise<WsLoadResult> {
  const opening = Array.from({ length: o.connections }, () => open(o.port));
  const sockets = await Promise.all(opening).catch(async (err: unknown) => {
    // Those that did open are closed before the failure is reported.
    for (const r of await Promise.allSettled(opening))
      if (r.status === 'fulfilled') r.value.terminate();
    throw err;
  });
  const latencies: number[] = [];
  const outcomes: Record<string, number> = {};
  let errors = 0;
  let sent = 0;
  const started = performance.now();
  const end = started + o.durationS * 1000;
  // A reply that never comes must not hold the run: 5 s after the end every socket is let go
  // (its message in flight counted in `unanswered`).
  let giveUp: NodeJS.Timeout | undefined;
  const late = new Promise<void>((r) => (giveUp = setTimeout(r, o.durationS * 1000 + 5000)));
  const all = Promise.all(
    sockets.map(
      (ws, c) =>
        new Promise<void>((resolve) => {
          const tag = `ws${c}`;
          let i = 0;
          let at = 0;
          const next = () => {
            if (performance.now() >= end) return resolve();
            const n = i++;
            const body = reserveBody(o.spec, tag, n);
            at = performance.now();
            sent++;
            ws.send(`{"type":"reserve","id":${n},"sku":"${skuOf(o.spec, n)}",${body.slice(1)}`);
          };
          ws.on('message', (data: Buffer) => {
            latencies.push(performance.now() - at);
            const key = outcomeOf(data.toString());
            outcomes[key] = (outcomes[key] ?? 0) + 1;
            next();
          });
          ws.on('error', () => errors++);
          ws.on('close', () => resolve());
          next();
        }),
    ),
  );
  await Promise.race([all, late]);
  clearTimeout(giveUp);
  const durationS = (performance.now() - started) / 1000;
  for (const ws of sockets) ws.terminate();
  const ok = outcomes.reserved ?? 0;
  return {
    tool: 'ws',
    requests: sent,
    unanswered: sent - latencies.length,
    ok,
    ok_per_s: Math.round(ok / durationS),
    answers_per_s: Math.round(latencies.length / durationS),
    latency_ms: {
      p50: round(percentile(latencies, 50)),
      p90: round(percentile(latencies, 90)),
      p99: round(percentile(latencies, 99)),
      max: round(percentile(latencies, 100)),
    },
    outcomes,
    errors,
    duration_s: round(durationS, 2),
  };
}
