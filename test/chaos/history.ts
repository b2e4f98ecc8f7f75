/**
 * A history of purchases as the buyers saw them, and the checker that holds it against what the
 * journal says happened, in the manner of Jepsen: each operation is invoked, then ends ok (201),
 * refused (a definite no: 4xx), or unknown (a 5xx, a reset, a timeout: it may or may not have
 * happened). After the run every unknown key is retried until a definite answer says which it
 * was, and then:
 *
 *   - every ok is in the journal exactly once, under the reservation id the buyer was given;
 *   - no idempotency key has two reservations in the journal;
 *   - every answer for one key names the same reservation (duplicates are identical);
 *   - a key whose retry was refused is not in the journal; one whose retry was ok is, once;
 *   - no SKU holds more than its stock (reserved + sold ≤ stock + restocked), in the journal
 *     and in a fresh replay, which agree;
 *   - a key reused with another body is refused (idempotency_conflict), never reserved again;
 *   - a hold ends at most once (confirmed, cancelled or expired: one of them, once), so a hold
 *     whose buyer never confirms gives its unit back exactly once, across restarts; with
 *     `holdsEnded`, every hold must have ended by the time the journal is read.
 */
import { decodeEvents } from '../../actors/index.js';
import type { SkuEvent } from '../../actors/index.js';
import { fileJournalSource } from '../../persistence/journal/index.js';

export type Outcome = 'ok' | 'refused' | 'unknown';

export interface Op {
  key: string;
  sku: string;
  userId: string;
  qty: number;
  outcome: Outcome;
  /** ok: the reservation id; refused/unknown: the error code, or the network failure. */
  detail: string;
  at: number;
}

/** What an HTTP answer (or its absence) means for a purchase. */
export function outcomeOf(status: number | null): Outcome {
  if (status === 201) return 'ok';
  if (status !== null && status >= 400 && status < 500) return 'refused';
  return 'unknown'; // 5xx, reset, refused connection, timeout: it may have happened
}

export class History {
  readonly ops: Op[] = [];
  /** The body each key was first sent with (a key reused with another body must be refused). */
  readonly bodies = new Map<string, { sku: string; userId: string; qty: number }>();
  /** Keys sent again on purpose with another body: each must be refused. */
  readonly conflicting: Op[] = [];

  add(op: Op): void {
    if (!this.bodies.has(op.key)) {
      this.bodies.set(op.key, { sku: op.sku, userId: op.userId, qty: op.qty });
    }
    this.ops.push(op);
  }

  count(outcome: Outcome): number {
    return this.ops.filter((o) => o.outcome === outcome).length;
  }

  /** Keys whose every answer so far was unknown: the retries must settle them. */
  unresolved(): string[] {
    const definite = new Set(this.ops.filter((o) => o.outcome !== 'unknown').map((o) => o.key));
    return [...this.bodies.keys()].filter((k) => !definite.has(k));
  }
}

/** Every event of a file journal's shards, read as an outside reader reads them. */
export async function fileJournalEvents(dir: string): Promise<SkuEvent[]> {
  const source = fileJournalSource(dir, null);
  const events: SkuEvent[] = [];
  try {
    for (const shard of source.shards()) {
      for await (const batch of source.batches(shard, 0)) {
        for (const p of batch) events.push(...decodeEvents(p.payload));
      }
    }
  } finally {
    await source.close();
  }
  return events;
}

export interface SkuState {
  stock: number;
  reserved: number;
  sold: number;
}

export interface Verdict {
  /** Each finding is a violation; an empty list is a pass. */
  violations: string[];
  acknowledged: number;
  inJournal: number;
  lost: number;
  duplicated: number;
  oversold: number;
}

/**
 * Holds the history against the journal's events and a fresh replay's SKU states. `stock` is
 * each SKU's stock as defined (plus restocks, if any).
 */
export function check(
  h: History,
  events: SkuEvent[],
  replayed: Map<string, SkuState | null>,
  stock: Map<string, number>,
  /** Every hold's time is up when the journal is read: each must have ended. */
  holdsEnded = false,
): Verdict {
  const violations: string[] = [];
  const reservedByKey = new Map<string, string[]>();
  const perSku = new Map<string, number>();
  /** Per reservation (`sku:id`), the events that ended its hold. */
  const endings = new Map<string, string[]>();
  for (const e of events) {
    if (e.type === 'confirmed' || e.type === 'cancelled' || e.type === 'expired') {
      const id = `${e.sku}:${e.reservation}`;
      endings.set(id, [...(endings.get(id) ?? []), e.type]);
    }
    // Units held or sold: a hold that ends (cancelled, expired, returned) gives its units back.
    if (e.type === 'cancelled' || e.type === 'expired' || e.type === 'returned') {
      perSku.set(e.sku, (perSku.get(e.sku) ?? 0) - e.qty);
    }
    if (e.type !== 'reserved') continue;
    const ids = reservedByKey.get(e.idempotencyKey) ?? [];
    ids.push(`${e.sku}:${e.reservation}`);
    reservedByKey.set(e.idempotencyKey, ids);
    perSku.set(e.sku, (perSku.get(e.sku) ?? 0) + e.qty);
  }
  for (const [id, ends] of endings) {
    if (ends.length > 1)
      violations.push(`hold ${id} ended ${ends.length} times: ${ends.join(', ')}`);
  }
  if (holdsEnded) {
    for (const ids of reservedByKey.values()) {
      for (const id of ids) if (!endings.has(id)) violations.push(`hold ${id} never ended`);
    }
  }
  let duplicated = 0;
  for (const [key, ids] of reservedByKey) {
    if (ids.length > 1) {
      duplicated++;
      violations.push(`key ${key} reserved ${ids.length} times in the journal: ${ids.join(', ')}`);
    }
  }
  // Answers per key: every ok the same reservation, present in the journal under it.
  const okIds = new Map<string, Set<string>>();
  const refusedKeys = new Set<string>();
  for (const op of h.ops) {
    if (op.outcome === 'ok') {
      const ids = okIds.get(op.key) ?? new Set<string>();
      ids.add(op.detail);
      okIds.set(op.key, ids);
    } else if (op.outcome === 'refused' && op.detail !== 'rate_limited') {
      refusedKeys.add(op.key);
    }
  }
  let lost = 0;
  for (const [key, ids] of okIds) {
    if (ids.size > 1) violations.push(`key ${key} answered with ${[...ids].join(' and ')}`);
    const inJournal = reservedByKey.get(key);
    if (!inJournal) {
      lost++;
      violations.push(`key ${key}: 201 (${[...ids][0]}) but not in the journal`);
    } else if (!inJournal.includes([...ids][0])) {
      violations.push(`key ${key}: 201 as ${[...ids][0]}, journal has ${inJournal.join(', ')}`);
    }
    if (refusedKeys.has(key)) {
      // A refusal after an ok is fine only for the deliberate conflicting bodies (below).
      const refusals = h.ops.filter(
        (o) =>
          o.key === key &&
          o.outcome === 'refused' &&
          o.detail !== 'idempotency_conflict' &&
          o.detail !== 'rate_limited',
      );
      if (refusals.length > 0) {
        violations.push(`key ${key}: answered 201 and also ${refusals[0].detail}`);
      }
    }
  }
  for (const key of refusedKeys) {
    if (okIds.has(key)) continue;
    if (reservedByKey.has(key)) {
      violations.push(`key ${key}: only refused, yet reserved in the journal`);
    }
  }
  for (const key of h.unresolved()) violations.push(`key ${key}: never got a definite answer`);
  for (const op of h.conflicting) {
    if (op.outcome !== 'refused' || op.detail !== 'idempotency_conflict') {
      violations.push(`key ${op.key} reused with another body: ${op.outcome} ${op.detail}`);
    }
  }
  let oversold = 0;
  for (const [sku, units] of stock) {
    const held = perSku.get(sku) ?? 0;
    const snap = replayed.get(sku);
    if (!snap) {
      violations.push(`${sku}: missing after replay`);
      continue;
    }
    if (snap.reserved + snap.sold > units || held > units) {
      oversold += Math.max(snap.reserved + snap.sold, held) - units;
      violations.push(`${sku}: ${held} reserved in the journal, stock ${units}`);
    }
    if (snap.reserved + snap.sold !== held) {
      violations.push(`${sku}: replay holds ${snap.reserved + snap.sold}, journal ${held}`);
    }
  }
  return {
    violations,
    acknowledged: okIds.size,
    inJournal: reservedByKey.size,
    lost,
    duplicated,
    oversold,
  };
}
