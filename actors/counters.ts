/**
 * How each event moves a SKU's stock counters: the one source of these rules for the actor,
 * which moves its own fields (it passes `this`), and for the MySQL fold, which moves a row's.
 *
 *   available ──reserve──▶ reserved ──confirm──▶ sold
 *       ▲                     │                   │
 *       ├──release────────────┘                   │   release = cancel or expire
 *       └──return─────────────────────────────────┘   (return also counts into returned)
 *
 *   restock: new units straight into available (and counted into restocked)
 *
 * The function checks nothing: the actor asserts its invariants after the move, where it
 * knows the SKU to name in the message, and the fold trusts the journal the actor wrote.
 */
export interface StockCounters {
  available: number;
  reserved: number;
  sold: number;
  returned: number;
  restocked: number;
}

/**
 * The moves, as small integers: a caller passes a constant, so once V8 inlines
 * `moveCounters` at the call site the switch folds away and no string is compared per call.
 * `cancelled` and `expired` are the same move (`release`).
 */
export const CounterMove = { reserve: 0, confirm: 1, release: 2, return: 3, restock: 4 } as const;
export type CounterMoveCode = (typeof CounterMove)[keyof typeof CounterMove];

/**
 * Moves `qty` units as `move` says. This runs for every reservation on the hot path, so it
 * allocates nothing and touches only the five fields. Inside a shard's thread only actors
 * call it, so its property accesses stay monomorphic; a process that also folds MySQL rows on
 * the same thread (shards inline with the projector) makes them two-shaped, still inline-cached.
 */
export function moveCounters(c: StockCounters, move: CounterMoveCode, qty: number): void {
  switch (move) {
    case CounterMove.reserve:
      c.available -= qty;
      c.reserved += qty;
      return;
    case CounterMove.confirm:
      c.reserved -= qty;
      c.sold += qty;
      return;
    case CounterMove.release:
      c.reserved -= qty;
      c.available += qty;
      return;
    case CounterMove.return:
      c.sold -= qty;
      c.returned += qty;
      c.available += qty;
      return;
    case CounterMove.restock:
      c.available += qty;
      c.restocked += qty;
      return;
  }
}
