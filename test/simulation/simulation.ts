/**
 * A seeded simulation of one shard under a flash sale, with crashes. With an injected clock and
 * a seeded random source it interleaves: batches of buyers (fresh keys, retries of old keys with
 * the same or a different request, confirms, cancels, returns), restocks and closes, hold
 * expiries, completed journal writes, failed writes (lost, torn, written-but-unacknowledged),
 * and process crashes at any of those points, each followed by recovery from the journal.
 * Odd seeds run on a file-like journal (frames that can tear), even seeds on a Kafka-like log
 * whose failed sends can also land late: after the shard rebuilt and appended newer records,
 * stamped for an end that is long gone (the journal's fencing makes them void).
 *
 * After every step it checks the invariants of DESIGN.md against the live state, and after
 * every recovery it checks that every acknowledged reservation and transition is still there:
 * - never oversold: available + reserved + sold === stock + restocked, nothing negative;
 * - every acknowledged reservation is present exactly once (same number, user and quantity,
 *   and its idempotency key still maps to it);
 * - the same idempotency key never yields two reservations, across retries and restarts;
 * - an acknowledged confirm, cancel or return is never undone.
 * A failure throws a SimulationError naming the seed, so the run can be replayed.
 */
import {
  BatchWriter,
  ManualClock,
  Op,
  RESULT_STRIDE,
  STATUS_NAMES,
  Status,
  nullEventLog,
} from '../../actors/index.js';
import type { OpCode, SkuActor } from '../../actors/index.js';
import { ShardHost } from '../../engine/shard-host.js';
import { SimJournal, SimLog } from './sim-journal.js';

/** The simulated journal of a seed: a file (frames that tear) or a log (sends that land late). */
interface SimDisk {
  readonly pending: boolean;
  complete(): void;
  /** A failed write and a crash with one of this disk's fates, drawn by `rand`. */
  fail(rand: () => number): void;
  crash(rand: () => number, fate?: 'lost'): void;
  /** Lets a late write land, if one is on its way (the log only). */
  landLate(): void;
  readonly journal: SimJournal | SimLog;
}

function pickOf<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)];
}

function simDisk(log: boolean): SimDisk {
  if (log) {
    const journal = new SimLog();
    const fates = ['lost', 'written', 'late'] as const;
    return {
      journal,
      get pending() {
        return journal.pending;
      },
      complete: () => journal.complete(),
      fail: (rand) => journal.fail(pickOf(rand, fates)),
      crash: (rand, fate) => journal.crash(fate ?? pickOf(rand, fates)),
      landLate: () => journal.landLate(),
    };
  }
  const journal = new SimJournal();
  const fates = ['lost', 'torn', 'written'] as const;
  return {
    journal,
    get pending() {
      return journal.pending;
    },
    complete: () => journal.complete(),
    fail: (rand) => journal.fail(pickOf(rand, fates), Math.floor(rand() * 64)),
    crash: (rand, fate) => journal.crash(fate ?? pickOf(rand, fates), Math.floor(rand() * 64)),
    landLate: () => {},
  };
}

export class SimulationError extends Error {
  constructor(
    readonly seed: number,
    readonly step: number,
    message: string,
  ) {
    super(`seed ${seed}, step ${step}: ${message} (replay: npm run simulate -- --seed ${seed})`);
  }
}

/** mulberry32: a tiny, good-enough seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SimulationStats {
  steps: number;
  acked: number;
  crashes: number;
  failedWrites: number;
  tornTails: number;
  /** Log seeds: failed sends that landed after newer records, and appends fenced by one. */
  lateLanded: number;
  fenced: number;
  expiries: number;
}

const SKUS = ['alpha', 'beta', 'gamma'];
const USERS = ['ann', 'bob', 'cyd', 'dee', 'eve', 'fay', 'gus', 'hal'];
const LATER_STATES: Record<string, string[]> = {
  confirmed: ['confirmed', 'returned'],
  cancelled: ['cancelled'],
  returned: ['returned'],
};

interface Sent {
  op: OpCode;
  sku: string;
  user: string;
  key: string;
  qty: number;
  reservation: number;
}

/** Runs one seed; any failure, including an assertion inside the engine, names the seed. */
export async function runSimulation(seed: number, steps = 300): Promise<SimulationStats> {
  const progress = { step: 0 };
  try {
    return await simulate(seed, steps, progress);
  } catch (err) {
    if (err instanceof SimulationError) throw err;
    throw new SimulationError(
      seed,
      progress.step,
      err instanceof Error ? err.message : String(err),
    );
  }
}

async function simulate(
  seed: number,
  steps: number,
  progress: { step: number },
): Promise<SimulationStats> {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const clock = new ManualClock(1_000_000);
  const disk = simDisk(seed % 2 === 0);
  const journal = disk.journal;
  const options = { qtyMax: 5, holdTtlMsDefault: 500, timerTickMs: 50 };
  // A fault inside the host (an assertion of the actor while it rebuilds, say) would otherwise
  // surface as an unhandled rejection: it is kept and fails the next check, naming the seed.
  let fault: unknown = null;
  const hooks = { onFault: (err: unknown) => (fault ??= err) };
  let host = new ShardHost(0, options, journal, clock, hooks);
  await host.recover();
  const stats: SimulationStats = {
    steps,
    acked: 0,
    crashes: 0,
    failedWrites: 0,
    tornTails: 0,
    lateLanded: 0,
    fenced: 0,
    expiries: 0,
  };
  let step = 0;
  const fail = (msg: string): never => {
    throw new SimulationError(seed, step, msg);
  };

  // What clients were told: the model the journal must honour.
  const ackedByKey = new Map<string, { reservation: number; user: string; qty: number }>();
  const ackedState = new Map<string, string>(); // `${sku}:${n}` → state a client was told
  const usedKeys: { sku: string; key: string; user: string; qty: number }[] = [];
  let keyCounter = 0;
  let generation = 0;

  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

  const onReply = (gen: number, sent: Sent[], out: Float64Array) => {
    if (gen !== generation) return; // the process that would have sent this reply is dead
    sent.forEach((s, i) => {
      const status = out[i * RESULT_STRIDE] % 256;
      const value = out[i * RESULT_STRIDE + 1];
      if (s.op === Op.reserve && status === Status.reserved) {
        const k = `${s.sku}/${s.key}`;
        const prev = ackedByKey.get(k);
        if (prev && prev.reservation !== value)
          fail(`key ${k} yielded reservations ${prev.reservation} and ${value}`);
        ackedByKey.set(k, { reservation: value, user: s.user, qty: s.qty });
        stats.acked++;
      } else if (
        status === Status.confirmed ||
        status === Status.cancelled ||
        status === Status.returned
      ) {
        ackedState.set(`${s.sku}:${s.reservation}`, STATUS_NAMES[status]);
        stats.acked++;
      }
    });
  };

  const submitBatch = () => {
    const writer = new BatchWriter();
    const sent: Sent[] = [];
    const n = 1 + Math.floor(rand() * 12);
    for (let i = 0; i < n; i++) {
      const sku = pick(SKUS);
      const r = rand();
      if (r < 0.55 || usedKeys.length === 0) {
        const s = {
          op: Op.reserve,
          sku,
          user: pick(USERS),
          key: `k${keyCounter++}`,
          qty: 1 + Math.floor(rand() * 3),
          reservation: 0,
        };
        usedKeys.push(s);
        writer.reserve(s.sku, s.qty, s.user, s.key);
        sent.push(s);
      } else if (r < 0.7) {
        // A retry of an earlier key: usually the same request, sometimes a conflicting one.
        const old = pick(usedKeys);
        const s = {
          op: Op.reserve,
          sku: old.sku,
          user: rand() < 0.85 ? old.user : pick(USERS),
          key: old.key,
          qty: rand() < 0.85 ? old.qty : 1 + Math.floor(rand() * 3),
          reservation: 0,
        };
        writer.reserve(s.sku, s.qty, s.user, s.key);
        sent.push(s);
      } else {
        const op = pick([Op.confirm, Op.confirm, Op.cancel, Op.return] as const);
        const reservation = 1 + Math.floor(rand() * 12);
        writer.reservationCommand(op, sku, reservation);
        sent.push({ op, sku, user: '', key: '', qty: 0, reservation });
      }
    }
    const { buffer, bytes, count } = writer.take(new ArrayBuffer(1024));
    const out = new Float64Array(count * RESULT_STRIDE);
    const gen = generation;
    host.applyBatch(new Uint8Array(buffer, 0, bytes), count, out, () => onReply(gen, sent, out));
  };

  const recoverAfterCrash = async (fate?: 'lost') => {
    disk.crash(rand, fate);
    generation++;
    stats.crashes++;
    host = new ShardHost(0, options, journal, clock, hooks);
    await host.recover();
    checkAcked();
  };

  const actorOf = (sku: string): SkuActor | undefined => host.shard.actor(sku);

  const checkInvariants = () => {
    if (fault !== null)
      fail(`the shard faulted: ${fault instanceof Error ? fault.message : 'a throw'}`);
    for (const sku of SKUS) {
      const a = actorOf(sku);
      if (!a) continue;
      const s = a.snapshot();
      if (s.available < 0 || s.reserved < 0 || s.sold < 0)
        fail(`${sku}: negative counter ${JSON.stringify(s)}`);
      if (s.available + s.reserved + s.sold !== s.initialStock + s.restocked)
        fail(`${sku}: oversold or lost units ${JSON.stringify(s)}`);
      if (a.userUnitsTotal() !== s.reserved + s.sold) fail(`${sku}: per-user units do not add up`);
    }
  };

  const checkAcked = () => {
    for (const [k, acked] of ackedByKey) {
      const [sku, key] = k.split('/');
      const a = actorOf(sku);
      if (!a) fail(`acknowledged reservation ${k} lost: SKU ${sku} missing after recovery`);
      const r = acked.reservation;
      if (a!.reservationState(r) === null) fail(`acknowledged reservation ${sku}:${r} lost`);
      if (a!.reservationQty(r) !== acked.qty || a!.reservationUser(r) !== acked.user)
        fail(`reservation ${sku}:${r} changed`);
      if (a!.reservationKey(r) !== key) fail(`reservation ${sku}:${r} has another key`);
      const status = a!.reserveStrings(acked.user, key, acked.qty, clock.now(), nullEventLog);
      if (status !== Status.reserved || a!.outReservation !== r || !a!.outDuplicate)
        fail(`key ${k} no longer maps to ${r}`);
    }
    for (const [id, state] of ackedState) {
      const [sku, n] = id.split(':');
      const now = actorOf(sku)?.reservationState(Number(n));
      if (!now || !LATER_STATES[state].includes(now))
        fail(`acknowledged ${state} of ${id} undone (now ${String(now)})`);
    }
  };

  for (const sku of SKUS) {
    const define = host.define({
      sku,
      stock: 4 + Math.floor(rand() * 8),
      perUserLimit: Math.floor(rand() * 4),
      holdTtlMs: 100 + Math.floor(rand() * 400),
    });
    disk.complete();
    await settle();
    await define;
  }

  for (step = 0; step < steps; step++) {
    progress.step = step;
    const r = rand();
    if (r < 0.35) submitBatch();
    else if (r < 0.6) {
      if (disk.pending) disk.complete();
    } else if (r < 0.65) {
      disk.landLate();
      await settle();
      while (host.isRebuilding) await settle();
    } else if (r < 0.75) {
      clock.advance(Math.floor(rand() * 200));
      stats.expiries += host.tick();
    } else if (r < 0.8) {
      const sku = pick(SKUS);
      const writer = new BatchWriter();
      if (rand() < 0.8) writer.restock(sku, 1 + Math.floor(rand() * 3));
      else writer.close(sku);
      const { buffer, bytes, count } = writer.take(new ArrayBuffer(256));
      host.applyBatch(
        new Uint8Array(buffer, 0, bytes),
        count,
        new Float64Array(count * RESULT_STRIDE),
        () => {},
      );
    } else if (r < 0.84) {
      if (disk.pending) {
        disk.fail(rand);
        stats.failedWrites++;
        await settle();
        while (host.isRebuilding) await settle();
        checkAcked();
      }
    } else if (r < 0.87) {
      await recoverAfterCrash();
    }
    await settle();
    checkInvariants();
  }
  // Drain: everything in flight completes, then one last crash and recovery.
  while (disk.pending) {
    disk.complete();
    await settle();
    while (host.isRebuilding) await settle();
  }
  for (let i = 0; i < 100; i++) disk.landLate();
  await recoverAfterCrash('lost');
  checkInvariants();
  if (journal instanceof SimJournal) stats.tornTails = journal.torn;
  else {
    stats.lateLanded = journal.lateLanded;
    stats.fenced = journal.fenced;
  }
  return stats;
}
