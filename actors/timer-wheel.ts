/**
 * One coarse hashed timer wheel per shard drives hold expiry, instead of one `setTimeout` per
 * hold. An entry is an (actor index, reservation number) pair in a flat Int32Array per slot;
 * the deadline is not stored, the wheel asks the owner when it visits the entry, so a hold
 * confirmed in the meantime costs nothing but being dropped. Entries scheduled further out than
 * one revolution stay in their slot and are looked at again on the next revolution. The wheel
 * never reads a clock: the shard passes `now` in, so tests drive time by hand.
 *
 *   slot:   0        1        2     ...  N-1
 *          [a,r,a,r][a,r]    []         [..]   ◀── cursor moves one slot per tickMs
 */
export class TimerWheel {
  private readonly slots: Int32Array[];
  private readonly lengths: Int32Array;
  private readonly tickMs: number;
  private cursorTick: number; // the next tick to visit
  size = 0;

  constructor(tickMs: number, slotCount = 1024, startMs = 0) {
    this.tickMs = tickMs;
    this.slots = Array.from({ length: slotCount }, () => new Int32Array(8));
    this.lengths = new Int32Array(slotCount);
    this.cursorTick = Math.floor(startMs / tickMs);
  }

  schedule(actor: number, reservation: number, deadlineMs: number): void {
    // An entry is never placed behind the cursor: it would wait a whole revolution.
    const tick = Math.max(Math.ceil(deadlineMs / this.tickMs), this.cursorTick);
    const s = tick % this.slots.length;
    let slot = this.slots[s];
    const n = this.lengths[s];
    if (n + 2 > slot.length) {
      const bigger = new Int32Array(slot.length * 2);
      bigger.set(slot);
      this.slots[s] = slot = bigger;
    }
    slot[n] = actor;
    slot[n + 1] = reservation;
    this.lengths[s] = n + 2;
    this.size++;
  }

  /**
   * Visits every entry in the slots up to `nowMs`. `visit(actor, reservation)` returns true when
   * the entry is done with (expired now, or no longer held) and false to keep it for a later
   * revolution. Returns the number of entries dropped.
   */
  advance(nowMs: number, visit: (actor: number, reservation: number) => boolean): number {
    const lastTick = Math.floor(nowMs / this.tickMs);
    if (lastTick < this.cursorTick) return 0;
    // After a long pause there is no point visiting the same slot more than once per call.
    const visits = Math.min(lastTick - this.cursorTick + 1, this.slots.length);
    let dropped = 0;
    for (let t = lastTick - visits + 1; t <= lastTick; t++) {
      const s = t % this.slots.length;
      const n = this.lengths[s];
      if (n === 0) continue;
      const slot = this.slots[s];
      let keep = 0;
      for (let i = 0; i < n; i += 2) {
        if (visit(slot[i], slot[i + 1])) {
          dropped++;
        } else {
          slot[keep++] = slot[i];
          slot[keep++] = slot[i + 1];
        }
      }
      this.lengths[s] = keep;
      // A slot that held a burst gives its memory back once it is empty again.
      if (keep === 0 && slot.length > 1024) this.slots[s] = new Int32Array(8);
    }
    this.size -= dropped;
    this.cursorTick = lastTick + 1;
    return dropped;
  }
}
