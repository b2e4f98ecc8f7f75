import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { ERROR_CATALOGUE, isErrorCode } from './errors.js';
import type { ErrorCode } from './errors.js';
import { PEER_BODY_BYTES_MAX, PEER_COUNT_HEADER } from './remote-shard.js';
import type { Rejection } from './results.js';
import type { ShardControl } from './shard-messages.js';

/**
 * The other end of `RemoteShard`: what a member serves to the others, on its own listener
 * (`cluster.listen`), apart from the public gateway. Two routes, both POST:
 *
 *   /v1/peer/shards/N/batch    a batch's bytes (header x-stockade-count) → the shard's results
 *   /v1/peer/shards/N/control  {"method","args"} → {"value"}
 *
 * A member answers only for the shards it owns and serves now (else 503 `shard_unavailable`, the
 * sender's callers retry), and only to a request that carries `cluster.secret` when one is set.
 */
export interface PeerHandlers {
  batch(shard: number, bytes: Uint8Array, count: number): Promise<Float64Array | Rejection>;
  control(shard: number, method: string, args: unknown[]): Promise<unknown>;
}

/** Control calls a member forwards; the rest (ready, shutdown, ...) are its own business. */
export const PEER_CONTROL_METHODS: ReadonlySet<keyof ShardControl> = new Set([
  'define',
  'update',
  'get',
  'getMany',
  'stats',
  'tick',
  'drain',
] as const);

const ROUTE = /^\/v1\/peer\/shards\/(\d{1,4})\/(batch|control)$/;

export class PeerServer {
  private readonly server: Server;
  private readonly secret: Buffer | null;
  /** Batches and control calls served for other members. */
  batchesServed = 0;
  callsServed = 0;

  constructor(
    private readonly handlers: PeerHandlers,
    secret: string,
  ) {
    this.secret = secret ? Buffer.from(`Bearer ${secret}`) : null;
    this.server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => this.serve(req, res));
  }

  /** Listens on `host:port` (port 0: a free one); resolves with the port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.secret === null) return true;
    const got = Buffer.from(req.headers.authorization ?? '');
    return got.length === this.secret.length && timingSafeEqual(got, this.secret);
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const m = req.method === 'POST' ? ROUTE.exec(req.url ?? '') : null;
    if (m === null) return refuse(res, 404, 'not_found');
    if (!this.authorized(req)) return refuse(res, 401, 'unauthorized');
    const shard = Number(m[1]);
    readBody(req, (body) => {
      if (body === null) return refuse(res, 413, 'payload_too_large');
      const work = m[2] === 'batch' ? this.batch(shard, req, body) : this.control(shard, body);
      work.then(
        ({ status, type, out }) => {
          res.writeHead(status, { 'content-type': type, 'content-length': out.length });
          res.end(out);
        },
        (err: unknown) => {
          const code = (err as { code?: unknown } | null)?.code;
          refuseCode(res, typeof code === 'string' && isErrorCode(code) ? code : 'internal');
        },
      );
    });
  }

  private async batch(shard: number, req: IncomingMessage, body: Buffer) {
    const count = Number(req.headers[PEER_COUNT_HEADER]);
    if (!Number.isSafeInteger(count) || count < 1) return errorBody('invalid');
    const r = await this.handlers.batch(shard, body, count);
    if (!(r instanceof Float64Array)) return errorBody(r.status);
    this.batchesServed++;
    const out = Buffer.from(r.buffer, r.byteOffset, r.byteLength);
    return { status: 200, type: 'application/octet-stream', out };
  }

  private async control(shard: number, body: Buffer) {
    let call: { method?: unknown; args?: unknown };
    try {
      call = JSON.parse(body.toString('utf8')) as typeof call;
    } catch {
      return errorBody('malformed_json');
    }
    const { method, args } = call;
    if (typeof method !== 'string' || !Array.isArray(args)) return errorBody('invalid');
    if (!PEER_CONTROL_METHODS.has(method as keyof ShardControl)) return errorBody('invalid');
    const value = await this.handlers.control(shard, method, args);
    this.callsServed++;
    return { status: 200, type: 'application/json', out: Buffer.from(JSON.stringify({ value })) };
  }
}

function errorBody(code: string) {
  const c: ErrorCode = isErrorCode(code) ? code : 'internal';
  const out = Buffer.from(JSON.stringify({ error: { code: c } }));
  return { status: ERROR_CATALOGUE[c].http, type: 'application/json', out };
}

function refuseCode(res: ServerResponse, code: ErrorCode): void {
  const { status, type, out } = errorBody(code);
  res.writeHead(status, { 'content-type': type, 'content-length': out.length });
  res.end(out);
}

function refuse(res: ServerResponse, status: number, code: string): void {
  const out = Buffer.from(JSON.stringify({ error: { code } }));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': out.length });
  res.end(out);
}

/** The request's body, or null past `PEER_BODY_BYTES_MAX` (then the rest is not read). */
function readBody(req: IncomingMessage, done: (body: Buffer | null) => void): void {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > PEER_BODY_BYTES_MAX) {
    req.resume();
    return done(null);
  }
  // A sender that goes away mid-body: nobody to answer, and no unhandled 'error' either.
  req.on('error', () => req.destroy());
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > PEER_BODY_BYTES_MAX) over = true;
    else chunks.push(c);
  });
  req.on('end', () => done(over ? null : Buffer.concat(chunks)));
}
