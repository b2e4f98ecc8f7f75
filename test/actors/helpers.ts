import {
  CollectingEventLog,
  SkuActor,
  settingsOf,
  Status,
  STATUS_NAMES,
} from '../../actors/index.js';
import type { SkuDefinition, SkuEvent } from '../../actors/index.js';

/** An actor with a collecting event log, defined at time 0. */
export function makeActor(def: Partial<SkuDefinition> = {}, now = 0) {
  const log = new CollectingEventLog();
  const actor = SkuActor.define(settingsOf({ sku: 'tee', stock: 10, ...def }, 60_000), 0, now, log);
  return { actor, log };
}

export const name = (status: number) => STATUS_NAMES[status];

/** Rebuilds an actor from events alone. */
export function replay(events: SkuEvent[]): SkuActor {
  const [first, ...rest] = events;
  if (first.type !== 'sku_defined') throw new Error('first event must be sku_defined');
  const actor = SkuActor.fromEvent(first, 0);
  for (const ev of rest) actor.applyEvent(ev);
  return actor;
}

/** The conservation invariants of DESIGN.md, checked on one actor. */
export function invariantViolations(a: SkuActor): string[] {
  const s = a.snapshot();
  const out: string[] = [];
  if (s.available < 0 || s.reserved < 0 || s.sold < 0)
    out.push(`negative counter ${JSON.stringify(s)}`);
  if (s.available + s.reserved + s.sold !== s.initialStock + s.restocked) {
    out.push(
      `units not conserved: ${s.available}+${s.reserved}+${s.sold} != ${s.initialStock}+${s.restocked}`,
    );
  }
  if (s.reserved + s.sold > s.initialStock + s.restocked) out.push('oversold');
  if (a.userUnitsTotal() !== s.reserved + s.sold) {
    out.push(`per-user units ${a.userUnitsTotal()} != reserved+sold ${s.reserved + s.sold}`);
  }
  return out;
}

export { Status };
