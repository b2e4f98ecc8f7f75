import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type {
  Admin,
  Kafka,
  Message,
  PartitionMetadata,
  Producer,
  RecordMetadata,
  RetryOptions,
} from 'kafkajs';
import type { KafkaSettings } from '../../config/index.js';
import { crc32c } from './crc32c.js';
import { JournalError, VisitorError, visitGuarded } from './journal.js';
import type { Journal, JournalPosition } from './journal.js';
import { CRC_HEADER, KafkaReader, OFFSET_HEADER, offsetStamp } from './kafka-reader.js';
import { loadKafkajs } from './kafkajs-loader.js';
import { splitBySku } from './split-by-sku.js';

export interface JournalPayload {
  payload: Uint8Array;
  /** The position after it: where a read resumes to get what follows. */
  position: JournalPosition;
}

export interface KafkaJournalOptions {
  /** `per-shard` (default): one producer per shard. `shared`: one for all, sends serialized. */
  producers?: 'per-shard' | 'shared';
  /** false: never create the topic (tools); a missing topic is then `journal_mismatch`. */
  createTopic?: boolean;
}

/** How a topic keeps acknowledged appends (see `KafkaJournal.replication`, `replicationRisks`). */
export interface TopicReplication {
  topic: string;
  brokers: number;
  /** The fewest replicas any partition has. */
  replicationFactor: number;
  minInsyncReplicas: number;
  uncleanLeaderElection: boolean;
}

/**
 * Why a topic can lose an acknowledged append, one reason per entry (none: it cannot, short
 * of losing more brokers than it has replicas to spare). A Kafka ack comes from the leader's
 * page cache; only replication makes it survive that broker. An ack waits for
 * `min.insync.replicas` copies, so below 2 a single broker's loss can take it; unclean leader
 * election lets a replica that missed it become leader.
 */
export function replicationRisks(r: TopicReplication): string[] {
  const risks: string[] = [];
  if (r.replicationFactor < 2) {
    const one = r.brokers < 2 ? ` (the cluster has ${r.brokers} broker)` : '';
    risks.push(`replication factor ${r.replicationFactor}${one}`);
  }
  if (r.minInsyncReplicas < 2) risks.push(`min.insync.replicas ${r.minInsyncReplicas}`);
  if (r.uncleanLeaderElection) risks.push('unclean.leader.election.enable=true');
  return risks;
}

/** Upper bounds of what a record and a record batch add to the keys and values (varints, CRC). */
const RECORD_OVERHEAD_BYTES = 64;
const BATCH_OVERHEAD_BYTES = 128;

interface Slot {
  producer: Producer | null;
  /** Settles when the last job queued on this producer has settled: one send at a time. */
  tail: Promise<unknown>;
  /** The producer's last send or connect failed: replace it before the next send. */
  broken: boolean;
}

interface ShardState {
  slot: Slot;
  appending: boolean;
  durable: number;
}

/** Set when the caller has been told the append failed: it must then never be sent. */
interface Ticket {
  abandoned: boolean;
}

const noop = (): void => {};

/**
 * The production journal: one Kafka topic, one partition per shard (partition = shard).
 *
 *   append(shard, payload) ──split by SKU──▶ messages  key = SKU, value = that SKU's events
 *                                           (a payload of the same format), header crc32c
 *                          ──ONE producer.send, acks=-1, partition = shard──▶ broker
 *                          ◀─ resolves to the offset after its last message, once acknowledged
 *
 * The messages of one send go to one partition as one record batch, which the broker appends
 * whole or not at all. A group commit larger than `kafka.messageBytesMax` is sent as several
 * batches, one after another; if a later one fails, an earlier one may be durable, which is
 * still a consistent state: per SKU it is a prefix of that SKU's events.
 *
 * Positions are Kafka offsets: the position after a message is its offset + 1, so a position
 * returned by `append` or handed to `visit` is where a later `read` resumes. `read` visits one
 * payload per message (one SKU's events of one group commit), in offset order.
 *
 * Producers. Each shard has its own idempotent producer (`idempotent: true`,
 * `maxInFlightRequests: 1`), so shards never wait on each other's round trips, and since the
 * Journal contract allows one append per shard, each producer has at most one send in flight:
 * kafkajs drops or reorders messages when sends overlap on one idempotent producer
 * (https://github.com/tulios/kafkajs/issues/1005). `producers: 'shared'` serializes every
 * shard's sends through one producer instead (measured in bench/kafka-journal.ts).
 *
 * Fencing. Every message carries the offset it must land at (header `offset`, decimal): the
 * end of the partition as this writer knows it (from its last read, or from its own last
 * append that landed where it should), plus its place in the send. The broker puts a
 * record batch wherever the partition ends when it arrives; if that is not where the writer
 * stamped it, another writer extended the partition first (a second node that believes it owns
 * the shard, a paused one that woke up, or this writer's own earlier send that landed after it
 * gave up on it). The append then fails with `journal_fenced` and the shard rebuilds from what
 * the partition holds; every reader ignores a message whose stamp is not its offset, so a write
 * decided on a state that was no longer the partition's end is never part of any reader's
 * history (KIP-27's conditional append, done on the client: no extra round trip). Exactly one
 * of two writers that stamp the same end can land there; the other's batch lands after it and
 * is void. The writer never stamps past an append that has not come back valid (one append in
 * flight per shard, and a group commit's later sends wait for the earlier ones), and never
 * reuses a producer id and sequence for new content (below).
 *
 * Failure. An append that is not acknowledged within `kafka.appendTimeoutMs` rejects with
 * `journal_unavailable`. It may still land: a rejected append means "unknown", never "lost".
 * kafkajs retries a send with the same producer id and sequence number (the broker drops the
 * duplicate), but once it gives up, the sequence number is reused by the next send, and if the
 * failed batch did land, the broker would take a different batch with that number for a
 * duplicate and drop it while acknowledging it. So a producer that failed once is never used
 * again: it is disconnected once its send has settled, and the next append gets a new producer
 * (a new producer id), which is also how the journal reconnects after a broker outage. Until the
 * failed send has settled, later appends and reads of that shard wait for it (bounded by the
 * same timeout), so what `read` returns after a failure is final: the failed append is either
 * in it or will never appear. A request the broker received and still executes after the
 * client gave up on it (longer than the timeout, e.g. held by the network) lands after whatever
 * came since, with a stamp that is no longer the end: it is void (see Fencing).
 */
export class KafkaJournal implements Journal {
  readonly kind = 'kafka' as const;
  private readonly lib = loadKafkajs();
  private readonly kafka: Kafka;
  private readonly shardStates: ShardState[];
  private readonly slots: Slot[];
  private readonly retry: RetryOptions;
  private readonly reader: KafkaReader;
  private readonly createTopic: boolean;
  private admin: Admin | null = null;
  private topicReady: Promise<void> | null = null;
  private messageBytesMax: number;
  private closed = false;

  constructor(
    private readonly settings: KafkaSettings,
    readonly shards: number,
    options: KafkaJournalOptions = {},
  ) {
    if (!Number.isInteger(shards) || shards < 1 || shards > 1024) {
      throw new RangeError(`KafkaJournal: shards must be an integer from 1 to 1024, got ${shards}`);
    }
    // Bounded retries, so that a send settles soon after its append timed out (see above):
    // kafkajs would otherwise retry an idempotent send Number.MAX_SAFE_INTEGER times.
    this.retry = {
      retries: 3,
      initialRetryTime: 100,
      maxRetryTime: Math.max(100, Math.floor(settings.appendTimeoutMs / 5)),
    };
    this.kafka = new this.lib.Kafka({
      clientId: settings.clientId,
      brokers: [...settings.brokers],
      connectionTimeout: settings.connectionTimeoutMs,
      requestTimeout: settings.appendTimeoutMs,
      retry: this.retry,
      // Failures reach the caller as JournalErrors with the kafkajs error as `cause`.
      logLevel: this.lib.logLevel.NOTHING,
      socketFactory: noDelaySocket,
    });
    this.reader = new KafkaReader(this.kafka, settings.topic, settings.fetchBytesMax);
    this.createTopic = options.createTopic ?? true;
    this.messageBytesMax = settings.messageBytesMax;
    const shared = options.producers === 'shared';
    this.slots = Array.from({ length: shared ? 1 : shards }, () => newSlot());
    this.shardStates = Array.from({ length: shards }, (_, i) => ({
      slot: this.slots[shared ? 0 : i],
      appending: false,
      durable: 0,
    }));
  }

  /**
   * A read-only journal on an existing topic, with as many shards as it has partitions (for
   * tools such as `stockade tail`, which must not create topics or guess the shard count).
   */
  static async existing(settings: KafkaSettings): Promise<KafkaJournal> {
    const probe = new KafkaJournal(settings, 1, { createTopic: false });
    let partitions: number;
    try {
      const count = probe.partitionCount().catch((err: unknown) => {
        throw probe.unavailable('reading the topic metadata', err);
      });
      partitions = await probe.withTimeout(count, 'reading the topic metadata');
    } finally {
      await probe.close();
    }
    if (partitions < 0) throw missingTopic(settings.topic);
    return new KafkaJournal(settings, partitions, { createTopic: false });
  }

  durablePosition(shard: number): JournalPosition {
    return this.shardStates[shard]?.durable ?? 0;
  }

  private noShard(shard: number): RangeError {
    return new RangeError(`KafkaJournal: no shard ${shard} of ${this.shards}`);
  }

  append(shard: number, payload: Uint8Array): Promise<JournalPosition> {
    const st = this.shardStates[shard];
    if (!st) return Promise.reject(this.noShard(shard));
    if (this.closed) return Promise.reject(closedError());
    if (st.appending) {
      return Promise.reject(new Error(`KafkaJournal: second append in flight on shard ${shard}`));
    }
    st.appending = true;
    const ticket: Ticket = { abandoned: false };
    const job = this.exclusive(st.slot, () => this.sendAll(shard, st, payload, ticket));
    return this.withTimeout(job, `append to shard ${shard}`, ticket).finally(() => {
      st.appending = false;
    });
  }

  settled(shard: number): Promise<void> {
    const st = this.shardStates[shard];
    return st ? st.slot.tail.then(noop) : Promise.reject(this.noShard(shard));
  }

  /** Runs `job` after every job queued before it on the slot has settled. */
  private exclusive<T>(slot: Slot, job: () => Promise<T>): Promise<T> {
    const run = slot.tail.then(job);
    slot.tail = run.then(noop, noop);
    return run;
  }

  /** The payload's messages, in as few sends as fit `messageBytesMax` (normally one). */
  private async sendAll(
    shard: number,
    st: ShardState,
    payload: Uint8Array,
    ticket: Ticket,
  ): Promise<number> {
    if (ticket.abandoned) throw late(shard);
    await this.ready();
    let next = st.durable;
    for (const messages of this.sendsFor(shard, payload, next)) {
      const producer = await this.producerOf(st.slot);
      // Checked right before the send: an append its caller saw fail must never land later.
      if (ticket.abandoned) throw late(shard);
      let acks: RecordMetadata[];
      try {
        acks = await producer.send({
          topic: this.settings.topic,
          acks: -1,
          timeout: this.settings.appendTimeoutMs,
          messages,
        });
      } catch (err) {
        st.slot.broken = true;
        throw this.unavailable(`sending to partition ${shard}`, err);
      }
      const base = Number(acks.find((a) => a.partition === shard)?.baseOffset);
      if (!Number.isSafeInteger(base) || base < 0) {
        st.slot.broken = true;
        const why = new Error('no base offset in the acknowledgement');
        throw this.unavailable(`sending to partition ${shard}`, why);
      }
      // Landed elsewhere than stamped: another writer got to the end first; readers ignore
      // this batch, and the shard must rebuild before it decides anything more.
      if (base !== next && this.settings.fencing !== false) {
        throw fenced(this.settings.topic, shard, next, base);
      }
      next = base + messages.length;
      if (next > st.durable) st.durable = next;
    }
    return next;
  }

  /** The sends of a payload, each message stamped with its offset from `stamp` on. */
  private sendsFor(shard: number, payload: Uint8Array, stamp: number): Message[][] {
    const budget = this.messageBytesMax - BATCH_OVERHEAD_BYTES;
    const parts = splitBySku(payload, budget - RECORD_OVERHEAD_BYTES - 255);
    const sends: Message[][] = [];
    let messages: Message[] = [];
    let bytes = 0;
    for (const part of parts) {
      const size = part.key.length + part.value.length + RECORD_OVERHEAD_BYTES;
      if (messages.length > 0 && bytes + size > budget) {
        sends.push(messages);
        messages = [];
        bytes = 0;
      }
      const crc = Buffer.allocUnsafe(4);
      crc.writeUInt32LE(crc32c(part.value), 0);
      // Unfenced (only to measure what fencing costs): no stamp, so every reader counts it.
      const headers =
        this.settings.fencing !== false
          ? { [CRC_HEADER]: crc, [OFFSET_HEADER]: offsetStamp(stamp++) }
          : { [CRC_HEADER]: crc };
      messages.push({ key: part.key, value: part.value, partition: shard, headers });
      bytes += size;
    }
    sends.push(messages);
    return sends;
  }

  /** The slot's producer, connected; a new one if the last one failed (see the class comment). */
  private async producerOf(slot: Slot): Promise<Producer> {
    if (slot.producer && !slot.broken) return slot.producer;
    const old = slot.producer;
    slot.producer = null;
    slot.broken = false;
    // No send of the old producer is in flight (jobs on a slot run one at a time), so closing
    // it cannot cut a send short or let kafkajs's retry loop reconnect it behind our back.
    if (old) await old.disconnect().catch(noop);
    const producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: this.retry,
      // Unused (every message names its partition); given to silence kafkajs's v2 warning.
      createPartitioner: this.lib.Partitioners.DefaultPartitioner,
    });
    try {
      await producer.connect();
    } catch (err) {
      await producer.disconnect().catch(noop);
      throw this.unavailable('connecting a producer', err);
    }
    slot.producer = producer;
    return producer;
  }

  async read(
    shard: number,
    from: JournalPosition,
    visit: (payload: Uint8Array, position: JournalPosition) => void,
  ): Promise<JournalPosition> {
    try {
      const end = await this.openRange(shard, from);
      for await (const records of this.reader.fetches(shard, from, end)) {
        for (const r of records) visitGuarded(visit, r.value!, Number(r.offset) + 1);
      }
      return this.readTo(shard, end);
    } catch (err) {
      // The contract: the journal's own faults are JournalErrors (a broker restarting answers
      // with raw kafkajs errors: journal_unavailable, retriable), a visitor's error passes as it
      // is.
      if (err instanceof VisitorError) throw err.cause instanceof Error ? err.cause : err;
      throw this.unavailable(`reading partition ${shard}`, err);
    }
  }

  /**
   * `read` for tools that write what they read somewhere slow (`stockade tail`): the payloads
   * from `from` to the end at call time, one fetch at a time, so that memory stays bounded by
   * `kafka.fetchBytesMax` when the caller awaits between batches. Returns the end position.
   */
  async *payloadBatches(
    shard: number,
    from: JournalPosition,
  ): AsyncGenerator<JournalPayload[], number> {
    const end = await this.openRange(shard, from);
    for await (const records of this.reader.fetches(shard, from, end)) {
      yield records.map((r) => ({ payload: r.value!, position: Number(r.offset) + 1 }));
    }
    return this.readTo(shard, end);
  }

  /**
   * Checks `from` against the partition and returns the end to read to (its high-water mark
   * now), all within one `kafka.appendTimeoutMs`.
   */
  private openRange(shard: number, from: JournalPosition): Promise<number> {
    const st = this.shardStates[shard];
    if (!st) return Promise.reject(this.noShard(shard));
    if (this.closed) return Promise.reject(closedError());
    const what = `opening partition ${shard} for reading`;
    return this.withTimeout(this.rangeOf(st, shard, from), what);
  }

  private async rangeOf(st: ShardState, shard: number, from: JournalPosition): Promise<number> {
    // A failed append may still be in flight: wait until it has settled, so that what this
    // read returns is final (the caller rebuilds its state from it).
    await st.slot.tail;
    await this.ready();
    const { low, high } = await this.offsets(shard);
    const where = `kafka topic ${this.settings.topic} partition ${shard}`;
    if (from > high) {
      const why = `${where} ends at ${high}; position ${from} is not in it`;
      throw new JournalError('journal_mismatch', why);
    }
    if (from < low) {
      throw new JournalError(
        'journal_corrupt',
        `${where} starts at offset ${low}: offsets ${from}..${low - 1} were deleted (retention?)`,
      );
    }
    return high;
  }

  private readTo(shard: number, end: number): number {
    const st = this.shardStates[shard];
    if (end > st.durable) st.durable = end;
    return end;
  }

  /**
   * The partition's first offset and high-water mark. Failures are retried for up to
   * `kafka.appendTimeoutMs`: a partition whose topic was created a moment ago answers
   * NOT_LEADER_FOR_PARTITION for a while, and a broker that restarted since the last call left
   * the admin client with dead connections (it is then replaced).
   */
  private async offsets(shard: number): Promise<{ low: number; high: number }> {
    const deadline = performance.now() + this.settings.appendTimeoutMs;
    for (let waitMs = 20; ; waitMs = Math.min(waitMs * 2, 500)) {
      try {
        const admin = await this.adminClient();
        const all = await admin.fetchTopicOffsets(this.settings.topic);
        const p = all.find((o) => o.partition === shard);
        if (!p) throw new Error(`no offsets for partition ${shard}`);
        return { low: Number(p.low), high: Number(p.high) };
      } catch (err) {
        if ((err as { name?: unknown }).name !== 'KafkaJSProtocolError') await this.dropAdmin();
        if (performance.now() + waitMs > deadline) {
          throw this.unavailable(`reading the offsets of partition ${shard}`, err);
        }
        await delay(waitMs);
      }
    }
  }

  /** Rejects with `journal_unavailable` if `p` has not settled within `kafka.appendTimeoutMs`. */
  private withTimeout<T>(p: Promise<T>, what: string, ticket?: Ticket): Promise<T> {
    const ms = this.settings.appendTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (ticket) ticket.abandoned = true;
        const brokers = this.settings.brokers.join(',');
        const why = `${what}: no answer from kafka ${brokers} within ${ms} ms`;
        reject(new JournalError('journal_unavailable', why));
      }, ms);
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  private unavailable(what: string, cause: unknown): JournalError {
    if (cause instanceof JournalError) return cause;
    const detail = cause instanceof Error ? cause.message : String(cause);
    const why = `kafka topic ${this.settings.topic}: ${what}: ${detail}`;
    return new JournalError('journal_unavailable', why, { cause });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Sends in flight settle within their retry bounds; disconnecting under one would let
    // kafkajs's retry loop reconnect the producer after close.
    const settle = Promise.all(this.slots.map((s) => s.tail));
    await this.withTimeout(settle, 'closing').catch(noop);
    const producers = this.slots.map((s) => s.producer).filter((p) => p !== null);
    await Promise.all(producers.map((p) => p.disconnect().catch(noop)));
    await this.reader.close();
    await this.dropAdmin();
  }

  // ---- the topic ------------------------------------------------------------------------

  private ready(): Promise<void> {
    this.topicReady ??= this.ensureTopic().catch((err: unknown) => {
      this.topicReady = null;
      throw err;
    });
    return this.topicReady;
  }

  /** Creates the topic if missing; checks its partition count and settings if not. */
  private async ensureTopic(): Promise<void> {
    const { topic } = this.settings;
    try {
      let partitions = await this.partitionCount();
      if (partitions < 0) {
        if (!this.createTopic) throw missingTopic(topic);
        await this.createJournalTopic();
        partitions = await this.partitionCount();
      }
      if (partitions !== this.shards) {
        throw new JournalError(
          'journal_mismatch',
          `kafka topic ${topic} has ${partitions} partitions but engine.shards is ` +
            `${this.shards}; each partition is one shard and SKUs are placed on shards by ` +
            'hash, so the counts must match: start with the same shard count, or use ' +
            'another kafka.topic',
        );
      }
      await this.checkTopicConfig();
      await this.leadersElected();
    } catch (err) {
      if (err instanceof JournalError) throw err;
      await this.dropAdmin();
      throw this.unavailable('opening the topic', err);
    }
  }

  /** Partitions of the topic, or -1 if it does not exist. */
  private async partitionCount(): Promise<number> {
    const admin = await this.adminClient();
    const topics = await admin.listTopics();
    if (!topics.includes(this.settings.topic)) return -1;
    return (await this.partitions()).length;
  }

  private async partitions(): Promise<PartitionMetadata[]> {
    const admin = await this.adminClient();
    const meta = await admin.fetchTopicMetadata({ topics: [this.settings.topic] });
    return meta.topics[0]?.partitions ?? [];
  }

  /**
   * Waits (at most `kafka.appendTimeoutMs`) until every partition has a leader. Only the node
   * that creates the topic waits for that in `createTopics`; the shard workers that find it
   * created a moment ago by another one would otherwise fail their first request on it.
   */
  private async leadersElected(): Promise<void> {
    const deadline = performance.now() + this.settings.appendTimeoutMs;
    for (let waitMs = 20; ; waitMs = Math.min(waitMs * 2, 500)) {
      const parts = await this.partitions();
      if (parts.every((p) => p.leader >= 0 && p.partitionErrorCode === 0)) return;
      if (performance.now() + waitMs > deadline) {
        throw new Error(`partitions of ${this.settings.topic} still have no leader`);
      }
      await delay(waitMs);
    }
  }

  private async createJournalTopic(): Promise<void> {
    const admin = await this.adminClient();
    const brokers = (await admin.describeCluster()).brokers.length;
    const replicationFactor = this.settings.replicationFactor || Math.min(3, brokers);
    // With 3 replicas an acknowledged write is on 2 of them, and one broker may be down.
    const minInsync = replicationFactor >= 3 ? [{ name: 'min.insync.replicas', value: '2' }] : [];
    await admin.createTopics({
      waitForLeaders: true,
      timeout: this.settings.appendTimeoutMs,
      topics: [
        {
          topic: this.settings.topic,
          numPartitions: this.shards,
          replicationFactor,
          // A journal is never expired or compacted: recovery replays each partition from 0,
          // and compaction would keep only the last message of each SKU.
          configEntries: [
            { name: 'cleanup.policy', value: 'delete' },
            { name: 'retention.ms', value: '-1' },
            { name: 'retention.bytes', value: '-1' },
            { name: 'max.message.bytes', value: String(this.settings.messageBytesMax) },
            ...minInsync,
          ],
        },
      ],
    });
    // false means another node created it first, which is fine: the caller re-reads it.
  }

  /** The topic must keep everything (no retention, no compaction); learns its batch limit. */
  private async checkTopicConfig(): Promise<void> {
    const admin = await this.adminClient();
    const names = ['cleanup.policy', 'retention.ms', 'retention.bytes', 'max.message.bytes'];
    const res = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        { type: this.lib.ConfigResourceTypes.TOPIC, name: this.settings.topic, configNames: names },
      ],
    });
    const value = (name: string) =>
      res.resources[0]?.configEntries.find((e) => e.configName === name)?.configValue ?? '';
    const problems: string[] = [];
    const policy = value('cleanup.policy');
    if (policy.includes('compact')) problems.push(`cleanup.policy=${policy}`);
    for (const name of ['retention.ms', 'retention.bytes']) {
      if (value(name) !== '-1') problems.push(`${name}=${value(name)}`);
    }
    if (problems.length > 0) {
      throw new JournalError(
        'journal_mismatch',
        `kafka topic ${this.settings.topic} would lose journal entries (${problems.join(', ')}); ` +
          'set cleanup.policy=delete, retention.ms=-1 and retention.bytes=-1 on it',
      );
    }
    const topicMax = Number(value('max.message.bytes'));
    if (topicMax > 0) this.messageBytesMax = Math.min(this.settings.messageBytesMax, topicMax);
  }

  /**
   * How the topic keeps an acknowledged append: its replicas, `min.insync.replicas` and unclean
   * leader election, and the brokers there are (creates the topic first if it is missing).
   */
  async replication(): Promise<TopicReplication> {
    const work = async (): Promise<TopicReplication> => {
      await this.ready();
      const admin = await this.adminClient();
      const brokers = (await admin.describeCluster()).brokers.length;
      const parts = await this.partitions();
      const replicationFactor = Math.min(...parts.map((p) => p.replicas.length));
      const names = ['min.insync.replicas', 'unclean.leader.election.enable'];
      const res = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          {
            type: this.lib.ConfigResourceTypes.TOPIC,
            name: this.settings.topic,
            configNames: names,
          },
        ],
      });
      const value = (name: string) =>
        res.resources[0]?.configEntries.find((e) => e.configName === name)?.configValue ?? '';
      return {
        topic: this.settings.topic,
        brokers,
        replicationFactor,
        minInsyncReplicas: Number(value('min.insync.replicas')) || 1,
        uncleanLeaderElection: value('unclean.leader.election.enable') === 'true',
      };
    };
    const checked = work().catch((err: unknown) => {
      throw this.unavailable('reading the topic replication', err);
    });
    return this.withTimeout(checked, 'reading the topic replication');
  }

  private async adminClient(): Promise<Admin> {
    if (this.admin) return this.admin;
    const admin = this.kafka.admin({ retry: this.retry });
    try {
      await admin.connect();
    } catch (err) {
      await admin.disconnect().catch(noop);
      throw err;
    }
    this.admin = admin;
    return admin;
  }

  private async dropAdmin(): Promise<void> {
    const admin = this.admin;
    this.admin = null;
    if (admin) await admin.disconnect().catch(noop);
  }
}

/**
 * kafkajs's socket factory (src/network/socketFactory.js) plus TCP_NODELAY, as the Java client
 * sets it: a produce request is one write, and Nagle's algorithm can hold its last segment back
 * until the broker's delayed ACK. (No TLS: the journal settings have none yet.)
 */
function noDelaySocket(args: { host: string; port: number; onConnect: () => void }): Socket {
  const socket = connect({ host: args.host, port: args.port }, args.onConnect);
  socket.setKeepAlive(true, 60_000);
  socket.setNoDelay(true);
  return socket;
}

function newSlot(): Slot {
  return { producer: null, tail: Promise.resolve(), broken: false };
}

function missingTopic(topic: string): JournalError {
  return new JournalError('journal_mismatch', `kafka topic ${topic} does not exist`);
}

function closedError(): JournalError {
  return new JournalError('journal_unavailable', 'the journal is closed');
}

function fenced(topic: string, shard: number, stamp: number, base: number): JournalError {
  return new JournalError(
    'journal_fenced',
    `kafka topic ${topic} partition ${shard}: the append was stamped for offset ${stamp} but ` +
      `landed at ${base}: another writer extended the partition first, so it does not count`,
  );
}

function late(shard: number): JournalError {
  return new JournalError(
    'journal_unavailable',
    `append to shard ${shard} gave up waiting for an earlier send on its producer`,
  );
}
