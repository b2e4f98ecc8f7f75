import type { Kafka } from 'kafkajs';
import { crc32c } from './crc32c.js';
import { JournalError } from './journal.js';
import { checkSkuPayload } from './split-by-sku.js';
import { messageOf } from '../../actors/index.js';

/**
 * Replays one partition of the journal topic with plain Fetch requests to the partition's
 * leader, from an offset up to a given end (the high-water mark when the read began).
 *
 * Why not a kafkajs `Consumer`: a consumer always joins a consumer group (JoinGroup/SyncGroup,
 * up to `group.initial.rebalance.delay.ms` = 3 s on a default broker, per read), leaves group
 * state on the brokers, and has no "stop at offset N". Recovery wants none of that, so this uses
 * kafkajs's own cluster and broker objects (the ones its consumer uses), which kafkajs does not
 * export as API. kafkajs 2.2.4 is the last release (the project is unmaintained), so these
 * internals are frozen; `internalCluster` fails loudly if they ever change.
 */
export interface FetchedRecord {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | Buffer[] | undefined>;
  isControlRecord: boolean;
}

interface FetchPartition {
  partition: number;
  errorCode: number;
  highWatermark: string;
  messages: FetchedRecord[];
}

interface FetchResponse {
  responses: { topicName: string; partitions: FetchPartition[] }[];
}

interface FetchRequest {
  replicaId: number;
  isolationLevel: number;
  maxWaitTime: number;
  minBytes: number;
  maxBytes: number;
  topics: {
    topic: string;
    partitions: { partition: number; fetchOffset: string; maxBytes: number }[];
  }[];
}

interface InternalBroker {
  fetch(request: FetchRequest): Promise<FetchResponse>;
}

interface InternalCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  refreshMetadata(): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(query: { nodeId: string }): Promise<InternalBroker>;
}

/** kafkajs `ISOLATION_LEVEL.READ_COMMITTED`: never hands out records of open transactions. */
const READ_COMMITTED = 1;
/** Header carrying the CRC-32C of the value, little endian (see kafka-journal.ts). */
export const CRC_HEADER = 'crc32c';
/**
 * Header carrying the offset the writer stamped the message for, in decimal ASCII digits (text,
 * so that tools such as kcat, which print header values as C strings, show it whole).
 */
export const OFFSET_HEADER = 'offset';

/** The `offset` header's value for a message meant to land at `offset`. */
export function offsetStamp(offset: number): Buffer {
  return Buffer.from(String(offset), 'latin1');
}

/**
 * Whether a record counts: a message whose stamp is not its offset was written on a state that
 * was no longer the partition's end (see Fencing in kafka-journal.ts) and is void. A message
 * with no stamp was written before Stockade stamped them, and counts.
 */
export function landedWhereStamped(r: FetchedRecord): boolean {
  const stamp = r.headers[OFFSET_HEADER];
  if (stamp === undefined) return true;
  return Buffer.isBuffer(stamp) && stamp.toString('latin1') === r.offset;
}
/** Fetches in a row that may return nothing before the read gives up (a broker bug guard). */
const EMPTY_FETCHES_MAX = 3;

function internalCluster(kafka: Kafka): InternalCluster {
  // kafkajs keeps its cluster factory under a private symbol (src/index.js,
  // PRIVATE.CREATE_CLUSTER); it builds the cluster from the client's own settings.
  const symbols = Object.getOwnPropertySymbols(kafka);
  const key = symbols.find((s) => s.description === 'private:Kafka:createCluster');
  const create: unknown = key === undefined ? undefined : Reflect.get(kafka, key);
  if (typeof create !== 'function') {
    throw new Error('kafkajs internals changed: no cluster factory (Stockade needs kafkajs 2.2.x)');
  }
  const make = create as (options: object) => InternalCluster;
  return make({ allowAutoTopicCreation: false, isolationLevel: READ_COMMITTED });
}

export class KafkaReader {
  private cluster: InternalCluster | null = null;
  /** Records skipped because they landed elsewhere than stamped (fenced writes). */
  void = 0;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly fetchBytesMax: number,
  ) {}

  /**
   * The records of `partition` in [from, end), one fetch at a time (so a caller can pause
   * between fetches), control records left out, each value checked (CRC-32C header, payload
   * layout, key = the SKU of every event). A bad record fails the read with `journal_corrupt`:
   * skipping it would silently rebuild a different state.
   */
  async *fetches(
    partition: number,
    from: number,
    end: number,
  ): AsyncGenerator<FetchedRecord[], void> {
    let pos = from;
    let empty = 0;
    while (pos < end) {
      const records = await this.fetch(partition, pos);
      const out: FetchedRecord[] = [];
      const before = pos;
      for (const r of records) {
        const offset = Number(r.offset);
        if (offset < pos) continue; // a fetch returns whole record batches, from before `pos` too
        if (offset >= end) break;
        pos = offset + 1;
        if (r.isControlRecord) continue; // transaction markers (not written by Stockade today)
        if (!landedWhereStamped(r)) {
          this.void++;
          continue;
        }
        checkedValue(r, this.topic, partition);
        out.push(r);
      }
      empty = pos === before ? empty + 1 : 0;
      if (empty >= EMPTY_FETCHES_MAX) {
        const what = `${this.where(partition)}: no records at offset ${pos} below ${end}`;
        throw new JournalError('journal_unavailable', what);
      }
      if (out.length > 0) yield out;
    }
  }

  /**
   * One Fetch at `offset`. A failure is tried once more on a fresh connection and metadata:
   * a broker that restarted since the last read leaves this reader with dead connections.
   */
  private async fetch(partition: number, offset: number): Promise<FetchedRecord[]> {
    try {
      return await this.fetchOnce(partition, offset);
    } catch {
      await this.close();
    }
    try {
      return await this.fetchOnce(partition, offset);
    } catch (err) {
      await this.close();
      const why = `${this.where(partition)}: fetch at ${offset}: ${messageOf(err)}`;
      throw new JournalError('journal_unavailable', why, { cause: err });
    }
  }

  private async fetchOnce(partition: number, offset: number): Promise<FetchedRecord[]> {
    const broker = await this.leader(partition);
    const response = await broker.fetch({
      replicaId: -1,
      isolationLevel: READ_COMMITTED,
      maxWaitTime: 0, // everything wanted is below the high-water mark: never wait for more
      minBytes: 1,
      maxBytes: this.fetchBytesMax,
      topics: [
        {
          topic: this.topic,
          partitions: [{ partition, fetchOffset: String(offset), maxBytes: this.fetchBytesMax }],
        },
      ],
    });
    const p = response.responses[0]?.partitions.find((x) => x.partition === partition);
    return p ? p.messages : [];
  }

  private async leader(partition: number): Promise<InternalBroker> {
    if (!this.cluster) {
      const cluster = internalCluster(this.kafka);
      this.cluster = cluster;
      await cluster.connect();
      await cluster.addTargetTopic(this.topic);
    }
    const leaders = this.cluster.findLeaderForPartitions(this.topic, [partition]);
    const nodeId = Object.keys(leaders)[0];
    if (nodeId === undefined) throw new Error(`no leader known for partition ${partition}`);
    return this.cluster.findBroker({ nodeId });
  }

  private where(partition: number): string {
    return `kafka topic ${this.topic} partition ${partition}`;
  }

  async close(): Promise<void> {
    const c = this.cluster;
    this.cluster = null;
    if (c) await c.disconnect().catch(() => {});
  }
}

/** The record's value if it is a sound Stockade payload for its key; else `journal_corrupt`. */
export function checkedValue(r: FetchedRecord, topic: string, partition: number): Uint8Array {
  const value = r.value;
  const crc = r.headers[CRC_HEADER];
  let problem: string | null;
  if (!value) problem = 'no value';
  else if (!Buffer.isBuffer(crc) || crc.length !== 4) problem = `no ${CRC_HEADER} header`;
  else if (crc.readUInt32LE(0) !== crc32c(value)) problem = 'checksum mismatch';
  else problem = checkSkuPayload(value, r.key);
  if (problem !== null) {
    throw new JournalError(
      'journal_corrupt',
      `kafka topic ${topic} partition ${partition} offset ${r.offset}: ` +
        `not a Stockade event payload (${problem})`,
    );
  }
  return value!;
}
