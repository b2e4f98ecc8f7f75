/**
 * A TCP proxy in front of the real Kafka broker that can hold Produce requests: the network
 * delaying a request past the client's timeout, which the broker then still executes. Clients
 * bootstrap from the proxy's address; the proxy rewrites the broker's port in Metadata and
 * FindCoordinator answers to its own, so every later connection goes through it too.
 *
 *   client ──▶ proxy ──frames──▶ broker       the next Produce after `holdProduce = true`: kept
 *   client ◀── proxy ◀─────────── broker      back (and everything after it on its connection,
 *                                              as TCP would) until `release()`, even if the
 *                                              client has given up and closed its end
 */
import { createServer, connect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

const PRODUCE = 0;
const METADATA = 3;
const FIND_COORDINATOR = 10;

interface Conn {
  client: Socket;
  upstream: Socket;
  /** Requests kept back, in order, while `holding`. */
  held: Buffer[];
  holding: boolean;
  /** correlation id → [apiKey, apiVersion] of the requests sent, to read their answers. */
  asked: Map<number, [number, number]>;
}

export class KafkaProxy {
  /** While true, the next Produce request is held (with what follows it on its connection). */
  holdProduce = false;
  /** Produce requests held so far. */
  heldProduces = 0;
  readonly port: number;
  private readonly conns = new Set<Conn>();

  private constructor(
    private readonly server: Server,
    private readonly brokerHost: string,
    private readonly brokerPort: number,
  ) {
    this.port = (server.address() as AddressInfo).port;
  }

  /** A proxy for the broker at `broker` (host:port), on a free port of 127.0.0.1. */
  static async start(broker: string): Promise<KafkaProxy> {
    const i = broker.lastIndexOf(':');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new KafkaProxy(server, broker.slice(0, i), Number(broker.slice(i + 1)));
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  private accept(client: Socket): void {
    const upstream = connect(this.brokerPort, this.brokerHost);
    const conn: Conn = { client, upstream, held: [], holding: false, asked: new Map() };
    this.conns.add(conn);
    client.on('error', () => {});
    upstream.on('error', () => client.destroy());
    frames(client, (frame) => this.fromClient(conn, frame));
    frames(upstream, (frame) => this.fromBroker(conn, frame));
    // A client that gives up closes its end; what it sent is still on its way to the broker.
    client.on('close', () => {
      if (!conn.holding) upstream.end();
    });
    upstream.on('close', () => {
      client.destroy();
      this.conns.delete(conn);
    });
  }

  private fromClient(conn: Conn, frame: Buffer): void {
    const apiKey = frame.readInt16BE(4);
    conn.asked.set(frame.readInt32BE(8), [apiKey, frame.readInt16BE(6)]);
    if (!conn.holding && this.holdProduce && apiKey === PRODUCE) {
      conn.holding = true;
      this.holdProduce = false; // one request is late; the client's next connection is not
      this.heldProduces++;
    }
    if (conn.holding) conn.held.push(frame);
    else conn.upstream.write(frame);
  }

  private fromBroker(conn: Conn, frame: Buffer): void {
    const asked = conn.asked.get(frame.readInt32BE(4));
    if (asked) {
      conn.asked.delete(frame.readInt32BE(4));
      if (asked[0] === METADATA) this.rewriteMetadata(frame, asked[1]);
      if (asked[0] === FIND_COORDINATOR) this.rewriteCoordinator(frame, asked[1]);
    }
    if (!conn.client.destroyed) conn.client.write(frame);
  }

  /** Lets every held request through, in order, on its connection; holds nothing more. */
  release(): void {
    this.holdProduce = false;
    for (const conn of this.conns) {
      if (!conn.holding) continue;
      conn.holding = false;
      for (const frame of conn.held.splice(0)) conn.upstream.write(frame);
      if (conn.client.destroyed) setTimeout(() => conn.upstream.end(), 2000).unref();
    }
  }

  /** Metadata v0–v8 (not flexible): the brokers' ports become the proxy's. */
  private rewriteMetadata(frame: Buffer, version: number): void {
    if (version > 8) throw new Error(`KafkaProxy: Metadata v${version} is not handled`);
    let o = 8 + (version >= 3 ? 4 : 0); // size, correlation id, throttle time
    const brokers = frame.readInt32BE(o);
    o += 4;
    for (let b = 0; b < brokers; b++) {
      o += 4; // node id
      o += 2 + frame.readInt16BE(o); // host
      frame.writeInt32BE(this.port, o);
      o += 4;
      if (version >= 1) {
        const rack = frame.readInt16BE(o);
        o += 2 + (rack > 0 ? rack : 0);
      }
    }
  }

  /** FindCoordinator v0–v2: the coordinator's port becomes the proxy's. */
  private rewriteCoordinator(frame: Buffer, version: number): void {
    if (version > 2) throw new Error(`KafkaProxy: FindCoordinator v${version} is not handled`);
    let o = 8;
    if (version >= 1) o += 4; // throttle time
    o += 2; // error code
    if (version >= 1) {
      const msg = frame.readInt16BE(o);
      o += 2 + (msg > 0 ? msg : 0);
    }
    o += 4; // node id
    o += 2 + frame.readInt16BE(o); // host
    frame.writeInt32BE(this.port, o);
  }

  async close(): Promise<void> {
    for (const conn of this.conns) {
      conn.client.destroy();
      conn.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Calls `onFrame` with each size-prefixed Kafka frame (size included) read from `socket`. */
function frames(socket: Socket, onFrame: (frame: Buffer) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const size = 4 + buf.readInt32BE(0);
      if (buf.length < size) break;
      onFrame(Buffer.from(buf.subarray(0, size)));
      buf = buf.subarray(size);
    }
  });
}
