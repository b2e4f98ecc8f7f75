/**
 * The battery's cluster scenario (`npm run chaos`; `npm test` makes the same two faults happen
 * in test/persistence/kafka-cluster.ts, with MySQL and WebSocket checks of its own):
 *
 *   clusterFault   three `stockade serve` members on one Kafka topic under purchase load, each
 *                  purchase sent to a random live member (forwarded to its SKU's owner). One
 *                  member is killed (kill -9) with appends in flight; later another is stopped
 *                  (SIGSTOP) past the consumer group's session timeout, while the last takes
 *                  its partitions, and resumed: it must rejoin under a new term, and nothing it
 *                  had queued may land. Holds last 3 s and nobody confirms, so they expire
 *                  across both faults. The history is then held against the topic and a
 *                  replay like every other scenario's: every 201 once, no key twice, no SKU
 *                  past its stock, every hold ended exactly once.
 */
import { shardOf } from '../../engine/index.js';
import type { KafkaSettings } from '../../config/index.js';
import { prng } from '../simulation/simulation.js';
import { History, check } from './history.js';
import { Server, buy, defineSkus, http, settleUnknowns, sleep, tally } from './scenarios.js';
import type { Report } from './scenarios.js';
import { kafkaJournal } from './kafka-scenarios.js';

const SHARDS = 4;
/** cluster.sessionTimeoutMs's default: a stopped member is gone for the group after it. */
const SESSION_TIMEOUT_MS = 6_000;
/** Holds expire across the kill and the stop: each must give its unit back exactly once. */
const HOLD_TTL_MS = 3_000;

export interface ClusterFaultOptions {
  seed: number;
  settings: KafkaSettings;
  lanes: number;
  /** How long the second member stays stopped (past the session timeout). */
  stopMs: number;
  progress?: (line: string) => void;
}

interface ClusterView {
  term: number;
  lease: boolean;
  members: { nodeId: string }[];
  partitions: { owner: string | null; here: string }[];
}

async function view(m: Server): Promise<ClusterView | null> {
  const r = await http(m.port, 'GET', '/v1/cluster');
  return r.status === 200 ? (r.json as unknown as ClusterView) : null;
}

async function waitFor(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`clusterFault: no ${what} within ${ms} ms`);
    await sleep(100);
  }
}

export async function clusterFault(o: ClusterFaultOptions): Promise<Report> {
  const rand = prng(o.seed);
  const journal = kafkaJournal(o.settings, SHARDS);
  const members = ['a', 'b', 'c'].map(
    (name) => new Server([...journal.args, '--node-id', name], journal.env ?? {}, SHARDS),
  );
  const [a, b, c] = members;
  const up = new Set(members);
  const h = new History();
  const skus = Array.from({ length: 8 }, (_, i) => `cl-${i}`);
  const stock = 1_000_000;
  let stopped = false;
  let running = false;
  let lanes: Promise<void>[] = [];
  try {
    await Promise.all(members.map((m) => m.start()));
    await waitFor('three members serving every partition', 60_000, async () => {
      const views = await Promise.all(members.map(view));
      return views.every(
        (v) =>
          v !== null &&
          v.members.length === 3 &&
          v.partitions.every((p) => p.owner !== null && p.here !== 'moving'),
      );
    });
    // Nobody confirms: every hold expires, on whichever member owns its SKU by then.
    await defineSkus(a, skus, stock, HOLD_TTL_MS);
    const cOwned = new Set(
      (await view(c))!.partitions.flatMap((p, i) => (p.owner === 'c' ? [i] : [])),
    );
    if (cOwned.size === 0) throw new Error('clusterFault: c owns no partition to fail over');
    running = true;
    let n = 0;
    let killedAt = 0;
    const firstAfterKill = new Map<number, number>();
    const lane = async (id: number) => {
      while (running) {
        const live = [...up];
        const m = live[Math.floor(rand() * live.length)];
        const p = {
          key: `c${id}-${n++}`,
          sku: skus[Math.floor(rand() * skus.length)],
          userId: `u${id}-${n}`,
          qty: 1,
        };
        const sent = Date.now();
        const outcome = await buy(h, m.port, p);
        const shard = shardOf(p.sku, SHARDS);
        if (outcome === 'ok' && killedAt > 0 && sent > killedAt && cOwned.has(shard)) {
          if (!firstAfterKill.has(shard)) firstAfterKill.set(shard, Date.now() - killedAt);
        }
        if (outcome !== 'ok') await sleep(50);
      }
    };
    lanes = Array.from({ length: o.lanes }, (_, i) => lane(i));
    await sleep(2_000);
    up.delete(c);
    await c.kill9();
    killedAt = Date.now();
    o.progress?.(`clusterFault: c killed after ${h.count('ok')} purchases`);
    await waitFor(
      "c's partitions served again",
      60_000,
      async () => cOwned.size === firstAfterKill.size,
    );
    const termBefore = (await view(b))!.term;
    up.delete(b);
    b.proc!.child.kill('SIGSTOP');
    stopped = true;
    const stoppedAt = Date.now();
    o.progress?.(`clusterFault: b stopped for ${o.stopMs} ms`);
    await sleep(o.stopMs);
    const aTookAll = (await view(a))?.partitions.every((p) => p.owner === 'a') ?? false;
    b.proc!.child.kill('SIGCONT');
    stopped = false;
    const resumedAt = Date.now();
    await waitFor('b back under a new term', 60_000, async () => {
      const v = await view(b);
      return v !== null && v.term > termBefore && v.lease;
    });
    const rejoinMs = Date.now() - resumedAt;
    up.add(b);
    await sleep(2_000);
    running = false;
    await Promise.all(lanes);
    const resolved = await settleUnknowns(h, a, 120_000);
    await sleep(HOLD_TTL_MS + 2_000); // past every hold's time: the owners expire what is left
    const codes = await Promise.all([a.stop(), b.stop()]);
    const events = await journal.events();
    const verdict = check(
      h,
      events,
      await journal.replay(skus),
      new Map(skus.map((s) => [s, stock])),
      true,
    );
    const violations = [
      ...verdict.violations,
      ...(aTookAll ? [] : ["a did not take b's partitions while b was stopped"]),
      ...(codes.every((x) => x === 0) ? [] : [`members exited ${codes.join(', ')} on SIGTERM`]),
    ];
    const failover = [...firstAfterKill.values()].sort((x, y) => x - y);
    return {
      scenario: `cluster of 3 on one topic: a member killed (kill -9), another stopped ${o.stopMs / 1000} s (past the ${SESSION_TIMEOUT_MS / 1000} s session timeout)`,
      seed: o.seed,
      ...tally(h),
      resolvedByRetry: resolved,
      ...verdict,
      violations,
      extra: {
        killToFirstConfirmationOnItsPartitionsMs: failover[failover.length - 1] ?? null,
        stoppedMs: resumedAt - stoppedAt,
        resumedToRejoinedMs: rejoinMs,
        termBeforeStop: termBefore,
        holdsExpired: events.filter((e) => e.type === 'expired').length,
      },
    };
  } finally {
    if (stopped) b.proc?.child.kill('SIGCONT');
    running = false;
    await Promise.all(lanes);
    await Promise.all(members.map((m) => m.end()));
  }
}
