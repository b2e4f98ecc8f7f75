/**
 * The main side's record of a batch sent to a shard (a local worker, or another member that
 * owns it): per request its SKU, number, waiter and slot, to build each result object from the
 * shard's binary results. Shared by `ShardClient` and `RemoteShard`.
 */
import { RESULT_STRIDE, Status, STATUS_NAMES } from '../actors/index.js';
import { rejectionOf, reservationId, stateNameOrNull } from './results.js';
import type { Reserved } from './results.js';
import type { Rejection } from './results.js';

/** Collects the results of one call (one request, or a whole `reserveMany`) across shards. */
export class Waiter {
  readonly results: unknown[];
  remaining: number;
  constructor(
    size: number,
    private readonly done: (results: unknown[]) => void,
  ) {
    this.results = new Array<unknown>(size);
    this.remaining = size;
  }
  settle(index: number, result: unknown): void {
    this.results[index] = result;
    if (--this.remaining === 0) this.done(this.results);
  }
}

/**
 * What the main side keeps per request of a batch until the results come back, to build the
 * result objects. Column arrays that grow once and are reused batch after batch.
 */
export class PendingBatch {
  n = 0;
  nums = new Float64Array(1024); // qty for reserve and restock, reservation number for commands
  slots = new Int32Array(1024);
  skus: string[] = [];
  waiters: Waiter[] = [];

  add(sku: string, num: number, waiter: Waiter, slot: number): void {
    const i = this.n++;
    if (i === this.nums.length) this.grow();
    this.nums[i] = num;
    this.slots[i] = slot;
    this.skus[i] = sku;
    this.waiters[i] = waiter;
  }

  private grow(): void {
    const nums = new Float64Array(this.nums.length * 2);
    nums.set(this.nums);
    const slots = new Int32Array(this.slots.length * 2);
    slots.set(this.slots);
    this.nums = nums;
    this.slots = slots;
  }

  /** Settles every request from the shard's results (`RESULT_STRIDE` numbers each). */
  settle(out: Float64Array): void {
    const { nums, slots, skus, waiters } = this;
    for (let i = 0, o = 0; i < this.n; i++, o += RESULT_STRIDE) {
      waiters[i].settle(slots[i], decode(skus[i], nums[i], out[o], out[o + 1], out[o + 2]));
    }
  }

  /** Settles every request with one refusal, and clears. */
  fail(r: Rejection): void {
    for (let i = 0; i < this.n; i++) this.waiters[i].settle(this.slots[i], r);
    this.clear();
  }

  /** Forgets the references (so waiters can be collected) and makes the batch reusable. */
  clear(): void {
    this.skus.fill('', 0, this.n);
    this.waiters.fill(NO_WAITER, 0, this.n);
    this.n = 0;
  }
}

const NO_WAITER = new Waiter(1, () => {});

function decode(sku: string, num: number, word: number, value: number, expiresAt: number): unknown {
  const status = word & 0xff;
  const aux = word >>> 8;
  switch (status) {
    case Status.reserved:
      // Plain data, every field its own (it prints, spreads and serializes whole); the id is
      // a cons string of the SKU and the number, not flattened until someone reads it.
      return {
        status: 'reserved',
        reservationId: reservationId(sku, value),
        sku,
        qty: num,
        expiresAt,
        duplicate: aux === 1,
      } satisfies Reserved;
    case Status.confirmed:
    case Status.cancelled:
    case Status.returned:
      return {
        status: STATUS_NAMES[status],
        reservationId: reservationId(sku, num),
        state: stateNameOrNull(aux),
      };
    case Status.restocked:
      return { status: 'restocked', sku, available: value };
    case Status.sale_closed:
      return { status: 'sale_closed', sku };
    default:
      return rejectionOf(status, aux);
  }
}
