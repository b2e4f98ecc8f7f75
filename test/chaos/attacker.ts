/**
 * The slow-clients scenario's attackers, in a process of their own so that their work does not
 * count against the honest buyers' latency in the test's process (slow-clients.ts starts it):
 *
 *   node --import=tsx test/chaos/attacker.ts '{"port":8080,"slowloris":2000,...}'
 *
 * Prints `ready` once every attacker is connected; on SIGTERM, or after `maxMs`, stops and prints
 * one JSON line of what it saw, then exits.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { WsClient } from '../gateway/helpers.js';

export interface AttackOptions {
  port: number;
  /** Slowloris connections held open at once (half trickle headers, half a body). */
  slowloris: number;
  /** HTTP connections that send a request and never read the answer. */
  neverReading: number;
  /** WebSockets that send subscribes and never read the answers. */
  wsNeverReading: number;
  /** Subscribes each of those sends per second. */
  wsMessagesPerS: number;
  /** The attack ends by itself after this long. */
  maxMs: number;
}

export interface AttackReport {
  /** Connections of each kind the server closed while the attack was on. */
  closedByServer: Record<string, number>;
  /** Longest a connection of each kind lasted until its end was seen (ms). */
  longestMs: Record<string, number>;
}

class Attack {
  running = true;
  readonly drips = new Set<Socket>();
  readonly quiet = new Set<Socket>();
  readonly ws = new Set<WsClient>();
  readonly report: AttackReport = { closedByServer: {}, longestMs: {} };
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly o: AttackOptions) {}

  private ended(kind: string, opened: number, established = true): void {
    const r = this.report;
    r.longestMs[kind] = Math.max(r.longestMs[kind] ?? 0, Date.now() - opened);
    // Only a connection that was up counts as closed by the server (not a refused one).
    if (this.running && established) {
      r.closedByServer[kind] = (r.closedByServer[kind] ?? 0) + 1;
    }
  }

  /**
   * A connection that writes `head` and never reads a byte of the answer, then writes one byte
   * a second (`drip`) or nothing. A drip learns of the server's close when a write fails, and is
   * replaced at once (after a pause if it never got through); a quiet one never learns of it
   * (it reads nothing, not even the end): the server's descriptors show it gone.
   */
  raw(kind: string, head: string, drip: boolean): void {
    if (!this.running) return;
    const opened = Date.now();
    let established = false;
    const s = connect(this.o.port, '127.0.0.1', () => {
      established = true;
      s.write(head);
    });
    s.pause();
    (drip ? this.drips : this.quiet).add(s);
    s.on('error', () => {});
    s.on('close', () => {
      (drip ? this.drips : this.quiet).delete(s);
      if (!drip) return;
      this.ended(kind, opened, established);
      if (established) this.raw(kind, head, drip);
      else this.timers.push(setTimeout(() => this.raw(kind, head, drip), 50));
    });
  }

  async websocket(): Promise<void> {
    if (!this.running) return;
    const opened = Date.now();
    const c = await WsClient.open(this.o.port, '/v1/ws').catch(() => null);
    if (c === null) {
      this.timers.push(setTimeout(() => void this.websocket(), 100));
      return;
    }
    this.ws.add(c);
    c.socket.pause(); // never reads: the answers pile up on the server's side
    // A 128-character id (the longest the server echoes) makes each answer ~170 bytes.
    const msg = JSON.stringify({ type: 'subscribe', sku: 's-0', id: 'i'.repeat(128) });
    const perTick = Math.max(1, Math.round(this.o.wsMessagesPerS / 100));
    const tick = setInterval(() => {
      for (let i = 0; i < perTick && !c.isClosed; i++) c.send(msg);
    }, 10);
    void c.closed.then(() => {
      clearInterval(tick);
      this.ws.delete(c);
      this.ended('ws never reading', opened);
      void this.websocket();
    });
    this.timers.push(tick);
  }

  async start(): Promise<void> {
    const headers = 'POST /v1/skus/s-0/reservations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ';
    const body =
      'POST /v1/skus/s-0/reservations HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
      'Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"qty":';
    const ask = 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    for (let i = 0; i < this.o.slowloris; i++) {
      if (i % 2 === 0) this.raw('slowloris headers', headers, true);
      else this.raw('slowloris body', body, true);
    }
    for (let i = 0; i < this.o.neverReading; i++) this.raw('http never reading', ask, false);
    await Promise.all(Array.from({ length: this.o.wsNeverReading }, () => this.websocket()));
    this.timers.push(
      setInterval(() => {
        for (const s of this.drips) s.write('x');
      }, 1_000),
    );
  }

  stop(): void {
    this.running = false;
    for (const t of this.timers) clearInterval(t);
    for (const s of [...this.drips, ...this.quiet]) s.destroy();
    for (const c of this.ws) c.socket.destroy();
  }
}

const options = JSON.parse(process.argv[2] ?? '{}') as AttackOptions;
const attack = new Attack(options);
let done = false;
const finish = () => {
  if (done) return;
  done = true;
  attack.stop();
  process.stdout.write(`${JSON.stringify(attack.report)}\n`, () => process.exit(0));
};
process.on('SIGTERM', finish);
setTimeout(finish, options.maxMs).unref();
await attack.start();
process.stdout.write('ready\n');
