// The pool's scheduling: dynamic batching, the queue bound, timeouts, abort and close. Every
// test synchronizes on promises or on setImmediate ordering (the moderator dispatches in the
// setImmediate it schedules on admission, so one of ours queued after it runs after dispatch);
// none sleeps.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setImmediate as nextImmediate } from 'node:timers/promises';
import { createModerator } from '../../moderation/index.js';
import type { ModerationSettings } from '../../config/index.js';
import { noisePng, solidPng, testSettings, tinyModel } from './helpers.js';

const model = tinyModel();
t.teardown(model.cleanup);

type Teardown = { teardown: (fn: () => unknown) => void };

async function moderatorFor(t: Teardown, over: Partial<ModerationSettings>) {
  const m = await createModerator(testSettings(model.dir, over));
  t.teardown(() => m.close());
  return m;
}

t.test('images that wait together run together: fewer runs than images', async (t) => {
  const m = await moderatorFor(t, { batchSizeMax: 4, batchWaitMs: 10_000 });
  const img = await noisePng(32, 32, 1);
  const results = await Promise.all(Array.from({ length: 8 }, () => m.classify(img)));
  const s = m.stats();
  t.equal(s.runs, 2, 'eight images, two session runs');
  t.equal(s.batchSizeCounts[4], 2, 'each run full, dispatched on size without waiting 10 s');
  t.equal(s.imagesRun, 8);
  const same = results.every((r) => r.scores.nsfw === results[0].scores.nsfw);
  t.ok(same, 'same image, same answer in any row of any batch');
});

t.test('batchWaitMs 0: a batch per event-loop turn, then whatever waited meanwhile', async (t) => {
  const m = await moderatorFor(t, { batchSizeMax: 4, batchWaitMs: 0 });
  const imgs = await Promise.all([1, 2, 3, 4, 5].map((s) => noisePng(32, 32, s)));
  await Promise.all(imgs.map((i) => m.classify(i)));
  t.same(m.stats().batchSizeCounts, [0, 1, 0, 0, 1], 'a run of 4, then a run of 1');
  await m.classify(imgs[0]);
  await m.classify(imgs[1]);
  t.equal(m.stats().batchSizeCounts[1], 3, 'images in different turns do not wait for each other');
});

t.test('a partial batch waits batchWaitMs for company, then runs', async (t) => {
  const m = await moderatorFor(t, { batchSizeMax: 8, batchWaitMs: 40 });
  const img = await noisePng(32, 32, 2);
  const rs = await Promise.all([m.classify(img), m.classify(img), m.classify(img)]);
  t.same(m.stats().batchSizeCounts[3], 1, 'one run of three');
  const waits = rs.map((r) => r.ms.toFixed(1)).join(', ');
  t.ok(
    rs.every((r) => r.ms >= 39),
    `each waited the batch window (${waits} ms)`,
  );
  t.equal(rs[0].model, 'stockade/vit-tiny-random');
});

t.test('two workers run two batches at once', async (t) => {
  const m = await moderatorFor(t, { threads: 2, batchSizeMax: 2, batchWaitMs: 10_000 });
  const img = await noisePng(32, 32, 3);
  const pending = Array.from({ length: 4 }, () => m.classify(img));
  await nextImmediate();
  t.equal(m.stats().busyWorkers, 2, 'both workers busy');
  t.equal(m.stats().inFlight, 4);
  await Promise.all(pending);
  t.equal(m.stats().batchSizeCounts[2], 2);
});

t.test('past queueMax waiting images, new ones are refused as overloaded', async (t) => {
  const settings = testSettings(model.dir, { queueMax: 2, batchSizeMax: 8, batchWaitMs: 10_000 });
  const m = await createModerator(settings);
  const img = await solidPng(16, 16, [1, 2, 3]);
  const a = m.classify(img);
  const b = m.classify(img);
  const overloaded = { code: 'moderation_overloaded', retriable: true, http: 503 };
  await t.rejects(m.classify(img), overloaded);
  t.equal(m.stats().overloaded, 1);
  t.equal(m.stats().waiting, 2);
  const closed = [
    t.rejects(a, { code: 'moderation_closed' }, 'close fails the waiting images'),
    t.rejects(b, { code: 'moderation_closed' }),
  ];
  await m.close();
  await Promise.all(closed);
  await t.rejects(m.classify(img), { code: 'moderation_closed' }, 'and refuses new ones');
  await m.close();
  t.pass('close is idempotent');
});

t.test('an image that waits past taskTimeoutMs fails with moderation_timeout', async (t) => {
  const m = await moderatorFor(t, { taskTimeoutMs: 50, batchSizeMax: 8, batchWaitMs: 10_000 });
  const started = performance.now();
  await t.rejects(m.classify(await solidPng(16, 16, [1, 2, 3])), {
    code: 'moderation_timeout',
    retriable: true,
    message: /waiting for a worker/,
  });
  t.ok(performance.now() - started >= 49, 'not before its deadline');
  const s = m.stats();
  t.same([s.timedOut, s.waiting, s.runs], [1, 0, 0]);
});

t.test('a timeout in a worker answers at once; the image is skipped or dropped', async (t) => {
  const settings = testSettings(model.dir, { taskTimeoutMs: 5, maxPixels: 20_000_000 });
  const m = await createModerator(settings);
  // A 4000×3000 PNG takes far longer than 5 ms to inflate and resize.
  const big = await solidPng(4000, 3000, [200, 10, 10]);
  await t.rejects(m.classify(big), { code: 'moderation_timeout' });
  await m.close(); // waits for the worker to hand the batch back
  const s = m.stats();
  const outcome = `runs ${s.runs}, cancelled before run ${s.cancelledBeforeRun}`;
  t.equal(s.runs + s.cancelledBeforeRun, 1, `the worker skipped it or ran it (${outcome})`);
  t.equal(s.completed, 0);
});

t.test('abort: before queueing, while waiting, and in a worker', async (t) => {
  const m = await moderatorFor(t, { batchSizeMax: 8, batchWaitMs: 0 });
  const img = await noisePng(32, 32, 4);
  await t.rejects(m.classify(img, { signal: AbortSignal.abort() }), { code: 'moderation_aborted' });
  t.equal(m.stats().submitted, 0, 'an aborted signal is not queued');

  const waiting = new AbortController();
  const p1 = m.classify(img, { signal: waiting.signal });
  waiting.abort(); // before the dispatching setImmediate
  await t.rejects(p1, { code: 'moderation_aborted' });
  t.same([m.stats().waiting, m.stats().inFlight], [0, 0]);

  const inWorker = new AbortController();
  const others = [m.classify(img), m.classify(img, { signal: inWorker.signal }), m.classify(img)];
  await nextImmediate();
  t.equal(m.stats().inFlight, 3, 'dispatched');
  inWorker.abort();
  await t.rejects(others[1], { code: 'moderation_aborted' });
  const [a, c] = await Promise.all([others[0], others[2]]);
  t.equal(a.scores.nsfw, c.scores.nsfw, 'the rest of the batch is answered');
  const s = m.stats();
  t.equal(s.aborted, 3);
  t.equal(s.imagesRun + s.cancelledBeforeRun, 3, 'the aborted image was skipped or ran');
  t.ok(await m.classify(img), 'no worker was terminated');
});

t.test('close lets batches already in a worker finish', async (t) => {
  const m = await createModerator(testSettings(model.dir, { batchWaitMs: 0 }));
  const p = m.classify(await noisePng(32, 32, 5));
  await nextImmediate();
  t.equal(m.stats().inFlight, 1);
  const closing = m.close();
  const r = await p;
  t.ok(['allow', 'review', 'block'].includes(r.verdict), 'answered, not failed');
  await closing;
});

t.test('the model never runs on this thread: onnxruntime is not loaded here', async (t) => {
  const m = await moderatorFor(t, {});
  await m.classify(await noisePng(32, 32, 6));
  const paths = Object.keys(createRequire(import.meta.url).cache);
  const ort = paths.filter((path) => path.includes('onnxruntime-node'));
  t.same(ort, [], 'no onnxruntime-node module in the main thread');
  t.ok(
    paths.some((path) => path.includes('piscina')),
    'while piscina (CJS) is listed',
  );
});

/** Scheduling of every thread of this process: Linux /proc/self/task/<tid>/stat. */
function threadScheduling(): Map<number, { nice: number; policy: number }> {
  const out = new Map<number, { nice: number; policy: number }>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the command name start at field 3: nice is field 19, policy field 41.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), { nice: Number(fields[16]), policy: Number(fields[38]) });
  }
  return out;
}

const SCHED_OTHER = 0;
const SCHED_IDLE = 5;
const linuxOnly = { skip: process.platform !== 'linux' && 'per-thread scheduling is Linux only' };

for (const [priority, want] of [
  ['idle', { nice: 0, policy: SCHED_IDLE }],
  ['low', { nice: 19, policy: SCHED_OTHER }],
] as const) {
  const name = `priority ${priority}: the model threads yield; the rest keeps its priority`;
  t.test(name, linuxOnly, async (t) => {
    const before = threadScheduling();
    const m = await moderatorFor(t, { priority, intraOpThreads: 2 });
    await m.classify(await noisePng(32, 32, 9));
    const after = threadScheduling();
    const lowered = [...after].filter(
      ([tid, s]) => !before.has(tid) && s.nice === want.nice && s.policy === want.policy,
    );
    // The worker thread itself, and onnxruntime's intra-op thread it created afterwards.
    const n = lowered.length;
    t.ok(n >= 2, `the worker and its session threads run as ${priority} (${n})`);
    const main = after.get(process.pid);
    t.same(main, { nice: 0, policy: SCHED_OTHER }, 'the main thread is untouched');
    const changed = [...after].filter(([tid, s]) => {
      const was = before.get(tid);
      return was !== undefined && (s.nice !== was.nice || s.policy !== was.policy);
    });
    t.same(changed, [], 'no thread that existed before (libuv pool, other workers) changed');
  });
}
