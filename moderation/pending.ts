/**
 * The main thread's record of every image between `classify()` and its answer, as one intrusive
 * doubly linked list in admission order. Every image gets the same timeout, so admission order
 * is also deadline order: the list head is always the next image to time out, and one timer
 * armed for the head serves them all. Images are dispatched from the front of the waiting part,
 * so the list is always the in-flight images followed by the waiting ones:
 *
 *   head ─▶ [in flight] ⇄ [in flight] ⇄ [waiting] ⇄ [waiting] ⇄ [waiting] ◀─ tail
 *                                        ▲ waitHead (next to dispatch)
 *
 * An image leaves the list when it settles (verdict, error, timeout, abort), from wherever it
 * is, in O(1); nothing is ever shifted or scanned.
 */
import assert from 'node:assert/strict';

export const State = { waiting: 0, inFlight: 1, settled: 2 } as const;
type StateValue = (typeof State)[keyof typeof State];

const EMPTY = new Uint8Array(0);
const NO_FLAGS = new Int32Array(0);

export class PendingImage {
  bytes: Uint8Array;
  readonly admittedAt: number;
  readonly deadline: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
  readonly signal: AbortSignal | null;
  onAbort: (() => void) | null = null;
  state: StateValue = State.waiting;
  /** Set at dispatch: the batch's cancel flags and this image's index in them. */
  cancelled: Int32Array = NO_FLAGS;
  slot = -1;
  prev: PendingImage | null = null;
  next: PendingImage | null = null;

  constructor(
    bytes: Uint8Array,
    admittedAt: number,
    timeoutMs: number,
    signal: AbortSignal | null,
    resolve: (value: unknown) => void,
    reject: (err: unknown) => void,
  ) {
    this.bytes = bytes;
    this.admittedAt = admittedAt;
    this.deadline = admittedAt + timeoutMs;
    this.signal = signal;
    this.resolve = resolve;
    this.reject = reject;
  }
}

export class PendingList {
  head: PendingImage | null = null;
  tail: PendingImage | null = null;
  waitHead: PendingImage | null = null;
  waiting = 0;
  inFlight = 0;

  append(p: PendingImage): void {
    p.prev = this.tail;
    if (this.tail) this.tail.next = p;
    else this.head = p;
    this.tail = p;
    if (this.waitHead === null) this.waitHead = p;
    this.waiting++;
  }

  /** Moves the first `n` waiting images to in flight and returns them. */
  takeWaiting(n: number): PendingImage[] {
    assert.ok(n <= this.waiting, 'takeWaiting beyond the waiting images');
    const out = new Array<PendingImage>(n);
    let p = this.waitHead;
    for (let i = 0; i < n; i++) {
      out[i] = p!;
      p!.state = State.inFlight;
      p = p!.next;
    }
    this.waitHead = p;
    this.waiting -= n;
    this.inFlight += n;
    return out;
  }

  /** Unlinks `p` and marks it settled; the caller answers it. */
  remove(p: PendingImage): void {
    assert.notEqual(p.state, State.settled, 'image settled twice');
    if (p.state === State.waiting) {
      this.waiting--;
      if (this.waitHead === p) this.waitHead = p.next;
    } else {
      this.inFlight--;
    }
    if (p.prev) p.prev.next = p.next;
    else this.head = p.next;
    if (p.next) p.next.prev = p.prev;
    else this.tail = p.prev;
    p.prev = null;
    p.next = null;
    p.state = State.settled;
    p.bytes = EMPTY; // the upload may be megabytes; do not hold it until the caller lets go
  }
}
