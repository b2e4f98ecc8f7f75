/**
 * One coarse hashed timer wheel per shard drives hold expiry, instead of one `setTimeout` per
 * hold. Entries are (actor index, reservation number, deadline) triples kept in flat arrays per
 * slot; `advance(now)` visits each slot whose tick has passed and hands back the entries that are
 * due. Entries scheduled further out than one revolution stay in their slot and are looked at
 * again on the next revolution. The wheel never reads a clock: the shard passes `now` in, so tests
 * drive time by hand.
 *
 *   slot:   0     1     2    ...  N-1
 *          [a,r,d][a,r,d]          ◀── cursor moves one slot per tickMs
 */
export class TimerWheel {
  private readonly slots: number[][];
  private readonly tickMs: number;
  private cursorTick: number; // the next tick to visit
  size = 0;

  constructor(tickMs: number, slotCount = 1024, startMs = 0) {
    this.tickMs = tickMs;
    this.slots = Array.from({ length: slotCount }, () => []);
    this.cursorTick = Math.floor(startMs / tickMs);
  }

  schedule(actor: number, reservation: number, deadlineMs: number): void {
    // An entry is never placed behind the cursor: it would wait a whole revolution.
    const tick = Math.max(Math.ceil(deadlineMs / this.tickMs), this.cursorTick);
    this.slots[tick % this.slots.length].push(actor, reservation, deadlineMs);
    this.size++;
  }

  /**
   * Visits every slot up to `nowMs` and calls `due(actor, reservation, deadline)` for each entry
   * whose deadline has passed. Returns the number of entries handed out.
   */
  advance(nowMs: number, due: (actor: number, reservation: number, deadlineMs: number) => void): number {
    const lastTick = Math.floor(nowMs / this.tickMs);
    if (lastTick < this.cursorTick) return 0;
    // After a long pause there is no point visiting the same slot more than once per call.
    const visits = Math.min(lastTick - this.cursorTick + 1, this.slots.length);
    const first = lastTick - visits + 1;
    let fired = 0;
    for (let t = first; t <= lastTick; t++) {
      const slot = this.slots[t % this.slots.length];
      if (slot.length === 0) continue;
      let keep = 0;
      for (let i = 0; i < slot.length; i += 3) {
        if (slot[i + 2] <= nowMs) {
          due(slot[i], slot[i + 1], slot[i + 2]);
          fired++;
        } else {
          slot[keep++] = slot[i];
          slot[keep++] = slot[i + 1];
          slot[keep++] = slot[i + 2];
        }
      }
      slot.length = keep;
    }
    this.size -= fired;
    this.cursorTick = lastTick + 1;
    return fired;
  }
}
