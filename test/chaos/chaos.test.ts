// The reliability battery, small (`npm run chaos` runs it long and writes
// docs/reliability.md). Each scenario drives real `stockade serve` processes; see scenarios.ts
// for what each does and history.ts for what the checker holds the buyers' history against.
import t from 'tap';
import type { Test } from 'tap';
import { fullDisk, hostile, hostileWs, killNine } from './scenarios.js';
import { slowClients } from './slow-clients.js';
import type { Report } from './scenarios.js';

const root = process.getuid?.() === 0;
if (!root && process.env.CI) throw new Error('CI runs as root: the disk scenario must not skip');
const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 100_000);
// Five scenarios of real processes, one after the other: more than tap's default 120 s a file.
t.setTimeout(300_000);

function holds(t: Test, r: Report): void {
  t.comment(
    `seed ${seed} (rerun with CHAOS_SEED=${seed}): ${JSON.stringify({ ...r, violations: undefined })}`,
  );
  t.same(r.violations, [], 'no violation of the history');
  t.equal(r.lost, 0, 'no acknowledged purchase lost');
  t.equal(r.duplicated, 0, 'no key reserved twice');
  t.equal(r.oversold, 0, 'nothing oversold');
}

t.test('kill -9 of serve at random moments, every purchase sent 1–5 times', async (t) => {
  const r = await killNine({
    seed,
    kills: 3,
    lanes: 6,
    skus: 3,
    stock: 400,
    minLifeMs: 300,
    maxLifeMs: 900,
    holdTtlMs: 1_500, // nobody confirms: the holds expire across the kills
  });
  holds(t, r);
  t.ok(r.ok > 50, `${r.ok} purchases acknowledged across the kills`);
  t.ok(r.unknown > 0, `${r.unknown} answers were unknown (the kills hit requests in flight)`);
  t.ok(
    (r.extra.conflictingBodies as number) > 0,
    'some keys were reused with another body (each refused)',
  );
  t.ok(
    (r.extra.holdsExpired as number) > 0,
    `${r.extra.holdsExpired as number} holds expired, each once, across the kills`,
  );
});

t.test(
  'the disk fills up mid-sale, then room is made',
  { skip: !root && 'needs root to mount a tmpfs' },
  async (t) => {
    const r = await fullDisk({ seed, lanes: 4 });
    holds(t, r);
    t.same(
      r.extra.codesWhileFull,
      ['journal_unavailable'],
      'a full disk answers journal_unavailable',
    );
    t.ok(r.unknown > 0, 'purchases were refused while the disk was full');
  },
);

t.test('hostile HTTP input: never a 5xx, never a crash', async (t) => {
  const r = await hostile({ seed, cases: 3_000 });
  t.comment(`statuses ${JSON.stringify(r.refusals)}; RSS ${JSON.stringify(r.extra.rssMb)}`);
  t.same(r.violations, [], 'only 2xx and 4xx, the server alive, memory bounded');
  t.ok(r.attempts >= 3_000);
});

t.test('hostile WebSocket messages: never a server fault, never a crash', async (t) => {
  const r = await hostileWs({ seed, cases: 500 });
  t.comment(`answers ${JSON.stringify(r.refusals)}; ${JSON.stringify(r.extra)}`);
  t.same(r.violations, [], 'only answers and client-fault errors, the server alive');
  t.ok(r.attempts >= 500);
});

t.test('slowloris and never-reading clients beside honest buyers', async (t) => {
  const r = await slowClients({
    seed,
    slowloris: 1_000,
    neverReading: 100,
    wsNeverReading: 4,
    wsMessagesPerS: 3_000,
    phaseMs: 20_000, // past every limit (10 s) and the 5 s it may take to see a close
    lanes: 4,
    latencyBound: false, // other test files share the CPUs here; npm run chaos holds it
  });
  holds(t, r);
  const closed = r.extra.attackersClosedByServer as Record<string, number>;
  t.ok(closed['slowloris headers'] >= 500, 'every slowloris was closed by the server');
  t.ok(closed['ws never reading'] >= 1, 'a WebSocket that never read was dropped');
  t.equal(r.unknown + r.refused, 0, 'every honest purchase went through');
});
