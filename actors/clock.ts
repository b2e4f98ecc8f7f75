/**
 * Time for the engine. Shards read `now()` once per batch and per timer tick. A manual clock
 * lives in a SharedArrayBuffer so that a test on the main thread can move time for every shard
 * worker at once, deterministically.
 */
export interface Clock {
  now(): number;
}

export type ClockSpec = { kind: 'system' } | { kind: 'manual'; buffer: SharedArrayBuffer };

export const systemClock: Clock = { now: () => Date.now() };

export class ManualClock implements Clock {
  readonly buffer: SharedArrayBuffer;
  private readonly cell: Float64Array;

  constructor(startMs = 0, buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(8);
    this.cell = new Float64Array(this.buffer);
    if (!buffer) this.cell[0] = startMs;
  }

  now(): number {
    return this.cell[0];
  }

  set(ms: number): void {
    this.cell[0] = ms;
  }

  advance(ms: number): number {
    this.cell[0] += ms;
    return this.cell[0];
  }

  get spec(): ClockSpec {
    return { kind: 'manual', buffer: this.buffer };
  }
}

export function clockFromSpec(spec: ClockSpec): Clock {
  return spec.kind === 'manual' ? new ManualClock(0, spec.buffer) : systemClock;
}
