import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { ConfigError } from '../config/index.js';
import type { StockadeConfig } from '../config/index.js';
import { KafkaMembership } from '../persistence/journal/index.js';
import type { MemberInfo, Ownership } from '../persistence/journal/index.js';
import { EngineError } from './errors.js';
import type { Waiter } from './pending-batch.js';
import { PeerServer, PEER_CONTROL_METHODS } from './peer-server.js';
import { PeerClient, RemoteShard } from './remote-shard.js';
import { rejection } from './results.js';
import type { Rejection } from './results.js';
import { ShardClient } from './shard-client.js';
import type { ShardControlCalls } from './shard-port.js';
import type { ShardControl } from './shard-messages.js';
import type { ShardPort } from './shard-port.js';

/**
 * Several Stockade nodes on one Kafka journal topic. Each partition (= shard) is owned by one
 * live member (kafka-membership.ts); the engine's port for a shard is its own `ShardClient`
 * where this member owns the partition, a `RemoteShard` to the owner elsewhere, and `NoOwner`
 * while the partition moves. Any member takes any request: one for a shard owned elsewhere is
 * forwarded, batched, to its owner (remote-shard.ts, peer-server.ts).
 *
 *   ownership changes ─▶ per shard, in order:
 *     gained:  NoOwner (503) ─▶ start a ShardClient, replay the partition ─▶ serve it
 *     lost:    RemoteShard/NoOwner at once (nothing more is decided here) ─▶ drain, close
 *     kept across a new term (this member may have been expelled meanwhile): rebuilt as gained
 *
 * Safety does not rest on this: every append is fenced by offset (kafka-journal.ts), so two
 * members that both believe they own a partition cannot both extend it. Ownership makes that
 * rare and routes every request to the one member that should decide it.
 */

/** The cluster as `GET /v1/cluster` shows it. */
export interface ClusterView {
  enabled: true;
  nodeId: string;
  url: string;
  memberId: string | null;
  term: number;
  /** Whether this member may serve its partitions now (its heartbeats are recent). */
  lease: boolean;
  members: { nodeId: string; url: string; partitions: number[] }[];
  partitions: {
    partition: number;
    owner: string | null;
    here: 'serving' | 'forwarding' | 'moving';
    /** Where this member serves it: the replay that preceded (events, milliseconds). */
    replay: { events: number; ms: number } | null;
  }[];
}

export interface ClusterFigures {
  members: number;
  partitionsOwned: number;
  rebalances: number;
  partitionsGained: number;
  partitionsLost: number;
  forwardedBatches: number;
  forwardFailures: number;
  servedBatches: number;
  servedCalls: number;
}

/** What the cluster needs of its engine. */
export interface ClusterHost {
  readonly shardCount: number;
  port(shard: number): ShardPort;
  install(shard: number, port: ShardPort): void;
  /** A new ShardClient for `shard` (it replays the partition before `ready()` resolves). */
  startLocal(shard: number): ShardClient;
}

/** The port of a shard nobody serves here now: everything is `shard_unavailable` (retriable). */
export class NoOwner implements ShardPort {
  readonly kind = 'none' as const;
  readonly down = true;
  readonly depth = 0;
  forwarding = false;
  readonly batchesSent = 0;
  readonly restarts = 0;
  readonly control: ShardControlCalls;

  constructor(readonly index: number) {
    const fail = () => Promise.reject(moving(index));
    this.control = {
      ready: fail,
      define: fail,
      update: fail,
      get: fail,
      getMany: fail,
      stats: fail,
      tick: fail,
      setEventForwarding: () => Promise.resolve(),
      drain: () => Promise.resolve(true),
      shutdown: () => Promise.resolve(),
    };
  }

  enqueueReserve(_s: string, _q: number, _u: unknown, _k: unknown, w: Waiter, slot: number) {
    w.settle(slot, rejection('shard_unavailable'));
    return 0;
  }

  enqueueCommand(_op: number, _sku: string, _n: number, w: Waiter, slot: number): void {
    w.settle(slot, rejection('shard_unavailable'));
  }

  flush(): void {}
  drain(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function moving(shard: number): EngineError {
  return new EngineError('shard_unavailable', `shard ${shard} is moving between members`);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || host.startsWith('127.');
}

/** Checks the settings that depend on each other, before anything opens. */
export function checkClusterConfig(config: StockadeConfig): void {
  const c = config.cluster;
  if (config.journal.kind !== 'kafka') {
    throw new ConfigError(
      `cluster.enabled needs journal.kind kafka, got ${config.journal.kind}: the file journal is ` +
        'single-node (one process per data directory)',
    );
  }
  if (c.heartbeatIntervalMs * 3 > c.sessionTimeoutMs) {
    throw new ConfigError(
      `cluster.heartbeatIntervalMs (${c.heartbeatIntervalMs}) must be at most a third of ` +
        `cluster.sessionTimeoutMs (${c.sessionTimeoutMs})`,
    );
  }
  const { host } = listenAddress(config);
  if (!isLoopback(host) && c.secret === '') {
    throw new ConfigError(
      `cluster.listen ${host} is reachable from other machines: set cluster.secret ` +
        '(STOCKADE_CLUSTER_SECRET), the same on every member, so that only members can ' +
        'forward requests (they name their buyers)',
    );
  }
}

/** Where the peer listener binds: `cluster.listen`, or the advertised port on all interfaces. */
function listenAddress(config: StockadeConfig): { host: string; port: number } {
  const c = config.cluster;
  if (c.listen === '127.0.0.1:0' && c.advertise !== '') {
    const port = Number(new URL(c.advertise).port || 80);
    return { host: '0.0.0.0', port };
  }
  const i = c.listen.lastIndexOf(':');
  return {
    host: c.listen.slice(0, i).replace(/^\[|\]$/g, ''),
    port: Number(c.listen.slice(i + 1)),
  };
}

export class Cluster {
  readonly nodeId: string;
  url = '';
  private membership: KafkaMembership | null = null;
  private readonly server: PeerServer;
  private readonly peers = new Map<string, PeerClient>();
  /** The term each local shard was started in. */
  private readonly localTerm = new Map<number, number>();
  private readonly chains: Promise<void>[];
  private latest: Ownership | null = null;
  private stopped = false;
  private gained = 0;
  private lost = 0;
  /** Failures of the membership (not retried by kafkajs), reported to the engine. */
  onError: (err: unknown) => void = () => {};

  constructor(
    private readonly config: StockadeConfig,
    private readonly host: ClusterHost,
  ) {
    checkClusterConfig(config);
    this.nodeId = config.cluster.nodeId || `${hostname()}-${process.pid}`;
    this.chains = Array.from({ length: host.shardCount }, () => Promise.resolve());
    this.server = new PeerServer(
      {
        batch: (shard, bytes, count) => this.serveBatch(shard, bytes, count),
        control: (shard, method, args) => this.serveCall(shard, method, args),
      },
      config.cluster.secret,
    );
  }

  /** Whether this member may serve its partitions now (see KafkaMembership.leaseValid). */
  readonly lease = (): boolean => this.membership?.leaseValid() ?? false;

  /** Listens for peers, joins the group, and waits until its first partitions are served. */
  async start(): Promise<void> {
    const c = this.config.cluster;
    const { host, port } = listenAddress(this.config);
    const bound = await this.server.listen(host, port);
    this.url = c.advertise || `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}`;
    const membership = new KafkaMembership(this.config.kafka, {
      groupId: `${this.config.kafka.topic}.members`,
      nodeId: this.nodeId,
      url: this.url,
      partitions: this.host.shardCount,
      sessionTimeoutMs: c.sessionTimeoutMs,
      heartbeatIntervalMs: c.heartbeatIntervalMs,
      owned: () => this.owned(),
    });
    this.membership = membership;
    membership.on('ownership', (o: Ownership) => this.apply(o));
    membership.on('error', (err) => this.onError(err));
    const first = await membership.start();
    this.apply(first);
    await Promise.all(this.chains);
  }

  private owned(): number[] {
    const out: number[] = [];
    for (let p = 0; p < this.host.shardCount; p++) {
      if (this.host.port(p).kind === 'local') out.push(p);
    }
    return out;
  }

  private apply(o: Ownership): void {
    if (this.latest === o) return;
    this.latest = o;
    for (let p = 0; p < this.host.shardCount; p++) {
      this.chains[p] = this.chains[p].then(() => this.reconcile(p)).catch(this.onError);
    }
  }

  /** Brings one shard's port in line with the latest ownership (see the file comment). */
  private async reconcile(p: number): Promise<void> {
    const o = this.latest;
    if (o === null || this.stopped) return;
    const cur = this.host.port(p);
    if (o.mine.includes(p)) {
      if (cur.kind === 'local' && this.localTerm.get(p) === o.term) return;
      this.host.install(p, new NoOwner(p));
      if (cur.kind === 'local') await cur.close();
      return this.serveHere(p, o);
    }
    const owner = o.members.find((m) => m.memberId === o.owners[p]);
    if (cur instanceof RemoteShard && owner && cur.peer.url === owner.url) return;
    this.host.install(p, owner?.url ? this.remote(p, owner) : new NoOwner(p));
    if (cur.kind === 'local') {
      this.lost++;
      this.localTerm.delete(p);
      await cur.close(); // what it had decided is answered; nothing more is taken
    }
  }

  /** Replays the partition into a new local shard, then serves it (retried while it stays ours). */
  private async serveHere(p: number, o: Ownership): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.stopped || this.latest !== o) return; // the next reconcile decides
      const client = this.host.startLocal(p);
      try {
        await client.ready();
      } catch (err) {
        await client.close().catch(() => {});
        this.onError(err);
        await delay(Math.min(100 * 2 ** attempt, 2_000));
        continue;
      }
      if (this.stopped || this.latest !== o) return void (await client.close());
      this.localTerm.set(p, o.term);
      this.gained++;
      this.host.install(p, client);
      return;
    }
  }

  private remote(p: number, owner: MemberInfo): RemoteShard {
    let peer = this.peers.get(owner.url);
    if (!peer) {
      const c = this.config.cluster;
      peer = new PeerClient(owner.url, c.secret, c.forwardTimeoutMs);
      this.peers.set(owner.url, peer);
    }
    return new RemoteShard(p, peer, owner.nodeId, this.config.engine.batchSizeMax);
  }

  private serving(shard: number): ShardClient | null {
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.host.shardCount) return null;
    const port = this.host.port(shard);
    return port.kind === 'local' && !port.down ? (port as ShardClient) : null;
  }

  private serveBatch(shard: number, bytes: Uint8Array, count: number) {
    const client = this.serving(shard);
    if (client === null) return Promise.resolve<Rejection>(rejection('shard_unavailable'));
    return client.submitForwarded(bytes, count);
  }

  private serveCall(shard: number, method: string, args: unknown[]): Promise<unknown> {
    const client = this.serving(shard);
    if (client === null) return Promise.reject(moving(shard));
    if (!PEER_CONTROL_METHODS.has(method as keyof ShardControl)) {
      return Promise.reject(new EngineError('invalid', `no control call ${method}`));
    }
    const fn = client.control[method as keyof ShardControl] as (...a: unknown[]) => unknown;
    return Promise.resolve(fn(...args));
  }

  view(): ClusterView {
    const o = this.latest;
    const members = (o?.members ?? []).map((m) => ({
      nodeId: m.nodeId,
      url: m.url,
      partitions: (o?.owners ?? []).flatMap((id, p) => (id === m.memberId ? [p] : [])),
    }));
    const partitions = Array.from({ length: this.host.shardCount }, (_, p) => {
      const owner = o?.members.find((m) => m.memberId === o.owners[p]);
      const port = this.host.port(p);
      const here =
        port.kind === 'local' ? 'serving' : port.kind === 'remote' ? 'forwarding' : 'moving';
      const r = port instanceof ShardClient ? port.recovery : null;
      const replay = r === null ? null : { events: r.events, ms: Math.round(r.ms) };
      return { partition: p, owner: owner?.nodeId ?? null, here, replay } as const;
    });
    return {
      enabled: true,
      nodeId: this.nodeId,
      url: this.url,
      memberId: o?.memberId ?? null,
      term: o?.term ?? 0,
      lease: this.lease(),
      members,
      partitions,
    };
  }

  figures(): ClusterFigures {
    let forwardedBatches = 0;
    let forwardFailures = 0;
    for (const peer of this.peers.values()) {
      forwardedBatches += peer.sent;
      forwardFailures += peer.failed;
    }
    return {
      members: this.latest?.members.length ?? 0,
      partitionsOwned: this.owned().length,
      rebalances: this.membership?.rebalances ?? 0,
      partitionsGained: this.gained,
      partitionsLost: this.lost,
      forwardedBatches,
      forwardFailures,
      servedBatches: this.server.batchesServed,
      servedCalls: this.server.callsServed,
    };
  }

  /**
   * Leaves: the local shards stop taking requests and finish what they took (their journals
   * flushed), then the member leaves the group, so the next owners replay complete partitions.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.allSettled(this.chains);
    const closing: Promise<void>[] = [];
    for (let p = 0; p < this.host.shardCount; p++) {
      const port = this.host.port(p);
      this.host.install(p, new NoOwner(p));
      closing.push(port.close());
    }
    await Promise.allSettled(closing);
    await this.membership?.stop();
    await this.server.close();
    for (const peer of this.peers.values()) peer.close();
  }
}
