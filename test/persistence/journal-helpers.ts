import {
  BinaryEventLog,
  CollectingEventLog,
  RESERVATION_COMMANDS,
  SkuActor,
  decodeEvents,
  settingsOf,
} from '../../actors/index.js';
import type { EventLog, SkuEvent } from '../../actors/index.js';
import type { Journal } from '../../persistence/journal/index.js';

/** Group commits from real actors, and what a journal gives back (file and Kafka tests). */
type TransitionEventType = Parameters<EventLog['transition']>[3];

/** Every event goes to both logs: the binary one is appended, the collected one is the truth. */
class TeeLog implements EventLog {
  constructor(
    private readonly a: EventLog,
    private readonly b: EventLog,
  ) {}
  skuDefined(x: SkuActor, seq: number, at: number): void {
    this.a.skuDefined(x, seq, at);
    this.b.skuDefined(x, seq, at);
  }
  skuUpdated(x: SkuActor, seq: number, at: number): void {
    this.a.skuUpdated(x, seq, at);
    this.b.skuUpdated(x, seq, at);
  }
  reserved(x: SkuActor, seq: number, at: number, r: number): void {
    this.a.reserved(x, seq, at, r);
    this.b.reserved(x, seq, at, r);
  }
  transition(x: SkuActor, seq: number, at: number, type: TransitionEventType, r: number): void {
    this.a.transition(x, seq, at, type, r);
    this.b.transition(x, seq, at, type, r);
  }
  restocked(x: SkuActor, seq: number, at: number, qty: number): void {
    this.a.restocked(x, seq, at, qty);
    this.b.restocked(x, seq, at, qty);
  }
  saleClosed(x: SkuActor, seq: number, at: number): void {
    this.a.saleClosed(x, seq, at);
    this.b.saleClosed(x, seq, at);
  }
}

export interface Commit {
  payload: Uint8Array;
  /** The events as the actors emitted them (CollectingEventLog), in emission order. */
  events: SkuEvent[];
}

const CONFIRM = RESERVATION_COMMANDS.indexOf('confirm');
const CANCEL = RESERVATION_COMMANDS.indexOf('cancel');

/**
 * A flash sale on real `SkuActor`s, cut into group commits: each `commit(n)` runs `n` commands
 * (reserve mostly; confirm, cancel, restock, update and close now and then) over the SKUs, with
 * a seeded generator, and returns them as one binary payload plus the events as objects.
 */
export function saleCommits(skus: string[], seed = 1) {
  const binary = new BinaryEventLog();
  const collected = new CollectingEventLog();
  const log = new TeeLog(binary, collected);
  let rnd = seed >>> 0 || 1;
  const next = (n: number) => {
    rnd = (Math.imul(rnd, 1_103_515_245) + 12_345) >>> 0;
    return rnd % n;
  };
  let now = 1_700_000_000_000;
  let n = 0;
  const actors: SkuActor[] = [];
  const define = (i: number) => {
    const name = `Tee ${skus[i]} ✓`;
    const def = { sku: skus[i], stock: 1_000_000, perUserLimit: 50, price: 1999, name };
    actors[i] = SkuActor.define(settingsOf(def, 600_000), i, now, log);
  };
  const command = (a: SkuActor) => {
    const roll = next(100);
    const r = a.reservationCount > 0 ? 1 + next(a.reservationCount) : 0;
    if (roll < 70 || r === 0) {
      a.reserveStrings(`user-${next(500)}`, `key-${n++}`, 1 + next(3), now, log);
    } else if (roll < 85) a.command(r, CONFIRM, now, log);
    else if (roll < 95) a.command(r, CANCEL, now, log);
    else if (roll < 98) a.restock(1 + next(10), now, log);
    else a.update({ price: 2000 + next(100), name: `Tee ${a.sku} v${n}` }, now, log);
  };
  return {
    commit(commands: number): Commit {
      // (Some commands emit nothing, e.g. a repeated confirm: go on until there is an event.)
      for (let c = 0; c < commands || binary.count === 0; c++) {
        now += 1 + next(5);
        const i = next(skus.length);
        if (!actors[i]) define(i);
        else command(actors[i]);
      }
      return take();
    },
    /** Closes every SKU's sale: one `sale_closed` each. */
    close(): Commit {
      for (const a of actors) a?.close(now, log);
      return take();
    },
  };
  function take(): Commit {
    const payload = binary.take();
    if (!payload) throw new Error('no events in this commit');
    return { payload, events: collected.take() };
  }
}

/** Events grouped per SKU, each SKU's in order (the order a partition must keep). */
export function perSku(events: readonly SkuEvent[]): Map<string, SkuEvent[]> {
  const out = new Map<string, SkuEvent[]>();
  for (const ev of events) {
    const list = out.get(ev.sku);
    if (list) list.push(ev);
    else out.set(ev.sku, [ev]);
  }
  return out;
}

/** Every payload read back, decoded, with the positions `read` reported. */
export interface ReadBack {
  payloads: Uint8Array[];
  positions: number[];
  events: SkuEvent[];
  end: number;
}

export async function readBack(journal: Journal, shard: number, from = 0): Promise<ReadBack> {
  const payloads: Uint8Array[] = [];
  const positions: number[] = [];
  const end = await journal.read(shard, from, (p, pos) => {
    payloads.push(p);
    positions.push(pos);
  });
  return { payloads, positions, events: payloads.flatMap((p) => decodeEvents(p)), end };
}
