/**
 * Test fixtures for the gateway: a real engine and a real uWS server on port 0 in the test
 * process, and a minimal WebSocket client on node:net (Node 20 has no global WebSocket without a
 * flag, and the project installs no client library).
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { createEngine, loadConfig } from '../../engine/index.js';
import type { ConfigInput, Engine, StockadeConfig } from '../../engine/index.js';
import { createLogger, startGateway } from '../../gateway/index.js';
import { SHARED_LIMITER_MODULE } from '../../persistence/stores/index.js';
import type { Gateway, GatewayOptions } from '../../gateway/index.js';

/** Parsed JSON from the server, read loosely by the tests. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export const SECRET = 'test-secret-that-is-at-least-32-bytes-long!';

export interface Server {
  engine: Engine;
  gateway: Gateway;
  config: StockadeConfig;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The test preset: in-memory journal, one shard, port 0, no auth or rate limit, quiet logs. */
export function testConfig(overrides: ConfigInput = {}): StockadeConfig {
  return loadConfig({
    env: {},
    overrides: {
      ...overrides,
      engine: { shards: 1, ...overrides.engine },
      journal: { kind: 'none', ...overrides.journal },
      log: { level: 'silent', ...overrides.log },
      gateway: { port: 0, host: '127.0.0.1', auth: 'none', rateLimitPerS: 0, ...overrides.gateway },
    },
  });
}

/**
 * An engine and a gateway on `testConfig(overrides)`, with the gateway's audit sink and catalog
 * when given. `close` may be called more than once.
 */
export async function startServer(
  overrides: ConfigInput = {},
  options: Pick<GatewayOptions, 'audit' | 'catalog'> = {},
): Promise<Server> {
  const config = testConfig(overrides);
  const engine = await createEngine({ config });
  let gateway: Gateway;
  try {
    gateway = await startGateway({
      engine,
      config,
      logger: createLogger(config.log.level),
      sharedLimiterModule: SHARED_LIMITER_MODULE,
      ...options,
    });
  } catch (err) {
    await engine.close();
    throw err;
  }
  const url = `http://127.0.0.1:${gateway.port}`;
  let closing: Promise<void> | null = null;
  return {
    engine,
    gateway,
    config,
    url,
    port: gateway.port,
    close: () =>
      (closing ??= (async () => {
        await gateway.close();
        await engine.close();
      })()),
  };
}

/**
 * Resolves once `cond()` holds, checking once per event-loop turn (a state the server sets
 * itself, such as its in-flight count; no timers involved).
 */
export async function until(cond: () => boolean, turnsMax = 1_000_000): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i >= turnsMax) throw new Error('condition never held');
    await new Promise((r) => setImmediate(r));
  }
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: Json;
}

export async function request(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON (metrics, the dashboard): keep the text.
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** A minimal RFC 6455 client: text frames, masked, with a message queue read by promises. */
export class WsClient {
  private buffer: Buffer<ArrayBufferLike> = Buffer.alloc(0);
  private readonly queue: string[] = [];
  private waiters: ((m: string) => void)[] = [];
  closed: Promise<void>;
  isClosed = false;

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.isClosed = true;
        resolve();
      });
    });
    socket.on('error', () => {});
  }

  /** Connects and upgrades; rejects with the HTTP status line when the server refuses. */
  static open(
    port: number,
    path = '/v1/ws',
    headers: Record<string, string> = {},
  ): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const key = randomBytes(16).toString('base64');
      const extra = Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
      );
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        const lines = head.subarray(0, end).toString('latin1');
        if (!lines.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          reject(new Error(lines.split('\r\n')[0] + ' ' + head.subarray(end + 4).toString()));
          return;
        }
        const accept = createHash('sha1')
          .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
          .digest('base64');
        if (!lines.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) {
          reject(new Error('bad Sec-WebSocket-Accept'));
          return;
        }
        const client = new WsClient(socket);
        socket.on('data', (c: Buffer) => client.onData(c));
        client.onData(head.subarray(end + 4));
        resolve(client);
      };
      socket.on('data', onData);
      socket.on('error', reject);
    });
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 2) {
      const op = this.buffer[0] & 0x0f;
      let len = this.buffer[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buffer.length < 4) return;
        len = this.buffer.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buffer.length < 10) return;
        len = Number(this.buffer.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buffer.length < off + len) return;
      const payload = this.buffer.subarray(off, off + len);
      this.buffer = this.buffer.subarray(off + len);
      if (op === 1) this.deliver(payload.toString('utf8'));
      else if (op === 9) this.frame(0x0a, payload);
      else if (op === 8) this.socket.end();
    }
  }

  private deliver(m: string): void {
    const w = this.waiters.shift();
    if (w) w(m);
    else this.queue.push(m);
  }

  private frame(op: number, payload: Buffer): void {
    const mask = randomBytes(4);
    const len = payload.length;
    const head = len < 126 ? Buffer.from([0x80 | op, 0x80 | len]) : Buffer.alloc(4);
    if (len >= 126) {
      head[0] = 0x80 | op;
      head[1] = 0x80 | 126;
      head.writeUInt16BE(len, 2);
    }
    const body = Buffer.alloc(len);
    for (let i = 0; i < len; i++) body[i] = payload[i] ^ mask[i & 3];
    this.socket.write(Buffer.concat([head, mask, body]));
  }

  send(message: unknown): void {
    this.frame(0x01, Buffer.from(typeof message === 'string' ? message : JSON.stringify(message)));
  }

  /** The next message, parsed. */
  next(): Promise<Json> {
    const m = this.queue.shift();
    if (m !== undefined) return Promise.resolve(JSON.parse(m));
    return new Promise((resolve, reject) => {
      this.waiters.push((s) => resolve(JSON.parse(s)));
      void this.closed.then(() => reject(new Error('socket closed')));
    });
  }

  /** The next message, or null if none arrives within `ms` (no message is lost either way). */
  nextWithin(ms: number): Promise<Json> {
    const m = this.queue.shift();
    if (m !== undefined) return Promise.resolve(JSON.parse(m));
    return new Promise((resolve) => {
      const waiter = (s: string) => {
        clearTimeout(timer);
        resolve(JSON.parse(s));
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(null);
      }, ms);
      this.waiters.push(waiter);
    });
  }

  /** The next message matching `pred`, skipping others. */
  async nextWhere(pred: (m: Json) => boolean): Promise<Json> {
    for (;;) {
      const m = await this.next();
      if (pred(m)) return m;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
