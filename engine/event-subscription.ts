import type { SkuEvent } from '../actors/index.js';
import { EngineError } from './errors.js';

/**
 * A bounded async iterator of engine events. Events arrive in batches from the shards; the
 * subscriber reads them one by one. Past `bufferMax` unread events it is ended with
 * `events_overflow` rather than letting memory grow without limit.
 */
export class EventSubscription implements AsyncIterableIterator<SkuEvent> {
  private buffer: SkuEvent[] = [];
  private head = 0;
  private waiting: ((r: IteratorResult<SkuEvent>) => void) | null = null;
  private failWaiting: ((e: Error) => void) | null = null;
  private error: EngineError | null = null;
  private ended = false;
  dropped = 0;

  constructor(
    private readonly bufferMax: number,
    private readonly onClose: () => void,
  ) {}

  push(events: SkuEvent[]): void {
    if (this.ended) return;
    if (this.buffer.length - this.head + events.length > this.bufferMax) {
      this.dropped += events.length;
      this.error = new EngineError('events_overflow');
      this.finish();
      return;
    }
    for (const e of events) this.buffer.push(e);
    this.wake();
  }

  private wake(): void {
    if (!this.waiting) return;
    const resolve = this.waiting;
    const reject = this.failWaiting!;
    this.waiting = null;
    this.failWaiting = null;
    if (this.head < this.buffer.length) resolve({ value: this.take(), done: false });
    else if (this.error) reject(this.error);
    else if (this.ended) resolve({ value: undefined, done: true });
  }

  private take(): SkuEvent {
    const e = this.buffer[this.head++];
    if (this.head > 1024 && this.head * 2 > this.buffer.length) {
      this.buffer = this.buffer.slice(this.head);
      this.head = 0;
    }
    return e;
  }

  next(): Promise<IteratorResult<SkuEvent>> {
    if (this.head < this.buffer.length && !this.error)
      return Promise.resolve({ value: this.take(), done: false });
    if (this.error) return Promise.reject(this.error);
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  /** Ends the subscription (also what `break` in a for-await loop calls). */
  return(): Promise<IteratorResult<SkuEvent>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  end(): void {
    if (this.ended) return;
    this.finish();
  }

  private finish(): void {
    this.ended = true;
    this.onClose();
    this.wake();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
