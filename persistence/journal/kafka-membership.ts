import { EventEmitter } from 'node:events';
import type { Consumer, GroupMember, PartitionAssigner } from 'kafkajs';
import type { KafkaSettings } from '../../config/index.js';
import { loadKafkajs } from './kafkajs-loader.js';

/**
 * Who owns which partition of the journal topic, among the Stockade nodes that write it: a Kafka
 * consumer group on the journal topic whose members never consume (every partition stays
 * paused). The group coordinator says who is alive (heartbeats, `cluster.sessionTimeoutMs`);
 * the leader's assigner (below) gives each partition to exactly one member and puts the whole
 * partition → member map, with each member's address, into every member's assignment, so that
 * every member can route to every owner.
 *
 *   member joins / leaves / dies ─▶ coordinator: rebalance ─▶ leader assigns ─▶ GROUP_JOIN
 *                                   (every member)            (sticky, even)    ─▶ 'ownership'
 *
 * The group is advice: a member paused longer than the session timeout wakes up believing it
 * still owns its partitions. Two things make that harmless. Every append is fenced by the
 * offset it was decided for (kafka-journal.ts), so a stale owner's write is void. And a member
 * only serves while its lease holds (`leaseValid`): its last acknowledged heartbeat is younger
 * than the session timeout less one heartbeat interval, so a member that may have been expelled
 * answers nothing from its state until it has rejoined. A join under a new member id, or after
 * such a gap, starts a new term: partitions kept across it are rebuilt, as the partition may have
 * been written by another owner meanwhile.
 */

export interface MemberInfo {
  memberId: string;
  nodeId: string;
  /** Where the other members send this member's forwarded requests. */
  url: string;
}

export interface Ownership {
  /** Counts the terms of this member: a new one after a rejoin under a new id or a lost lease. */
  term: number;
  /** This member's id in the group. */
  memberId: string;
  members: MemberInfo[];
  /** Per partition, its owner's member id (null: not known in this generation). */
  owners: (string | null)[];
  /** The partitions this member owns. */
  mine: number[];
}

export interface MembershipOptions {
  groupId: string;
  nodeId: string;
  url: string;
  partitions: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** This member's partitions as it serves them now (kept across a rebalance when possible). */
  owned: () => number[];
}

/** The member's own data in its join request (JSON in the protocol metadata's userData). */
interface JoinData {
  nodeId: string;
  url: string;
  owned: number[];
}

/** The map the leader puts in every assignment's userData (JSON). */
interface AssignmentData {
  members: MemberInfo[];
  owners: (string | null)[];
}

const ASSIGNER = 'StockadeOwnership';

/**
 * Gives each partition to one member, evenly (counts differ by at most one), keeping as many
 * partitions as it can where they are: a join or a leave moves only what it must, as each move
 * makes a partition unavailable while its new owner replays it. Deterministic in its input.
 */
export function assignPartitions(
  members: readonly { memberId: string; nodeId: string; owned: readonly number[] }[],
  partitions: number,
): (string | null)[] {
  const owners = new Array<string | null>(partitions).fill(null);
  if (members.length === 0) return owners;
  // The members holding more now get the larger quotas; ties by node id, then member id.
  const order = [...members].sort(
    (a, b) =>
      b.owned.length - a.owned.length ||
      a.nodeId.localeCompare(b.nodeId) ||
      a.memberId.localeCompare(b.memberId),
  );
  const base = Math.floor(partitions / order.length);
  const extra = partitions % order.length;
  const quota = new Map(order.map((m, i) => [m.memberId, base + (i < extra ? 1 : 0)]));
  for (const m of order) {
    for (const p of [...m.owned].sort((a, b) => a - b)) {
      if (p < 0 || p >= partitions || owners[p] !== null || quota.get(m.memberId)! === 0) continue;
      owners[p] = m.memberId;
      quota.set(m.memberId, quota.get(m.memberId)! - 1);
    }
  }
  let next = 0;
  for (let p = 0; p < partitions; p++) {
    if (owners[p] !== null) continue;
    while (quota.get(order[next % order.length].memberId)! === 0) next++;
    const m = order[next % order.length];
    owners[p] = m.memberId;
    quota.set(m.memberId, quota.get(m.memberId)! - 1);
  }
  return owners;
}

function parseJson<T>(buf: Buffer | null | undefined): T | null {
  if (!buf || buf.length === 0) return null;
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch {
    return null;
  }
}

export class KafkaMembership extends EventEmitter {
  private readonly lib = loadKafkajs();
  private readonly consumer: Consumer;
  private lastBeat = -Infinity;
  private memberId: string | null = null;
  private term = 0;
  private current: Ownership | null = null;
  private first: { resolve: (o: Ownership) => void; reject: (e: Error) => void } | null = null;
  private stopped = false;
  private joins: Promise<void> = Promise.resolve();
  /** Joins seen; one that is not the latest when its turn comes is skipped. */
  private joinSeq = 0;
  /** A join since the last ownership given came after a lapsed lease. */
  private lapsedSinceEmit = false;
  /** Rebalances this member has gone through (joins that gave it an assignment). */
  rebalances = 0;

  constructor(
    private readonly settings: KafkaSettings,
    private readonly options: MembershipOptions,
  ) {
    super();
    const kafka = new this.lib.Kafka({
      clientId: `${settings.clientId}-member`,
      brokers: [...settings.brokers],
      connectionTimeout: settings.connectionTimeoutMs,
      logLevel: this.lib.logLevel.NOTHING,
    });
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      partitionAssigners: [this.assigner()],
      sessionTimeout: options.sessionTimeoutMs,
      rebalanceTimeout: Math.max(options.sessionTimeoutMs, 10_000),
      heartbeatInterval: options.heartbeatIntervalMs,
      // Heartbeats go out from the fetch loop, which waits this long when every partition is
      // paused: keep it under the heartbeat interval.
      maxWaitTimeInMs: Math.min(500, options.heartbeatIntervalMs),
      allowAutoTopicCreation: false,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 2_000 },
    });
    const { HEARTBEAT, GROUP_JOIN, CRASH } = this.consumer.events;
    this.consumer.on(HEARTBEAT, () => (this.lastBeat = performance.now()));
    this.consumer.on(GROUP_JOIN, (e) => {
      // Joined after the lease ran out (no heartbeat for that long): the coordinator may have
      // expelled this member meanwhile, even if it kept its member id.
      const lapsed = !this.leaseValid();
      this.lastBeat = performance.now();
      this.consumer.pause([{ topic: settings.topic }]); // membership only: never fetch
      const mine = e.payload.memberAssignment[settings.topic] ?? [];
      const sorted = [...mine].sort((a, b) => a - b);
      // One join at a time, in order: a later generation's map is never overwritten by an
      // earlier one's.
      const seq = ++this.joinSeq;
      this.lapsedSinceEmit ||= lapsed;
      this.joins = this.joins.then(() => this.joined(seq, e.payload.memberId, sorted));
    });
    this.consumer.on(CRASH, (e) => {
      if (!e.payload.restart) this.emit('error', e.payload.error);
    });
  }

  /** Joins the group; resolves with the first ownership this member is given. */
  async start(): Promise<Ownership> {
    const first = new Promise<Ownership>((resolve, reject) => (this.first = { resolve, reject }));
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.settings.topic] });
    await this.consumer.run({ eachBatch: async () => {}, autoCommit: false });
    return first;
  }

  /**
   * Whether this member may serve its partitions now: its last acknowledged heartbeat (or join)
   * is recent enough that the coordinator cannot have expelled it yet.
   */
  leaseValid(now = performance.now()): boolean {
    const { sessionTimeoutMs, heartbeatIntervalMs } = this.options;
    return now - this.lastBeat < sessionTimeoutMs - heartbeatIntervalMs;
  }

  get ownership(): Ownership | null {
    return this.current;
  }

  /** Leaves the group (its partitions go to the others at once) and disconnects. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.first?.reject(new Error('membership stopped before it joined'));
    await this.consumer.disconnect().catch(() => {});
  }

  private async joined(seq: number, memberId: string, mine: number[]): Promise<void> {
    if (seq !== this.joinSeq || this.stopped) return; // a later join supersedes this one
    const map = await this.fullMap(seq, memberId, mine);
    if (seq !== this.joinSeq || this.stopped) return;
    // A new member id means this member was expelled and has come back; so does a join after
    // the lease ran out: either way another member may have owned its partitions meanwhile.
    if (this.memberId === null || memberId !== this.memberId || this.lapsedSinceEmit) this.term++;
    this.lapsedSinceEmit = false;
    this.memberId = memberId;
    const owners = map?.owners ?? Array.from({ length: this.options.partitions }, () => null);
    for (const p of mine) owners[p] = memberId; // the join's own word is final for these
    const ownership: Ownership = {
      term: this.term,
      memberId,
      members: map?.members ?? [{ memberId, nodeId: this.options.nodeId, url: this.options.url }],
      owners,
      mine,
    };
    this.current = ownership;
    this.rebalances++;
    if (this.first) {
      this.first.resolve(ownership);
      this.first = null;
    }
    this.emit('ownership', ownership);
  }

  /**
   * The partition → member map of the generation this member just joined, from its own
   * assignment as the coordinator holds it. Retried briefly: a member that joins right after
   * may already have started the next rebalance (its own join then brings the next map).
   */
  private async fullMap(
    seq: number,
    memberId: string,
    mine: number[],
  ): Promise<AssignmentData | null> {
    const { MemberAssignment } = this.lib.AssignerProtocol;
    for (let attempt = 0; attempt < 10 && !this.stopped && seq === this.joinSeq; attempt++) {
      try {
        const group = await this.consumer.describeGroup();
        const me = group.members.find((m) => m.memberId === memberId);
        const assigned = me ? MemberAssignment.decode(me.memberAssignment) : null;
        const parts = [...(assigned?.assignment[this.settings.topic] ?? [])].sort((a, b) => a - b);
        if (assigned && parts.join() === mine.join()) {
          return parseJson<AssignmentData>(assigned.userData);
        }
      } catch {
        // the coordinator moved or is busy: try again
      }
      await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
    }
    return null;
  }

  private assigner(): PartitionAssigner {
    const { MemberMetadata, MemberAssignment } = this.lib.AssignerProtocol;
    const topic = this.settings.topic;
    const { nodeId, url, partitions, owned } = this.options;
    const ownedNow = () => (this.current !== null && this.leaseValid() ? owned() : []);
    return () => ({
      name: ASSIGNER,
      version: 1,
      protocol({ topics }) {
        const data: JoinData = { nodeId, url, owned: ownedNow() };
        const userData = Buffer.from(JSON.stringify(data));
        return {
          name: ASSIGNER,
          metadata: MemberMetadata.encode({ version: 1, topics, userData }),
        };
      },
      assign({ members }: { members: GroupMember[] }) {
        const joined = members.map((m) => {
          const meta = MemberMetadata.decode(m.memberMetadata);
          const data = parseJson<JoinData>(meta?.userData);
          return {
            memberId: m.memberId,
            nodeId: data?.nodeId ?? m.memberId,
            url: data?.url ?? '',
            owned: Array.isArray(data?.owned) ? data.owned : [],
          };
        });
        const owners = assignPartitions(joined, partitions);
        const map: AssignmentData = {
          members: joined.map(({ memberId, nodeId, url }) => ({ memberId, nodeId, url })),
          owners,
        };
        const userData = Buffer.from(JSON.stringify(map));
        return Promise.resolve(
          joined.map(({ memberId }) => ({
            memberId,
            memberAssignment: MemberAssignment.encode({
              version: 1,
              assignment: { [topic]: owners.flatMap((o, p) => (o === memberId ? [p] : [])) },
              userData,
            }),
          })),
        );
      },
    });
  }
}
