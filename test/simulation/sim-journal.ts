import {
  FRAME_HEADER_BYTES,
  FrameCheck,
  JournalError,
  frameHeader,
  validFrameAt,
} from '../../persistence/journal/index.js';
import type { Journal, JournalPosition } from '../../persistence/journal/index.js';

/** What happens to the append in flight when the process dies or the write fails. */
export type WriteFate = 'lost' | 'torn' | 'written';

interface InFlight {
  payload: Uint8Array;
  resolve: (pos: JournalPosition) => void;
  reject: (err: Error) => void;
}

/**
 * A journal on a simulated disk, in the file journal's exact frame format, whose appends
 * complete only when the simulation says so. A crash can leave the append in flight lost,
 * torn (a prefix of its frame on disk) or fully written but never acknowledged. Reading uses
 * the file journal's own frame check, so torn tails are handled by the code under test.
 */
export class SimJournal implements Journal {
  readonly kind = 'memory' as const;
  private disk = new Uint8Array(1 << 16);
  private diskLen = 0;
  private inFlight: InFlight | null = null;
  private readonly check = FrameCheck.salted(Buffer.from('5a17ed5a17ed5a17', 'hex'));
  torn = 0;

  get pending(): boolean {
    return this.inFlight !== null;
  }

  append(_shard: number, payload: Uint8Array): Promise<JournalPosition> {
    if (this.inFlight) return Promise.reject(new Error('SimJournal: second append in flight'));
    return new Promise((resolve, reject) => {
      this.inFlight = { payload, resolve, reject };
    });
  }

  private write(bytes: Uint8Array): void {
    if (this.diskLen + bytes.length > this.disk.length) {
      const bigger = new Uint8Array(Math.max(this.disk.length * 2, this.diskLen + bytes.length));
      bigger.set(this.disk.subarray(0, this.diskLen));
      this.disk = bigger;
    }
    this.disk.set(bytes, this.diskLen);
    this.diskLen += bytes.length;
  }

  /** The frame for `payload`, to be written at the end of the disk. */
  private frame(payload: Uint8Array): Uint8Array {
    const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
    out.set(frameHeader(payload, this.check, this.diskLen), 0);
    out.set(payload, FRAME_HEADER_BYTES);
    return out;
  }

  /** The append in flight reaches the disk and is acknowledged. */
  complete(): void {
    const f = this.inFlight!;
    this.inFlight = null;
    this.write(this.frame(f.payload));
    f.resolve(this.diskLen);
  }

  /** Leaves the append in flight to `fate`; `reject` says whether its caller hears an error. */
  private settle(fate: WriteFate, cut: number, notify: boolean): void {
    const f = this.inFlight;
    if (!f) return;
    this.inFlight = null;
    const frame = this.frame(f.payload);
    if (fate === 'written') this.write(frame);
    if (fate === 'torn') {
      this.write(frame.subarray(0, Math.max(1, Math.min(frame.length - 1, cut))));
      this.torn++;
    }
    if (notify)
      f.reject(new JournalError('journal_unavailable', `simulated write failure (${fate})`));
  }

  /** The process dies: the caller never hears about the append in flight. */
  crash(fate: WriteFate, cut: number): void {
    this.settle(fate, cut, false);
  }

  /** The write fails and the caller is told so. */
  fail(fate: WriteFate, cut: number): void {
    this.settle(fate, cut, true);
  }

  read(
    _shard: number,
    from: JournalPosition,
    visit: (p: Uint8Array, pos: JournalPosition) => void,
  ): Promise<JournalPosition> {
    let pos = from;
    for (;;) {
      const len = validFrameAt(this.disk, pos, this.diskLen, 1 << 30, this.check, pos);
      if (len < 0) break;
      const start = pos + FRAME_HEADER_BYTES;
      pos = start + len;
      visit(this.disk.slice(start, pos), pos);
    }
    this.diskLen = pos; // a torn tail is cut off, as the file journal does
    return Promise.resolve(pos);
  }

  durablePosition(): JournalPosition {
    return this.diskLen;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** What happens to a log's append in flight: `late` lands after newer ones, still stamped. */
export type LogFate = 'lost' | 'written' | 'late';

interface LogRecord {
  /** The offset the writer decided it for (the end it knew). */
  stamp: number;
  payload: Uint8Array;
}

/**
 * A Kafka-like journal for the simulation: a log of records, each stamped with the offset its
 * writer decided it for, that counts only if it landed there (the Kafka journal's fencing).
 * A failed append may land `late`: after the writer rebuilt and appended again, as a send the
 * network held past its timeout does. Appends complete when the simulation says so.
 */
export class SimLog implements Journal {
  readonly kind = 'memory' as const;
  private readonly records: LogRecord[] = [];
  /** The end of the log as the writer knows it: what it stamps its next append with. */
  private known = 0;
  private inFlight: (InFlight & { stamp: number }) | null = null;
  /** Failed appends still on their way, landing when `landLate` is called. */
  private readonly late: LogRecord[] = [];
  lateLanded = 0;
  fenced = 0;

  get pending(): boolean {
    return this.inFlight !== null;
  }

  get lateWaiting(): number {
    return this.late.length;
  }

  append(_shard: number, payload: Uint8Array): Promise<JournalPosition> {
    if (this.inFlight) return Promise.reject(new Error('SimLog: second append in flight'));
    return new Promise((resolve, reject) => {
      this.inFlight = { payload, resolve, reject, stamp: this.known };
    });
  }

  /** The append in flight lands at the end and is acknowledged, or fenced if not stamped so. */
  complete(): void {
    const f = this.inFlight!;
    this.inFlight = null;
    const at = this.land({ stamp: f.stamp, payload: f.payload });
    if (at !== f.stamp) {
      this.fenced++;
      f.reject(new JournalError('journal_fenced', `stamped ${f.stamp}, landed at ${at}`));
      return;
    }
    this.known = at + 1;
    f.resolve(this.known);
  }

  private land(r: LogRecord): number {
    this.records.push(r);
    return this.records.length - 1;
  }

  private settle(fate: LogFate, notify: boolean): void {
    const f = this.inFlight;
    if (!f) return;
    this.inFlight = null;
    const record = { stamp: f.stamp, payload: f.payload };
    if (fate === 'written') this.land(record);
    if (fate === 'late') this.late.push(record);
    if (notify)
      f.reject(new JournalError('journal_unavailable', `simulated send failure (${fate})`));
  }

  /** The process dies: the caller never hears about the append in flight. */
  crash(fate: LogFate): void {
    this.settle(fate, false);
  }

  /** The send fails (times out) and the caller is told so. */
  fail(fate: LogFate): void {
    this.settle(fate, true);
  }

  /** The oldest late send reaches the log now, wherever it ends. */
  landLate(): void {
    const r = this.late.shift();
    if (!r) return;
    this.land(r);
    this.lateLanded++;
  }

  read(
    _shard: number,
    from: JournalPosition,
    visit: (p: Uint8Array, pos: JournalPosition) => void,
  ): Promise<JournalPosition> {
    for (let i = from; i < this.records.length; i++) {
      // A record that landed elsewhere than stamped is void, for every reader.
      if (this.records[i].stamp === i) visit(this.records[i].payload.slice(), i + 1);
    }
    this.known = this.records.length;
    return Promise.resolve(this.known);
  }

  durablePosition(): JournalPosition {
    return this.known;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
