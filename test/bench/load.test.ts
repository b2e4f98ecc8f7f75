// The benchmark suite's load side: the request stream every generator sends, the open-loop
// generator (latency from the intended send time, proven by stopping the server mid-step), the
// charts, and reading Stockade's purchase outcomes from /metrics.
import t from 'tap';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild, stop } from '../../bench/http.js';
import { barChart, escapeXml, lineChart, niceMax } from '../../bench/charts.js';
import { held, mergeOpenLoop, openLoop } from '../../bench/load/open-loop.js';
import {
  rawRequest,
  reserveBody,
  setupRequestModule,
  skuOf,
  wrkScript,
} from '../../bench/load/requests.js';
import type { LoadSpec } from '../../bench/load/requests.js';
import { purchaseOutcomes } from '../../bench/systems.js';

const spec = (over: Partial<LoadSpec> = {}): LoadSpec => ({
  kind: 'reserve',
  sku: 's-',
  skus: 10,
  users: 0,
  retryEvery: 0,
  run: 'r1',
  ...over,
});

type Body = { userId: string; qty: number; idempotencyKey: string };
const body = (s: LoadSpec, tag: string, i: number) => JSON.parse(reserveBody(s, tag, i)) as Body;

t.test('the request stream: unique keys, buyers as asked, SKUs spread evenly', async (t) => {
  const s = spec();
  const keys = new Set(Array.from({ length: 1000 }, (_, i) => body(s, 'a', i).idempotencyKey));
  t.equal(keys.size, 1000, 'a new idempotency key for every request');
  t.not(
    body(s, 'a', 0).idempotencyKey,
    body(s, 'b', 0).idempotencyKey,
    'tags keep generators apart',
  );
  t.same(
    Array.from({ length: 20 }, (_, i) => skuOf(s, i)).filter((x) => x === 's-3').length,
    2,
    'ten SKUs, each every tenth request',
  );
  t.equal(skuOf(spec({ skus: 1, sku: 'one' }), 7), 'one');
  const twice = spec({ retryEvery: 11 });
  t.equal(body(twice, 'a', 10).userId, body(twice, 'a', 9).userId, 'the 11th is the 10th again');
  t.not(body(twice, 'a', 10).idempotencyKey, body(twice, 'a', 9).idempotencyKey, 'with a new key');
  t.not(body(twice, 'a', 9).userId, body(twice, 'a', 8).userId, 'otherwise every buyer is new');
  const few = spec({ users: 3 });
  t.equal(
    body(few, 'a', 4).userId,
    body(few, 'a', 1).userId,
    'users: request i is buyer i % users',
  );
  const raw = rawRequest(s, 'a', 3);
  const [head, payload] = raw.split('\r\n\r\n');
  t.match(head, /^POST \/v1\/skus\/s-3\/reservations HTTP\/1\.1\r\n/);
  t.match(head, new RegExp(`Content-Length: ${Buffer.byteLength(payload)}`));
  t.match(rawRequest(spec({ kind: 'read' }), 'a', 2), /^GET \/v1\/skus\/s-2 HTTP\/1\.1\r\n/);
});

t.test("autocannon's setupRequest module sends the same stream", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-setup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const s = spec({ retryEvery: 11 });
  const file = join(dir, 'setup.cjs');
  writeFileSync(file, setupRequestModule(s));
  const setup = createRequire(import.meta.url)(file) as (r: object) => {
    method: string;
    path: string;
    body: string;
  };
  const reqs = Array.from({ length: 12 }, () => setup({}));
  t.equal(reqs[3].method, 'POST');
  t.equal(reqs[3].path, '/v1/skus/s-3/reservations');
  const bodies = reqs.map((r) => JSON.parse(r.body) as Body);
  t.equal(new Set(bodies.map((b) => b.idempotencyKey)).size, 12, 'unique keys');
  t.equal(bodies[10].userId, bodies[9].userId, 'the same double click as reserveBody');
  const readFile = join(dir, 'read.cjs');
  writeFileSync(readFile, setupRequestModule(spec({ kind: 'read' })));
  const read = createRequire(import.meta.url)(readFile) as (r: object) => { method: string };
  t.equal(read({}).method, 'GET');
});

t.test('the wrk script builds the same bodies and paths', async (t) => {
  const lua = wrkScript(spec({ users: 5 }));
  t.match(lua, /"\/v1\/skus\/" \.\. sku \.\. "\/reservations"/);
  t.match(lua, /counter % 10/);
  t.match(lua, /"ur1-" \.\. \(counter % 5\)/);
  t.match(
    wrkScript(spec({ kind: 'read', skus: 1, sku: 'x' })),
    /wrk\.format\("GET", "\/v1\/skus\/" \.\. sku\)/,
  );
});

t.test('a step holds only if every request was answered in time', async (t) => {
  const thread = (latencies: number[], due = latencies.length) => ({
    latencies: Float64Array.from(latencies),
    lateness: Float64Array.from(latencies.map(() => 0.1)),
    statuses: { 201: latencies.length },
    due,
    dropped: 0,
    timedOut: due - latencies.length,
    socketErrors: 0,
    elapsedMs: 1000,
  });
  const fast = mergeOpenLoop(200, 10, 2, [thread(Array(100).fill(1)), thread(Array(100).fill(2))]);
  t.equal(fast.answered, 200);
  t.equal(fast.achieved_per_s, 200);
  t.equal(fast.latency_ms.p50, 1);
  t.equal(fast.latency_ms.p99, 2);
  t.ok(held(fast, 10));
  t.notOk(
    held(mergeOpenLoop(100, 10, 1, [thread([...Array(98).fill(1), 50, 50])]), 10),
    'p99 over',
  );
  t.notOk(held(mergeOpenLoop(100, 10, 1, [thread(Array(99).fill(1), 100)]), 10), 'one unanswered');
});

t.test(
  'open loop: a server that stalls shows the stall on every request due during it',
  async (t) => {
    // A request due while the server is stopped waits, and its clock runs from when it was due: at
    // 1,000/s a 400 ms stop leaves ~400 requests with 0–400 ms of latency, so p99 is far over
    // 100 ms. A generator that waits for answers before sending (closed loop) would record only
    // the few requests in flight as slow; the median would stay near a millisecond.
    const { child, match } = await startChild(
      './baselines/bare-uws.js',
      ['--noop'],
      /listening (\d+)/,
    );
    t.teardown(() => stop(child));
    const port = Number(match[1]);
    const steady = await openLoop({ port, rate: 1000, durationMs: 1000, spec: spec() });
    t.equal(steady.answered, steady.due, 'unstopped: every request answered');
    t.ok(steady.latency_ms.p50 < 50, `unstopped p50 ${steady.latency_ms.p50} ms`);
    const stalled = openLoop({ port, rate: 1000, durationMs: 1500, spec: spec() });
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 400));
    child.kill('SIGCONT');
    const r = await stalled;
    t.equal(r.answered, r.due, 'every request answered after the server came back');
    t.equal(r.dropped, 0);
    t.ok(r.latency_ms.p99 >= 200, `p99 ${r.latency_ms.p99} ms covers the 400 ms stop`);
    t.ok(
      r.latency_ms.p90 >= 20,
      `p90 ${r.latency_ms.p90} ms: a tenth of the step was due in the stop`,
    );
    t.notOk(held(r, 10), 'the step is not held');
  },
);

t.test('charts are SVG with a bar per value and a point per step', async (t) => {
  t.equal(niceMax(0), 1);
  t.equal(niceMax(73), 100);
  t.equal(niceMax(120_000), 200_000);
  t.equal(escapeXml('a<b & "c"'), 'a&#60;b &#38; &#34;c&#34;');
  const bars = barChart({
    title: 'T <1>',
    unit: '/s',
    groups: ['x', 'y', 'z'],
    series: [
      { name: 'c100', values: [1, 2, null] },
      { name: 'c1000', values: [3, 4, 5] },
    ],
  });
  t.match(bars, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  t.equal((bars.match(/<rect [^>]*><title>/g) ?? []).length, 5, 'a bar per measured value');
  t.match(bars, /T &#60;1&#62;/, 'the title is escaped');
  const lines = lineChart({
    title: 'rate',
    xLabel: 'x',
    yLabel: 'y',
    logY: true,
    bound: { y: 10, label: 'bound' },
    series: [
      {
        name: 'a',
        points: [
          [1000, 1],
          [2000, 2],
          [4000, 300],
        ],
      },
      { name: 'b', points: [[1000, 0.5]] },
    ],
  });
  t.equal((lines.match(/<circle /g) ?? []).length, 4, 'a point per step');
  t.equal((lines.match(/<polyline /g) ?? []).length, 2, 'a line per system');
  t.notMatch(lines, /NaN|Infinity/, 'every coordinate is a number');
});

t.test("Stockade's purchase outcomes from /metrics, HTTP and WebSocket together", async (t) => {
  const text = [
    '# TYPE stockade_requests_total counter',
    'stockade_requests_total{route="reserve",outcome="ok"} 10',
    'stockade_requests_total{route="reserve",outcome="sold_out"} 4',
    'stockade_requests_total{route="ws_reserve",outcome="ok"} 5',
    'stockade_requests_total{route="confirm",outcome="ok"} 99',
  ].join('\n');
  t.same(purchaseOutcomes(text), { ok: 15, sold_out: 4 });
});

t.test('steady rounds: the median round whole, the worst oversold, every round kept', async (t) => {
  const { medianRound } = await import('../../bench/suite.js');
  const round = (throughput: number, p99: number, oversold: number) => ({
    name: 'redis_lua' as const,
    throughput_per_s: throughput,
    latency_ms: { p50: 1, p99 },
    oversold,
    sold: throughput,
    tool: 'wrk',
    generator_ceiling_per_s: 90_000,
  });
  const m = medianRound([round(30, 700, 0), round(10, 5, 0), round(20, 9, 1)]);
  t.equal(m.throughput_per_s, 20, 'the middle throughput');
  t.equal(m.latency_ms.p99, 9, "with that round's own latency");
  t.equal(m.oversold, 1, 'the worst round decides oversold');
  t.same(
    (m.rounds as { throughput_per_s: number }[]).map((r) => r.throughput_per_s),
    [30, 10, 20],
  );
  t.equal(medianRound([round(5, 1, 0)]).rounds, undefined, 'one round is itself');
});
