/**
 * Several nodes on one Kafka journal topic (registered by kafka-journal.test.ts): ownership,
 * forwarding, handover, and the faults that used to sell a unit twice.
 *
 *   The interleavings that must not break it:
 *   - a member is killed (kill -9) with appends in flight: its partitions move after the
 *     session timeout; its last appends are either in the partition (and the buyers' retries,
 *     same idempotency key, learn so from the new owner) or void;
 *   - a member is paused longer than the session timeout (SIGSTOP) and resumed: it wakes up
 *     believing it owns its partitions while another member has taken them and sold from
 *     them. Its lease has run out, so it answers nothing from its state until it has rejoined;
 *     whatever it had queued before the pause and appends after it is fenced (kafka-journal.ts).
 *   The three-process test makes both happen under purchase load, then replays the topic and
 *   projects it into MySQL and checks every 201 against both.
 */
import t from 'tap';
import type { Test } from 'tap';
import { createEngine, loadConfig, shardOf } from '../../engine/index.js';
import type { Engine } from '../../engine/index.js';
import type { KafkaSettings } from '../../config/index.js';
import { kafkaJournalSource } from '../../persistence/journal/index.js';
import type { SkuEvent } from '../../actors/index.js';
import { eventually, tempDir } from '../engine/helpers.js';
import { kafkaTestSettings } from './kafka-helpers.js';
import { startCli } from './cli-process.js';
import type { CliProcess } from './cli-process.js';
import { freshDatabase, requireMysql } from './mysql-helpers.js';
import { projector } from './projection-helpers.js';
import { WsClient } from '../gateway/helpers.js';
import { topicEvents } from '../chaos/kafka-scenarios.js';

const SHARDS = 4;
const STOCK = 400;

function memberConfig(s: KafkaSettings, nodeId: string) {
  return loadConfig({
    env: {},
    overrides: {
      engine: { shards: SHARDS, shardThreads: 'inline' },
      journal: { kind: 'kafka', restartDelayMs: 50 },
      kafka: { brokers: [...s.brokers], topic: s.topic },
      cluster: { enabled: true, nodeId },
    },
  });
}

function plainConfig(s: KafkaSettings) {
  return loadConfig({
    env: {},
    overrides: {
      engine: { shards: SHARDS, shardThreads: 'inline' },
      journal: { kind: 'kafka' },
      kafka: { brokers: [...s.brokers], topic: s.topic },
    },
  });
}

/** One SKU id per shard: `${prefix}<shard>-<n>` for the first n that hashes there. */
function skuPerShard(prefix: string) {
  return Array.from({ length: SHARDS }, (_, shard) => {
    for (let n = 0; ; n++) {
      if (shardOf(`${prefix}${shard}-${n}`, SHARDS) === shard) return `${prefix}${shard}-${n}`;
    }
  });
}

function until(what: string, ms: number, check: () => Promise<boolean> | boolean) {
  return eventually(check, ms, what);
}

/** Every event of every partition, as a fresh reader sees it. */
function journalEvents(s: KafkaSettings): Promise<SkuEvent[]> {
  return topicEvents(s, SHARDS);
}

export function kafkaClusterTests(): void {
  t.test('two members split the partitions; either one serves every SKU', inProcessPair);
  t.test(
    'three serve processes under load: kill -9 one, SIGSTOP another past the session timeout',
    threeProcesses,
  );
}

async function inProcessPair(t: Test): Promise<void> {
  const s = kafkaTestSettings('cluster-pair');
  const a = await createEngine({ config: memberConfig(s, 'a'), onWarning: () => {} });
  t.teardown(() => a.close());
  t.same(
    a.clusterView()!.partitions.map((p) => p.here),
    ['serving', 'serving', 'serving', 'serving'],
    'alone, a member owns every partition',
  );
  const skus = skuPerShard('pair');
  for (const sku of skus) t.match(await a.defineSku({ sku, stock: 10 }), { status: 'defined' });
  const b = await createEngine({ config: memberConfig(s, 'b'), onWarning: () => {} });
  let bClosed = false;
  t.teardown(() => (bClosed ? undefined : b.close()));
  await until('a sees b', 10_000, () => a.clusterView()!.members.length === 2);
  const owners = (e: Engine) => e.clusterView()!.partitions.map((p) => p.owner);
  t.same(owners(a), owners(b), 'both members see the same owners');
  t.same(
    [...owners(a)].sort(),
    ['a', 'a', 'b', 'b'],
    'two partitions each (the newcomer took only its share)',
  );
  const here = (e: Engine) => e.clusterView()!.partitions.map((p) => p.here);
  t.same(
    here(b).map((h) => h === 'serving'),
    owners(a).map((o) => o === 'b'),
    'b serves what it owns and forwards the rest',
  );
  // Purchases through either member, for SKUs on every partition: one history per SKU.
  const buys = skus.flatMap((sku, i) =>
    [a, b].map((e, k) =>
      e.reserve({ sku, userId: `u${i}-${k}`, qty: 1, idempotencyKey: `k${i}-${k}` }),
    ),
  );
  const results = await Promise.all(buys);
  t.ok(
    results.every((r) => r.status === 'reserved'),
    'every purchase is served, forwarded or not',
  );
  const again = await b.reserve({ sku: skus[0], userId: 'u0-0', qty: 1, idempotencyKey: 'k0-0' });
  t.match(again, { status: 'reserved', duplicate: true }, 'a retry through the other member');
  // Admin commands and reads through the member that does not own the SKU.
  const notOwnedByB = skus.find((_, shard) => owners(b)[shard] === 'a')!;
  t.match(await b.restock(notOwnedByB, 5), { status: 'restocked', available: 13 });
  t.match(await b.getSku(notOwnedByB), { reserved: 2, available: 13 });
  const r = results[skus.indexOf(notOwnedByB) * 2 + 1];
  if (r.status !== 'reserved') throw new Error('not reserved');
  t.match(await b.confirm(r.reservationId), { status: 'confirmed' });
  const viaA = await a.getSkus(skus);
  const viaB = await b.getSkus(skus);
  t.same(viaA, viaB, 'both members read the same state');
  t.ok((b.clusterFigures()?.forwardedBatches ?? 0) > 0, 'b forwarded to a');
  t.ok((a.clusterFigures()?.servedBatches ?? 0) > 0, 'a served batches for b');
  // b leaves (as SIGTERM does): a takes its partitions, replays them, and serves them.
  await b.close();
  bClosed = true;
  await until('a owns all', 15_000, () => here(a).every((h) => h === 'serving'));
  t.same(await a.getSkus(skus), viaB, 'a replayed what b had decided');
  t.ok(a.clusterFigures()!.partitionsGained >= SHARDS + 2, 'a gained the partitions back');
  await a.close();
  const fresh = await createEngine({ config: plainConfig(s), onWarning: () => {} });
  t.teardown(() => fresh.close());
  t.same(await fresh.getSkus(skus), viaB, 'a fresh replay agrees');
}

// ---- three processes ----------------------------------------------------------------------

interface Member {
  name: string;
  proc: CliProcess;
  port: number;
  state: 'up' | 'stopped' | 'dead';
}

async function startMember(name: string, s: KafkaSettings): Promise<Member> {
  const proc = startCli(
    [
      'serve',
      '--journal',
      'kafka',
      '--kafka-brokers',
      s.brokers.join(','),
      '--kafka-topic',
      s.topic,
      '--port',
      '0',
      '--auth',
      'none',
      '--shards',
      String(SHARDS),
      '--rate-limit',
      '0',
      '--node-id',
      name,
    ],
    { STOCKADE_LOG_LEVEL: 'warn' },
  );
  const port = Number((await proc.waitFor(/serving on http:\/\/[\d.]+:(\d+)/, 60_000))[1]);
  return { name, proc, port, state: 'up' };
}

/** A request bounded in time: a hang is a failure, not a wait. */
async function call(
  m: Member,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> } | 'network' | 'hang'> {
  const started = Date.now();
  try {
    const res = await fetch(`http://127.0.0.1:${m.port}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  } catch {
    return Date.now() - started >= 29_000 ? 'hang' : 'network';
  }
}

type ClusterJson = {
  term: number;
  lease: boolean;
  members: { nodeId: string }[];
  partitions: { owner: string | null; here: string }[];
};

async function threeProcesses(t: Test): Promise<void> {
  const s = kafkaTestSettings('cluster-three');
  const members: Member[] = [];
  t.teardown(() => {
    for (const m of members) {
      if (m.state === 'stopped') m.proc.child.kill('SIGCONT');
      if (m.proc.child.exitCode === null) m.proc.child.kill('SIGKILL');
    }
  });
  for (const name of ['a', 'b', 'c']) members.push(await startMember(name, s));
  const [a, b, c] = members;
  const view = async (m: Member) => {
    const r = await call(m, 'GET', '/v1/cluster');
    return typeof r === 'object' && r.status === 200 ? (r.body as unknown as ClusterJson) : null;
  };
  await until('three members, every partition served', 30_000, async () => {
    const views = await Promise.all(members.map(view));
    return views.every(
      (v) =>
        v !== null &&
        v.members.length === 3 &&
        v.partitions.every((p) => p.owner !== null && p.here !== 'moving'),
    );
  });
  // One SKU per partition, each with 400 units, defined through a (forwarded where not a's).
  const skus = skuPerShard('hot');
  for (const sku of skus) {
    const r = await call(a, 'PUT', `/v1/skus/${sku}`, { stock: STOCK });
    t.match(r, { status: 201 }, `${sku} defined through a`);
  }
  const cOwned = new Set(
    (await view(c))!.partitions.flatMap((p, i) => (p.owner === 'c' ? [i] : [])),
  );
  // A WebSocket purchase through b, for a SKU b does not own: forwarded like an HTTP one.
  const owners = (await view(b))!.partitions.map((p) => p.owner);
  const elsewhere = skus.find((_, shard) => owners[shard] !== 'b')!;
  const ws = await WsClient.open(b.port, '/v1/ws');
  ws.send({
    type: 'reserve',
    id: 'w1',
    sku: elsewhere,
    qty: 1,
    idempotencyKey: 'ws-1',
    userId: 'ws',
  });
  const wsAnswer = (await ws.next()) as { type: string; reservationId: string };
  ws.close();
  t.match(
    wsAnswer,
    { type: 'reserved', id: 'w1', sku: elsewhere },
    'a WebSocket purchase is forwarded',
  );

  // 1,800 buyers, 450 per SKU (a little more than its stock, so that sales go on through both
  // faults), 24 at a time, each retrying with its own key until it gets a definite answer
  // (201 or a refusal), on whichever member is up.
  const acked = new Map<string, { sku: string; reservationId: string }>();
  acked.set('ws-1', { sku: elsewhere, reservationId: wsAnswer.reservationId });
  const refusals = new Map<string, number>();
  let hangs = 0;
  let retries = 0;
  let done = 0;
  let next = 0;
  let killedAt = 0;
  const firstAfterKill = new Map<number, number>();
  const live = () => members.filter((m) => m.state === 'up');
  const buyer = async (n: number) => {
    const sku = skus[n % skus.length];
    const key = `key-${n}`;
    for (let attempt = 0; attempt < 400; attempt++) {
      const up = live();
      const m = up[(n + attempt) % up.length];
      const sent = Date.now();
      const r = await call(m, 'POST', `/v1/skus/${sku}/reservations`, {
        userId: `user-${n}`,
        qty: 1,
        idempotencyKey: key,
      });
      if (r === 'hang') hangs++;
      if (typeof r === 'object' && r.status === 201) {
        acked.set(key, { sku, reservationId: String(r.body.reservationId) });
        const shard = skus.indexOf(sku);
        // Failover: the first purchase on one of c's partitions sent after c died.
        if (killedAt > 0 && sent > killedAt && cOwned.has(shard) && !firstAfterKill.has(shard)) {
          firstAfterKill.set(shard, Date.now() - killedAt);
        }
        return;
      }
      if (typeof r === 'object' && r.status < 500) {
        const code = String((r.body.error as { code?: string } | undefined)?.code);
        refusals.set(code, (refusals.get(code) ?? 0) + 1);
        return;
      }
      retries++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`buyer ${n} got no definite answer`);
  };
  const BUYERS = 1_800;
  const worker = async () => {
    while (next < BUYERS) {
      await buyer(next++);
      done++;
    }
  };
  const faults = (async () => {
    await until('300 buyers done', 120_000, () => done >= 300);
    c.proc.child.kill('SIGKILL');
    c.state = 'dead';
    killedAt = Date.now();
    await until('700 buyers done', 120_000, () => done >= 700);
    const termBefore = (await view(b))!.term;
    b.proc.child.kill('SIGSTOP');
    b.state = 'stopped';
    await new Promise((r) => setTimeout(r, 9_000)); // past the 6 s session timeout
    const taken = (await view(a))!.partitions.every((p) => p.owner === 'a');
    b.proc.child.kill('SIGCONT');
    b.state = 'up';
    t.ok(taken, "while b was stopped, a took b's partitions");
    await until('b back in a new term', 30_000, async () => {
      const v = await view(b);
      return v !== null && v.term > termBefore && v.lease;
    });
    t.pass('b woke up, rejoined under a new term, and serves again');
  })();
  await Promise.all([...Array.from({ length: 24 }, worker), faults]);
  t.equal(hangs, 0, 'no request hung: each got an answer or a refused connection');
  t.comment(
    `${acked.size} purchases acknowledged, refusals ${JSON.stringify(Object.fromEntries(refusals))}, ` +
      `${retries} retries after a 503 or a refused connection; after the kill -9, the first ` +
      `201 on each of c's partitions came after ${JSON.stringify(Object.fromEntries(firstAfterKill))} ms`,
  );
  for (const sku of skus) {
    const sold = [...acked.values()].filter((x) => x.sku === sku).length;
    t.ok(sold <= STOCK, `${sku}: ${sold} acknowledged for ${STOCK} units`);
  }
  t.equal(firstAfterKill.size, cOwned.size, "c's partitions were served again after its death");

  // The survivors stop (SIGTERM); then a fresh reader, and MySQL, must agree with every 201.
  for (const m of [a, b]) m.proc.child.kill('SIGTERM');
  await Promise.all([a.proc.exit, b.proc.exit]);
  const events = await journalEvents(s);
  const reserved = events.filter((e) => e.type === 'reserved');
  const byKey = new Map<string, number>();
  for (const e of reserved) {
    if (e.type === 'reserved') byKey.set(e.idempotencyKey, (byKey.get(e.idempotencyKey) ?? 0) + 1);
  }
  const twice = [...byKey].filter(([, n]) => n > 1);
  t.same(twice, [], 'no idempotency key reserved twice in the journal');
  const missing = [...acked.keys()].filter((k) => !byKey.has(k));
  t.same(missing, [], 'every 201 is in the journal');
  const fresh = await createEngine({ config: plainConfig(s), onWarning: () => {} });
  t.teardown(() => fresh.close());
  for (const [shard, snap] of (await fresh.getSkus(skus)).entries()) {
    const inJournal = reserved.filter((e) => e.sku === skus[shard]).length;
    t.ok(snap !== null && snap.reserved + snap.sold <= STOCK, `${skus[shard]} within its stock`);
    t.equal(snap?.reserved, inJournal, `${skus[shard]}: the replay holds what the journal does`);
  }
  if (!(await requireMysql(t))) return;
  const { pool } = await freshDatabase(t);
  const p = projector(pool, tempDir(), { source: () => kafkaJournalSource(s) });
  t.teardown(() => p.stop());
  await p.catchUp();
  const [rows] = await pool.query('SELECT idempotency_key AS k FROM reservations');
  const inMysql = new Map<string, number>();
  for (const row of rows as { k: string }[]) inMysql.set(row.k, (inMysql.get(row.k) ?? 0) + 1);
  t.same(
    [...acked.keys()].filter((k) => inMysql.get(k) !== 1),
    [],
    'every 201 is in MySQL exactly once',
  );
  t.equal(inMysql.size, byKey.size, 'MySQL holds what the journal does');
}
