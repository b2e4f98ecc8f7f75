import { Writable } from 'node:stream';
import type { SkuEvent } from '../../actors/index.js';

/** An output stream that keeps what it is given, and says when it holds `n` lines. */
export class Collect extends Writable {
  text = '';
  private waiters: { n: number; resolve: () => void }[] = [];

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    const have = this.lines().length;
    this.waiters = this.waiters.filter((w) => (have >= w.n ? (w.resolve(), false) : true));
    done();
  }

  lines(): string[] {
    return this.text.split('\n').filter((l) => l.length > 0);
  }

  /** Resolves once `n` lines have been written. */
  untilLines(n: number): Promise<void> {
    if (this.lines().length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

export interface TailLine {
  shard: number;
  position: number;
  event: SkuEvent;
}

/** The JSON lines of `stockade tail`, split into where they came from and the event. */
export function parseJsonLines(out: Collect): TailLine[] {
  return out.lines().map((line) => {
    const parsed = JSON.parse(line) as { shard: number; position: number } & SkuEvent;
    const { shard, position, ...event } = parsed;
    return { shard, position, event };
  });
}
