/**
 * One thread of the open-loop generator (bench/load/open-loop.ts). Request k of this thread is
 * due at `start + (k + offset) / rate`, whether or not the server has answered the earlier ones:
 * a due request goes out on a free keep-alive connection, or waits for one in a backlog, and its
 * latency is counted from when it was *due* (its intended send time) to its answer. A server
 * that stalls for 200 ms therefore shows 200 ms of latency on every request due in that time,
 * not only on the few that were in flight (coordinated omission).
 *
 * Bounded: the backlog holds at most one second of requests (past it a due request is counted
 * as dropped — it could not have been sent on time — and fails the step), at most
 * `connections` sockets, and the thread stops sending at the end of the step and waits at most
 * `drainMs` for the answers still out (those count as timed out).
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { rawRequest } from './requests.js';
import type { LoadSpec } from './requests.js';

export interface OpenLoopJob {
  port: number;
  /** This thread's requests per second. */
  rate: number;
  /** Its phase in [0, 1): threads interleave their schedules instead of firing together. */
  offset: number;
  durationMs: number;
  connections: number;
  drainMs: number;
  spec: LoadSpec;
  tag: string;
}

export interface OpenLoopThreadResult {
  /** Latency of each answered request from its intended send time, in ms. */
  latencies: Float64Array;
  /** How late each sent request left, after its intended send time, in ms. */
  lateness: Float64Array;
  /** Answers by status code. */
  statuses: Record<number, number>;
  due: number;
  dropped: number;
  timedOut: number;
  socketErrors: number;
  /** The step's length (answers that came while draining count toward it). */
  elapsedMs: number;
}

interface Conn {
  socket: Socket;
  /** Intended send time of the request in flight; -1 when idle. */
  intended: number;
  buf: Buffer;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
const LENGTH_NAMES = [Buffer.from('\r\nContent-Length:'), Buffer.from('\r\ncontent-length:')];

/** The Content-Length of the response whose head ends at `head` (0 if it has none). */
function contentLength(buf: Buffer, head: number): number {
  for (const name of LENGTH_NAMES) {
    const at = buf.indexOf(name);
    if (at < 0 || at > head) continue;
    let n = 0;
    for (let i = at + name.length; i < head; i++) {
      const d = buf[i];
      if (d >= 48 && d <= 57) n = n * 10 + d - 48;
      else if (d !== 32) break;
    }
    return n;
  }
  return 0;
}

class OpenLoopThread {
  private readonly intervalMs: number;
  private readonly backlogMax: number;
  private readonly latencies: Float64Array;
  /**
   * How late each request left after its intended time: the generator's own share of the
   * latency (a backlog waiting for a free connection, or the thread not getting the CPU).
   */
  private readonly lateness: Float64Array;
  private answered = 0;
  private readonly statuses: Record<number, number> = {};
  /** Intended send times of due requests waiting for a free connection, oldest first. */
  private readonly backlog: number[] = [];
  private readonly idle: Conn[] = [];
  private readonly conns: Conn[] = [];
  private due = 0;
  private sent = 0;
  private dropped = 0;
  private socketErrors = 0;
  private inFlight = 0;
  private lost = 0;
  private start = 0;
  private end = 0;

  constructor(private readonly job: OpenLoopJob) {
    this.intervalMs = 1000 / job.rate;
    this.backlogMax = Math.max(1, Math.ceil(job.rate));
    this.latencies = new Float64Array(Math.ceil((job.rate * job.durationMs) / 1000) + 16);
    this.lateness = new Float64Array(this.latencies.length);
  }

  async run(): Promise<OpenLoopThreadResult> {
    await Promise.all(Array.from({ length: this.job.connections }, () => this.open()));
    this.start = performance.now() + 20;
    this.end = this.start + this.job.durationMs;
    // Due requests are released every millisecond (a timer cannot fire more finely); each
    // keeps its own intended time, so the release granularity adds no unmeasured delay.
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        this.release();
        if (performance.now() < this.end) return;
        clearInterval(tick);
        resolve();
      }, 1);
    });
    const stopDrain = performance.now() + this.job.drainMs;
    while (this.inFlight > 0 && performance.now() < stopDrain)
      await new Promise((r) => setTimeout(r, 5));
    const timedOut = this.inFlight + this.backlog.length + this.lost;
    for (const c of this.conns) c.socket.destroy();
    return {
      latencies: this.latencies.slice(0, this.answered),
      lateness: this.lateness.slice(0, Math.min(this.sent, this.lateness.length)),
      statuses: this.statuses,
      due: this.due,
      dropped: this.dropped,
      timedOut,
      socketErrors: this.socketErrors,
      elapsedMs: this.job.durationMs,
    };
  }

  /** Request k is due at start + (k + offset) · interval: queued once that time has come. */
  private release(): void {
    const now = Math.min(performance.now(), this.end);
    const x = (now - this.start) / this.intervalMs - this.job.offset;
    // Before the end: every request due at or before now; at the end: those due before it.
    const target = x < 0 ? 0 : now >= this.end ? Math.ceil(x) : Math.floor(x) + 1;
    while (this.due < target) {
      const intended = this.start + (this.due + this.job.offset) * this.intervalMs;
      this.due++;
      if (this.backlog.length >= this.backlogMax) this.dropped++;
      else this.backlog.push(intended);
    }
    while (this.backlog.length > 0 && this.idle.length > 0)
      this.send(this.idle.pop()!, this.backlog.shift()!);
  }

  private send(c: Conn, intended: number): void {
    const k = this.sent++;
    if (k < this.lateness.length) this.lateness[k] = performance.now() - intended;
    c.intended = intended;
    this.inFlight++;
    c.socket.write(rawRequest(this.job.spec, this.job.tag, k));
  }

  private onData(c: Conn, chunk: Buffer): void {
    c.buf = c.buf.length === 0 ? chunk : Buffer.concat([c.buf, chunk]);
    for (;;) {
      const head = c.buf.indexOf(HEAD_END);
      if (head < 0) return;
      const size = head + 4 + contentLength(c.buf, head);
      if (c.buf.length < size) return;
      // "HTTP/1.1 201 ...": the status is bytes 9..11.
      const status = (c.buf[9] - 48) * 100 + (c.buf[10] - 48) * 10 + (c.buf[11] - 48);
      c.buf = c.buf.length === size ? EMPTY : c.buf.subarray(size);
      this.statuses[status] = (this.statuses[status] ?? 0) + 1;
      if (c.intended >= 0 && this.answered < this.latencies.length)
        this.latencies[this.answered++] = performance.now() - c.intended;
      c.intended = -1;
      this.inFlight--;
      if (this.backlog.length > 0) this.send(c, this.backlog.shift()!);
      else this.idle.push(c);
    }
  }

  private open(): Promise<void> {
    return new Promise<void>((resolve) => {
      const c: Conn = {
        socket: connect({ host: '127.0.0.1', port: this.job.port, noDelay: true }),
        intended: -1,
        buf: EMPTY,
      };
      this.conns.push(c);
      c.socket.on('connect', () => (this.idle.push(c), resolve()));
      c.socket.on('data', (chunk: Buffer) => this.onData(c, chunk));
      c.socket.on('error', () => {
        this.socketErrors++;
        resolve();
      });
      c.socket.on('close', () => {
        const i = this.idle.indexOf(c);
        if (i >= 0) this.idle.splice(i, 1);
        // Its request in flight will never be answered: counted as timed out (the step fails).
        if (c.intended >= 0) {
          this.inFlight--;
          this.lost++;
        }
        c.intended = -1;
      });
    });
  }
}

if (parentPort) {
  const port = parentPort;
  void new OpenLoopThread(workerData as OpenLoopJob)
    .run()
    .then((r) =>
      port.postMessage(r, [r.latencies.buffer as ArrayBuffer, r.lateness.buffer as ArrayBuffer]),
    );
}
