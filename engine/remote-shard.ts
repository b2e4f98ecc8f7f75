import { Agent, request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { RESULT_STRIDE } from '../actors/index.js';
import { EngineError, isErrorCode } from './errors.js';
import { BatchingPort } from './batching-port.js';
import { PendingBatch } from './pending-batch.js';
import { rejection } from './results.js';
import type { ShardControlCalls } from './shard-port.js';
import type { ShardControl } from './shard-messages.js';
import type { ShardPort } from './shard-port.js';

/**
 * Forwarding to the member that owns a shard (see cluster.ts). A `RemoteShard` batches the
 * requests of one event-loop turn exactly as a `ShardClient` does (the same binary writer) and
 * sends the batch's bytes in one HTTP request over a kept-alive connection to its owner, which
 * hands them to its shard as they are and sends the shard's binary results back; the results
 * are matched to waiters here, by position, as for a local shard.
 *
 *   reserve() ─▶ writer ─(setImmediate)─▶ POST /v1/peer/shards/N/batch ─▶ owner's ShardClient
 *   waiter.settle() ◀─ decode(results[i]) ◀── 200, Float64 results ◀──────────┘
 *
 * A batch the owner refuses as a whole (it no longer owns the shard, the shard is down or its
 * queue is full) answers each of its requests with the owner's code; one whose answer does not
 * come (the owner died, the network failed, `cluster.forwardTimeoutMs`) answers
 * `shard_unavailable`: its outcome is unknown, and a retry with the same idempotency key tells.
 */

/** Largest body a member accepts from another (a batch, or a control call's JSON). */
export const PEER_BODY_BYTES_MAX = 64 * 1024 * 1024;

export const PEER_COUNT_HEADER = 'x-stockade-count';

interface PeerReply {
  status: number;
  body: Buffer;
}

/** One other member, as this one talks to it: its address, and kept-alive connections. */
export class PeerClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 8 });
  private readonly base: URL;
  /** Requests sent, and requests that failed (no answer, or not a 2xx). */
  sent = 0;
  failed = 0;

  constructor(
    readonly url: string,
    private readonly secret: string,
    private readonly timeoutMs: number,
  ) {
    this.base = new URL(url);
  }

  post(path: string, body: Uint8Array, headers: Record<string, string>): Promise<PeerReply> {
    this.sent++;
    return new Promise<PeerReply>((resolve, reject) => {
      // The bound holds until the answer is read whole: cleared only when the call settles.
      const done = (r: PeerReply) => {
        clearTimeout(timer);
        resolve(r);
      };
      const fail = (e: Error) => {
        clearTimeout(timer);
        reject(e);
      };
      const req = request(
        {
          agent: this.agent,
          host: this.base.hostname,
          port: this.base.port,
          method: 'POST',
          path,
          headers: {
            ...headers,
            'content-length': String(body.length),
            ...(this.secret ? { authorization: `Bearer ${this.secret}` } : {}),
          },
        },
        (res) => readReply(res, done, fail),
      );
      const timer = setTimeout(() => req.destroy(new Error('no answer in time')), this.timeoutMs);
      req.on('error', fail);
      req.end(body);
    }).catch((err: unknown) => {
      this.failed++;
      throw err;
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function readReply(
  res: IncomingMessage,
  resolve: (r: PeerReply) => void,
  reject: (e: Error) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (c: Buffer) => {
    size += c.length;
    if (size > PEER_BODY_BYTES_MAX) res.destroy(new Error('answer too large'));
    else chunks.push(c);
  });
  res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
  res.on('error', reject);
  res.on('aborted', () => reject(new Error('answer cut short')));
}

/** The error code in a peer's refusal (`{"error":{"code":...}}`), or null. */
function codeIn(reply: PeerReply): string | null {
  try {
    const code = (JSON.parse(reply.body.toString('utf8')) as { error?: { code?: unknown } }).error
      ?.code;
    return typeof code === 'string' && isErrorCode(code) ? code : null;
  } catch {
    return null;
  }
}

/** The doubles in `body` (copied when its bytes do not sit 8-aligned in their buffer). */
function float64s(body: Buffer): Float64Array {
  if (body.byteOffset % 8 === 0) {
    return new Float64Array(body.buffer, body.byteOffset, body.length / 8);
  }
  const copy = new Uint8Array(body.length);
  copy.set(body);
  return new Float64Array(copy.buffer);
}

export class RemoteShard extends BatchingPort implements ShardPort {
  readonly kind = 'remote' as const;
  readonly down = false;
  forwarding = false;
  batchesSent = 0;
  readonly restarts = 0;
  readonly control: ShardControlCalls;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    readonly index: number,
    readonly peer: PeerClient,
    /** The owner's node id, for stats and `GET /v1/cluster`. */
    readonly ownerNodeId: string,
    batchSizeMax: number,
  ) {
    super(batchSizeMax);
    const call =
      <K extends keyof ShardControl>(method: K) =>
      (...args: Parameters<ShardControl[K]>) =>
        this.call(method, args) as Promise<Awaited<ReturnType<ShardControl[K]>>>;
    this.control = {
      ready: call('ready'),
      define: call('define'),
      update: call('update'),
      get: call('get'),
      getMany: call('getMany'),
      stats: call('stats'),
      tick: call('tick'),
      // Subscribers see the events of the shards their own member owns.
      setEventForwarding: () => Promise.resolve(),
      drain: call('drain'),
      shutdown: () => Promise.resolve(),
    };
  }

  flush(): void {
    if (this.writer.count === 0) return;
    const { buffer, bytes, count } = this.writer.take(new ArrayBuffer(64 * 1024));
    const p = this.pending;
    this.pending = new PendingBatch();
    const sent = this.send(p, new Uint8Array(buffer, 0, bytes), count).finally(() => {
      this.depth -= count;
      this.inFlight.delete(sent);
    });
    this.inFlight.add(sent);
    this.batchesSent++;
  }

  private async send(p: PendingBatch, bytes: Uint8Array, count: number): Promise<void> {
    let reply: PeerReply;
    try {
      reply = await this.peer.post(`/v1/peer/shards/${this.index}/batch`, bytes, {
        'content-type': 'application/octet-stream',
        [PEER_COUNT_HEADER]: String(count),
      });
    } catch {
      return p.fail(rejection('shard_unavailable'));
    }
    if (reply.status === 200 && reply.body.length === count * RESULT_STRIDE * 8) {
      p.settle(float64s(reply.body));
      return p.clear();
    }
    p.fail(rejection(codeIn(reply) === 'overloaded' ? 'overloaded' : 'shard_unavailable'));
  }

  private async call(method: keyof ShardControl, args: unknown[]): Promise<unknown> {
    const body = Buffer.from(JSON.stringify({ method, args }));
    let reply: PeerReply;
    try {
      reply = await this.peer.post(`/v1/peer/shards/${this.index}/control`, body, {
        'content-type': 'application/json',
      });
    } catch (err) {
      throw new EngineError('shard_unavailable', `shard ${this.index}: its owner did not answer`, {
        cause: err,
      });
    }
    if (reply.status === 200)
      return (JSON.parse(reply.body.toString('utf8')) as { value: unknown }).value;
    const code = codeIn(reply) ?? 'shard_unavailable';
    throw new EngineError(code as 'shard_unavailable', `shard ${this.index}: its owner: ${code}`);
  }

  async drain(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    await this.drain();
  }
}
